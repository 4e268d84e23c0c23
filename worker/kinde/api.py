"""The port to Kinde's Management API and its one real adapter over a sync httpx.Client.

Only what the worker needs. Every call waits its turn at the shared gate
(worker/kinde/ratelimit.py), carries the shared M2M token (worker/kinde/token.py), and turns Kinde's answer
into data or into the service's error tree (worker/kinde/answers.py). Answers that mean "already
done" are success here: 404 on removing a role (reported as False: the caller may hold a stale role
id and looks again), 409 or an "already has role" code on adding one (a 404 ROUTE_NOT_FOUND is a
wrong URL, not a missing role, and stays an error).
A rejected token (401, or 403 on a token that is not fresh: Kinde's spec answers 403 for invalid
credentials) is dropped from the shared cache, a new one fetched and the call repeated once; a 403
that remains is a scope the M2M app lacks (`ForbiddenError`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

from common.errors import PermanentError, RateLimitedError, ServiceError
from common.infra import tracing
from worker.kinde.answers import body_of, classify, error_codes, map_errors
from worker.kinde.ratelimit import KindeGate
from worker.kinde.token import TokenSource
from worker.runtime import metrics

PAGE_SIZE = 100
Json = dict[str, Any]
ABSENT: Json = {}  # the answer to a call whose `already_done` status came back (identity-compared)
_ALREADY_HAS_ROLE = (
    "HTTP_409",
    "ROLE_ALREADY_ADDED",
    "ROLE_ALREADY_ASSIGNED",
    "USER_ALREADY_HAS_ROLE",
    "ALREADY_EXISTS",
)


@dataclass(frozen=True)
class Page:
    """One page of a `next_token` listing; `next_token` is None on the last page."""

    rows: list[Json]
    next_token: str | None


@dataclass(frozen=True)
class EntitlementRows:
    """Every page of a customer's entitlements; `plans` from `expand=plans` ([] if Kinde sent none, and
    then `plans_listed` is False: no `plans` field is not the same answer as no plans)."""

    rows: list[Json]
    plans: list[Json]
    plans_listed: bool = True


class KindeApi(Protocol):
    def get_user(self, user_id: str) -> Json:
        """`GET /api/v1/user?id=&expand=billing,organizations`."""

    def list_users(self, *, expand_billing: bool) -> Iterator[Json]:
        """Every user, paged; `billing.customer_id` when `expand_billing` (may raise kinde_INVALID_EXPAND_VALUES)."""

    def users_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        """One page of `GET /api/v1/users` (the index rebuild resumes from a stored `next_token`)."""

    def get_organization(self, org_code: str) -> Json:
        """`GET /api/v1/organization?code=&expand=billing`."""

    def list_organizations(self, *, expand_billing: bool) -> Iterator[Json]: ...

    def organizations_page(self, *, expand_billing: bool, next_token: str | None) -> Page: ...

    def org_members(self, org_code: str) -> Iterator[Json]: ...

    def agreements(self, customer_id: str) -> list[Json]:
        """Every agreement of the billing customer (all pages)."""

    def entitlements(self, customer_id: str) -> EntitlementRows:
        """Every entitlement of the billing customer (all pages), with its plans (`expand=plans`)."""

    def roles(self) -> list[Json]:
        """Every role of the tenant: {id, key, ...}."""

    def user_roles(self, org_code: str, user_id: str) -> list[Json]: ...

    def add_role(self, org_code: str, user_id: str, role_id: str) -> None: ...

    def remove_role(self, org_code: str, user_id: str, role_id: str) -> bool:
        """True if removed; False if Kinde answered 404 (no such role there, or our role id is stale)."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    endpoint: str  # the path template, a bounded metric label
    params: Mapping[str, str] | None = None
    json: Json | None = None
    already_done: int | None = None  # a status meaning "nothing to do" (404 on a removal, 409 on an add)


