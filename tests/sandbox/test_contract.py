"""Contract tests: the sandbox speaks Kinde's Management API shapes over real HTTP (plain httpx)."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.conftest import fetch_token
from tests.sandbox_fixture import RunningSandbox

USER_ROLES = "/api/v1/organizations/{org}/users/{user}/roles"


def role_ids(kinde: httpx.Client) -> dict[str, str]:
    return {r["key"]: r["id"] for r in kinde.get("/api/v1/roles").json()["roles"]}


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def test_token_endpoint_issues_a_bearer_token_for_the_right_client(sandbox: RunningSandbox) -> None:
    body = fetch_token(sandbox.url).json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert body["access_token"].count(".") == 2
    assert sandbox.client.token_requests() == 1


@pytest.mark.parametrize(
    ("override", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"audience": "https://elsewhere.example/api"}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_refuses_bad_requests_in_oauth_format(
    sandbox: RunningSandbox, override: dict[str, str], status: int, error: str
) -> None:
    response = fetch_token(sandbox.url, **override)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert "wrong" not in response.text


def test_token_request_must_be_form_encoded(sandbox: RunningSandbox) -> None:
    response = httpx.post(f"{sandbox.url}/oauth2/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/jwks"])
def test_jwks_is_served_at_both_documented_paths(sandbox: RunningSandbox, path: str) -> None:
    (key,) = httpx.get(f"{sandbox.url}{path}").json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert key["n"]
    assert key["e"]
    assert ":" in key["kid"]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic abc"])
def test_management_api_refuses_a_missing_or_bad_token_with_401(
    sandbox: RunningSandbox, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{sandbox.url}/api/v1/roles", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_roles_list_has_the_three_roles_with_opaque_ids(kinde: httpx.Client) -> None:
    body = kinde.get("/api/v1/roles").json()
    assert (body["code"], body["next_token"]) == ("OK", None)
    assert {r["key"] for r in body["roles"]} == {"role_subscriber", "role_client", "role_admin"}
    assert all(r["id"] != r["key"] and set(r) >= {"name", "description", "is_default_role"} for r in body["roles"])


def test_a_role_granted_through_the_api_is_listed_and_removed(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    user = sandbox.client.create_user()
    path = USER_ROLES.format(org=user["org_code"], user=user["id"])
    role_id = role_ids(kinde)["role_client"]

    assert kinde.post(path, json={"role_id": role_id}).json() == {"code": "OK", "message": "Success"}
    assert [r["key"] for r in kinde.get(path).json()["roles"]] == ["role_client"]
    assert sandbox.client.user_roles(user["id"]) == ["role_client"]

    assert kinde.delete(f"{path}/{role_id}").status_code == 200
    assert kinde.get(path).json()["roles"] == []


@pytest.mark.parametrize(
    ("org", "user", "role", "status", "code"),
    [
        ("org_default", "KNOWN", "unknown-role", 404, "ROLE_NOT_FOUND"),
        ("org_default", "kp_nobody", "ROLE", 404, "USER_NOT_FOUND"),
        ("org_nowhere", "KNOWN", "ROLE", 404, "ORGANIZATION_NOT_FOUND"),
    ],
)
def test_role_assignment_errors_use_kinde_codes(
    sandbox: RunningSandbox, kinde: httpx.Client, org: str, user: str, role: str, status: int, code: str
) -> None:
    known = sandbox.client.create_user()["id"]
    role_id = role_ids(kinde)["role_client"] if role == "ROLE" else role
    path = USER_ROLES.format(org=org, user=known if user == "KNOWN" else user)
    response = kinde.post(path, json={"role_id": role_id})
    assert (response.status_code, error_code(response)) == (status, code)


def test_a_role_post_without_role_id_is_role_required(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    user = sandbox.client.create_user()
    response = kinde.post(USER_ROLES.format(org="org_default", user=user["id"]), json={})
    assert (response.status_code, error_code(response)) == (400, "ROLE_REQUIRED")


def test_user_with_billing_and_organizations_expanded(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    user = sandbox.client.create_user(email="ada@example.test")
    body = kinde.get("/api/v1/user", params={"id": user["id"], "expand": "billing,organizations"}).json()
    assert body["id"] == user["id"]
    assert body["preferred_email"] == "ada@example.test"
    assert body["billing"] == {"customer_id": user["customer_id"]}
    assert body["organizations"] == ["org_default"]


def test_unknown_user_is_user_not_found(kinde: httpx.Client) -> None:
    response = kinde.get("/api/v1/user", params={"id": "kp_missing"})
    assert (response.status_code, error_code(response)) == (404, "USER_NOT_FOUND")


def test_agreements_show_the_current_plan_and_the_cancelled_one(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    customer = sandbox.client.create_user()["customer_id"]
    first = sandbox.client.change_plan(customer, "plan_subscriber")["agreement_id"]
    second = sandbox.client.change_plan(customer, "plan_client")["agreement_id"]

    body = kinde.get("/api/v1/billing/agreements", params={"customer_id": customer}).json()
    by_id = {a["id"]: a for a in body["agreements"]}
    assert body["has_more"] is False
    assert by_id[first]["plan_code"] == "plan_subscriber"
    assert by_id[first]["expires_on"]
    assert by_id[second]["plan_code"] == "plan_client"
    assert by_id[second]["expires_on"] is None
