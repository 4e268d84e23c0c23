"""The "why does this user hold (or not hold) this role" answer, from snapshots and timelines (pure)."""

from __future__ import annotations

from common.customers.links import CustomerLink
from common.entitlements.customer import PlanHeld
from common.entitlements.grants import Target
from common.entitlements.snapshots import ByHand, Source, TargetSnapshot
from common.plans.mapping import parse_plans
from console.parts import templates
from console.why import explain

PLANS = parse_plans('[plans]\nplan_client = ["role_client"]\nplan_subscriber = ["role_subscriber"]\n'
                    '[payment_failed]\naction = "suspend"\ngrants = ["role_past_due"]\n')  # fmt: skip


def source(customer_id: str, plan: str, *, suspended: bool = False, roles: tuple[str, ...] = ()) -> Source:
    return Source(customer_id, (PlanHeld(plan, None),), (), roles, "failing" if suspended else "ok", suspended, 1,
                  0.0, None)  # fmt: skip


def snapshot(*sources: Source, roles: tuple[str, ...]) -> TargetSnapshot:
    return TargetSnapshot(Target("org_a", "kp_1"), roles, sources, 0.0)


LINKS = {"cus_org": CustomerLink("cus_org", "org", None, "org_a", "event", 0.0),
         "cus_me": CustomerLink("cus_me", "user", "kp_1", "org_a", "event", 0.0)}  # fmt: skip
PASSES = {"cus_me": [{"kind": "pass", "at": 5.0, "generation": 3, "added": ["kp_1:role_client"]},
                     {"kind": "pass", "at": 1.0, "generation": 1, "roles": ["role_client"]}]}  # fmt: skip


def test_a_role_two_customers_grant_names_both_with_their_mapping_line_and_last_pass() -> None:
    found = snapshot(source("cus_org", "plan_client"), source("cus_me", "plan_client"), roles=("role_client",))
    why = explain("kp_1", "org_a", "role_client", found, PLANS, LINKS, PASSES)
    assert why.answer == "kp_1 holds role_client in org_a: granted by cus_org, cus_me."
    assert [c.link for c in why.covers] == ["org org_a (B2B)", "user kp_1 in org org_a"]
    assert {c.lines[0] for c in why.covers} == {'plan_client = ["role_client"]'}
    assert why.covers[1].last_pass is not None
    assert why.covers[1].last_pass["generation"] == 3  # the newest that added it
    assert why.covers[0].last_pass is None  # its timeline holds none


def test_a_role_not_held_says_why_not() -> None:
    found = snapshot(source("cus_me", "plan_subscriber"), roles=("role_subscriber",))
    why = explain("kp_1", "org_a", "role_client", found, PLANS, LINKS, {})
    assert why.answer == "kp_1 does not hold role_client in org_a: no covering customer's plans grant it."
    nobody = explain("kp_1", "org_b", "role_client", None, PLANS, LINKS, {})
    assert nobody.answer.endswith("no paying customer covers this user there and no hand grant gives it.")
    unmanaged = explain("kp_1", "org_a", "admin", found, PLANS, LINKS, {})
    assert "not a managed role" in unmanaged.answer


def test_a_suspended_customer_grants_only_the_past_due_role() -> None:
    found = snapshot(source("cus_me", "plan_client", suspended=True), roles=("role_past_due",))
    client = explain("kp_1", "org_a", "role_client", found, PLANS, LINKS, {})
    past_due = explain("kp_1", "org_a", "role_past_due", found, PLANS, LINKS, {})
    assert client.covers[0].lines == []
    assert client.covers[0].suspended
    assert past_due.covers[0].lines == ['[payment_failed] grants = ["role_past_due"]']


def test_a_role_a_hand_grant_gives_names_the_grant_beside_the_customers() -> None:
    comp = ByHand("g_1", "partner", "alice", ("role_client",), None)
    found = TargetSnapshot(Target("org_a", "kp_1"), ("role_client",), (source("cus_me", "plan_subscriber"),), 0.0,
                           (comp,))  # fmt: skip
    why = explain("kp_1", "org_a", "role_client", found, PLANS, LINKS, {})
    assert why.answer == "kp_1 holds role_client in org_a: granted by hand grant g_1 (partner, by alice)."
    assert why.by_hand == [comp]
    alone = TargetSnapshot(Target("org_a", "kp_1"), ("role_client",), (), 0.0, (comp,))
    assert "granted by hand grant g_1" in explain("kp_1", "org_a", "role_client", alone, PLANS, LINKS, {}).answer
    other = explain("kp_1", "org_a", "role_subscriber", found, PLANS, LINKS, {})
    assert other.by_hand == []


def test_the_user_page_lists_the_hand_grant_with_its_reason_and_end() -> None:
    comp = ByHand("g_1", "partner <b>", "alice", ("role_client",), 1_800_000_000.0)
    found = TargetSnapshot(Target("org_a", "kp_1"), ("role_client",), (), 0.0, (comp,))
    why = explain("kp_1", "org_a", "role_client", found, PLANS, LINKS, {})
    html = templates().get_template("user.html").render(
        session=None, now=0.0, path="/console/users/kp_1", user_id="kp_1", snapshots=[found], linked=[],
        org="org_a", role="role_client", why=why, managed=["role_client"],
    )  # fmt: skip
    assert '<table id="why-by-hand">' in html
    assert "<td>g_1</td><td>partner &lt;b&gt;</td><td>alice</td><td>2027-01-15 08:00 UTC</td>" in html
