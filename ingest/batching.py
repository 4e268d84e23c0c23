"""Group commit: the scripts of concurrent requests go to Redis in one pipelined round trip.

A `redis.asyncio` round trip costs ~200 µs of event-loop CPU, more than verifying the webhook
(docs/benchmarks.md). Under load, requests that reach the enqueue while a flush is in flight are
sent together in the next one, so the per-request cost falls with concurrency while every request
still waits for its own script's reply before it answers. Atomicity is unchanged: each script is
still one atomic step; the pipeline only shares the network round trip (no MULTI).

The batches go over one connection of the batcher's own, not through `Pipeline`: redis-py's
pipeline asks `SCRIPT EXISTS` in an extra round trip before every execute, and a connection with a
socket timeout wraps each send in `asyncio.wait_for` (a Task per send on Python 3.11). So the
connection has no per-operation timeout; the whole batch gets one deadline instead, and `EVALSHA`
falls back to `SCRIPT LOAD` only when Redis answers NOSCRIPT (a restart or `SCRIPT FLUSH`).

With `min_replicas` (a Sentinel deployment), a batch is answered only once that many replicas
acknowledged its writes (`WAIT`): replication is asynchronous, and a failover promotes a replica
that may lack the last writes the old primary answered, so without it a 200 could be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

from ingest.resp import packed

Keys = list[str]
Args = list[str | int | bytes]
DEFAULT_TIMEOUT_S = 5.0  # the batch deadline when the client has no socket timeout of its own


class NotReplicatedError(redis.exceptions.RedisError):
    """The batch ran on the primary, but too few replicas have it yet: a failover now could lose it."""


@dataclass
class _Call:
    keys: Keys
    args: Args
    reply: asyncio.Future[Any]


class ScriptBatcher:
    def __init__(self, client: redis.asyncio.Redis, script: AsyncScript, *, min_replicas: int = 0) -> None:
        pool = client.connection_pool
        settings = dict(pool.connection_kwargs)
        self._deadline_s = settings.get("socket_timeout") or DEFAULT_TIMEOUT_S
        self._min_replicas = min_replicas
        self._wait_ms = int(self._deadline_s * 1000 / 2)  # half the batch deadline, so a timeout is a reply
        self._conn: redis.asyncio.connection.AbstractConnection = pool.connection_class(
            **{**settings, "socket_timeout": None}
        )
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

    async def aclose(self) -> None:
        await self._conn.disconnect()

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._exchange(batch)
        except Exception as exc:
            _settle(batch, [exc] * len(batch))
            return
        except BaseException:  # cancelled at shutdown: nobody is left to answer
            for call in batch:
                call.reply.cancel()
            raise
        _settle(batch, replies)

    async def _exchange(self, batch: list[_Call]) -> list[Any]:
        """One reply per call (an exception object for a call whose script failed)."""
        try:
            async with asyncio.timeout(self._deadline_s):
                replies = await self._evalsha(batch)
                if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
                    replies = await self._reloaded(batch, replies)
                await self._replicated()
                return replies
        except NotReplicatedError:
            raise  # every reply was read: the socket is fine, and keeping it keeps WAIT's offset for retries
        except BaseException as exc:
            await self._conn.disconnect(nowait=True)  # replies may be left unread: never reuse the socket
            if isinstance(exc, TimeoutError):
                raise redis.exceptions.TimeoutError(f"no reply from Redis within {self._deadline_s}s") from None
            raise

    async def _replicated(self) -> None:
        """Return once `min_replicas` replicas hold every write this connection made, else raise."""
        if not self._min_replicas:
            return
        (acked,) = await self._round_trip([("WAIT", self._min_replicas, self._wait_ms)])
        if isinstance(acked, BaseException) or int(acked) < self._min_replicas:
            raise NotReplicatedError(
                f"{acked} of {self._min_replicas} replica(s) acknowledged within {self._wait_ms} ms"
            )

    async def _reloaded(self, batch: list[_Call], replies: list[Any]) -> list[Any]:
        # NOSCRIPT means that script did not run, so sending it again cannot run it twice.
        await self._round_trip([("SCRIPT", "LOAD", self._script.script)])
        missed = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
        for i, reply in zip(missed, await self._evalsha([batch[i] for i in missed]), strict=True):
            replies[i] = reply
        return replies

    async def _evalsha(self, batch: list[_Call]) -> list[Any]:
        sha = self._script.sha
        commands = [("EVALSHA", sha, len(call.keys), *call.keys, *call.args) for call in batch]
        try:
            return await self._round_trip(commands)
        except redis.exceptions.ConnectionError:
            # Most often a socket Redis closed since the last batch (restart, idle timeout): reconnect once.
            # If the scripts did run before the link broke, running them again finds their events
            # already seen, which is still the right answer (200) for Kinde.
            await self._conn.disconnect(nowait=True)
            return await self._round_trip(commands)

    async def _round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if not self._conn.is_connected:
            # Through the connection's own connect(): a Sentinel-managed one asks the sentinels for the
            # primary there; send_packed_command's implicit connect would dial its default host instead.
            await self._conn.connect()  # type: ignore[no-untyped-call]
        await self._conn.send_packed_command(packed(commands, self._conn.encoder), check_health=False)
        return [await self._reply() for _ in commands]

    async def _reply(self) -> Any:
        try:
            return await self._conn.read_response()
        except redis.exceptions.ResponseError as exc:  # an error reply is read in full: the next is in order
            return exc


def _settle(batch: list[_Call], replies: list[Any]) -> None:
    for call, reply in zip(batch, replies, strict=True):
        if call.reply.done():  # the request was cancelled (client went away); its event may be queued
            continue
        if isinstance(reply, BaseException):
            call.reply.set_exception(reply)
        else:
            call.reply.set_result(reply)
