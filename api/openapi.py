"""The OpenAPI 3.1 description served at /openapi.json (kept by hand beside the routes in api/app.py)."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, scope: str, ok: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [{"bearer": [scope]}],
            "parameters": params,
            "responses": {
                "200": {"description": "found (ETag header set)", **json_of(_ref(ok))},
                "304": {"description": "If-None-Match names the current ETag"},
                "401": {"description": "no valid bearer key", **json_of(_ref("Error"))},
                "403": {"description": f"the key lacks the '{scope}' scope", **json_of(_ref("Error"))},
                "404": {"description": "unknown", **json_of(_ref("Error"))},
                "503": {"description": "Redis did not answer", **json_of(_ref("Error"))},
            },
        }
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


ORG = {"name": "org_code", "in": "query", "required": False, "schema": {"type": "string"},
       "description": "only this organization's target"}  # fmt: skip
_ANY = {"type": "object", "additionalProperties": True}


def _errors(codes: dict[str, str]) -> dict[str, Any]:
    return {code: {"description": said, **json_of(_ref("Error"))} for code, said in codes.items()}


def _usage_op() -> dict[str, Any]:
    return {
        "summary": "Report a usage total of a customer's metric (compared with plans.toml [limits])",
        "security": [{"bearer": ["usage:write"]}],
        "parameters": [_path("customer_id"), _path("metric")],
        "requestBody": {"required": True, **json_of(_ref("UsageReport"))},
        "responses": {"200": {"description": "kept (kept: false when a newer report is kept)", **json_of(_ANY)},
                      **_errors({"400": "bad body", "401": "no valid bearer key",
                                 "403": "the key lacks the 'usage:write' scope", "503": "Redis did not answer"})},
    }  # fmt: skip


def _grant_ops() -> dict[str, Any]:
    """Hand grants (common/manual_grants.py): read under `users`, written under `grants:write`."""
    write = _errors(
        {
            "400": "bad body: what is wrong is said, nothing is stored",
            "401": "no valid bearer key",
            "403": "the key lacks the 'grants:write' scope",
            "503": "plans.toml unreadable or Redis down",
        }
    )
    reason = {"name": "reason", "in": "query", "required": True, "schema": {"type": "string"}}
    return {
        "get": {**_op("One hand grant", "users", "HandGrant", [_path("grant_id")])["get"]},
        "put": {"summary": "Give managed roles to a user by hand (replaces a grant of the same id)",
                "security": [{"bearer": ["grants:write"]}], "parameters": [_path("grant_id")],
                "requestBody": {"required": True, **json_of(_ref("HandGrantBody"))},
                "responses": {"200": {"description": "stored; its target converges", **json_of(_ANY)}, **write}},
        "delete": {"summary": "End a hand grant now", "security": [{"bearer": ["grants:write"]}],
                   "parameters": [_path("grant_id"), reason],
                   "responses": {"200": {"description": "removed", **json_of(_ANY)},
                                 **_errors({"404": "no such grant"}), **write}},
    }  # fmt: skip


def _selection_op() -> dict[str, Any]:
    secret = {"name": "x-rolesync-workflow-secret", "in": "header", "required": True, "schema": {"type": "string"}}
    return {
        "summary": "Kinde's plan-selection workflow asks whether a plan change may go ahead",
        "parameters": [secret],
        "requestBody": {"required": True, **json_of(_ANY)},
        "responses": {"200": {"description": "the decision", **json_of(_ref("Decision"))},
                      **_errors({"400": "not a context object", "401": "missing or wrong workflow secret",
                                 "404": "ROLESYNC_WORKFLOW_SECRET unset: the guard is off",
                                 "503": "plans.toml could not be read"})},
    }  # fmt: skip


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kinde-role-sync read API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Feature": {
                "type": "object",
                "properties": {
                    "feature_code": {"type": "string"},
                    "feature_name": {"type": "string"},
                    "limit_max": {"type": ["integer", "null"]},
                    "limit_min": {"type": ["integer", "null"]},
                    "unlimited": {"type": "boolean"},
                    "granted_by": {"type": "array", "items": {"type": "string"}},
                    "usage": {"type": "array", "items": _ANY},
                },
            },
            "Target": {
                "type": "object",
                "properties": {
                    "org_code": {"type": "string"},
                    "user_id": {"type": "string"},
                    "plans": {"type": "array", "items": _ANY},
                    "features": {"type": "array", "items": _ref("Feature")},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "customers": {"type": "array", "items": _ANY},
                    "hand_grants": {"type": "array", "items": _ANY},
                    "granted_by": {"type": "object", "additionalProperties": {"type": "array", "items": _ANY}},
                    "computed_at": {"type": "number"},
                },
            },
            "UserEntitlements": {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string"},
                    "org_code": {"type": ["string", "null"]},
                    "organizations": {"type": "array", "items": _ref("Target")},
                },
            },
            "UserFeature": {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string"},
                    "feature_code": {"type": "string"},
                    "entitled": {"type": "boolean"},
                    "organizations": {"type": "array", "items": _ANY},
                },
            },
            "Customer": _ANY,
            "Decision": {
                "type": "object",
                "required": ["allow", "message", "reasons"],
                "properties": {
                    "allow": {"type": "boolean"},
                    "message": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                },
            },
            "UsageReport": {
                "type": "object",
                "required": ["value"],
                "properties": {"value": {"type": "number", "minimum": 0}, "at": {"type": "number"}},
            },
            "HandGrant": {
                "type": "object",
                "properties": {
                    "grant": {
                        "type": "object",
                        "properties": {
                            "grant_id": {"type": "string"},
                            "user_id": {"type": "string"},
                            "org_code": {"type": "string"},
                            "roles": {"type": "array", "items": {"type": "string"}},
                            "reason": {"type": "string"},
                            "by": {"type": "string"},
                            "created_at": {"type": "number"},
                            "until": {"type": ["number", "null"]},
                        },
                    }
                },
            },
            "HandGrantBody": {
                "type": "object",
                "required": ["user_id", "roles", "reason"],
                "properties": {
                    "user_id": {"type": "string"},
                    "org_code": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string"},
                    "until": {"type": ["string", "number", "null"]},
                },
            },
            "History": {
                "type": "object",
                "properties": {"customer_id": {"type": "string"}, "entries": {"type": "array", "items": _ANY}},
            },
        },
    },
    "paths": {
        "/v1/users/{user_id}/entitlements": _op(
            "What is in force for a user, per organization", "users", "UserEntitlements", [_path("user_id"), ORG]
        ),
        "/v1/users/{user_id}/entitlements/{feature_code}": _op(
            "One feature of a user: entitled or not, limits, usage",
            "users",
            "UserFeature",
            [_path("user_id"), _path("feature_code"), ORG],
        ),
        "/v1/customers/{customer_id}": _op(
            "A billing customer: link, plans, roles, features, standing, usage",
            "customers",
            "Customer",
            [_path("customer_id")],
        ),
        "/v1/customers/{customer_id}/history": _op(
            "The last 200 things that happened to a customer, newest first",
            "customers",
            "History",
            [_path("customer_id")],
        ),
        "/v1/customers/{customer_id}/usage/{metric}": {"put": _usage_op()},
        "/v1/grants": _op(
            "Hand grants, soonest ending first",
            "users",
            "HandGrant",
            [
                {"name": "user_id", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "expiring_within", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
        ),
        "/v1/grants/{grant_id}": _grant_ops(),
        "/v1/plan-selection": {"post": _selection_op()},
    },
}
