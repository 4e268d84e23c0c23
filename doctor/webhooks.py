"""Kinde webhook registrations: the port, its adapter over the worker's Kinde client, and the plan.

Kinde's list answer is read tolerantly (docs/kinde-facts.md, Management API gives the POST body but no list shape):
the endpoint may come as `endpoint` or `url`, and each event type as a string or an object
carrying `code`/`key`/`type`. We always send the documented form: strings, `endpoint`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from common.errors import ConfigError
from common.infra.sandbox_marker import DELIVERS_TO
from common.webhooks.events import SUBSCRIBED_EVENTS
from worker.kinde.api import Call, HttpxKindeApi

WEBHOOK_NAME = "kinde-role-sync"
WEBHOOK_DESCRIPTION = "Keeps access roles in step with billing plans (kinde-role-sync)"
INGEST_PATH = "/webhooks/kinde"


@dataclass(frozen=True)
class Webhook:
    id: str
    endpoint: str
    event_types: frozenset[str]


@dataclass(frozen=True)
class Listing:
    webhooks: list[Webhook]
    sandbox_delivers_to: str | None  # None: a real Kinde; else the local sandbox's own --webhook-url ("" none)


def listing_of(body: dict[str, Any]) -> Listing:
    webhooks = [w for w in map(webhook_of, body.get("webhooks") or []) if w is not None]
    marker = body.get(DELIVERS_TO)
    return Listing(webhooks, marker if isinstance(marker, str) else None)


class WebhookRegistry(Protocol):
    def list(self) -> list[Webhook]: ...

    def create(self, endpoint: str, event_types: Sequence[str]) -> str:
        """Register a webhook; return its id."""

    def update(self, webhook_id: str, event_types: Sequence[str]) -> None: ...


class KindeWebhookRegistry:
    def __init__(self, api: HttpxKindeApi) -> None:
        self._api = api

    def list(self) -> list[Webhook]:
        return self.listing().webhooks

    def listing(self) -> Listing:
        return listing_of(self._api.send(Call("GET", "/api/v1/webhooks", "GET /webhooks")))

    def create(self, endpoint: str, event_types: Sequence[str]) -> str:
        payload = create_body(endpoint, event_types)
        body = self._api.send(Call("POST", "/api/v1/webhooks", "POST /webhooks", json=payload))
        created = body.get("webhook")
        return str(created.get("id", "")) if isinstance(created, dict) else ""

    def update(self, webhook_id: str, event_types: Sequence[str]) -> None:
        path = f"/api/v1/webhooks/{webhook_id}"
        self._api.send(Call("PATCH", path, "PATCH /webhooks/{id}", json=update_body(event_types)))


def create_body(endpoint: str, event_types: Sequence[str]) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "event_types": list(event_types),
        "name": WEBHOOK_NAME,
        "description": WEBHOOK_DESCRIPTION,
    }


def update_body(event_types: Sequence[str]) -> dict[str, Any]:
    return {"event_types": list(event_types)}


def _event_type(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        found = item.get("code") or item.get("key") or item.get("type")
        return found if isinstance(found, str) else None
    return None


def webhook_of(item: Any) -> Webhook | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    endpoint = item.get("endpoint") or item.get("url") or ""
    types = {t for t in map(_event_type, item.get("event_types") or []) if t}
    return Webhook(str(item["id"]), str(endpoint), frozenset(types))


def same_endpoint(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def pointing_at(webhooks: Iterable[Webhook], url: str) -> Webhook | None:
    return next((w for w in webhooks if same_endpoint(w.endpoint, url)), None)


def missing_events(webhook: Webhook) -> list[str]:
    return [t for t in SUBSCRIBED_EVENTS if t not in webhook.event_types]


def covering(webhooks: Iterable[Webhook]) -> list[Webhook]:
    """Webhooks that deliver every event type we act on, wherever they point."""
    return [w for w in webhooks if not missing_events(w)]


def checked_url(url: str) -> str:
    """ConfigError unless `url` is an absolute http(s) URL (http only for a local test endpoint)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--url must be the full public URL of the ingest, e.g. https://rolesync.example.com{INGEST_PATH}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"Kinde delivers webhooks only to https:// endpoints (got {url!r})")
    return url.strip()


def is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
