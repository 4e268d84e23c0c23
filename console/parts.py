"""What the console's pages read and act with, built once per API process."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import structlog
from dramatiq.brokers.redis import RedisBroker

from api.auth import Keys
from common.errors import ConfigError
from common.infra.durations import format_duration
from common.infra.failure_limit import FailureLimiter
from common.infra.redaction import masked_assignments
from common.plans.mapping import PlanMap, load_plans
from common.settings import Settings
from console.session import Sessions
from ops.stores import Stores, open_stores

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Parts:
    settings: Settings
    stores: Stores
    sessions: Sessions
    keys: Keys
    limiter: (
        FailureLimiter  # failed sign-ins per client address, as the API's bearer keys (common/infra/failure_limit.py)
    )
    templates: jinja2.Environment
    _broker: list[RedisBroker] = field(default_factory=list)

    def broker(self) -> RedisBroker:
        """The broker the actions send on (the worker's own), built at the first action."""
        if not self._broker:
            from worker.runtime.broker import build_broker

            self._broker.append(build_broker(self.settings))
        return self._broker[0]

    @functools.cached_property
    def plans(self) -> PlanMap | None:
        try:
            return load_plans(self.settings.plans_path)
        except ConfigError as exc:
            log.error("plans_unreadable", error=str(exc))
            return None


def templates() -> jinja2.Environment:
    """The console's pages: autoescaped, and an error for any name a template uses that is not given."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    env.filters["ago"] = ago
    env.filters["utc"] = utc
    return env


def build_parts(settings: Settings, stores: Stores | None = None) -> Parts:
    env = templates()
    env.filters["masked"] = masked_assignments  # free text from failures: no `password=…` shown
    limiter = FailureLimiter(settings.api_auth_failures, settings.api_auth_window_s)
    return Parts(settings, stores or open_stores(settings), Sessions(settings.api_keys, settings.console_session_s),
                 Keys(settings.api_keys), limiter, env)  # fmt: skip


def ago(at: float, now: float) -> str:
    return f"{format_duration(max(0.0, now - float(at)))} ago"


def utc(at: float) -> str:
    """A moment to come (a hand grant's end), as a UTC date and time."""
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M UTC")
