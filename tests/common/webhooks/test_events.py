"""Tolerant readers: every documented variant of Kinde's billing payload yields the same ids."""

from __future__ import annotations

import pytest

from common.webhooks.events import customer_id_of, is_acted_on, org_code_of, plan_code_of, user_id_of


@pytest.mark.parametrize(
    "claims",
    [
        {"data": {"customer_id": "customer_1"}},
        {"data": {"customer": {"id": "customer_1"}}},
        {"data": {"customer": {"customer_id": "customer_1"}}},
        {"customer_id": "customer_1", "data": {}},
    ],
)
def test_customer_id_is_found_in_every_variant(claims: dict[str, object]) -> None:
    """data.customer_id, data.customer.id and a top-level customer_id all work."""
    assert customer_id_of(claims) == "customer_1"


@pytest.mark.parametrize(
    "data",
    [{"plan": {"code": "plan_a"}}, {"plan": {"key": "plan_a"}}, {"plan_code": "plan_a"}],
)
def test_plan_code_is_found_in_every_variant(data: dict[str, object]) -> None:
    """The plan is read from data.plan.code, data.plan.key or data.plan_code."""
    assert plan_code_of({"data": data}) == "plan_a"


def test_optional_user_and_org_ids_are_read_when_present() -> None:
    """Events that do carry the user or org give them; null values count as absent."""
    assert user_id_of({"data": {"user_id": "kp_1"}}) == "kp_1"
    assert user_id_of({"data": {"user": {"id": "kp_2"}}}) == "kp_2"
    assert org_code_of({"data": {"org_code": "org_1"}}) == "org_1"
    assert user_id_of({"data": {"user_id": None}}) is None


def test_garbage_shapes_yield_nothing_instead_of_raising() -> None:
    """A data block of the wrong type is treated as empty."""
    assert customer_id_of({"data": ["x"]}) is None
    assert customer_id_of({"data": {"customer": "customer_1"}}) is None


@pytest.mark.parametrize(
    ("event_type", "acted"),
    [
        ("customer.plan_assigned", True),
        ("customer.meter_usage_updated", True),
        ("user.created", True),
        ("user.deleted", True),
        ("organization.created", True),
        ("user.authenticated", False),
        ("role.created", False),
    ],
)
def test_acted_on_event_types(event_type: str, acted: bool) -> None:
    """Billing events and the user/org events that feed resolution are acted on; the rest are ignored."""
    assert is_acted_on(event_type) is acted
