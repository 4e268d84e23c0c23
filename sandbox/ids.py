"""Kinde-shaped identifiers: `kp_…` users, `org_…` orgs, `customer_…`, `agreement_…`, `event_…`."""

from __future__ import annotations

import secrets


def new_id(prefix: str, hex_chars: int = 32) -> str:
    return f"{prefix}_{secrets.token_hex(hex_chars // 2)}"


def user_id() -> str:
    return new_id("kp")


def org_code() -> str:
    # Kinde's org codes are short (`org_590d7f1a86a`), unlike the other ids.
    return new_id("org", 12)


def customer_id() -> str:
    return new_id("customer")


def agreement_id() -> str:
    return new_id("agreement")


def event_id() -> str:
    return new_id("event")


def webhook_id() -> str:
    return new_id("msg")


def opaque_id() -> str:
    """Role and billing-group ids are opaque hex strings, deliberately unlike the role keys."""
    return secrets.token_hex(16)
