"""Suite 5: hostile-input fuzz on the running ingest over real HTTP (raw sockets), seeded.

Figures: inputs sent by kind, accepted (any 2xx; target 0), 5xx (target 0), answers, max latency,
RSS of the ingest process before and after, messages that reached the queue (target 0), and a
valid webhook still accepted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from chaos.figures import Result
from chaos.fuzz_inputs import Material, generate, nested
from chaos.suites import suite_pipe
from common import keys
from common.messages import EVENT_QUEUES
from launch.pipe import Pipe, running_pipe

NO_ANSWER_S = 3.0  # a request promising more body than it sends is answered by nobody: the server waits
# Every input comes from 127.0.0.1: with the per-address limit on bad signatures (ingest/signature_limit.py)
# the verifier would see 20 of them and the rest would be 429s. Off, so the fuzz reaches the verifier;
# tests/ingest/test_signature_limit.py covers the limit.
UNLIMITED = {"ROLESYNC_INGEST_SIGNATURE_FAILURES": "0"}


@dataclass
class Tally:
    kinds: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    max_latency_s: float = 0.0
    slowest: str = ""


def claims(n: int) -> dict[str, object]:
    return {"type": "customer.plan_assigned", "event_id": f"event_fuzz_{uuid.uuid4().hex}", "source": "api",
            "timestamp": datetime.now(UTC).isoformat(), "data": {"customer_id": f"customer_fuzz{n}"}}  # fmt: skip


def material(pipe: Pipe, port: int) -> Material:
    jwk = httpx.get(f"{pipe.sandbox_url}/.well-known/jwks.json").json()["keys"][0]
    public = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]
    valid = [pipe.kinde.sign(claims(n)) for n in range(20)]
    unknown = [pipe.kinde.sign(claims(n), kid=f"fuzz:{n}") for n in range(20)]
    deep = [
        pipe.kinde.sign_raw(nested(depth, as_object=n % 2 == 0)) for n, depth in enumerate((2000, 5000, 20000, 5000))
    ]
    return Material(valid, unknown, pem, str(jwk["kid"]), port, deep)


async def send(port: int, kind: str, raw: bytes, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(64), NO_ANSWER_S)
        writer.close()
    except TimeoutError:
        tally.answers[f"{kind}: no answer in {NO_ANSWER_S:g}s"] += 1
        writer.close()
        return
    except OSError as exc:
        head = f"connection {type(exc).__name__}".encode()
    _count(tally, kind, head, time.perf_counter() - started)


def _count(tally: Tally, kind: str, head: bytes, latency: float) -> None:
    status = head[9:12].decode(errors="replace") if head.startswith(b"HTTP/1.") else head[:40].decode(errors="replace")
    tally.answers[status or "closed without answer"] += 1
    if latency > tally.max_latency_s:
        tally.max_latency_s, tally.slowest = latency, kind


async def fuzz(port: int, seed: int, count: int, m: Material, concurrency: int = 16) -> Tally:
    tally, slots = Tally(), asyncio.Semaphore(concurrency)

    async def one(kind: str, raw: bytes) -> None:
        async with slots:
            tally.kinds[kind] += 1
            await send(port, kind, raw, tally)

    await asyncio.gather(*(one(kind, raw) for kind, raw in generate(seed, count, m)))
    return tally


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(log_dir: Path, *, seed: int, command: str, inputs: int = 10000) -> Result:
    with running_pipe(log_dir, suite_pipe(workers=0, env=UNLIMITED)) as pipe:
        port = int(pipe.ingest_url.rsplit(":", 1)[1])
        m = material(pipe, port)
        ingest_pid = pipe.server_pid("ingest")
        asyncio.run(fuzz(port, seed + 1, 200, m))  # warm-up: caches, JWKS, allocator high-water mark
        before = rss_kb(ingest_pid)
        started = time.monotonic()
        tally = asyncio.run(fuzz(port, seed, inputs, m))
        seconds = time.monotonic() - started
        after = rss_kb(ingest_pid)
        queued = sum(int(pipe.r().hlen(keys.queue_messages(q))) for q in EVENT_QUEUES)
        fresh = httpx.post(pipe.webhook_url, content=pipe.kinde.sign(claims(-1)),
                           headers={"Content-Type": "application/jwt", "webhook-id": "after-fuzz"})  # fmt: skip
    return _result(tally, inputs, seconds, before, after, queued, fresh.status_code, seed, command)


def _result(tally: Tally, inputs: int, seconds: float, before: int, after: int, queued: int, fresh: int, seed: int,
            command: str) -> Result:  # fmt: skip
    accepted = sum(n for status, n in tally.answers.items() if status.startswith("2"))
    errors = sum(n for status, n in tally.answers.items() if status.startswith("5"))
    result = Result("fuzz", "Hostile-input fuzz", command)
    result.figures.update({
        "inputs": inputs, "seed": seed, "seconds": round(seconds, 1), "inputs by kind": dict(tally.kinds),
        "answers": dict(tally.answers.most_common()), "accepted (2xx)": accepted, "5xx": errors,
        "max latency ms (answered)": round(tally.max_latency_s * 1000, 1), "slowest kind": tally.slowest,
        "ingest RSS before / after (MB)": f"{before / 1024:.1f} / {after / 1024:.1f}",
        "RSS growth (MB)": round((after - before) / 1024, 1), "messages queued": queued,
        "valid webhook after the fuzz": fresh,
    })  # fmt: skip
    result.target("accepted == 0", accepted == 0 and queued == 0)
    result.target("5xx == 0", errors == 0)
    result.target("ingest still accepts a valid webhook", fresh == 200)
    result.target("RSS growth < 50 MB", after - before < 50 * 1024)
    return result
