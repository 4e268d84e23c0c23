"""Prometheus metrics of one ingest app, in a registry of its own so apps and tests never collide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

UNVERIFIED_TYPE = "unverified"  # an unverified body's type is never trusted as a label value


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # `labels()` validates and locks on every call; a webhook's (outcome, type) child is looked up here instead.
    # It holds no series Prometheus does not hold already: types are verified ones, a small fixed set.
    _webhook_children: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.webhooks = Counter(
            "rolesync_ingest_webhooks",
            "Webhooks answered, by outcome and event type",
            ["outcome", "type"],
            registry=self.registry,
        )
        self.verification_failures = Counter(
            "rolesync_ingest_verification_failures", "Webhooks refused, by reason", ["reason"], registry=self.registry
        )
        self.enqueue_seconds = Histogram(
            "rolesync_ingest_enqueue_seconds",
            "Time of the atomic dedupe+enqueue Redis call",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.jwks_refreshes = Counter(
            "rolesync_ingest_jwks_refreshes", "JWKS fetches, by result", ["result"], registry=self.registry
        )

    def count_webhook(self, outcome: str, event_type: str) -> None:
        child = self._webhook_children.get((outcome, event_type))
        if child is None:
            child = self._webhook_children[(outcome, event_type)] = self.webhooks.labels(outcome, event_type)
        child.inc()

    def count_jwks_refresh(self, result: str) -> None:
        self.jwks_refreshes.labels(result=result).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
