"""Which customer pays for a plan selection's (org, user): from the links alone (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.customers.links import CustomerLink
from common.customers.payer import PERSONAL_TEAM, members_org, payer_of, personal_team
from common.guard.decision import Observed

ROOT = Path(__file__).resolve().parents[3]


def user_link(customer: str, org: str | None, user: str = "kp_1") -> CustomerLink:
    return CustomerLink(customer, "user", user, org, "user_lookup", 0.0)


def test_with_an_org_the_orgs_own_customer_pays_unless_the_users_own_has_the_current_plan() -> None:
    links = [user_link("c_personal", "org_acme")]
    assert payer_of("org_acme", links, ["c_acme"], {}, "pro", "org_default") == "c_acme"
    plans = {"c_personal": ["pro"], "c_acme": ["team"]}
    assert payer_of("org_acme", links, ["c_acme"], plans, "pro", "org_default") == "c_personal"
    assert payer_of("org_acme", links, ["c_acme"], plans, "team", "org_default") == "c_acme"


def test_a_users_customer_placed_elsewhere_does_not_pay_for_this_org() -> None:
    links = [user_link("c_other", "org_other")]
    assert payer_of("org_acme", links, [], {}, "pro", "org_default") is None


def test_a_link_without_an_org_is_placed_in_the_b2c_org() -> None:
    links = [user_link("c_b2c", None)]
    assert payer_of("org_default", links, [], {}, None, "org_default") == "c_b2c"
    assert payer_of("org_acme", links, [], {}, None, "org_default") is None


def test_without_an_org_the_users_default_placement_or_its_only_customer_pays() -> None:
    both = [user_link("c_acme_seat", "org_acme"), user_link("c_b2c", "org_default")]
    assert payer_of(None, both, [], {}, None, "org_default") == "c_b2c"
    assert payer_of(None, [user_link("c_acme_seat", "org_acme")], [], {}, None, "org_default") == "c_acme_seat"
    assert payer_of(None, [], [], {}, None, "org_default") is None


def test_org_members_are_counted_where_the_link_places_the_roles() -> None:
    assert members_org(CustomerLink("c", "org", None, "org_acme", "org_lookup", 0.0), "org_default") == "org_acme"
    # a personal customer's team is its user, never the (B2C: whole default) org its roles sit in
    assert members_org(user_link("c", None), "org_default") is None
    assert members_org(user_link("c", "org_acme"), "org_default") is None


def old_call_sites(link: CustomerLink | None) -> Observed | None:
    """What api/plan_selection.py and ops/guard.py each wrote out before issue 25 item 8 (the same condition)."""
    return PERSONAL_TEAM if link is not None and link.kind == "user" else None


@pytest.mark.parametrize(
    "link",
    [
        None,
        user_link("c_b2c", None),
        user_link("c_in_org", "org_acme"),
        CustomerLink("c_acme", "org", None, "org_acme", "org_lookup", 0.0),
        CustomerLink("c_b2c_org", "org", None, None, "org_lookup", 0.0),
    ],
    ids=["unknown", "user_b2c", "user_in_org", "org", "org_b2c"],
)
def test_the_personal_team_rule_answers_as_both_old_call_sites(link: CustomerLink | None) -> None:
    assert personal_team(link) == old_call_sites(link)


def test_only_the_payer_module_names_the_personal_team() -> None:
    """The guard (api/) and `rolesync guard check` (ops/) ask `personal_team`, so the rule has one home."""
    service = ("api", "ops", "worker", "common", "cli", "console", "doctor", "ingest")
    naming = sorted(
        str(p.relative_to(ROOT))
        for top in service
        for p in (ROOT / top).rglob("*.py")
        if "PERSONAL_TEAM" in p.read_text()
    )
    assert naming == ["common/customers/payer.py"]
