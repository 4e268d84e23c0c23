"""Tokens, scopes and signing keys: 401 for a bad or expired token, 403 naming a missing scope, rotation."""

from __future__ import annotations

import httpx
import jwt

from tests.sandbox.conftest import fetch_token
from tests.sandbox_fixture import RunningSandbox


def kids(sandbox: RunningSandbox) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{sandbox.url}/.well-known/jwks.json").json()["keys"]}


def test_a_withdrawn_scope_answers_403_scope_missing_naming_it(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_scopes(["read:roles"])

    response = kinde.get("/api/v1/billing/agreements", params={"customer_id": "customer_x"})
    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert error["code"] == "SCOPE_MISSING"
    assert error["message"].endswith("read:billing_agreements")
    assert kinde.get("/api/v1/roles").status_code == 200


def test_a_token_asking_for_fewer_scopes_gets_only_those(sandbox: RunningSandbox) -> None:
    token = fetch_token(sandbox.url, scope="read:roles").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{sandbox.url}/api/v1/roles", headers=headers).status_code == 200
    assert httpx.get(f"{sandbox.url}/api/v1/users", headers=headers).status_code == 403


def test_expired_tokens_answer_401_and_a_new_token_works(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.expire_tokens()

    response = kinde.get("/api/v1/roles")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    fresh = fetch_token(sandbox.url).json()["access_token"]
    assert httpx.get(f"{sandbox.url}/api/v1/roles", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_token_lifetime_comes_from_the_token_itself(sandbox: RunningSandbox) -> None:
    body = fetch_token(sandbox.url).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["gty"] == ["client_credentials"]
    assert claims["aud"] == [f"{sandbox.url}/api"]


def test_rotation_with_grace_publishes_both_keys(sandbox: RunningSandbox) -> None:
    before = kids(sandbox)
    new_kid = sandbox.client.rotate_keys(grace_s=60)
    assert kids(sandbox) == before | {new_kid}


def test_rotation_without_grace_drops_the_old_key_and_its_tokens(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    new_kid = sandbox.client.rotate_keys(grace_s=0)

    assert kids(sandbox) == {new_kid}
    assert kinde.get("/api/v1/roles").status_code == 401
    sent = sandbox.client.sign({"type": "user.created"})
    assert jwt.get_unverified_header(sent)["kid"] == new_kid


def test_sign_with_an_unpublished_kid_gives_a_token_the_jwks_cannot_verify(sandbox: RunningSandbox) -> None:
    token = sandbox.client.sign({"type": "user.created"}, kid="aa:bb")
    assert jwt.get_unverified_header(token)["kid"] == "aa:bb"
    assert "aa:bb" not in kids(sandbox)


def test_revoked_tokens_can_answer_403_invalid_credentials_as_kindes_spec_says(
    sandbox: RunningSandbox, kinde: httpx.Client
) -> None:
    sandbox.client.set_switches(invalid_token_status=403)
    sandbox.client.expire_tokens()

    response = kinde.get("/api/v1/roles")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "INVALID_CREDENTIALS"
    sandbox.client.reset()  # the switch is part of what a reset restores
    assert kinde.get("/api/v1/roles").status_code == 401
