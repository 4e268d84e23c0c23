"""The Redis layout version (common/infra/layout.py) on a real Redis: stamped on a fresh one, older layouts migrated
once under the lock (and resumed after a crash), a newer one refused with one line."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping

import pytest
import redis
from click.testing import CliRunner

from cli.main import cli
from common import keys
from common.infra import layout
from common.infra.data_epoch import EpochWatch
from common.infra.layout import LAYOUT, LayoutTooNewError, Migration

COUNTS = "test:migration-runs"  # outside our prefix: counting runs is not "our data"


def client_of(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def counted(step: int, *, pause_s: float = 0.0, crash_once: bool = False) -> Migration:
    """A test step from `step` to `step + 1`: counts its runs in Redis, writes one key (the same on a rerun)."""

    def run(client: redis.Redis, dry_run: bool) -> list[str]:
        if dry_run:
            return [f"would touch step {step}"]
        runs = client.hincrby(COUNTS, str(step), 1)
        threading.Event().wait(pause_s)
        if crash_once and runs == 1:
            raise KeyboardInterrupt("the process died mid-step")
        client.set(f"{keys.PREFIX}:test-step:{step}", "done")  # idempotent: a rerun writes the same
        return [f"touched step {step}"]

    return run


def test_a_fresh_redis_is_stamped_with_this_release_layout(redis_url: str) -> None:
    client = client_of(redis_url)
    assert layout.ensure(client) == LAYOUT
    assert client.get(keys.LAYOUT_VERSION) == str(LAYOUT)


def test_unversioned_data_counts_as_layout_1_and_is_migrated(redis_url: str) -> None:
    client = client_of(redis_url)
    client.sadd(keys.LINKS_INDEX, "cus_1")  # written before the layout was versioned
    registry: Mapping[int, Migration] = {1: counted(1)}
    assert layout.dry_run(client, current=2, registry=registry)[0].changes == ["would touch step 1"]
    assert client.get(keys.LAYOUT_VERSION) is None  # the dry run stamps nothing
    assert layout.ensure(client, current=2, registry=registry) == 2
    assert (client.get(keys.LAYOUT_VERSION), client.hgetall(COUNTS)) == ("2", {"1": "1"})


def test_two_processes_starting_at_once_migrate_exactly_once(redis_url: str) -> None:
    client_of(redis_url).set(keys.LAYOUT_VERSION, 1)
    registry = {1: counted(1, pause_s=0.3), 2: counted(2)}
    start, errors = threading.Barrier(2), []

    def process() -> None:
        start.wait()
        try:
            layout.ensure(client_of(redis_url), current=3, registry=registry)
        except Exception as exc:  # reported below
            errors.append(exc)

    both = [threading.Thread(target=process) for _ in range(2)]
    for one in both:
        one.start()
    for one in both:
        one.join(10)
    client = client_of(redis_url)
    assert errors == []
    assert (client.get(keys.LAYOUT_VERSION), client.hgetall(COUNTS)) == ("3", {"1": "1", "2": "1"})
    assert client.get(keys.LAYOUT_LOCK) is None


def test_a_migration_cut_short_resumes_at_the_step_it_was_in(redis_url: str) -> None:
    client = client_of(redis_url)
    client.set(keys.LAYOUT_VERSION, 1)
    registry = {1: counted(1), 2: counted(2, crash_once=True)}
    with pytest.raises(KeyboardInterrupt):
        layout.ensure(client, current=3, registry=registry)
    assert client.get(keys.LAYOUT_VERSION) == "2"  # step 1 was recorded as done
    client.set(keys.LAYOUT_LOCK, "a-crashed-holder", px=300)  # a killed process's lock, lapsing
    assert layout.ensure(client, current=3, registry=registry) == 3
    assert client.hgetall(COUNTS) == {"1": "1", "2": "2"}  # step 1 not again; step 2 run again to its end


def test_a_newer_layout_refuses_to_start_with_one_line_naming_both(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_of(redis_url).set(keys.LAYOUT_VERSION, LAYOUT + 1)
    with pytest.raises(LayoutTooNewError):
        layout.ensure(client_of(redis_url))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("KINDE_DOMAIN", "https://example.kinde.com")
    monkeypatch.setattr("uvicorn.Server.run", lambda _: pytest.fail("the ingest served without checking the layout"))
    result = CliRunner().invoke(cli, ["ingest", "--port", "0"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert f"Redis holds layout version {LAYOUT + 1}" in line
    assert f"this release writes layout version {LAYOUT}" in line
    assert "Traceback" not in result.output


def test_migrate_on_the_command_line_stamps_and_says_the_layout(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    dry = CliRunner().invoke(cli, ["migrate", "--dry-run"])
    assert (dry.exit_code, dry.stdout.splitlines()) == (0, [f"Redis layout: not stamped; this release: {LAYOUT}",
                                                             "nothing to migrate"])  # fmt: skip
    assert client_of(redis_url).get(keys.LAYOUT_VERSION) is None
    ran = CliRunner().invoke(cli, ["migrate"])
    assert (ran.exit_code, client_of(redis_url).get(keys.LAYOUT_VERSION)) == (0, str(LAYOUT))


def test_a_flushall_loses_the_layout_and_the_new_epoch_stamps_it_back(redis_url: str) -> None:
    client = client_of(redis_url)
    watch = EpochWatch(client)
    layout.ensure(client, current=LAYOUT)
    watch.check()
    client.flushdb()
    client.sadd(keys.LINKS_INDEX, "cus_1")  # the running fleet writes on, at its own layout
    assert watch.check() == "lost"
    assert client.get(keys.LAYOUT_VERSION) == str(LAYOUT)  # a process started now does not take it for layout 1


def test_status_shows_the_layout_redis_holds_and_this_release(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client_of(redis_url).set(keys.LAYOUT_VERSION, LAYOUT)
    monkeypatch.setenv("REDIS_URL", redis_url)
    shown = json.loads(CliRunner().invoke(cli, ["status", "--json"]).stdout)
    assert (shown["layout"], shown["layout_release"]) == (LAYOUT, LAYOUT)
