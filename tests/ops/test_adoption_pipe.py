"""Adopting an existing tenant on the whole pipe (sandbox Kinde, ingest, real workers): shadow run → report →
`adopt --grant` → live, and no role leaves that nobody chose to let go.

The tenant: 200 users, 140 paying (each already holding its plan's role, as an older script left it) and
60 holding `role_client` given by hand, no plan. Failed before shadow mode and hand grants: the first
pass removed the 60 roles. Then, live: an adopted user who buys a plan not giving the adopted role keeps
it (the union), and an adopted grant whose `until` the clock has passed ends at the schedule's next tick,
its role removed with no event.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from common.entitlements.manual_grants import RedisHandGrantStore, parse_until
from launch.pipe import PipeOptions, running_pipe
from launch.redis_server import RunningRedis
from tests.ops.conftest import ONCALL_ENV, OnCall, fresh_db
from tests.procs import wait_until
from worker.sweeps.grant_schedule import TICK_S

pytestmark = pytest.mark.e2e
PIPE_DB = 8
PAYING, BY_HAND = 140, 60
WHY = ("--reason", "adoption", "--by", "ada")
ROLE_WRITE = "/roles"
UNTIL = "2099-01-01"  # the adopted grants end by themselves then (one is moved past its end below)


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnCall]:
    server = RunningRedis(fresh_db(redis_server_url, PIPE_DB))
    options = PipeOptions(env={**ONCALL_ENV, "ROLESYNC_MODE": "shadow"}, threads=8)
    with running_pipe(tmp_path_factory.mktemp("adopt"), options, redis_server=server) as launched:
        yield OnCall(launched)


def role_writes(pipe: OnCall, method: str) -> list[dict[str, Any]]:
    return [c for c in pipe.kinde.calls() if c["method"] == method and ROLE_WRITE in c["path"]
            and c["path"].startswith("/api/v1/organizations")]  # fmt: skip


def tenant(pipe: OnCall) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """user id -> its plan's role for the paying ones; the ids of those holding role_client by hand; user id ->
    customer id."""
    paying, by_hand, customers = {}, [], {}
    for n in range(PAYING + BY_HAND):
        user = pipe.kinde.create_user(email=f"u{n}@example.com", send_webhook=False)
        customers[user["id"]] = user["customer_id"]
        if n < PAYING:
            plan, role = ("plan_client", "role_client") if n % 2 else ("plan_subscriber", "role_subscriber")
            pipe.kinde.grant_role(user["id"], role)
            pipe.kinde.change_plan(user["customer_id"], plan)
            paying[user["id"]] = role
        else:
            pipe.kinde.grant_role(user["id"], "role_client")
            by_hand.append(user["id"])
    return paying, by_hand, customers


def reconciled(pipe: OnCall) -> None:
    result = pipe.cli("reconcile", "--timeout", "5m", "--json", *WHY)
    assert result.exit_code == 0, result.output
    wait_until(pipe.settled, timeout=120, what="the pipe idle after the sweep")


def test_shadow_report_adopt_then_live_removes_nothing_nobody_chose(pipe: OnCall, tmp_path: Any) -> None:
    paying, by_hand, customers = tenant(pipe)
    started = time.monotonic()
    reconciled(pipe)
    shadow_s = time.monotonic() - started

    report = pipe.cli_json("shadow", "report")["targets"]
    assert sorted(t["user_id"] for t in report) == sorted(by_hand)
    assert all((t["add"], t["remove"], t["why"]) == ([], ["role_client"], {"role_client": ["no plan grants it"]})
               for t in report)  # fmt: skip
    assert role_writes(pipe, "POST") == role_writes(pipe, "DELETE") == []  # shadow: nothing written
    assert "mode: shadow" in pipe.cli("status").stdout

    listed = pipe.cli("adopt", "--csv", str(tmp_path / "list.csv"))
    assert listed.exit_code == 0, listed.output
    assert f"role_client: {BY_HAND}" in listed.stdout
    granted = pipe.cli("adopt", "--grant", "--until", UNTIL, "--csv", str(tmp_path / "granted.csv"), "--json", *WHY)
    assert granted.exit_code == 0, granted.output
    with (tmp_path / "granted.csv").open() as rows:
        assert sorted(r["user_id"] for r in csv.DictReader(rows) if r["action"] == "granted") == sorted(by_hand)
    wait_until(lambda: pipe.cli_json("shadow", "report")["targets"] == [], timeout=60,
               what="the grants' passes: nothing left to remove")  # fmt: skip

    pipe.pipe.stop_worker(0)
    pipe.pipe.start_worker(0, env={"ROLESYNC_MODE": "live"})
    wait_until(lambda: "mode: live" in pipe.cli("status").stdout, timeout=60, what="the fleet live")
    reconciled(pipe)

    assert role_writes(pipe, "DELETE") == []  # 0 roles removed that were not chosen
    assert {u: pipe.kinde.user_roles(u) for u in by_hand} == {u: ["role_client"] for u in by_hand}
    assert {u: pipe.kinde.user_roles(u) for u in paying} == {u: [r] for u, r in paying.items()}

    let_go = pipe.cli_json("grants", "list", "--user", by_hand[0])["grants"][0]["grant_id"]
    assert pipe.cli("grants", "remove", let_go, *WHY).exit_code == 0
    wait_until(lambda: pipe.kinde.user_roles(by_hand[0]) == [], timeout=30, what="the one role let go")
    assert len(role_writes(pipe, "DELETE")) == 1
    print(f"\nshadow reconcile of {PAYING + BY_HAND} users: {shadow_s:.1f} s")
    live_checks = time.monotonic()
    upgraded_keeps_the_grants_role(pipe, by_hand[1], customers[by_hand[1]])
    ended_s = ends_when_the_clock_passes_until(pipe, by_hand[2])
    assert len(role_writes(pipe, "DELETE")) == 2  # the one let go and the one ended: nothing else, ever
    assert ended_s < 10 * TICK_S, f"the role went {ended_s:.1f} s after its until had passed"  # the next tick's pass
    print(
        f"a grant past its until by the clock: role gone {ended_s:.1f} s later (schedule tick {TICK_S:g} s); "
        f"the upgrade and expiry checks took {time.monotonic() - live_checks:.1f} s"
    )


def upgraded_keeps_the_grants_role(pipe: OnCall, user_id: str, customer: str) -> None:
    """An adopted user buys a plan that does not give the adopted role: the union keeps it (live)."""
    pipe.kinde.change_plan(customer, "plan_subscriber")
    wait_until(lambda: pipe.kinde.user_roles(user_id) == ["role_client", "role_subscriber"], timeout=30,
               what="the plan's role beside the adopted one")  # fmt: skip
    wait_until(pipe.settled, timeout=60, what="the upgrade's passes done")
    assert pipe.kinde.user_roles(user_id) == ["role_client", "role_subscriber"]


def ends_when_the_clock_passes_until(pipe: OnCall, user_id: str) -> float:
    """The adopted grant as it stands once the clock has passed its `until` (stored by the store: the CLI
    refuses an `until` in the past): the schedule's next tick ends it and its pass takes the role, no event."""
    client = pipe.redis()
    store = RedisHandGrantStore(client)
    (grant,) = store.of_user(user_id)
    assert grant.until == parse_until(UNTIL)
    started = time.monotonic()
    store.put(replace(grant, until=time.time() - 1), time.time())
    client.close()
    wait_until(lambda: pipe.kinde.user_roles(user_id) == [], timeout=30, what="the role gone past its until")
    took = time.monotonic() - started
    assert pipe.cli_json("grants", "list", "--user", user_id)["grants"] == []
    assert "grants_expired" in [e["action"] for e in pipe.cli_json("audit")["entries"]]
    return took
