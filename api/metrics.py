"""Prometheus metrics of one API app, in a registry of its own so apps and tests never collide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # `labels()` validates and locks on every call: each (route, status) child is looked up here instead.
    _children: dict[tuple[str, int], tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.requests = Counter("rolesync_api_requests", "Requests answered, by route and status",
                                ["route", "status"], registry=self.registry)  # fmt: skip
        self.seconds = Histogram(
            "rolesync_api_request_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

        self.guard_decisions = Counter("rolesync_guard_decisions", "Plan-selection decisions, by outcome",
                                       ["outcome"], registry=self.registry)  # fmt: skip
        self.guard_fallbacks = Counter("rolesync_guard_fallbacks",
                                       "Plan-selection answers given by [guard] on_error, by why and what it said",
                                       ["reason", "on_error"], registry=self.registry)  # fmt: skip

        self.auth_failures = Counter("rolesync_api_auth_failures",
                                     "Failed authentications (401), by what was wrong: api_key or workflow_secret",
                                     ["surface"], registry=self.registry)  # fmt: skip
        self.auth_throttled = Counter("rolesync_api_auth_throttled",
                                      "Requests refused 429 because their address failed to authenticate too often",
                                      ["surface"], registry=self.registry)  # fmt: skip

        self.shed = Counter("rolesync_api_shed", "Requests answered 503 at once: their budget of requests in flight "
                            "(reads or guard) was full", ["budget"], registry=self.registry)  # fmt: skip

    def guard_decision(self, outcome: str) -> None:
        self.guard_decisions.labels(outcome).inc()

    def guard_fallback(self, reason: str, on_error: str) -> None:
        self.guard_fallbacks.labels(reason, on_error).inc()

    def observe(self, route: str, status: int, seconds: float) -> None:
        found = self._children.get((route, status))
        if found is None:
            found = self._children[(route, status)] = (self.requests.labels(route, str(status)),
                                                       self.seconds.labels(route))  # fmt: skip
        found[0].inc()
        found[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
