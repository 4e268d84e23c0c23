"""The model test's oracle on hand-written tenants: what each (org, user) should hold, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chaos.model_oracle import (
    GrantGiven,
    Target,
    covering,
    holdings,
    placement,
    wrong_answers,
    wrong_notifications,
    wrong_rows,
    wrong_targets,
)
from common.plans.mapping import parse_plans

NOW = datetime(2025, 6, 1, tzinfo=UTC)
KEEP = parse_plans('[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n')
SUSPEND = parse_plans(
    '[plans]\nplan_client = ["role_client"]\n[payment_failed]\naction = "suspend"\ngrants = ["role_past_due"]\n'
)
ROLES = [{"id": f"r_{k}", "key": f"role_{k}"} for k in ("subscriber", "client", "admin", "past_due")]


def tenant(users: list[dict[str, Any]], orgs: list[dict[str, Any]], agreements: list[tuple[str, str, str | None]],
           assignments: list[tuple[str, str, list[str]]]) -> dict[str, Any]:  # fmt: skip
    return {
        "roles": ROLES,
        "orgs": [{"code": "org_default", "is_default": True, "customer_id": None}, *orgs],
        "users": users,
        "agreements": [{"customer_id": c, "plan_code": p, "expires_on": e} for c, p, e in agreements],
        "assignments": [[o, u, [f"r_{k.removeprefix('role_')}" for k in held]] for o, u, held in assignments],
    }


def user(uid: str, orgs: list[str], customer: str | None = None) -> dict[str, Any]:
    return {"id": uid, "org_codes": orgs, "customer_id": customer}


def test_org_and_personal_customer_on_one_member_grant_the_union() -> None:
    """Org A buys subscriber, its member's own customer (placed in A, their only org) buys client: both."""
    state = tenant(
        [user("u1", ["org_a"], "cu1")],
        [{"code": "org_a", "customer_id": "co_a"}],
        [("co_a", "plan_subscriber", None), ("cu1", "plan_client", None)],
        [("org_a", "u1", ["role_subscriber"])],
    )
    [wrong] = wrong_targets(state, KEEP, {}, now=NOW)
    assert wrong.target == Target("org_a", "u1")
    assert wrong.expected == {"role_subscriber", "role_client"}
    assert {c.customer_id for c in wrong.covering} == {"co_a", "cu1"}
    assert "co_a" in wrong.describe()
    assert "cu1" in wrong.describe()


def test_a_personal_customer_moves_with_placement_and_expired_agreements_grant_nothing() -> None:
    """In the default org and org A, the user's customer is placed in the default (B2C) org only."""
    state = tenant(
        [user("u1", ["org_a", "org_default"], "cu1")],
        [{"code": "org_a", "customer_id": None}],
        [("cu1", "plan_client", None), ("cu1", "plan_subscriber", "2025-05-01T00:00:00Z")],
        [("org_a", "u1", ["role_client"]), ("org_default", "u1", ["role_client"])],
    )
    wrong = wrong_targets(state, KEEP, {}, now=NOW)
    assert [(w.target, w.expected, w.actual) for w in wrong] == [
        (Target("org_a", "u1"), frozenset(), frozenset({"role_client"}))
    ]
    assert placement(state["users"][0], None, "org_default") == "org_default"
    assert placement(state["users"][0], "org_a", "org_default") == "org_a"
    assert placement(user("u2", ["org_a", "org_b"]), None, "org_default") == "org_default"  # no member: covers none
    assert placement(user("u3", ["org_b"]), None, "org_default") == "org_b"


def test_hand_given_unmanaged_roles_must_stay_exactly_as_given() -> None:
    """An admin role given by hand must survive; one that disappeared or appeared is reported."""
    state = tenant(
        [user("u1", ["org_default"], "cu1"), user("u2", ["org_default"])],
        [],
        [("cu1", "plan_client", "2099-01-01T00:00:00Z")],
        [("org_default", "u1", ["role_client"]), ("org_default", "u2", ["role_admin"])],
    )
    hand = {Target("org_default", "u1"): frozenset({"role_admin"})}
    wrong = wrong_targets(state, KEEP, hand, now=NOW)
    assert [(w.target.user_id, sorted(w.expected), sorted(w.actual)) for w in wrong] == [
        ("u1", ["role_admin", "role_client"], ["role_client"]),
        ("u2", [], ["role_admin"]),
    ]


