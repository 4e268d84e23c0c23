"""The records a tenant holds. Plain data; behaviour lives in `tenant.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OwnerKind = Literal["user", "org"]


@dataclass
class Role:
    id: str
    key: str
    name: str
    description: str | None = None
    is_default_role: bool = False


@dataclass
class Org:
    code: str
    name: str
    created_on: str
    is_default: bool = False
    external_id: str | None = None
    customer_id: str | None = None

    @property
    def handle(self) -> str:
        return self.name.lower().replace(" ", "_")


@dataclass
class User:
    id: str
    email: str
    created_on: str
    first_name: str = ""
    last_name: str = ""
    org_codes: list[str] = field(default_factory=list)
    customer_id: str | None = None


@dataclass
class Customer:
    id: str
    owner_kind: OwnerKind
    owner_id: str  # a user id for B2C, an org code for B2B


@dataclass
class Agreement:
    id: str
    customer_id: str
    plan_code: str
    created_on: str
    billing_group_id: str
    expires_on: str | None = None

    @property
    def active(self) -> bool:
        return self.expires_on is None


@dataclass
class Webhook:
    """An endpoint registered through `POST /api/v1/webhooks`."""

    id: str
    endpoint: str
    event_types: list[str]
    name: str
    description: str | None
    created_on: str
