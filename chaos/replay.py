"""Deliver captured webhooks to the ingest: a shuffled stream, each webhook `copies` times at once.

A POST that gets no HTTP answer at all (the connection refused, reset or closed before a status line) is
sent once more after a short pause, as Kinde retries a delivery it got no answer to; each such retry is
counted by the error's name in the caller's `retried`, so a report shows it. A second miss counts as 0.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx

RETRY_PAUSE_S = 0.5


async def _deliver(client: httpx.AsyncClient, url: str, hook: tuple[str, bytes], copies: int,
                   retried: Counter[str]) -> list[int]:  # fmt: skip
    headers = {"Content-Type": "application/jwt", "webhook-id": hook[0]}
    answers = await asyncio.gather(*(_post(client, url, hook[1], headers, retried) for _ in range(copies)))
    return list(answers)


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                retried: Counter[str]) -> int:  # fmt: skip
    for attempt in range(2):
        try:
            return (await client.post(url, content=body, headers=headers)).status_code
        except httpx.TransportError as error:
            if attempt == 0:
                retried[type(error).__name__] += 1
                await asyncio.sleep(RETRY_PAUSE_S)
    return 0  # no answer twice: counted as "no answer"


async def _replay(url: str, hooks: list[tuple[str, bytes]], copies: int, in_flight: int,
                  retried: Counter[str]) -> Counter[int]:  # fmt: skip
    answers: Counter[int] = Counter()
    slots = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight * copies)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(hook: tuple[str, bytes]) -> None:
            async with slots:
                answers.update(await _deliver(client, url, hook, copies, retried))

        await asyncio.gather(*(one(hook) for hook in hooks))
    return answers


def replay(url: str, hooks: list[tuple[str, bytes]], *, seed: int, copies: int = 3, in_flight: int = 8,
           retried: Counter[str] | None = None) -> Counter[int]:  # fmt: skip
    """Shuffle `hooks` with `seed` and POST each `copies` times concurrently; answers by status (0 = none).

    POSTs that got no answer and were sent again are counted by error name into `retried`.
    """
    stream = list(hooks)
    random.Random(seed).shuffle(stream)
    return asyncio.run(_replay(url, stream, copies, in_flight, Counter() if retried is None else retried))
