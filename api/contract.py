"""The read API's requests and answers, each declared once (msgspec Structs).

The server validates request bodies with these types (`read_as`) and builds the guard's and the usage
report's answers from them; api/openapi.py derives /openapi.json from the same types, so the schema
says exactly what the server enforces: required fields, patterns, bounds, and `additionalProperties:
false` where extras are refused (a usage report). The read answers (users, customers, history) are
built by api/views.py as plain dicts; their types here forbid unknown fields, so a view that drifts
fails tests/api/test_contract.py and the schemathesis run against a live API (response conformance).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from api.bodies import BadBodyError
from common.entitlements.manual_grants import MAX_REASON
from common.plans.limits import METRIC_NAME

T = TypeVar("T")

# --- requests ---

BLANKS = " \t\n\r\f\v"  # spelled out: `\s` differs between Python's, ECMA's and Rust's regexes
NonBlank = Annotated[str, msgspec.Meta(pattern="[^ \\t\\n\\r\\f\\v]", description="not only spaces")]
# Epoch seconds; the bound catches milliseconds sent for seconds (a report dated later than now + 300 s is
# kept as of now, so the schema can say exactly what is accepted).
EPOCH_MAX = 1e11
Total = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max, description="a usage total, >= 0")]
Epoch = Annotated[float, msgspec.Meta(ge=0, le=EPOCH_MAX, description="epoch seconds")]
Metric = Annotated[str, msgspec.Meta(pattern=METRIC_NAME.pattern)]


class UsageReport(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT /v1/customers/{customer_id}/usage/{metric}`: a total the app counts; `at` defaults to now."""

    value: Total
    at: Epoch | msgspec.UnsetType = msgspec.UNSET


class Billing(msgspec.Struct):
    requestedPlanCode: NonBlank
    currentPlanCode: str | None = None


class User(msgspec.Struct):
    id: NonBlank


class Organization(msgspec.Struct):
    code: str | None = None


class SelectionContext(msgspec.Struct):
    """The `user:plan_selection` workflow's context (Kinde's other fields are allowed and ignored)."""

    billing: Billing
    user: User
    organization: Organization | None = None


GrantUser = Annotated[str, msgspec.Meta(pattern="^kp_[A-Za-z0-9_-]{0,61}$", description="a Kinde user id")]
GrantOrg = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{0,64}$", description="an org code; empty: the B2C org")]
GrantRoles = Annotated[list[str], msgspec.Meta(min_length=1, description="role keys, each managed in plans.toml")]
GrantReason = Annotated[str, msgspec.Meta(pattern="[^ \\t\\n\\r\\f\\v]", max_length=MAX_REASON,
                                          description="why: shown wherever the grant is")]  # fmt: skip


