"""Wall-clock timestamps in the formats Kinde uses."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """ISO 8601 with microseconds and an explicit offset, like Kinde's webhook `timestamp`."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def now_iso_seconds() -> str:
    """`2026-08-06T12:53:57Z`, the shape of billing dates in the Management API."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