class HttpxKindeApi:
    def __init__(self, client: httpx.Client, base_url: str, tokens: TokenSource, gate: KindeGate) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._gate = gate

    def get_user(self, user_id: str) -> Json:
        params = {"id": user_id, "expand": "billing,organizations"}
        return self._send(Call("GET", "/api/v1/user", "GET /user", params))

    def list_users(self, *, expand_billing: bool) -> Iterator[Json]:
        params = {"expand": "billing,organizations"} if expand_billing else {}
        return self._token_pages("/api/v1/users", "GET /users", "users", params)

    def users_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        params = {"expand": "billing,organizations"} if expand_billing else {}
        return self._page(Call("GET", "/api/v1/users", "GET /users", params), "users", next_token)

    def get_organization(self, org_code: str) -> Json:
        params = {"code": org_code, "expand": "billing"}
        return self._send(Call("GET", "/api/v1/organization", "GET /organization", params))

    def list_organizations(self, *, expand_billing: bool) -> Iterator[Json]:
        params = {"expand": "billing"} if expand_billing else {}
        return self._token_pages("/api/v1/organizations", "GET /organizations", "organizations", params)

    def organizations_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        params = {"expand": "billing"} if expand_billing else {}
        call = Call("GET", "/api/v1/organizations", "GET /organizations", params)
        return self._page(call, "organizations", next_token)

    def org_members(self, org_code: str) -> Iterator[Json]:
        path = f"/api/v1/organizations/{org_code}/users"
        return self._token_pages(path, "GET /organizations/{org}/users", "organization_users", {})

    def agreements(self, customer_id: str) -> list[Json]:
        found: list[Json] = []
        params = {"customer_id": customer_id, "page_size": str(PAGE_SIZE)}
        while True:
            body = self._send(Call("GET", "/api/v1/billing/agreements", "GET /billing/agreements", params))
            page = [a for a in body.get("agreements") or [] if isinstance(a, dict)]
            found.extend(page)
            if not body.get("has_more") or not page or not page[-1].get("id"):
                return found
            params = {**params, "starting_after": str(page[-1]["id"])}

    def entitlements(self, customer_id: str) -> EntitlementRows:
        rows: list[Json] = []
        plans: list[Json] = []
        params = {"customer_id": customer_id, "page_size": str(PAGE_SIZE), "expand": "plans"}
        while True:
            body = self._send(Call("GET", "/api/v1/billing/entitlements", "GET /billing/entitlements", params))
            page = [e for e in body.get("entitlements") or [] if isinstance(e, dict)]
            rows.extend(page)
            plans.extend(p for p in body.get("plans") or [] if isinstance(p, dict) and p not in plans)
            if not body.get("has_more") or not page or not page[-1].get("id"):
                return EntitlementRows(rows, plans, plans_listed=isinstance(body.get("plans"), list))
            params = {**params, "starting_after": str(page[-1]["id"])}

    def roles(self) -> list[Json]:
        return list(self._token_pages("/api/v1/roles", "GET /roles", "roles", {}))

    def user_roles(self, org_code: str, user_id: str) -> list[Json]:
        path = f"/api/v1/organizations/{org_code}/users/{user_id}/roles"
        return list(self._token_pages(path, "GET /organizations/{org}/users/{user}/roles", "roles", {}))

    def add_role(self, org_code: str, user_id: str, role_id: str) -> None:
        path = f"/api/v1/organizations/{org_code}/users/{user_id}/roles"
        call = Call(
            "POST", path, "POST /organizations/{org}/users/{user}/roles", json={"role_id": role_id}, already_done=409
        )
        try:
            self._send(call)
        except PermanentError as exc:
            if not any(code in exc.reason for code in _ALREADY_HAS_ROLE):
                raise

    def remove_role(self, org_code: str, user_id: str, role_id: str) -> bool:
        path = f"/api/v1/organizations/{org_code}/users/{user_id}/roles/{role_id}"
        body = self._send(
            Call("DELETE", path, "DELETE /organizations/{org}/users/{user}/roles/{role}", already_done=404)
        )
        return body is not ABSENT

    def send(self, call: Call) -> Json:
        """A call beyond the worker's own (doctor, webhook registration) with the same token, gate and errors."""
        return self._send(call)

    def _token_pages(self, path: str, endpoint: str, field: str, params: Mapping[str, str]) -> Iterator[Json]:
        page = Page([], None)
        while True:
            page = self._page(Call("GET", path, endpoint, params), field, page.next_token)
            yield from page.rows
            if not page.next_token:
                return

    def _page(self, call: Call, field: str, next_token: str | None) -> Page:
        query = {**(call.params or {}), "page_size": str(PAGE_SIZE)}
        body = self._send(replace(call, params={**query, "next_token": next_token} if next_token else query))
        found = body.get("next_token")
        return Page([item for item in body.get(field) or [] if isinstance(item, dict)], str(found) if found else None)

    def _send(self, call: Call) -> Json:
        with tracing.span(f"kinde {call.endpoint}", {"kinde.endpoint": call.endpoint, "http.method": call.method}):
            return self._sent(call)

    def _sent(self, call: Call) -> Json:
        token = self._tokens.get()
        response = self._attempt(call, token)
        if self._rejected(response, token):
            self._tokens.invalidate(token)
            response = self._attempt(call, self._tokens.get())
        return self._result(call, response)

    def _rejected(self, response: httpx.Response, token: str) -> bool:
        """A 403 on a fresh token is about scopes, which a new token would not change."""
        status = response.status_code
        return status == 401 or (status == 403 and not self._tokens.fresh(token))

    def _attempt(self, call: Call, token: str) -> httpx.Response:
        self._gate.wait_turn()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        with map_errors(call.endpoint):
            response = self._client.request(
                call.method, self._base + call.path, params=call.params, json=call.json, headers=headers
            )
        metrics.KINDE_CALLS.labels(call.endpoint, str(response.status_code)).inc()
        tracing.annotate(**{"http.status_code": response.status_code})
        if response.status_code != 429 and response.status_code < 500:
            self._gate.answered()
        return response

    def _result(self, call: Call, response: httpx.Response) -> Json:
        body = body_of(response)
        if response.status_code == call.already_done and "ROUTE_NOT_FOUND" not in error_codes(body):
            return ABSENT
        error = classify(response.status_code, response.headers, body, endpoint=call.endpoint)
        if error is not None:
            self._note(error, body)
            raise error
        return body if isinstance(body, dict) else {}

    def _note(self, error: ServiceError, body: Any) -> None:
        if isinstance(error, RateLimitedError):
            metrics.KINDE_429.inc()
            self._gate.cool_down(error.retry_after_s or 1.0)
        if isinstance(error, PermanentError) and "ROLE_NOT_FOUND" in error_codes(body):
            error.reason = "kinde_ROLE_NOT_FOUND"
