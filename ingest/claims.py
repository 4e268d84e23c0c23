"""The claims a verified Kinde webhook must carry, and the time window it must fall in.

`type`, `event_id` and `data` (an object) are required. `timestamp` is ISO-8601 with an offset
and checked only when present (a real 2024 token has it, `iat`/`exp` are absent; reference
docs/kinde-facts.md, Webhooks); `event_timestamp` stands in when `timestamp` is absent. Standard `exp`, `nbf`
and `iat` are honoured when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.rejection import Rejected

MAX_EVENT_ID_LENGTH = 200  # event ids become Redis keys; Kinde's are ~38 characters


@dataclass(frozen=True)
class Policy:
    """How old or how far ahead an event's time may be; built from Settings by the app."""

    max_age: timedelta = timedelta(hours=72)
    max_future: timedelta = timedelta(minutes=5)


def check_claims(claims: Mapping[str, Any], *, now: datetime, policy: Policy) -> None:
    _check_required(claims)
    _check_time(_event_time(claims), now=now, policy=policy)
    _check_jwt_times(claims, now=now, policy=policy)


def _check_required(claims: Mapping[str, Any]) -> None:
    missing = [name for name in ("type", "event_id", "data") if claims.get(name) is None]
    if missing:
        raise Rejected("missing_claims", f"missing claims: {', '.join(missing)}")
    if not _short_text(claims["type"]) or not _short_text(claims["event_id"]):
        raise Rejected("invalid_claims", "type and event_id must be non-empty strings")
    if not isinstance(claims["data"], Mapping):
        raise Rejected("invalid_claims", "data must be an object")


def _short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_EVENT_ID_LENGTH


def _event_time(claims: Mapping[str, Any]) -> datetime | None:
    raw = claims.get("timestamp", claims.get("event_timestamp"))
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Rejected("invalid_claims", "timestamp must be ISO-8601 with an offset")
    return parsed


def _check_time(when: datetime | None, *, now: datetime, policy: Policy) -> None:
    if when is None:
        return
    if when < now - policy.max_age:
        raise Rejected("expired", "timestamp is older than the accepted window")
    if when > now + policy.max_future:
        raise Rejected("future_timestamp", "timestamp is too far in the future")


def _check_jwt_times(claims: Mapping[str, Any], *, now: datetime, policy: Policy) -> None:
    exp, nbf, iat = (_epoch(claims, name) for name in ("exp", "nbf", "iat"))
    if exp is not None and exp < now:
        raise Rejected("expired", "token exp has passed")
    if nbf is not None and nbf > now + policy.max_future:
        raise Rejected("future_timestamp", "token nbf is in the future")
    if iat is not None and iat > now + policy.max_future:
        raise Rejected("future_timestamp", "token iat is in the future")


def _epoch(claims: Mapping[str, Any], name: str) -> datetime | None:
    raw = claims.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Rejected("invalid_claims", f"{name} must be a number of seconds")
    try:
        return datetime.fromtimestamp(raw, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected("invalid_claims", f"{name} is out of range") from None
