"""Group commit: the scripts of concurrent requests go to Redis in one pipelined round trip.

A `redis.asyncio` round trip costs ~200 µs of event-loop CPU, more than verifying the webhook
(docs/benchmarks.md). Under load, requests that reach the enqueue while a flush is in flight are
sent together in the next one, so the per-request cost falls with concurrency while every request
still waits for its own script's reply before it answers. Atomicity is unchanged: each script is
still one atomic step; the pipeline only shares the network round trip (no MULTI).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.commands.core import AsyncScript

Keys = list[str]
Args = list[str | int | bytes]


@dataclass
class _Call:
    keys: Keys
    args: Args
    reply: asyncio.Future[Any]


class ScriptBatcher:
    def __init__(self, client: redis.asyncio.Redis, script: AsyncScript) -> None:
        self._client = client
        self._script = script
        self._pending: list[_Call] = []
        self._flushing = False

    async def call(self, keys: Keys, args: Args) -> Any:
        """The script's reply for these keys/args; raises what Redis raised for this call or its batch."""
        call = _Call(keys, args, asyncio.get_running_loop().create_future())
        self._pending.append(call)
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())  # noqa: RUF006 - it always settles every call it takes
        return await call.reply

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[_Call]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for call in batch:
                await self._script(keys=call.keys, args=call.args, client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            _settle(batch, [exc] * len(batch))
            return
        except BaseException:  # cancelled at shutdown: nobody is left to answer
            for call in batch:
                call.reply.cancel()
            raise
        _settle(batch, replies)


def _settle(batch: list[_Call], replies: list[Any]) -> None:
    for call, reply in zip(batch, replies, strict=True):
        if call.reply.done():  # the request was cancelled (client went away); its event may be queued
            continue
        if isinstance(reply, BaseException):
            call.reply.set_exception(reply)
        else:
            call.reply.set_result(reply)
