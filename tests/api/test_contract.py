"""/openapi.json is derived from the types the server validates with and answers from (api/contract.py).

The schema says what the server enforces (issue 22, schemathesis ST202): the usage metric's pattern, the
plan-selection body's fields, `additionalProperties: false` where extras are refused, required fields and
both auth schemes; a body the schema accepts the server accepts, and one it refuses the server refuses;
the read views' answers fit their declared types exactly.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from api import contract, views
from api.bodies import BadBodyError
from api.openapi import SPEC
from api.reader import UserView
from api.selection import BadSelectionError, selection_of
from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Target
from common.entitlements.snapshots import Source, TargetSnapshot
from common.plans.limits import METRIC_NAME

USAGE = "/v1/customers/{customer_id}/usage/{metric}"


def component(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def selection_schema() -> Draft202012Validator:
    body = SPEC["paths"]["/v1/plan-selection"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**body, "components": SPEC["components"]})


def test_the_usage_metric_path_parameter_has_the_servers_pattern() -> None:
    params = {p["name"]: p for p in SPEC["paths"][USAGE]["put"]["parameters"]}
    assert params["metric"]["schema"]["pattern"] == METRIC_NAME.pattern


def test_a_usage_report_refuses_extras_and_requires_its_value() -> None:
    report = SPEC["components"]["schemas"]["UsageReport"]
    assert (report["additionalProperties"], report["required"]) == (False, ["value"])


def test_the_plan_selection_body_names_its_fields_and_the_secret_is_a_security_scheme() -> None:
    operation = SPEC["paths"]["/v1/plan-selection"]["post"]
    schemas = SPEC["components"]["schemas"]
    assert schemas["SelectionContext"]["required"] == ["billing", "user"]
    assert schemas["Billing"]["required"] == ["requestedPlanCode"]
    assert schemas["User"]["required"] == ["id"]
    assert operation["security"] == [{"workflowSecret": []}]
    assert "parameters" not in operation  # the secret is no plain header
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["workflowSecret"] == {**schemes["workflowSecret"], "type": "apiKey", "in": "header",
                                         "name": "x-rolesync-workflow-secret"}  # fmt: skip
    assert schemes["bearer"]["scheme"] == "bearer"


REPORTS = [{"value": 12}, {"value": 0, "at": 1_700_000_000}, {"value": 1.5}, {"value": -1}, {"value": "12"},
           {"value": 1, "extra": 2}, [12], {"value": 1, "at": 4e12}, {"value": True}, {"value": 1, "at": None},
           {}, {"value": 10**400}]  # fmt: skip


@pytest.mark.parametrize("body", REPORTS)
def test_the_schema_and_the_server_agree_on_a_usage_report(body: Any) -> None:
    try:
        contract.read_as(contract.UsageReport, body)
        accepted = True
    except BadBodyError:
        accepted = False
    assert accepted == component("UsageReport").is_valid(body)


def context(**fields: Any) -> dict[str, Any]:
    return {"billing": {"requestedPlanCode": "free"}, "user": {"id": "kp_1"}, **fields}


SELECTIONS = [context(), context(organization={"code": "org_a"}), context(organization=None), {"context": context()},
              {"context": context(), "other": 1}, context(extra={"kinde": "adds fields"}), context(organization="o"),
              {"billing": {"requestedPlanCode": " "}, "user": {"id": "kp_1"}}, {"billing": {}, "user": {"id": "u"}},
              {"context": {"billing": {}}, **context()}, {"context": {"billing": {}}}, [1, 2], "free",
              {"user": {"id": "kp_a"}, "billing": "free"}, context(billing={"requestedPlanCode": "x",
                                                                              "currentPlanCode": 5})]  # fmt: skip


@pytest.mark.parametrize("body", SELECTIONS)
def test_the_schema_and_the_server_agree_on_a_plan_selection_body(body: Any) -> None:
    try:
        selection_of(body)
        accepted = True
    except BadSelectionError:
        accepted = False
    assert accepted == selection_schema().is_valid(body)


def snapshot() -> TargetSnapshot:
    source = Source("customer_1", (PlanHeld("plan_client", "2026-11-01"),), (Feature("seats", "Seats", 5),),
                    ("role_client",), "ok", False, 3, 100.0, 90.0)  # fmt: skip
    return TargetSnapshot(Target("org_default", "kp_1"), ("role_client",), (source,), 101.0)


def test_the_user_answers_fit_their_declared_types_exactly() -> None:
    reading = {"feature_code": "seats", "value": 2.0, "kind": "absolute", "at": 99.0, "event_id": "ev", "raw": "{}"}
    view = UserView([snapshot().to_dict()], {"customer_1": {"seats": reading}})
    msgspec.convert(views.user_entitlements("kp_1", None, view), contract.UserEntitlements)
    msgspec.convert(views.user_feature("kp_1", "seats", "org_default", view), contract.UserFeature)


def test_the_customer_answer_fits_its_declared_type_exactly() -> None:
    found = {
        "link": {"kind": "user", "user_id": "kp_1", "org_code": None, "source": "user_lookup", "learned_at": 1.0},
        "grants": {"plans": ["plan_client"], "roles": ["role_client"], "targets": [["org_default", "kp_1"]],
                   "generation": 3, "read_at": 100.0},
        "entitlements": {"plans": [{"code": "plan_client", "subscribed_on": "2026-11-01"}],
                         "features": [Feature("seats", "Seats", 5).to_dict()], "read_at": 90.0},
        "payment": {"standing": "ok", "at": "50.0"},
        "usage": {"seats": {"feature_code": "seats", "value": 2.0, "kind": "absolute", "at": 99.0, "event_id": "ev",
                            "raw": "{}"}},
        "reports": {"projects": {"metric": "projects", "value": 4.0, "at": 98.0, "by": "app"}},
    }  # fmt: skip
    msgspec.convert(views.customer("customer_1", found), contract.Customer)
