"""Pure logic of the on-call tools: durations, the dry-run Kinde port, sweep summaries, dead-letter filters."""

from __future__ import annotations

from typing import Any

import pytest

from common.infra.deadletters import DeadLetter
from common.infra.durations import BadDurationError, format_duration, parse_duration
from ops.dlq import Filters, moment
from ops.dryrun import DryRunKinde
from worker.sweeps.reconcile import Summary, Verdict


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("30d", 2592000),
                                               ("1h30m", 5400), ("2w", 1209600), (" 1.5h ", 5400)])  # fmt: skip
def test_durations_read_as_on_call_types_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "3x", "thirty days", "0s", "-5m"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(BadDurationError, match=r"e\.g\. 90s|positive"):
        parse_duration(text)


def test_durations_print_short() -> None:
    assert [format_duration(s) for s in (5, 303, 7800, 273600)] == ["5s", "5m 3s", "2h 10m", "3d 4h"]


def test_since_takes_a_duration_or_a_utc_date() -> None:
    assert moment("2h", now=10_000.0) == 10_000.0 - 7200
    assert moment("1970-01-02", now=0.0) == 86400.0
    with pytest.raises(BadDurationError, match="neither a duration"):
        moment("yesterday", now=0.0)


class PagedKinde:
    """Just enough of KindeApi for the dry-run port: rows to read, writes that must never arrive."""

    def __init__(self, rows: int) -> None:
        self.rows = [{"id": str(i), "key": f"role_{i}"} for i in range(rows)]

    def agreements(self, customer_id: str) -> list[dict[str, Any]]:
        return self.rows

    def user_roles(self, org_code: str, user_id: str) -> list[dict[str, Any]]:
        return []

    def add_role(self, org_code: str, user_id: str, role_id: str) -> None:
        raise AssertionError("a dry run sent a write")


def test_dry_run_counts_read_pages_and_keeps_writes_to_itself() -> None:
    dry = DryRunKinde(PagedKinde(rows=250))  # type: ignore[arg-type]
    assert len(dry.agreements("customer_1")) == 250
    dry.user_roles("org", "kp_1")
    dry.add_role("org", "kp_1", "role_id")
    dry.remove_role("org", "kp_1", "role_id2")
    assert (dry.reads, len(dry.writes), dry.calls) == (3 + 1, 2, 6)
    dry.reset()
    assert dry.calls == 0


def test_summary_counts_each_verdict_once() -> None:
    summary = Summary(started_at=0.0, source="cli")
    verdicts = [
        Verdict("a", "fixed", added=[["kp_1", "role_x"]]),
        Verdict("b", "in_step"),
        Verdict("c", "failed", error="kinde_X: no"),
        Verdict("d", "pending", error="retrying"),
    ]
    for verdict in verdicts:
        summary.count(verdict)
    assert (summary.checked, summary.drift, summary.fixed, summary.failed, summary.pending) == (4, 1, 1, 1, 1)
    assert summary.failures == {"c": "kinde_X: no", "d": "retrying"}


def test_filters_keep_type_and_time_window() -> None:
    record = DeadLetter("e1", {}, "retries_exhausted", "", 1, 50.0, 100.0, "customer_1", "customer.plan_changed")
    assert Filters(event_type="customer.plan_changed", since=100.0, before=101.0).keeps(record)
    assert not Filters(event_type="user.created").keeps(record)
    assert not Filters(since=100.5).keeps(record)
    assert not Filters(before=100.0).keeps(record)
