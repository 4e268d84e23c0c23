"""Injected faults and the rate limit, as an ASGI middleware in front of the Management API.

Rules are keyed by a pattern matched (fnmatch) against `"METHOD /path"`, e.g. `"*"` (global),
`"GET /api/v1/billing/*"` or `"POST /api/v1/organizations/*/roles"`; the most specific (longest)
matching pattern wins. A connection reset starts a response and drops the connection mid-body, so
the client sees a transport error, not an HTTP status. `error_429` answers 429 with `RateLimit-Reset:
reset_s` at random, as Kinde does when another client of the tenant spent the shared limit. Every
injected answer carries `X-Sandbox-Fault: <name>`, so the call log can tell it from the bucket's 429s.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.problems import error_body
from sandbox.ratelimit import TokenBucket

log = structlog.get_logger("sandbox.faults")
GUARDED_PREFIXES = ("/api/v1", "/oauth2/token")
ERROR_CODES = {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}
FAULT_HEADER = "X-Sandbox-Fault"


@dataclass(frozen=True)
class FaultRule:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    reset_s: float = 1.0  # the injected 429's RateLimit-Reset, whole seconds
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 30.0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        """Build from JSON/TOML; ValueError names the first bad field."""
        known = {f.name for f in fields(cls)}
        for name, value in raw.items():
            if name not in known:
                raise ValueError(f"unknown fault setting {name!r} (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"fault setting {name!r} must be a number >= 0")
        return cls(**{name: float(value) for name, value in raw.items()})


@dataclass
class FaultPlan:
    rules: dict[str, FaultRule] = field(default_factory=dict)
    bucket: TokenBucket = field(default_factory=TokenBucket)
    rng: random.Random = field(default_factory=random.Random)

    def rule_for(self, method: str, path: str) -> FaultRule | None:
        target = f"{method} {path}"
        matching = [p for p in self.rules if fnmatchcase(target, p) or fnmatchcase(path, p)]
        return self.rules[max(matching, key=len)] if matching else None

    def pick_failure(self, rule: FaultRule) -> str | None:
        """One of "429", "500", "502", "503", "reset", "hang" by their rates, or None."""
        roll = self.rng.random()
        for name, rate in (("429", rule.error_429), ("500", rule.error_500), ("502", rule.error_502),
                           ("503", rule.error_503), ("reset", rule.reset_rate), ("hang", rule.hang_rate)):  # fmt: skip
            if roll < rate:
                return name
            roll -= rate
        return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": raw})


async def _reset(send: Send) -> None:
    # Promise a body and stop short: uvicorn then closes the socket under the client.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


class Faults:
    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        rule = self.plan.rule_for(scope["method"], scope["path"])
        if rule is not None and await self._misbehave(rule, scope, send):
            return
        if scope["path"].startswith("/api/v1") and (reset_s := self.plan.bucket.take()) is not None:
            body = error_body("TOO_MANY_REQUESTS", "Request was throttled")
            await _send_json(send, 429, body, {"RateLimit-Reset": str(reset_s)})
            return
        await self.app(scope, receive, send)

    async def _misbehave(self, rule: FaultRule, scope: Scope, send: Send) -> bool:
        """Apply latency and maybe one failure; True when the failure already answered the request."""
        delay_ms = rule.latency_ms + self.plan.rng.uniform(0, rule.jitter_ms)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        failure = self.plan.pick_failure(rule)
        if failure is None:
            return False
        log.info("fault_injected", fault=failure, method=scope["method"], path=scope["path"])
        if failure == "hang":
            await asyncio.sleep(rule.hang_s)
            return False
        if failure == "reset":
            await _reset(send)
            return True
        status = int(failure)
        headers = {FAULT_HEADER: failure}
        if status == 429:
            headers["RateLimit-Reset"] = str(math.ceil(rule.reset_s))
        await _send_json(send, status, error_body(ERROR_CODES[status], "Injected fault"), headers)
        return True
