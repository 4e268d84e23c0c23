"""The system at a glance for `rolesync status`, and whether something needs a human.

Read-only, from Redis alone: queues (ops/queues.py), dead letters by reason and the events waiting
for a Kinde scope (worker/sweeps/scope_probe.py), worker heartbeats
(worker/runtime/heartbeat.py), the last reconcile (worker/sweeps/reconcile.py), 429s logged by the shared Kinde
gate (worker/kinde/ratelimit.py), the shared M2M token's remaining lifetime (never the token) and the
plans.toml mapping: the one workers run, the one a sweep applied, a change held or being swept
(ops/mapping.py), and with ROLESYNC_POSTGRES_URL how far the entitlements table lags
(common/table/table_outbox.py).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from common import keys
from common.entitlements.manual_grants import RedisHandGrantStore
from common.infra import data_loss, layout
from common.infra.connections import redis_errors
from common.infra.data_loss import DataLoss
from common.infra.deadletters import FORBIDDEN, DeadLetterStore
from common.infra.insecure_settings import insecure_warnings
from common.infra.layout import LAYOUT
from common.infra.version import release
from common.messages import PASS_QUEUES
from common.plans.fleet_mapping import MappingStore
from common.settings import Settings
from common.table.table_outbox import Lag, TableOutbox
from ops import mapping
from ops.mapping import MappingState
from ops.queues import QueueStats, queue_stats
from ops.stores import Stores
from worker.runtime.heartbeat import worker_fresh_s
from worker.sweeps import reconcile

RATE_WINDOW_S = 300
WEEK_S = 7 * 86400
SHADOW_WARNING = ("shadow mode (ROLESYNC_MODE=shadow): no role is written to Kinde; see `rolesync shadow report`, "
                  "then go live by setting ROLESYNC_MODE=live")  # fmt: skip
TABLE_LAG_ALERT_S = 60  # the drain runs every second: a change older than this means Postgres is not answering
EVERYTHING = 1_000_000_000


@dataclass(frozen=True)
class Worker:
    id: str  # host:pid
    last_beat_age_s: float
    mode: str = "live"  # ROLESYNC_MODE it runs: live, or shadow (writes no role)


@dataclass
class Status:
    queues: list[QueueStats]
    dead_letters: dict[str, int]
    workers: list[Worker]
    last_reconcile: dict[str, Any] | None
    kinde_429s_5m: int
    token_expires_in_s: float | None
    waiting_on_scopes: dict[str, int] = field(default_factory=dict)  # scope -> events parked as kinde_forbidden
    mapping: MappingState | None = None  # the plans.toml mapping the fleet runs and the one a sweep applied
    entitlements_table: Lag | None = None  # with ROLESYNC_POSTGRES_URL: how far the Postgres table lags
    mode: str = "unknown"  # the workers' ROLESYNC_MODE: live, shadow, mixed (unknown: no worker alive)
    hand_grants: int = 0  # managed roles given by hand (common/entitlements/manual_grants.py)
    hand_grants_ending_7d: int = 0  # of them, ending within the week (`rolesync grants list --expiring-within 7d`)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth a look, not a page: status still exits 0
    data_loss: DataLoss | None = None  # the last time Redis lost its data, and its healing (common/infra/data_loss.py)
    version: str = field(default_factory=release)  # the release this `rolesync` is (common/infra/version.py)
    layout: int | None = None  # the Redis layout version the data was written with; None: not stamped yet
    layout_release: int = LAYOUT  # the layout this release writes (common/infra/layout.py)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        if self.mapping:
            found["mapping"]["summary"] = self.mapping.summary
        return found


def alive_workers(client: redis.Redis, fresh_s: float, now: float) -> list[Worker]:
    with redis_errors("reading worker heartbeats"):
        beats: list[tuple[str, float]] = client.zrangebyscore(  # type: ignore[assignment]
            keys.WORKER_HEARTBEATS, now - fresh_s, "+inf", withscores=True
        )
        modes = client.hmget(keys.WORKER_MODES, [str(who) for who, _ in beats]) if beats else []
    return [Worker(str(who), round(now - float(at), 1), str(mode or "live"))
            for (who, at), mode in zip(beats, modes, strict=True)]  # fmt: skip


def fleet_mode(workers: list[Worker]) -> str:
    """live, shadow, or mixed (some workers write roles, others do not: a deploy half done, or a mistake)."""
    modes = {w.mode for w in workers}
    return modes.pop() if len(modes) == 1 else ("mixed" if modes else "unknown")


def kinde_429s(client: redis.Redis, now: float) -> int:
    with redis_errors("reading the 429 log"):
        return int(client.zcount(keys.KINDE_429_LOG, now - RATE_WINDOW_S, "+inf"))


def token_expires_in_s(client: redis.Redis) -> float | None:
    with redis_errors("reading the token lifetime"):
        left_ms = int(client.pttl(keys.KINDE_TOKEN))
    return left_ms / 1000 if left_ms >= 0 else None


def waiting_on_scopes(store: DeadLetterStore) -> dict[str, int]:
    waiting = store.list(reason=FORBIDDEN, limit=EVERYTHING)
    return dict(sorted(Counter(r.scope or "an unnamed scope" for r in waiting).items()))


def problems(status: Status) -> list[str]:
    """Sentences for what needs a human; empty when all is well."""
    found = [
        f"{count} event(s) wait for the Kinde scope {scope}: grant it to the M2M app; they replay by themselves"
        for scope, count in status.waiting_on_scopes.items()
    ]
    waiting = sum(status.dead_letters.values())
    if waiting:
        found.append(f"{waiting} dead letter(s) waiting: see `rolesync dlq list` and docs/on-call.md")
    if not status.workers:
        found.append("no worker alive: start `rolesync worker` (see docs/on-call.md, Scaling)")
    if status.mode == "mixed":
        found.append("workers run different ROLESYNC_MODEs: some write roles, some only record (shadow); make "
                     "them all live or all shadow")  # fmt: skip
    return found + (status.mapping.problems() if status.mapping else []) + table_problems(status.entitlements_table)


def data_loss_warnings(found: DataLoss | None) -> list[str]:
    """A loss being healed is worth a look, not a page: the fleet heals it by itself."""
    if found is None or not found.healing:
        return []
    return [f"Redis lost its data ({found.state} since {time.strftime('%H:%M:%S', time.gmtime(found.noticed_at))} "
            "UTC): the fleet rebuilds the customer index and reconciles everyone from Kinde by itself; what Kinde "
            "does not hold (payment standing, usage, hand grants, history) is gone: docs/reliability.md"]  # fmt: skip


def table_problems(lag: Lag | None) -> list[str]:
    if lag is None or lag.oldest_s is None or lag.oldest_s < TABLE_LAG_ALERT_S:
        return []
    return [f"the Postgres entitlements table lags: {lag.pending} target(s), the oldest for {lag.oldest_s:.0f} s; "
            "check Postgres (`rolesync doctor`): the worker catches up by itself once it answers"]  # fmt: skip


def gather(stores: Stores, settings: Settings, now: float | None = None) -> Status:
    now = time.time() if now is None else now
    status = Status(
        queues=[queue_stats(stores.redis, q, now) for q in PASS_QUEUES],
        dead_letters=dict(sorted(stores.dead_letters.count_by_reason().items())),
        workers=alive_workers(stores.redis, worker_fresh_s(settings), now),
        last_reconcile=reconcile.last(stores.redis),
        kinde_429s_5m=kinde_429s(stores.redis, now),
        token_expires_in_s=token_expires_in_s(stores.redis),
        waiting_on_scopes=waiting_on_scopes(stores.dead_letters),
        mapping=mapping.state(MappingStore(stores.redis), worker_fresh_s(settings)),
        entitlements_table=TableOutbox(stores.redis).lag(now) if settings.postgres_url else None,
        data_loss=data_loss.last(stores.redis),
        layout=layout.stored(stores.redis),
    )
    status.mode = fleet_mode(status.workers)
    status.hand_grants, status.hand_grants_ending_7d = RedisHandGrantStore(stores.redis).counts(now + WEEK_S)
    status.problems = problems(status)
    status.warnings = insecure_warnings(settings) + data_loss_warnings(status.data_loss)
    if status.mode == "shadow":
        status.warnings.append(SHADOW_WARNING)
    return status


def this_host_alive(stores: Stores, settings: Settings, now: float | None = None) -> bool:
    """For a container healthcheck: a worker process on this host beat lately."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    return any(w.id.rsplit(":", 1)[0] == host for w in alive_workers(stores.redis, worker_fresh_s(settings), now))