def test_suspend_policy_swaps_plan_roles_for_grants_and_deleted_orgs_cover_nobody() -> None:
    """A failing customer with an active plan grants role_past_due; a member of a gone org is not a target."""
    state = tenant(
        [user("u1", ["org_default", "org_gone"], "cu1"), user("u2", ["org_default"], "cu2")],
        [],
        [("cu1", "plan_client", None)],
        [("org_default", "u1", ["role_past_due"]), ("org_default", "u2", [])],
    )
    assert wrong_targets(state, SUSPEND, {}, now=NOW, failing={"cu1", "cu2"}) == []
    found = covering(state, SUSPEND, now=NOW, failing={"cu1"})
    assert set(found) == {Target("org_default", "u1"), Target("org_default", "u2")}
    assert [c.grants for c in found[Target("org_default", "u2")]] == [frozenset()]
    assert wrong_targets(state, SUSPEND, {}, now=NOW)[0].expected == {"role_client"}


def _entry(org: str, uid: str, roles: list[str], plans: list[tuple[str, str]]) -> dict[str, Any]:
    """A target as the read API, the table and a notification show it (features left empty)."""
    return {"org_code": org, "user_id": uid, "roles": roles, "features": [],
            "plans": [{"code": p, "customer_id": c, "subscribed_on": None} for p, c in plans]}  # fmt: skip


ORG_PLAN = tenant(
    [user("u1", ["org_a"]), user("u2", ["org_a"])],
    [{"code": "org_a", "customer_id": "co_a"}],
    [("co_a", "plan_client", None)],
    [("org_a", "u1", ["role_client"]), ("org_a", "u2", ["role_client"])],
)
ANSWERS = {u: (200, {"organizations": [_entry("org_a", u, ["role_client"], [("plan_client", "co_a")])]})
           for u in ("u1", "u2")}  # fmt: skip


def test_the_table_needs_a_row_exactly_where_something_is_held_with_the_same_plans() -> None:
    """u1's row is right; u2's is missing; a row for an ex-member (u3 in org_b) is left over."""
    held = holdings(ORG_PLAN, KEEP, now=NOW)
    assert held == {Target("org_a", u): (frozenset({"role_client"}), frozenset({("plan_client", "co_a")}), frozenset())
                    for u in ("u1", "u2")}  # fmt: skip
    rows = {
        Target("org_a", "u1"): _entry("org_a", "u1", ["role_client"], [("plan_client", "co_a")]),
        Target("org_b", "u3"): _entry("org_b", "u3", ["role_subscriber"], [("plan_subscriber", "co_b")]),
    }
    wrong = wrong_rows(held, rows, ANSWERS, KEEP)
    assert len(wrong) == 2
    assert "(org org_a, user u2): the table has no row" in wrong[0]
    assert "(org org_b, user u3)" in wrong[1]
    assert "holds nothing" in wrong[1]
    rows[Target("org_a", "u2")] = _entry("org_a", "u2", ["role_client"], [("plan_subscriber", "co_a")])
    assert "expected roles ['role_client'] plans [('plan_client', 'co_a')]" in wrong_rows(held, rows, ANSWERS, KEEP)[0]


def test_the_last_notification_is_the_final_snapshot_or_removed() -> None:
    """u1's last notification is right, u2's says removed while it holds the plan, u3's (an ex-member) still
    shows what it held, u4 never held anything and was never notified; a body the read API does not show
    (another feature) is wrong too."""
    held = holdings(ORG_PLAN, KEEP, now=NOW)
    last = {Target("org_a", "u1"): _entry("org_a", "u1", ["role_client"], [("plan_client", "co_a")]),
            Target("org_a", "u2"): {"org_code": "org_a", "user_id": "u2", "removed": True},
            Target("org_b", "u3"): _entry("org_b", "u3", ["role_client"], [("plan_client", "co_b")])}  # fmt: skip
    wrong = wrong_notifications(held, last, ANSWERS, KEEP)
    assert [w.split(":")[0] for w in wrong] == ["(org org_a, user u2)", "(org org_b, user u3)"]
    assert "the last notification is removed" in wrong[0]
    assert "not removed, but it holds nothing" in wrong[1]
    last[Target("org_b", "u3")] = {"org_code": "org_b", "user_id": "u3", "removed": True}
    last[Target("org_a", "u2")] = {**_entry("org_a", "u2", ["role_client"], [("plan_client", "co_a")]),
                                   "features": [{"feature_code": "seats", "limit": 3}], "computed_at": 1.0}  # fmt: skip
    assert wrong_notifications(held, last, ANSWERS, KEEP) == [
        "(org org_a, user u2): the last notification's body differs from the read API's final snapshot"
    ]


