"""On-call's audit trail (ops/audit.py): who, what, to which customers and why; timelines, fleet list, log."""

from __future__ import annotations

import pytest
import redis
import structlog

from common import keys
from common.customers.history import RedisHistory
from ops.audit import AUDIT_CAP, Actor, Audit, NoReasonError, os_user


@pytest.fixture
def audit(redis_url: str) -> tuple[Audit, RedisHistory, redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    history = RedisHistory(client, ttl_s=60)
    return Audit(client, history), history, client


def test_an_actor_must_say_why_and_is_the_os_user_unless_named() -> None:
    with pytest.raises(NoReasonError, match="--reason"):
        Actor.of("ada", "   ")
    assert Actor.of("", "ticket 7") == Actor(os_user(), "ticket 7")
    assert Actor.of(" ada ", " ticket 7 ") == Actor("ada", "ticket 7")


def test_an_action_lands_on_each_customers_timeline_the_fleet_list_and_the_log(
    audit: tuple[Audit, RedisHistory, redis.Redis],
) -> None:
    trail, history, _ = audit
    with structlog.testing.capture_logs() as logged:
        trail.record("dlq_replay", Actor("ada", "scope granted"), ["c2", "c1", None, "c1"], count=3, token="x")
    for customer in ("c1", "c2"):
        (item,) = history.recent(customer)
        assert {k: item[k] for k in ("kind", "action", "by", "reason", "count")} == {
            "kind": "oncall", "action": "dlq_replay", "by": "ada", "reason": "scope granted", "count": 3,
        }  # fmt: skip
        assert "token" not in item  # entry() drops anything credential-like
    (fleet,) = trail.recent()
    assert (fleet["customers"], fleet["customer_count"]) == (["c1", "c2"], 2)
    (line,) = logged
    assert (line["event"], line["action"], line["by"], line["reason"]) == (
        "oncall_action_recorded", "dlq_replay", "ada", "scope granted",
    )  # fmt: skip


def test_a_fleet_wide_action_touches_no_timeline_and_the_list_is_capped(
    audit: tuple[Audit, RedisHistory, redis.Redis],
) -> None:
    trail, _, client = audit
    for n in range(AUDIT_CAP + 5):
        trail.record("reconcile", Actor("ada", f"sweep {n}"), scope="all")
    assert client.llen(keys.AUDIT_LOG) == AUDIT_CAP
    assert trail.recent(1)[0]["reason"] == f"sweep {AUDIT_CAP + 4}"  # newest first
    assert not client.keys(keys.customer_history("*"))
