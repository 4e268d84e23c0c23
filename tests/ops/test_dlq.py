"""`rolesync dlq` and `rolesync status` against dead letters the real worker wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.tokens import ALL_SCOPES
from tests.ops.conftest import OnCall, run_cli
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 3
WHY = ("--reason", "scope granted: replaying the waiting events", "--by", "ada")
WRITE_SCOPE = "create:organization_user_roles"
FORBIDDEN = "kinde_forbidden"


def records(pipe: OnCall, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = pipe.cli_json("dlq", "list", *args)["records"]
    return found


def park_ghost(pipe: OnCall, customer_id: str) -> dict[str, Any]:
    """A billing event for a customer nobody in Kinde has: the worker parks it as customer_unresolved."""
    pipe.kinde.send_event("customer.plan_assigned", {"customer_id": customer_id, "plan": {"code": "plan_client"}})
    return wait_until(lambda: next(iter(records(pipe, "--customer", customer_id)), None), timeout=30,
                      what=f"{customer_id} parked")  # fmt: skip


@pytest.fixture(scope="module")
def scope_failure(pipe: OnCall) -> Iterator[dict[str, Any]]:
    """A plan bought while the M2M app lacks the scope to add roles: parked as kinde_forbidden until the
    module's last scope test grants it."""
    pipe.kinde.set_scopes([s for s in ALL_SCOPES if s != WRITE_SCOPE])
    try:
        user = pipe.kinde.create_user(email="scope@example.com")
        pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
        wait_until(lambda: records(pipe, "--reason", FORBIDDEN), timeout=30, what="a kinde_forbidden dead letter")
        wait_until(pipe.settled, timeout=30, what="the pipe to settle")
        yield user
    finally:
        pipe.kinde.set_scopes(list(ALL_SCOPES))


def test_list_counts_by_reason_and_filters(pipe: OnCall, scope_failure: dict[str, Any]) -> None:
    """list --json counts every reason; --reason/--customer/--type/--since narrow the records."""
    listed = pipe.cli_json("dlq", "list")
    assert listed["counts"][FORBIDDEN] >= 1
    mine = records(pipe, "--customer", scope_failure["customer_id"])
    assert mine
    assert all((r["reason"], r["scope"]) == (FORBIDDEN, WRITE_SCOPE) for r in mine)
    assert records(pipe, "--reason", FORBIDDEN, "--since", "10m") == records(pipe, "--reason", FORBIDDEN)
    assert records(pipe, "--since", "2000-01-01") == records(pipe)
    assert records(pipe, "--type", "no.such_type") == []
    assert all(r["event_type"] == mine[0]["event_type"] for r in records(pipe, "--type", mine[0]["event_type"]))


def test_list_table_has_counts_on_top_and_never_the_secret(pipe: OnCall, scope_failure: dict[str, Any]) -> None:
    result = pipe.cli("dlq", "list")
    assert result.exit_code == 0
    assert result.stdout.index("Dead letters by reason") < result.stdout.index(scope_failure["customer_id"])
    assert "sandbox-secret" not in result.output


def test_show_prints_the_whole_record(pipe: OnCall, scope_failure: dict[str, Any]) -> None:
    record_id = records(pipe, "--customer", scope_failure["customer_id"])[0]["id"]
    shown = pipe.cli_json("dlq", "show", record_id)
    assert shown["id"] == record_id
    assert shown["claims"]["type"].startswith("customer.")
    assert WRITE_SCOPE in shown["last_error"]
    assert shown["attempts"] >= 1
    assert shown["first_failed_at"] <= shown["last_failed_at"]
    table = pipe.cli("dlq", "show", record_id)
    assert table.exit_code == 0
    assert "claims:" in table.stdout
    assert WRITE_SCOPE in table.stdout


def test_status_needs_a_human_while_dead_letters_wait(pipe: OnCall, scope_failure: dict[str, Any]) -> None:
    result = pipe.cli("status", "--json")
    assert result.exit_code == 1
    status = json.loads(result.stdout)
    assert status["dead_letters"][FORBIDDEN] >= 1
    assert status["waiting_on_scopes"][WRITE_SCOPE] >= 1
    assert any(WRITE_SCOPE in p for p in status["problems"])
    assert status["workers"]
    assert any("dead letter" in p for p in status["problems"])
    assert [q["name"] for q in status["queues"]] == ["rolesync-events", "rolesync-bulk", "rolesync-converge"]
    assert status["token_expires_in_s"] > 0
    assert pipe.cli("status", "--health").exit_code == 0
    assert f"waiting for scope {WRITE_SCOPE}" in pipe.cli("status").stdout


