"""Group commit: concurrent script calls share round trips, yet each gets exactly its own reply."""

from __future__ import annotations

import asyncio
import os
import time

import redis.asyncio
import redis.exceptions

from ingest.batching import ScriptBatcher

# Fails on purpose for ARGV[1] == "bad", so one call in a batch can fail alone.
ECHO = "if ARGV[1] == 'bad' then return redis.error_reply('ERR refused') end return ARGV[1]"


def run_calls(url: str, args: list[str]) -> list[object]:
    async def main() -> list[object]:
        client = redis.asyncio.Redis.from_url(url, decode_responses=True)
        batcher = ScriptBatcher(client, client.register_script(ECHO))
        try:
            calls = [batcher.call([], [a]) for a in args]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await batcher.aclose()
            await client.aclose()

    return asyncio.run(main())


def test_each_concurrent_call_gets_its_own_reply(redis_url: str) -> None:
    """200 calls in flight at once come back in order, one reply each."""
    args = [f"a{i}" for i in range(200)]
    assert run_calls(redis_url, args) == args


def test_a_failing_script_fails_only_its_own_call(redis_url: str) -> None:
    """An error reply for one call leaves the others in the same round trip untouched."""
    replies = run_calls(redis_url, ["x", "bad", "y"])
    assert replies[0] == "x"
    assert replies[2] == "y"
    assert isinstance(replies[1], redis.exceptions.ResponseError)


def test_an_unreachable_server_fails_every_call_in_the_batch() -> None:
    """No call is left waiting and none is reported as done when Redis cannot be reached."""
    replies = run_calls("redis://127.0.0.1:1/0", ["a", "b", "c"])
    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in replies), replies


def test_calls_made_while_a_flush_is_in_flight_are_sent_next(redis_url: str) -> None:
    """Waves of calls started during earlier flushes are all answered (none stranded in the queue)."""

    waves = 3

    async def main() -> list[object]:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        batcher = ScriptBatcher(client, client.register_script(ECHO))
        tasks = []
        for wave in range(waves):
            tasks += [asyncio.create_task(batcher.call([], [f"{wave}-{i}"])) for i in range(20)]
            await asyncio.sleep(0)
        try:
            return await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        finally:
            await batcher.aclose()
            await client.aclose()

    assert asyncio.run(main()) == [f"{w}-{i}" for w in range(waves) for i in range(20)]


def test_a_flushed_script_cache_is_reloaded_and_the_calls_still_answered(redis_url: str) -> None:
    """After SCRIPT FLUSH (or a restart) Redis answers NOSCRIPT; the batcher loads the script and resends."""

    async def main() -> list[object]:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        batcher = ScriptBatcher(client, client.register_script(ECHO))
        try:
            first = await batcher.call([], ["before"])
            await client.script_flush()
            again = await asyncio.gather(*(batcher.call([], [f"after{i}"]) for i in range(3)))
            return [first, *again]
        finally:
            await batcher.aclose()
            await client.aclose()

    assert asyncio.run(main()) == ["before", "after0", "after1", "after2"]


def test_a_connection_the_server_closed_is_replaced_on_the_next_call(redis_url: str) -> None:
    """A socket Redis dropped between batches (restart, idle timeout) costs no failed webhook."""

    async def main() -> list[object]:
        name = f"batching-test-{os.getpid()}-{time.monotonic_ns()}"
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True, client_name=name)
        batcher = ScriptBatcher(client, client.register_script(ECHO))
        try:
            first = await batcher.call([], ["before"])
            # only the batcher's own connection: the test server is shared with other tests' ingests (their
            # evalsha connections were killed too, and counted: [1, 1, 1] on a busy CI box)
            peers = await client.client_list()
            batchers = [peer["id"] for peer in peers if peer["name"] == name and peer["cmd"] == "evalsha"]
            killed = [await client.client_kill_filter(_id=peer) for peer in batchers]
            return [killed, first, await batcher.call([], ["after"])]
        finally:
            await batcher.aclose()
            await client.aclose()

    assert asyncio.run(main()) == [[1], "before", "after"]
