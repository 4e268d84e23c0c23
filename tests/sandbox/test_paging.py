"""Paging to the end on every list endpoint, page-size limits, expand validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.sandbox_fixture import RunningSandbox


def all_pages(kinde: httpx.Client, path: str, key: str, page_size: int, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"page_size": page_size, **params}
    while True:
        body = kinde.get(path, params=query).json()
        items.extend(body[key])
        if not body["next_token"]:
            return items
        query["next_token"] = body["next_token"]


def seven_users(sandbox: RunningSandbox) -> list[str]:
    return [sandbox.client.create_user(send_webhook=False)["id"] for _ in range(7)]


LISTS: list[tuple[str, str, Callable[[RunningSandbox], int]]] = [
    ("/api/v1/users", "users", lambda s: len(seven_users(s))),
    ("/api/v1/organizations/org_default/users", "organization_users", lambda s: len(seven_users(s))),
    ("/api/v1/roles", "roles", lambda s: 3),
    (
        "/api/v1/organizations",
        "organizations",
        lambda s: 1 + len([s.client.create_org(name=f"o{i}") for i in range(4)]),
    ),
]


@pytest.mark.parametrize(("path", "key", "make"), LISTS)
def test_next_token_paging_reaches_every_item_once(
    sandbox: RunningSandbox, kinde: httpx.Client, path: str, key: str, make: Callable[[RunningSandbox], int]
) -> None:
    expected = make(sandbox)
    items = all_pages(kinde, path, key, page_size=2)
    ids = [item.get("id") or item.get("code") for item in items]
    assert len(ids) == expected
    assert len(set(ids)) == expected


@pytest.mark.parametrize(("size", "code"), [("501", "PAGE_SIZE_LIMIT_EXCEEDED"), ("0", "INVALID_PAGE_SIZE")])
def test_page_size_limits(kinde: httpx.Client, size: str, code: str) -> None:
    response = kinde.get("/api/v1/users", params={"page_size": size})
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, code)


def test_page_size_500_is_allowed(kinde: httpx.Client) -> None:
    assert kinde.get("/api/v1/users", params={"page_size": "500"}).status_code == 200


def test_agreements_page_with_starting_after_and_has_more(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    made = [sandbox.client.change_plan(customer, f"plan_{i}")["agreement_id"] for i in range(5)]

    seen: list[str] = []
    query = {"customer_id": customer, "page_size": "2"}
    while True:
        body = kinde.get("/api/v1/billing/agreements", params=query).json()
        seen += [a["id"] for a in body["agreements"]]
        if not body["has_more"]:
            break
        query["starting_after"] = seen[-1]
    assert seen == made


def test_both_cursors_is_too_many_parameters(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    agreement = sandbox.client.change_plan(customer, "plan_a")["agreement_id"]
    params = {"customer_id": customer, "starting_after": agreement, "ending_before": agreement}
    response = kinde.get("/api/v1/billing/agreements", params=params)
    assert response.json()["errors"][0]["code"] == "TOO_MANY_PARAMETERS"


def test_users_expand_billing_works_until_the_tenant_switch_refuses_it(
    sandbox: RunningSandbox, kinde: httpx.Client
) -> None:
    user = sandbox.client.create_user(send_webhook=False)
    (item,) = kinde.get("/api/v1/users", params={"expand": "billing,organizations"}).json()["users"]
    assert item["billing"] == {"customer_id": user["customer_id"]}

    sandbox.client.set_switches(users_billing_expand=False)
    response = kinde.get("/api/v1/users", params={"expand": "billing"})
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, "INVALID_EXPAND_VALUES")
    assert kinde.get("/api/v1/user", params={"id": user["id"], "expand": "billing"}).status_code == 200


def test_unknown_expand_value_is_invalid_expand_values(kinde: httpx.Client) -> None:
    response = kinde.get("/api/v1/organization", params={"expand": "billing,nonsense"})
    assert response.json()["errors"][0]["code"] == "INVALID_EXPAND_VALUES"