def test_a_replay_by_hand_before_the_grant_only_parks_the_event_again(
    pipe: OnCall, scope_failure: dict[str, Any]
) -> None:
    before = {r["id"]: r for r in records(pipe, "--customer", scope_failure["customer_id"])}
    declined = pipe.cli("dlq", "replay", "--failed", FORBIDDEN, *WHY, input="n\n")
    waiting = len(records(pipe, "--failed", FORBIDDEN))
    assert f"Replay {waiting} dead letter(s)?" in declined.stdout  # a bulk replay says how many and asks
    assert "Nothing replayed." in declined.stdout
    result = pipe.cli("dlq", "replay", "--failed", FORBIDDEN, "--yes", *WHY)
    assert result.exit_code == 0, result.output
    assert "re-enqueued" in result.stdout
    audited = [e for e in pipe.cli_json("customers", "history", scope_failure["customer_id"])["entries"]
               if e["kind"] == "oncall"]  # fmt: skip
    assert [(e["action"], e["selection"], e["by"]) for e in audited] == [("dlq_replay", f"failed {FORBIDDEN}", "ada")]
    again = wait_until(lambda: records(pipe, "--customer", scope_failure["customer_id"]), timeout=30,
                       what="parked again")  # fmt: skip
    assert pipe.kinde.user_roles(scope_failure["id"]) == []
    for record in again:  # `dlq list --json`: the first failure and every attempt, across the replay
        first = before[record["id"]]
        assert (record["first_failed_at"], record["attempts"]) == (first["first_failed_at"], first["attempts"] + 1)
        assert record["last_failed_at"] > first["last_failed_at"]
    shown = pipe.cli("dlq", "show", again[0]["id"]).stdout
    assert f"attempts {before[again[0]['id']]['attempts'] + 1}" in shown


def test_granting_the_scope_replays_the_waiting_events_by_themselves(
    pipe: OnCall, scope_failure: dict[str, Any]
) -> None:
    """The runbook's fix for kinde_forbidden is only the grant: no replay by hand."""
    pipe.kinde.set_scopes(list(ALL_SCOPES))
    wait_until(lambda: pipe.kinde.user_roles(scope_failure["id"]) == ["role_subscriber"], timeout=60,
               what="roles after the grant")  # fmt: skip
    wait_until(lambda: records(pipe, "--reason", FORBIDDEN) == [], timeout=30, what="no event left waiting")


def test_purge_asks_first_and_keeps_records_unless_confirmed(pipe: OnCall) -> None:
    record = park_ghost(pipe, "customer_ghost_purge")
    declined = pipe.cli("dlq", "purge", record["id"], *WHY, input="n\n")
    assert declined.exit_code == 0
    assert "Nothing purged" in declined.stdout
    unanswered = pipe.cli("dlq", "purge", record["id"], *WHY, input="")
    assert unanswered.exit_code == 1
    assert "--yes" in unanswered.stderr
    assert records(pipe, "--customer", "customer_ghost_purge")
    confirmed = pipe.cli("dlq", "purge", "--failed", "customer_unresolved", *WHY, input="y\n")
    assert confirmed.exit_code == 0
    assert "Purged" in confirmed.stdout
    assert records(pipe, "--customer", "customer_ghost_purge") == []
    (latest, *_) = pipe.cli_json("audit")["entries"]
    assert (latest["action"], latest["reason"], latest["selection"]) == (
        "dlq_purge",
        WHY[1],
        "failed customer_unresolved",
    )
    assert "customer_ghost_purge" in latest["customers"]


def test_nothing_to_do_is_exit_0_with_a_sentence(pipe: OnCall) -> None:
    purge_old = pipe.cli("dlq", "purge", "--older-than", "30d", "--yes", *WHY)
    assert (purge_old.exit_code, purge_old.stdout.strip()) == (0, "No dead letters match: nothing to purge.")
    replay_none = pipe.cli("dlq", "replay", "--failed", "kinde_NOPE", *WHY)
    assert (replay_none.exit_code, replay_none.stdout.strip()) == (0, "No dead letters match: nothing to replay.")
    listed = pipe.cli("dlq", "list", "--reason", "kinde_NOPE")
    assert listed.exit_code == 0
    assert listed.stdout.strip() in {"No dead letters match.", "No dead letters: nothing to do."}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("dlq", "show", "event_missing"), "no dead letter with id event_missing"),
        (("dlq", "replay", "event_missing", *WHY), "no dead letter with id event_missing"),
        (("dlq", "replay", *WHY), "say which"),
        (("dlq", "replay", "event_x", "--all", *WHY), "say which"),
        (("dlq", "purge", *WHY), "say which"),
        (("dlq", "purge", "--older-than", "thirty days", "--yes", *WHY), "not a duration"),
        (("dlq", "replay", "--all", "--reason", "  "), "say why with --reason"),
        (("dlq", "list", "--since", "yesterday"), "neither a duration"),
    ],
)
def test_bad_input_is_exit_1_and_one_line(pipe: OnCall, args: tuple[str, ...], says: str) -> None:
    result = pipe.cli(*args)
    assert result.exit_code == 1
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_redis_url_is_exit_2(pipe: OnCall) -> None:
    env = {k: v for k, v in pipe.env.items() if k != "REDIS_URL"}
    result = run_cli({**env, "REDIS_URL": ""}, "dlq", "list")
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.stderr


def test_unreachable_redis_is_exit_1_without_the_password(pipe: OnCall) -> None:
    result = run_cli({**pipe.env, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}, "status")
    assert result.exit_code == 1
    assert "redis unavailable" in result.stderr
    assert "hunter2" not in result.output


def test_a_bulk_replay_nobody_confirms_replays_nothing(pipe: OnCall) -> None:
    park_ghost(pipe, "customer_ghost_bulk")
    result = pipe.cli("dlq", "replay", "--all", *WHY, input="")
    assert result.exit_code == 1
    assert "add --yes" in result.stderr
    assert records(pipe, "--customer", "customer_ghost_bulk")


def test_replay_and_purge_need_a_reason(pipe: OnCall) -> None:
    for args in (("dlq", "replay", "--all", "--yes"), ("dlq", "purge", "--older-than", "30d", "--yes")):
        result = pipe.cli(*args)
        assert result.exit_code == 2
        assert "Missing option '--reason'" in result.stderr
