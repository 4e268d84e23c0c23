"""The ingest's part in noticing a lost Redis (common/infra/data_epoch.py): a task that checks the epoch every few
seconds, logs `redis_data_lost` and notes the loss for the workers to heal (worker/sweeps/data_heal.py).

The ingest itself changes nothing about a loss: it goes on accepting webhooks (a 503 is for an unreachable
Redis only), and `/readyz` says `redis_data: lost, healing` until a worker has healed it.
"""

from __future__ import annotations

import asyncio
import socket
import time

import redis.asyncio
import structlog

from common.errors import ServiceError
from common.infra import data_loss
from common.infra.data_epoch import AsyncEpochWatch

log = structlog.get_logger(__name__)
CHECK_S = 2.0


async def check_once(watch: AsyncEpochWatch, client: redis.asyncio.Redis) -> None:
    if await watch.check() == "lost" and watch.seen is not None:
        log.error("redis_data_lost", epoch=watch.seen.id, hint=data_loss.HINT)
        await data_loss.note_async(client, watch.seen.id, time.time(), f"ingest@{socket.gethostname()}")


async def keep_watching(client: redis.asyncio.Redis, every_s: float = CHECK_S) -> None:
    watch = AsyncEpochWatch(client)
    while True:
        try:
            await check_once(watch, client)
        except ServiceError as exc:  # Redis unreachable: /readyz and the webhooks' 503s say so
            log.warning("redis_data_check_failed", reason=exc.reason)
        await asyncio.sleep(every_s)
