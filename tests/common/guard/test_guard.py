"""The guard's decision (pure): limits against metrics from each source, reasons, and on_error."""

from __future__ import annotations

from common.guard.decision import Observed, decide, usage_value
from common.plans.limits import GuardPolicy

LIMITS = {"free": {"org_members": 3, "projects": 10}}
NAMED = GuardPolicy(plan_names={"free": "Free"})


def test_a_metric_above_the_requested_plans_limit_refuses_naming_limit_and_value() -> None:
    found = decide("free", LIMITS, NAMED, {"org_members": Observed(5, "kinde_members"), "projects": Observed(10)})
    assert found.answer() == {"allow": False, "message": "To move to Free you first need to:",
                              "reasons": ["reduce org_members to 3 or fewer (now 5)"]}  # fmt: skip
    assert found.outcome == "refused"
    assert found.checked["org_members"] == {"limit": 3, "value": 5, "source": "kinde_members", "unreadable": False}


def test_every_metric_over_its_limit_gives_a_reason_in_metric_order() -> None:
    found = decide("free", LIMITS, NAMED, {"org_members": Observed(4), "projects": Observed(12.5)})
    assert found.reasons == ("reduce org_members to 3 or fewer (now 4)", "reduce projects to 10 or fewer (now 12.5)")


def test_at_the_limit_or_without_a_reported_value_the_move_is_allowed() -> None:
    found = decide("free", LIMITS, NAMED, {"org_members": Observed(3), "projects": Observed(None)})
    assert (found.allow, found.outcome, found.reasons) == (True, "allowed", ())


def test_a_plan_without_limits_allows_whatever_the_metrics() -> None:
    found = decide("pro", LIMITS, NAMED, {"org_members": Observed(500)})
    assert (found.allow, found.outcome) == (True, "no_limits")


def test_an_unreadable_metric_applies_on_error_both_ways() -> None:
    observed = {"projects": Observed(2)}
    allow = decide("free", LIMITS, GuardPolicy(on_error="allow"), observed, frozenset({"org_members"}))
    assert (allow.allow, allow.outcome) == (True, "fallback_allow")
    deny = decide("free", LIMITS, GuardPolicy(on_error="deny", plan_names={"free": "Free"}), observed,
                  frozenset({"org_members"}))  # fmt: skip
    assert (deny.allow, deny.outcome, deny.reasons) == (False, "fallback_deny", ())
    assert "Free" in deny.message


def test_a_metric_read_over_its_limit_refuses_even_when_another_is_unreadable() -> None:
    found = decide("free", LIMITS, GuardPolicy(on_error="allow"), {"projects": Observed(11)},
                   frozenset({"org_members"}))  # fmt: skip
    assert (found.allow, found.reasons) == (False, ("reduce projects to 10 or fewer (now 11)",))


def test_usage_is_the_newest_of_the_apps_report_and_the_meter_reading() -> None:
    app = {"projects": {"value": 4.0, "at": 100.0}}
    meter = {"projects": {"value": 12.0, "kind": "absolute", "at": 200.0}}
    assert usage_value("projects", meter, app) == Observed(12.0, "meter", 200.0)
    assert usage_value("projects", meter, {"projects": {"value": 4.0, "at": 300.0}}) == Observed(4.0, "app", 300.0)
    assert usage_value("projects", {}, app) == Observed(4.0, "app", 100.0)
    assert usage_value("seats", meter, app) == Observed(None)


def test_a_delta_meter_reading_is_no_total_and_is_not_compared() -> None:
    meter = {"projects": {"value": 50.0, "kind": "delta", "at": 200.0}}
    assert usage_value("projects", meter, {}) == Observed(None)
    assert usage_value("projects", {"projects": {"value": None, "kind": None, "at": 1.0}}, {}) == Observed(None)
