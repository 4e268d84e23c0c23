"""The long-lived pipe the model test drives, and what it needs between and after sequences.

One pipe (launch/pipe.py: Valkey, sandbox, ingest, worker launchers, with the entitlements table and
the app notifications on: chaos/model_sinks.py) serves every sequence of a run: starting processes
costs seconds, a sequence should cost about one. Between sequences the sandbox tenant is reset, our
Redis flushed, the table emptied and the captured notifications dropped. Quiescence means the sandbox
has delivered everything, no message (notifications included) is waiting, in flight, or delayed but
due soon (parked re-checks wait minutes; they are not waited for, as nothing would come of waiting),
and the table has every change.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import redis
from starlette.applications import Starlette

from api.app import create_app
from chaos.model_oracle import GrantGiven
from chaos.model_sinks import Sinks, model_sinks
from chaos.model_timing import TIMINGS
from chaos.suites import FAST_RECOVERY, suite_pipe
from common import keys
from common.entitlements.hand_grant_changes import HandGrantChanges
from common.entitlements.manual_grants import RedisHandGrantStore
from common.infra.deadletters import FORBIDDEN
from common.messages import NOTIFY_QUEUE, PASS_QUEUES, REBUILD_QUEUE
from common.settings import Settings
from launch.pipe import Pipe, running_pipe
from ops import customers, dlq
from ops.enqueue import converge_enqueuer, event_enqueuer
from ops.grants import open_changes, open_store
from ops.stores import Stores, open_stores
from sandbox.client import SandboxClient
from sandbox.tokens import ALL_SCOPES
from worker.customers.park import Enqueue
from worker.runtime.broker import build_broker
from worker.sweeps.reconcile import Fleet, Summary, sweep
from worker.sweeps.reconcile_schedule import build_fleet

# Past 5 billing events in 10 s, a customer with plans is routed bulk: random sequences take the bulk path
# too, and a regression burst (chaos/model_regressions.py) is bulk from its 6th event whenever its window began.
BULK_BURST = 5
# Seconds, not the production minute: a killed worker's lease and messages must come back within a sequence.
# Retries back off up to 2 s (not 30 min) so a healed Kinde is retried at once; the sandbox is unlimited
# unless a sequence throttles it, so the worker's own rate limit is not what is measured.
# Dramatiq's idle consumers poll Redis every 0.5-1 s (`dramatiq_worker_timeout`, 1000 ms): each hop of a sequence's
# work (webhook -> settle -> pass -> notification) waited up to that long in a queue. At 100 ms a sequence took 14 %
# less wall time (docs/reliability.md, "Throughput"); it changes when a message is fetched, nothing a pass does.
MODEL_ENV = {**FAST_RECOVERY, "KINDE_API_RPS": "200", "ROLESYNC_MAX_BACKOFF_MS": "2000",
             "ROLESYNC_SCOPE_PROBE_INTERVAL_S": "1", "ROLESYNC_BULK_BURST": str(BULK_BURST),
             "dramatiq_worker_timeout": "100"}  # fmt: skip
FORBIDDEN_WAIT_S = 60.0
QUIET_POLLS = 4  # consecutive idle polls, 50 ms apart: a worker between two steps of a pass is not idle for 200 ms
DUE_SOON_S = 30.0
API_KEY = secrets.token_urlsafe(32)  # the read API refuses weak keys; the oracle holds the only copy
API_SCOPES = "users+customers+grants:write"  # on-call's key: reads, and hand grants through /v1/grants
WORKERS, THREADS = 2, 4


class NotQuietError(AssertionError):
    """The pipe did not settle in time: itself a finding (a stuck retry, a lost lease)."""


@dataclass
class ModelPipe:
    pipe: Pipe
    settings: Settings
    stores: Stores
    enqueue: Enqueue
    fleet: Fleet
    sinks: Sinks
    checked: bool = False  # a teardown found the pipe quiet and checked it, and nothing was asked of it since

    @property
    def kinde(self) -> SandboxClient:
        return self.pipe.kinde

    @property
    def redis(self) -> redis.Redis:
        return self.stores.redis

    # --- quiescence ---
    def idle(self) -> bool:
        return not self.busy()

    def busy(self) -> str:
        """What the pipe is still doing ("" when quiet): a webhook to deliver, a message queued, in flight or
        delayed but due soon, a hand grant's target due soon, or a change the table has not got yet.

        An index rebuild (organization.deleted asks for one) queues passes; a notification is sent off the pass.
        One Redis round trip for the queues and one for the in-flight sets, as the run polls this all the time.
        """
        if self.kinde.pending_deliveries():
            return "a webhook to deliver"
        now, queues = time.time(), (*PASS_QUEUES, REBUILD_QUEUE, NOTIFY_QUEUE)
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(keys.queue_list(queue))
            for queue in queues:
                pipe.hvals(keys.delay_queue_messages(queue))
            pipe.zcount(keys.HAND_GRANTS_DUE, "-inf", now + DUE_SOON_S)
            pipe.zcard(keys.TABLE_PENDING)
            found = pipe.execute()
        queued, delayed, (grants_due, table_pending) = found[: len(queues)], found[len(queues) : -2], found[-2:]
        if any(queued):
            return "a message queued"
        if self._in_flight(queues):
            return "a message in flight"
        etas = [json.loads(raw)["options"].get("eta", 0) / 1000 - now for hvals in delayed for raw in hvals]
        if soon := [eta for eta in etas if eta < DUE_SOON_S]:
            return f"a delayed message due in {_bucket(min(soon))}"
        if grants_due:
            return "a hand grant's target due (changed, or ending soon)"
        return "a change the table has not got" if table_pending else ""

    def _in_flight(self, queues: tuple[str, ...]) -> int:
        """Messages fetched by a worker and not acked yet, over every broker's ack set of these queues."""
        suffixes = tuple(f".{queue}" for queue in queues)
        sets = [name for name in self.redis.scan_iter(match=f"{keys.DRAMATIQ_NAMESPACE}:__acks__.*", count=1000)
                if _text(name).endswith(suffixes)]  # fmt: skip
        if not sets:
            return 0
        with self.redis.pipeline(transaction=False) as pipe:
            for name in sets:
                pipe.scard(name)
            return sum(int(n) for n in pipe.execute())

    def wait_quiet(self, timeout_s: float = 60.0, *, why: str = "settle", polls: int = QUIET_POLLS) -> float:
        """Seconds it took to settle; NotQuietError after `timeout_s`. `why`: its kind in the run's timings;
        `polls`: consecutive idle polls that make it quiet."""
        started, quiet = time.monotonic(), 0
        while quiet < polls:
            if time.monotonic() - started > timeout_s:
                raise NotQuietError(f"the pipe did not settle within {timeout_s:.0f} s")
            polled = time.monotonic()
            reason = self.busy()
            TIMINGS.add("idle poll", time.monotonic() - polled)
            quiet = 0 if reason else quiet + 1
            time.sleep(0.05)
            TIMINGS.add(f"waiting on: {reason or 'quiet (counting polls)'}", time.monotonic() - polled)
        took = time.monotonic() - started
        TIMINGS.add(f"quiet: {why}", took)
        return took

    # --- between sequences ---
    def heal(self) -> None:
        """Kinde answers everything again and deliveries flow in order, once each."""
        self.kinde.clear_faults()
        self.kinde.set_scopes(list(ALL_SCOPES))
        self.kinde.set_rate_limit(0)
        self.normal_delivery()

    def normal_delivery(self) -> None:
        self.kinde.set_webhooks(url=self.pipe.webhook_url, variant="mix", shuffle=False, duplicate_rate=0.0,
                                drop_rate=0.0, delay_ms=0, paused=False, lose_rate=0.0)  # fmt: skip

    def reset(self) -> None:
        """Between sequences. After a teardown that found the pipe quiet and checked it, one idle poll shows
        nothing started since (the full quiet is for a sequence that broke off, whose work may still run)."""
        with TIMINGS.timed("reset: heal"):
            self.heal()
        self.wait_quiet(why="reset", polls=1 if self.checked else QUIET_POLLS)
        self.checked = False
        with TIMINGS.timed("reset: sandbox"):
            self.kinde.reset()
        with TIMINGS.timed("reset: wipe redis"):
            wipe_keeping_epoch(self.redis)
        with TIMINGS.timed("reset: sinks"):
            self.sinks.clear()

    # --- on-call's tools ---
    def link_by_hand(self, customer_id: str, user_id: str | None, org_code: str | None) -> None:
        """`rolesync customers link` (ops/customers.py) in this process: no interpreter start per step."""
        customers.link(self.stores, self.enqueue, converge_enqueuer(self.fleet.broker), customer_id, user_id, org_code)

    def wait_forbidden_replayed(self) -> None:
        """After the scope is granted again nothing is done by hand (docs/on-call.md, `kinde_forbidden`):
        the workers' probe replays the held events. Wait until none is held."""
        deadline = time.monotonic() + FORBIDDEN_WAIT_S
        with TIMINGS.timed("forbidden replayed"):
            self._wait_forbidden_replayed(deadline)

    def _wait_forbidden_replayed(self, deadline: float) -> None:
        while dlq.select(self.stores.dead_letters, dlq.Filters(reason=FORBIDDEN)):
            if time.monotonic() > deadline:
                raise NotQuietError("events held as kinde_forbidden were not replayed by the scope probe")
            time.sleep(0.25)

    def wait_delivered(self, timeout_s: float = 30.0) -> None:
        """Wait until the sandbox has delivered every webhook (each queued by the ingest, not yet handled)."""
        deadline = time.monotonic() + timeout_s
        while self.kinde.pending_deliveries():
            if time.monotonic() > deadline:
                raise NotQuietError(f"the sandbox did not deliver its webhooks within {timeout_s:.0f} s")
            time.sleep(0.02)

    def wait_held(self, timeout_s: float = 10.0) -> None:
        """Wait until some event or pass is held as `kinde_forbidden` (a scope withdrawn under it)."""
        deadline = time.monotonic() + timeout_s
        while not dlq.select(self.stores.dead_letters, dlq.Filters(reason=FORBIDDEN)):
            if time.monotonic() > deadline:
                raise NotQuietError(f"nothing was held as kinde_forbidden within {timeout_s:.0f} s")
            time.sleep(0.05)

    def reconcile(self) -> Summary:
        """`rolesync reconcile`: discover, a pass per customer on the fleet, watched to the end."""
        with TIMINGS.timed("reconcile"):
            return sweep(self.fleet, source="model", timeout_s=60.0)

    # --- hand grants: `rolesync grants add|remove` (ops/grants.py) in this process, or `/v1/grants` ---
    @cached_property
    def grant_changes(self) -> HandGrantChanges:
        return open_changes(self.settings)

    @cached_property
    def grant_store(self) -> RedisHandGrantStore:
        return open_store(self.settings)

    def granted(self) -> tuple[GrantGiven, ...]:
        """Every hand grant the store lists (`rolesync grants list --json`): the oracle's input beside the sandbox."""
        with TIMINGS.timed("oracle: grants listed"):
            return tuple(GrantGiven.of(g.to_dict()) for g in self.grant_store.listed())

    def api_grants(self, method: str, grant_id: str, body: dict[str, Any] | None = None, reason: str = "") -> int:
        """`PUT`/`DELETE /v1/grants/{id}` with a `grants:write` key, on the API app in this process: the status."""
        settings = Settings.from_env({**self.pipe.env, "ROLESYNC_API_KEYS": f"model:{API_KEY}:{API_SCOPES}"})
        return asyncio.run(_grant_call(create_app(settings), method, grant_id, body, reason))

    # --- the read API ---
    def read_api(self, user_ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """`GET /v1/users/{id}/entitlements` per user: (status, body). The API's own app (api/app.py) served
        in this process over our Redis: the answer `rolesync api` gives, without a process per run."""
        with TIMINGS.timed("oracle: read API"):
            settings = Settings.from_env({**self.pipe.env, "ROLESYNC_API_KEYS": f"model:{API_KEY}"})
            return asyncio.run(_read_api(create_app(settings), user_ids))

    def restart_worker(self, slot: int) -> None:
        """SIGKILL a worker launcher and start it again, as a supervisor restarts a crashed pod."""
        with TIMINGS.timed("restart worker"):
            self.pipe.kill_worker(slot)
            self.pipe.start_worker(slot)


async def _grant_call(app: Starlette, method: str, grant_id: str, body: dict[str, Any] | None, reason: str) -> int:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
            params = {"reason": reason} if reason else None
            found = await client.request(method, f"/v1/grants/{grant_id}", json=body, params=params)
    return found.status_code


async def _read_api(app: Starlette, user_ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
            answers = {u: await client.get(f"/v1/users/{u}/entitlements") for u in user_ids}
    return {u: (r.status_code, r.json()) for u, r in answers.items()}


@contextmanager
def model_pipe(log_dir: Path) -> Iterator[ModelPipe]:
    with (
        model_sinks() as sinks,
        running_pipe(log_dir, suite_pipe(workers=WORKERS, threads=THREADS, env={**MODEL_ENV, **sinks.env()})) as pipe,
    ):
        settings = Settings.from_env(pipe.env)
        stores = open_stores(settings)
        enqueue, fleet = event_enqueuer(build_broker(settings)), build_fleet(settings)
        model = ModelPipe(pipe, settings, stores, enqueue, fleet, sinks)
        model.normal_delivery()
        yield model


def _bucket(seconds: float) -> str:
    return next(label for bound, label in ((0.5, "< 0.5 s"), (1.0, "0.5-1 s"), (2.0, "1-2 s"), (5.0, "2-5 s"),
                                           (float("inf"), "5-30 s")) if seconds < bound)  # fmt: skip


def wipe_keeping_epoch(client: redis.Redis) -> None:
    """Empty the database between sequences but keep its epoch: a planned reset, not a loss for the running
    processes to heal (common/infra/data_epoch.py) behind the next sequence's back."""
    doomed = [key for key in client.scan_iter(count=1000) if _text(key) != keys.DATA_EPOCH]
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else key