class HandGrantBody(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT /v1/grants/{grant_id}`: managed roles given by hand to a user (common/entitlements/manual_grants.py). A role
    plans.toml does not manage, or an `until` not in the future, is refused with 409; a user the service has
    never seen (or saw Kinde delete) with 404, one it has not seen in the org with 409: nothing is stored."""

    user_id: GrantUser
    roles: GrantRoles
    reason: GrantReason
    org_code: GrantOrg = ""
    until: Epoch | None = None  # when the grant ends by itself; none: until removed


class SelectionEvent(msgspec.Struct):
    """The whole workflow event, the context under `context`."""

    context: SelectionContext


# --- answers ---


class ErrorDetail(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    message: str


class Error(msgspec.Struct, forbid_unknown_fields=True):
    error: ErrorDetail


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    """The answer Kinde's plan-selection workflow reads."""

    allow: bool
    message: str
    reasons: list[str]


class UsageKept(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: str
    metric: str
    value: float
    at: float
    kept: bool  # false: a newer report of the metric is kept


class Plan(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    subscribed_on: str | None


class HeldPlan(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    subscribed_on: str | None
    customer_id: str


class Limits(msgspec.Struct, forbid_unknown_fields=True):
    feature_name: str
    limit_max: int | None
    limit_min: int | None
    unlimited: bool


class Feature(Limits):
    feature_code: str


class FeatureUsage(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: str
    value: float | None
    kind: str | None
    at: float


class GrantedLimits(Limits):
    granted_by: list[str]  # the customers granting the feature there; the larger limit wins
    usage: list[FeatureUsage]


class TargetFeature(GrantedLimits):
    feature_code: str


class Covering(msgspec.Struct, forbid_unknown_fields=True):
    """One customer covering a target, as the target's snapshot saw it."""

    customer_id: str
    plans: list[Plan]
    features: list[Feature]
    roles: list[str]
    payment_standing: str
    suspended: bool
    generation: int
    read_at: float
    entitlements_read_at: float | None


class GrantedBy(msgspec.Struct, forbid_unknown_fields=True):
    """A hand grant as a party giving a role (common/entitlements/manual_grants.py)."""

    grant: str
    reason: str


class ByHand(msgspec.Struct, forbid_unknown_fields=True):
    """One hand grant covering a target, as the target's snapshot saw it."""

    granted_by: GrantedBy
    roles: list[str]
    by: str
    until: float | None


class Target(msgspec.Struct, forbid_unknown_fields=True):
    org_code: str
    user_id: str
    plans: list[HeldPlan]
    features: list[TargetFeature]
    roles: list[str]
    customers: list[Covering]
    hand_grants: list[ByHand]
    granted_by: dict[str, list[dict[str, str]]]  # role -> [{customer: id} | {grant: id, reason: …}]
    computed_at: float


class UserEntitlements(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str
    org_code: str | None
    organizations: list[Target]


class FeatureAtOrg(GrantedLimits):
    org_code: str


class UserFeature(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str
    feature_code: str
    org_code: str | None
    entitled: bool
    organizations: list[FeatureAtOrg]


class Link(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["user", "org"]
    user_id: str | None
    org_code: str | None
    source: str | None
    learned_at: float | None


class UsageReading(msgspec.Struct, forbid_unknown_fields=True):
    """A customer's latest reading of a metric: Kinde's meter (`kind`, `event_id`, `raw`) or the app's (`by`)."""

    metric: str
    value: float | None
    at: float
    source: Literal["meter", "app"]
    feature_code: str | None = None
    kind: str | None = None
    event_id: str | None = None
    raw: str | None = None
    by: str | None = None


class Customer(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: str
    link: Link | None
    plans: list[Plan]
    roles: list[str]
    targets: list[dict[str, str]]
    features: list[Feature]
    payment_standing: str
    payment_standing_at: float | None
    usage: list[UsageReading]
    generation: int | None
    read_at: float | None
    entitlements_read_at: float | None


class HandGrant(msgspec.Struct, forbid_unknown_fields=True):
    grant_id: str
    user_id: str
    org_code: str
    roles: list[str]
    reason: str
    by: str  # the operator (`--by`) or the API key's label
    created_at: float
    until: float | None


class GrantFound(msgspec.Struct, forbid_unknown_fields=True):
    grant: HandGrant


class GrantStored(msgspec.Struct, forbid_unknown_fields=True):
    grant: HandGrant
    replaced: bool


class GrantRemoved(msgspec.Struct, forbid_unknown_fields=True):
    removed: HandGrant


class GrantList(msgspec.Struct, forbid_unknown_fields=True):
    grants: list[HandGrant]  # soonest ending first


class History(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: str
    entries: list[dict[str, Any]]  # newest first; each has `kind` and `at`, the rest by kind (docs/on-call.md)


def read_as(kind: type[T], body: Any) -> T:
    """`body` (parsed JSON) as `kind`, or BadBodyError saying where and why (msgspec's own words)."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise BadBodyError(str(exc)) from None


def to_body(answer: msgspec.Struct) -> Any:
    return msgspec.to_builtins(answer)
