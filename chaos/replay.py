"""Deliver captured webhooks to the ingest: a shuffled stream, each webhook `copies` times at once.

A POST that gets no HTTP answer at all (the connection refused, reset or closed before a status line) is
sent once more after a short pause, as Kinde retries a delivery it got no answer to; each such retry is
counted under `NO_ANSWER_RETRIED` with the error's name, so a report shows it. A second miss counts as 0.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx


async def _deliver(client: httpx.AsyncClient, url: str, hook: tuple[str, bytes], copies: int) -> list[int]:
    headers = {"Content-Type": "application/jwt", "webhook-id": hook[0]}
    answers = await asyncio.gather(*(_post(client, url, hook[1], headers) for _ in range(copies)))
    return list(answers)


NO_ANSWER_RETRIED = "no answer, sent again"
RETRY_PAUSE_S = 0.5
_retried: Counter[str] = Counter()


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> int:
    for attempt in range(2):
        try:
            return (await client.post(url, content=body, headers=headers)).status_code
        except httpx.TransportError as error:
            if attempt == 0:
                _retried[type(error).__name__] += 1
                await asyncio.sleep(RETRY_PAUSE_S)
    return 0  # no answer twice: counted as "no answer"


async def _replay(url: str, hooks: list[tuple[str, bytes]], copies: int, in_flight: int) -> Counter[int]:
    answers: Counter[int] = Counter()
    slots = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight * copies)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(hook: tuple[str, bytes]) -> None:
            async with slots:
                answers.update(await _deliver(client, url, hook, copies))

        await asyncio.gather(*(one(hook) for hook in hooks))
    return answers


def replay(url: str, hooks: list[tuple[str, bytes]], *, seed: int, copies: int = 3, in_flight: int = 8) -> Counter[int]:
    """Shuffle `hooks` with `seed` and POST each `copies` times concurrently; answers by status (0 = none)."""
    stream = list(hooks)
    random.Random(seed).shuffle(stream)
    _retried.clear()
    return asyncio.run(_replay(url, stream, copies, in_flight))


def retried() -> dict[str, int]:
    """The last replay's POSTs that got no answer and were sent again, by error name."""
    return dict(_retried)
