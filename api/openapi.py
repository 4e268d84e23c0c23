"""The OpenAPI 3.1 description served at /openapi.json, derived from api/contract.py's types.

Bodies and answers come from the same msgspec types the server validates with and answers from
(`msgspec.json.schema_components`); only the routes, their parameters, auth and statuses are listed
here, beside the routes in api/app.py. Both auth schemes are security schemes: the read API's bearer
keys and the plan-selection workflow's secret header.
"""

from __future__ import annotations

from typing import Any

import msgspec

from api import contract
from api.plan_selection import SECRET_HEADER
from common.entitlements.manual_grants import ID_PATTERN
from common.plans.limits import METRIC_NAME
from common.settings import GRANTS_WRITE_SCOPE, USAGE_WRITE_SCOPE

ANSWERS = (contract.Error, contract.Decision, contract.UsageKept, contract.UserEntitlements, contract.UserFeature,
           contract.Customer, contract.History, contract.GrantFound, contract.GrantStored, contract.GrantRemoved,
           contract.GrantList)  # fmt: skip
REQUESTS = (contract.UsageReport, contract.SelectionContext, contract.SelectionEvent, contract.HandGrantBody)
SEGMENT = {"type": "string", "pattern": "^[^/]+$"}  # a path segment: any characters but '/'
BEARER, WORKFLOW = "bearer", "workflowSecret"
POSITIVE_DURATION = "^(?:[0-9]*[1-9][0-9]*(?:[.][0-9]+)?[smhdw])+$"  # common/infra/durations.py, each part above zero


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(codes: dict[str, str]) -> dict[str, Any]:
    return {code: {"description": said, **json_of(_ref("Error"))} for code, said in codes.items()}


def _path(name: str, schema: dict[str, Any] = SEGMENT) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ORG = {"name": "org_code", "in": "query", "required": False, "schema": {"type": "string"},
       "description": "only this organization's target"}  # fmt: skip
BEARER_ERRORS = {"401": "no valid bearer key", "429": "too many failed authentications from this address",
                 "503": "Redis did not answer, or too many requests in flight"}  # fmt: skip


def _read(summary: str, scope: str, ok: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [{BEARER: [scope]}],
            "parameters": params,
            "responses": {
                "200": {"description": "found", "headers": {"ETag": {"required": True, "schema": {"type": "string"}}},
                        **json_of(_ref(ok))},
                "304": {"description": "If-None-Match names the current ETag"},
                **_errors({**BEARER_ERRORS, "403": f"the key lacks the '{scope}' scope", "404": "unknown"}),
            },
        }
    }  # fmt: skip


def _usage() -> dict[str, Any]:
    return {"put": {
        "summary": "Report a usage total of a customer's metric (compared with plans.toml [limits])",
        "security": [{BEARER: [USAGE_WRITE_SCOPE]}],
        "parameters": [_path("customer_id"), _path("metric", {"type": "string", "pattern": METRIC_NAME.pattern})],
        "requestBody": {"required": True, **json_of(_ref("UsageReport"))},
        "responses": {"200": {"description": "kept (kept: false when a newer report is kept)",
                              **json_of(_ref("UsageKept"))},
                      **_errors({**BEARER_ERRORS, "400": "a body that is not a UsageReport",
                                 "403": f"the key lacks the '{USAGE_WRITE_SCOPE}' scope",
                                 "404": "no link names the customer: nothing kept"})},
    }}  # fmt: skip


def _grants() -> dict[str, Any]:
    """Hand grants (common/entitlements/manual_grants.py): `GET /v1/grants` under `users`."""
    query = [{"name": "user_id", "in": "query", "required": False, "schema": {"type": "string"}},
             {"name": "expiring_within", "in": "query", "required": False,
              "schema": {"type": "string", "pattern": POSITIVE_DURATION}}]  # fmt: skip
    listed = _read("Hand grants, soonest ending first", "users", "GrantList", query)
    listed["get"]["responses"].pop("304")
    listed["get"]["responses"].pop("404")
    listed["get"]["responses"]["200"] = {"description": "found", **json_of(_ref("GrantList"))}
    listed["get"]["responses"].update(_errors({"400": "expiring_within is not a duration (7d)"}))
    return listed


