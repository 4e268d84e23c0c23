"""Deliver captured webhooks to the ingest: a shuffled stream, each webhook `copies` times at once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx


async def _deliver(client: httpx.AsyncClient, url: str, hook: tuple[str, bytes], copies: int) -> list[int]:
    headers = {"Content-Type": "application/jwt", "webhook-id": hook[0]}
    answers = await asyncio.gather(*(_post(client, url, hook[1], headers) for _ in range(copies)))
    return list(answers)


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        return (await client.post(url, content=body, headers=headers)).status_code
    except httpx.HTTPError:
        return 0  # connection refused or reset: counted as "no answer"


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
    return asyncio.run(_replay(url, stream, copies, in_flight))
