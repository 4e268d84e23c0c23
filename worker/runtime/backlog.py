"""The fleet's real backlog, exported as a gauge so an autoscaler scales on the work that waits.

Dramatiq's ready list (`dramatiq:<queue>`) is only part of it: every fresh event first waits its
settle delay in `<queue>.DQ`, retries and lease waits sit there too, and what workers fetched or
prefetched, or took out of the delay queue into memory, sits in their ack sets. A scaler reading the
list length sees an empty queue while all of that waits, so this counts ready + delayed + in flight
per queue (docs/deploy.md says why this signal, and the alternatives).

The worker's metrics process (worker/entrypoints/metrics_server.py) reads it on every scrape; each worker pod
reports the same fleet-wide figure, so a query takes the max across pods, never the sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from prometheus_client.core import GaugeMetricFamily

from common import keys
from common.messages import LIVE_QUEUES

log = structlog.get_logger(__name__)

BACKLOG_QUEUES = LIVE_QUEUES
METRIC = "rolesync_queue_backlog_messages"
HELP = "Messages waiting to run, by queue and where they wait: ready, delayed, in flight"


@dataclass(frozen=True)
class Backlog:
    queue: str
    ready: int
    delayed: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.ready + self.delayed + self.in_flight


def read_backlog(client: redis.Redis, queue: str) -> Backlog:
    """One queue's messages waiting to run, by where they wait (raises redis.RedisError)."""
    ready = int(client.llen(keys.queue_list(queue)))
    delayed = int(client.llen(keys.delay_queue_list(queue))) + _acked(client, f"{queue}.DQ")
    return Backlog(queue, ready=ready, delayed=delayed, in_flight=_acked(client, queue))


def _acked(client: redis.Redis, queue: str) -> int:
    sets = client.scan_iter(match=keys.ack_sets_pattern(queue), count=500)
    return sum(int(client.scard(name)) for name in sets)


class BacklogCollector:
    """A prometheus-client collector: `rolesync_queue_backlog_messages{queue, state}` read at scrape time."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client

    def collect(self) -> Iterator[Any]:
        try:
            found = [read_backlog(self._client(), queue) for queue in BACKLOG_QUEUES]
        except redis.RedisError as exc:
            # No series rather than a zero: a zero would scale the fleet down during a Redis outage;
            # an absent series makes the autoscaler fall back to its fixed replica count.
            log.warning("queue_backlog_unread", error=type(exc).__name__)
            return
        gauge = GaugeMetricFamily(METRIC, HELP, labels=["queue", "state"])
        for backlog in found:
            gauge.add_metric([backlog.queue, "ready"], backlog.ready)
            gauge.add_metric([backlog.queue, "delayed"], backlog.delayed)
            gauge.add_metric([backlog.queue, "in_flight"], backlog.in_flight)
        yield gauge
