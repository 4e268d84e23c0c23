"""A keep-alive HTTP/1.1 load generator in separate processes (never the app's own event loop).

Closed loop (`rate=None`): each connection sends the next request as soon as the previous answer
arrives, measuring throughput. Open loop (`rate`): requests are scheduled at a fixed total rate
and latency is counted from the scheduled time, so a stalled server is not hidden by the client
waiting (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    busy: list[float] = field(default_factory=list)  # each load process's CPU time / its elapsed time

    def merge(self, other: LoadResult) -> None:
        self.latencies_s.extend(other.latencies_s)
        self.answers.update(other.answers)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.busy.extend(other.busy)

    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else float("nan")


@dataclass(frozen=True)
class Plan:
    port: int
    duration_s: float
    connections: int
    rate: float | None = None  # requests/s of THIS process, open loop


def request_bytes(port: int, token: str) -> bytes:
    body = token.encode()
    head = (
        f"POST /webhooks/kinde HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/jwt\r\n"
        f"webhook-id: bench\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> str:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    body = await reader.readexactly(length)
    status = head[9:12].decode()
    return f"{status} {body.decode(errors='replace')}"


async def _connection(plan: Plan, requests: list[bytes], slot: int, result: LoadResult, start: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
    interval = plan.connections / plan.rate if plan.rate else 0.0
    sent, stop = 0, start + plan.duration_s
    while (now := time.perf_counter()) < stop and sent * plan.connections + slot < len(requests):
        scheduled = start + interval * sent + interval * slot / plan.connections if plan.rate else now
        if scheduled > now:
            await asyncio.sleep(scheduled - now)
        answer = await _exchange(reader, writer, requests[sent * plan.connections + slot])
        result.latencies_s.append(time.perf_counter() - scheduled)
        result.answers[answer] += 1
        sent += 1
    writer.close()


async def _process(plan: Plan, tokens: list[str]) -> LoadResult:
    return await _send_all(plan, [request_bytes(plan.port, token) for token in tokens])


async def _send_all(plan: Plan, requests: list[bytes]) -> LoadResult:
    result, start, cpu = LoadResult(), time.perf_counter(), time.process_time()
    await asyncio.gather(*(_connection(plan, requests, slot, result, start) for slot in range(plan.connections)))
    result.elapsed_s = time.perf_counter() - start
    result.busy.append((time.process_time() - cpu) / result.elapsed_s)  # near 1.0: this process was the limit
    return result


def _run_process(args: tuple[Plan, list[str]]) -> LoadResult:
    return asyncio.run(_process(*args))


def _run_raw(args: tuple[Plan, list[bytes]]) -> LoadResult:
    return asyncio.run(_send_all(*args))


def run_requests(plan: Plan, requests: list[bytes], *, processes: int) -> LoadResult:
    """Send ready-made HTTP/1.1 requests (any method) from `processes` load processes, each its own share."""
    total = LoadResult()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for part in pool.map(_run_raw, [(plan, requests[n::processes]) for n in range(processes)]):
            total.merge(part)
    return total


def run_load(plan: Plan, tokens: list[str], *, processes: int) -> LoadResult:
    """Drive the server with `processes` load processes, each taking its own share of `tokens`."""
    shares = [(plan, tokens[n::processes]) for n in range(processes)]
    total = LoadResult()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for part in pool.map(_run_process, shares):
            total.merge(part)
    return total
