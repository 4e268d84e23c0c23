"""A synchronous Python client for the sandbox's control API, so tests and the demo read as sentences.

sandbox = SandboxClient("http://127.0.0.1:8700")
user = sandbox.create_user()
sandbox.change_plan(user["customer_id"], "plan_client")
sandbox.user_roles(user["id"])  # -> ["role_client"] once the service has caught up
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from common.errors import ServiceError


class SandboxError(ServiceError):
    """The sandbox refused a control call (unknown user, bad field, ...); carries Kinde's error code."""

    reason = "sandbox"

    def __init__(self, status: int, code: str, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(f"sandbox answered {status} {code}: {message}", reason=code)
        self.status = status
        self.code = code
        self.message = message
        self.reasons = reasons or []  # a refused plan change's reasons (PLAN_SELECTION_DENIED)


def _error_of(response: httpx.Response) -> SandboxError:
    try:
        first = response.json()["errors"][0]
        reasons = [str(r) for r in first.get("reasons", [])]
        return SandboxError(response.status_code, str(first["code"]), str(first["message"]), reasons)
    except (ValueError, KeyError, IndexError, TypeError):
        return SandboxError(response.status_code, "UNEXPECTED", response.text[:200])


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _membership_params(send_webhook: bool) -> dict[str, str]:
    return {"send_webhook": "true"} if send_webhook else {}


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/_sandbox{path}", **kwargs)
        if response.status_code != 200:
            raise _error_of(response)
        return response.json()

    # --- tenant state ---
    def reset(self) -> None:
        self._call("POST", "/reset")

    def create_user(
        self,
        *,
        email: str | None = None,
        org_code: str | None = None,
        with_customer: bool = True,
        send_webhook: bool = True,
    ) -> dict[str, Any]:
        body = _given(email=email, org_code=org_code, with_customer=with_customer, send_webhook=send_webhook)
        result: dict[str, Any] = self._call("POST", "/users", json=body)
        return result

    def create_org(self, *, name: str, with_customer: bool = True, send_webhook: bool = True) -> dict[str, Any]:
        body = {"name": name, "with_customer": with_customer, "send_webhook": send_webhook}
        result: dict[str, Any] = self._call("POST", "/orgs", json=body)
        return result

    def seed_bulk(
        self, *, users: int = 0, orgs: int = 0, plan: str | None = None, roles: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Add `users` default-org users and `orgs` orgs, each with a billing customer, without webhooks; with
        `plan`, every customer already on it, and every user already holding the roles keyed `roles`."""
        body = {"users": users, "orgs": orgs, "roles": list(roles), **({"plan": plan} if plan else {})}
        result: dict[str, Any] = self._call("POST", "/bulk", json=body)
        return result

    def delete_org(self, org_code: str) -> None:
        """Fires `organization.deleted`; the org's members leave it (and lose their roles there)."""
        self._call("DELETE", f"/orgs/{org_code}")

    def add_user_to_org(self, user_id: str, org_code: str, *, send_webhook: bool = False) -> None:
        self._call("POST", f"/orgs/{org_code}/users/{user_id}", params=_membership_params(send_webhook))

    def remove_user_from_org(self, user_id: str, org_code: str, *, send_webhook: bool = False) -> None:
        self._call("DELETE", f"/orgs/{org_code}/users/{user_id}", params=_membership_params(send_webhook))

    def delete_user(self, user_id: str) -> None:
        self._call("DELETE", f"/users/{user_id}")

    def change_plan(self, customer_id: str, plan_code: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/customers/{customer_id}/plan", json={"plan_code": plan_code})
        return result

    def set_plan_selection_hook(self, url: str, secret: str, *, timeout_s: float = 5.0) -> None:
        """Run this plan-selection workflow endpoint before every plan change (not a customer's first plan).

        A refused change raises SandboxError 409 PLAN_SELECTION_DENIED with `.message` and `.reasons`."""
        self._call("POST", "/plan_selection_hook", json={"url": url, "secret": secret, "timeout_s": timeout_s})

    def clear_plan_selection_hook(self) -> None:
        self._call("DELETE", "/plan_selection_hook")

    def cancel_plan(self, customer_id: str) -> None:
        self._call("POST", f"/customers/{customer_id}/cancel")

    def payment(self, customer_id: str, outcome: str) -> dict[str, Any]:
        """`outcome` "failed" or "succeeded": fires customer.payment_failed / payment_succeeded, nothing else."""
        result: dict[str, Any] = self._call("POST", f"/customers/{customer_id}/payment", json={"outcome": outcome})
        return result

    def user_roles(self, user_id: str, org_code: str | None = None) -> list[str]:
        params = _given(org_code=org_code)
        roles: list[str] = self._call("GET", f"/users/{user_id}/roles", params=params)["roles"]
        return roles

    def grant_role(self, user_id: str, role_key: str, org_code: str | None = None) -> None:
        self._call("POST", f"/users/{user_id}/roles", json=_given(role_key=role_key, org_code=org_code))

    # --- inspection ---
    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self._call("GET", "/calls")["calls"]
        return calls

    def token_requests(self) -> int:
        return int(self._call("GET", "/token-requests")["token_requests"])

    def issued_tokens(self) -> list[str]:
        """Every access token issued since start (reset keeps them: they stay valid)."""
        tokens: list[str] = self._call("GET", "/tokens")["tokens"]
        return tokens

    def deliveries(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = self._call("GET", "/deliveries")["deliveries"]
        return attempts

    def pending_deliveries(self) -> int:
        return int(self._call("GET", "/deliveries")["pending"])

    def lost_deliveries(self) -> int:
        """Events `lose_rate` abandoned since the last reset."""
        return int(self._call("GET", "/deliveries")["lost"])

    def state(self) -> dict[str, Any]:
        """The whole tenant (roles, orgs, users, customers, agreements, assignments) as the snapshot file holds it."""
        state: dict[str, Any] = self._call("GET", "/state")
        return state

    # --- webhooks ---
    def send_event(
        self, type: str, data: dict[str, Any], *, event_id: str | None = None, timestamp: str | None = None
    ) -> dict[str, Any]:
        body = _given(type=type, data=data, event_id=event_id, timestamp=timestamp)
        result: dict[str, Any] = self._call("POST", "/events", json=body)
        return result

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return str(self._call("POST", "/sign", json=_given(claims=claims, kid=kid))["token"])

    def sign_raw(self, payload: str) -> str:
        """The current key's signature over `payload` as it is, JSON or not."""
        return str(self._call("POST", "/sign", json={"payload": payload})["token"])

    def set_webhooks(
        self,
        *,
        url: str | None = None,
        variant: str | None = None,
        shuffle: bool | None = None,
        duplicate_rate: float | None = None,
        drop_rate: float | None = None,
        delay_ms: int | None = None,
        paused: bool | None = None,
        lose_rate: float | None = None,
    ) -> None:
        body = _given(
            url=url,
            variant=variant,
            shuffle=shuffle,
            duplicate_rate=duplicate_rate,
            drop_rate=drop_rate,
            delay_ms=delay_ms,
            paused=paused,
            lose_rate=lose_rate,
        )
        self._call("POST", "/webhooks", json=body)

    # --- keys, tokens, scopes, quirks ---
    def rotate_keys(self, *, grace_s: float = 0.0) -> str:
        """A new signing key; the old one stays in the JWKS for `grace_s` seconds. Returns the new kid."""
        return str(self._call("POST", "/keys/rotate", json={"grace_s": grace_s})["kid"])

    def expire_tokens(self) -> None:
        """Every access token issued so far answers 401 (or 403, see `set_switches`) from now on."""
        self._call("POST", "/tokens/expire")

    def set_scopes(self, scopes: list[str]) -> None:
        """The scopes granted to the M2M app; withdrawn ones give 403 SCOPE_MISSING at once."""
        self._call("POST", "/scopes", json={"scopes": scopes})

    def set_switches(
        self,
        *,
        users_billing_expand: bool | None = None,
        orgs_billing_expand: bool | None = None,
        invalid_token_status: int | None = None,
    ) -> None:
        """Tenant quirks; `invalid_token_status=403` answers bad tokens 403 INVALID_CREDENTIALS (Kinde's spec)."""
        body = _given(users_billing_expand=users_billing_expand, orgs_billing_expand=orgs_billing_expand,
                      invalid_token_status=invalid_token_status)  # fmt: skip
        self._call("POST", "/switches", json=body)

    def define_plan(self, plan_code: str, features: dict[str, int]) -> None:
        self._call("POST", f"/plans/{plan_code}", json={"features": features})

    def assignments(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/assignments")["assignments"]
        return rows

    def save_snapshot(self) -> str:
        return str(self._call("POST", "/snapshot")["path"])

    # --- faults and limits ---
    def set_faults(self, pattern: str = "*", **rule: float) -> None:
        """E.g. `set_faults("GET /api/v1/billing/*", error_503=0.5, latency_ms=20)`; no fields removes it."""
        self._call("POST", "/faults", json={"pattern": pattern, "rule": rule})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_rate_limit(self, rate: float, burst: int = 1) -> None:
        """Token bucket over /api/v1 (requests/s, burst); rate 0 turns it off."""
        self._call("POST", "/rate-limit", json={"rate": rate, "burst": burst})