def _grant(grant_id: str, uid: str, org: str, roles: tuple[str, ...], until: float | None = None) -> GrantGiven:
    return GrantGiven(grant_id, uid, org, roles, f"why {grant_id}", until)


def test_an_active_hand_grant_covers_its_member_target_with_its_managed_roles_and_an_ended_one_nothing() -> None:
    """g1 (no org: the B2C org) gives u1 role_client beside its plan; g2 ended an hour ago; g3 names org_a, which
    u1 is not in. The read API must name g1 as `granted_by` and its roles."""
    state = tenant(
        [user("u1", ["org_default"], "cu1"), user("u2", ["org_default"])],
        [{"code": "org_a", "customer_id": None}],
        [("cu1", "plan_subscriber", None)],
        [("org_default", "u1", ["role_subscriber", "role_client"]), ("org_default", "u2", ["role_client"])],
    )
    hour_ago = NOW.timestamp() - 3600
    grants = (_grant("g1", "u1", "", ("role_client",)), _grant("g2", "u2", "", ("role_client",), until=hour_ago),
              _grant("g3", "u1", "org_a", ("role_client",)))  # fmt: skip
    wrong = wrong_targets(state, KEEP, {}, now=NOW, grants=grants)
    assert [(w.target.user_id, sorted(w.expected), sorted(w.actual)) for w in wrong] == [("u2", [], ["role_client"])]
    held = holdings(state, KEEP, now=NOW, grants=grants)
    assert held == {Target("org_default", "u1"): (frozenset({"role_subscriber", "role_client"}),
                                                  frozenset({("plan_subscriber", "cu1")}),
                                                  frozenset({("g1", "why g1", ("role_client",))}))}  # fmt: skip
    shown = {"org_code": "org_default", "user_id": "u1", "roles": ["role_client", "role_subscriber"], "features": [],
             "plans": [{"code": "plan_subscriber", "customer_id": "cu1"}],
             "hand_grants": [{"granted_by": {"grant": "g1", "reason": "why g1"}, "roles": ["role_client"]}],
             "granted_by": {"role_client": [{"grant": "g1", "reason": "why g1"}],
                            "role_subscriber": [{"customer": "cu1"}]}}  # fmt: skip
    answers = {"u1": (200, {"organizations": [shown]}), "u2": (404, {})}
    assert wrong_answers(state, KEEP, answers, now=NOW, grants=grants) == []
    unnamed = {**shown, "granted_by": {"role_client": [], "role_subscriber": [{"customer": "cu1"}]}}
    [misread] = wrong_answers(state, KEEP, {**answers, "u1": (200, {"organizations": [unnamed]})}, now=NOW,
                              grants=grants)  # fmt: skip
    assert "granted_by per role names other grants" in misread
    assert wrong_rows(held, {Target("org_default", "u1"): {**shown, "hand_grants": []}}, answers, KEEP)


def test_a_user_a_grant_named_before_may_be_known_or_not_once_it_holds_nothing() -> None:
    """u2 has no customer; its grant ended: the grant's pass left a snapshot holding nothing (200) or none (404)."""
    state = tenant([user("u2", ["org_default"])], [], [], [("org_default", "u2", [])])
    for status in (200, 404):
        answers = {"u2": (status, {"organizations": []})}
        assert wrong_answers(state, KEEP, answers, now=NOW, granted_before={"u2"}) == []
    assert wrong_answers(state, KEEP, {"u2": (200, {"organizations": []})}, now=NOW) == [
        "user u2: the read API answered 200, expected 404"
    ]