def _grant() -> dict[str, Any]:
    """One hand grant: read under `users`; given or ended under `grants:write`, audited with the key's label."""
    grant_id = _path("grant_id", {"type": "string", "pattern": f"^{ID_PATTERN}$"})
    found = _read("One hand grant", "users", "GrantFound", [grant_id])
    found["get"]["responses"].pop("304")
    found["get"]["responses"]["200"] = {"description": "found", **json_of(_ref("GrantFound"))}
    write = {
        **BEARER_ERRORS,
        "403": f"the key lacks the '{GRANTS_WRITE_SCOPE}' scope",
        "503": "plans.toml could not be read, Redis did not answer, or too many requests in flight",
    }
    reason = {"name": "reason", "in": "query", "required": True, "schema": msgspec.json.schema(contract.NonBlank)}
    bad = "not a HandGrantBody"
    unknown = "a user the service has never seen, or saw deleted (user_not_found): nothing is stored"
    refused = (
        "a role plans.toml does not manage, an until not in the future, or a user the service has not seen "
        "in the org (not_a_member): nothing is stored"
    )
    put = {"summary": "Give managed roles to a user by hand (replaces a grant of the same id)",
           "security": [{BEARER: [GRANTS_WRITE_SCOPE]}], "parameters": [grant_id],
           "requestBody": {"required": True, **json_of(_ref("HandGrantBody"))},
           "responses": {"200": {"description": "stored; its user converges", **json_of(_ref("GrantStored"))},
                         **_errors({**write, "400": bad, "404": unknown, "409": refused})}}  # fmt: skip
    delete = {"summary": "End a hand grant now", "security": [{BEARER: [GRANTS_WRITE_SCOPE]}],
              "parameters": [grant_id, reason],
              "responses": {"200": {"description": "removed", **json_of(_ref("GrantRemoved"))},
                            **_errors({**write, "400": "no reason given", "404": "no such grant"})}}  # fmt: skip
    return {**found, "put": put, "delete": delete}


def _selection() -> dict[str, Any]:
    return {"post": {
        "summary": "Kinde's plan-selection workflow asks whether a plan change may go ahead",
        "security": [{WORKFLOW: []}],
        "requestBody": {"required": True, **json_of({"anyOf": [_ref("SelectionContext"), _ref("SelectionEvent")]})},
        "responses": {"200": {"description": "the decision", **json_of(_ref("Decision"))},
                      **_errors({"400": "not a workflow context", "401": "missing or wrong workflow secret",
                                 "404": "ROLESYNC_WORKFLOW_SECRET unset: the guard is off",
                                 "429": "too many failed authentications from this address",
                                 "503": "plans.toml could not be read, or too many requests in flight"})},
    }}  # fmt: skip


def _components() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components((*REQUESTS, *ANSWERS), ref_template="#/components/schemas/{name}")
    return {
        "securitySchemes": {
            BEARER: {"type": "http", "scheme": "bearer", "description": "a key from ROLESYNC_API_KEYS"},
            WORKFLOW: {"type": "apiKey", "in": "header", "name": SECRET_HEADER,
                       "description": "ROLESYNC_WORKFLOW_SECRET, sent by Kinde's plan-selection workflow"},
        },
        "schemas": schemas,
    }  # fmt: skip


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kinde-role-sync read API", "version": "1"},
    "components": _components(),
    "paths": {
        "/v1/users/{user_id}/entitlements": _read(
            "What is in force for a user, per organization", "users", "UserEntitlements", [_path("user_id"), ORG]
        ),
        "/v1/users/{user_id}/entitlements/{feature_code}": _read(
            "One feature of a user: entitled or not, limits, usage",
            "users",
            "UserFeature",
            [_path("user_id"), _path("feature_code"), ORG],
        ),
        "/v1/customers/{customer_id}": _read(
            "A billing customer: link, plans, roles, features, standing, usage",
            "customers",
            "Customer",
            [_path("customer_id")],
        ),
        "/v1/customers/{customer_id}/history": _read(
            "The last 200 things that happened to a customer, newest first",
            "customers",
            "History",
            [_path("customer_id")],
        ),
        "/v1/customers/{customer_id}/usage/{metric}": _usage(),
        "/v1/grants": _grants(),
        "/v1/grants/{grant_id}": _grant(),
        "/v1/plan-selection": _selection(),
    },
}
