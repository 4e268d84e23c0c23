"""`python -m bench api --only generator`: the load generator against a server that costs nothing, alone.

A uvloop server in its own process answers every request on a connection with the same 2-byte JSON
body, so what limits the run is the generator (bench/http_load.py) and the box. If it achieves the
rate asked with its load processes well under a core, it is not what sets a read API run's figures;
its p99 here is the floor the box puts under any server's p99.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import uvloop

from bench.http_load import LoadResult, Plan, run_requests
from launch.processes import free_port

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


def run(rate: float, seconds: float, connections: int, processes: int) -> LoadResult:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        time.sleep(1.0)  # the server process imports little: it listens well within this
        request = f"GET /fixed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        plan = Plan(port, seconds, max(1, connections // processes), rate=rate / processes)
        return run_requests(plan, [request] * int(rate * seconds), processes=processes)
    finally:
        server.terminate()
        server.join(timeout=5)


def _serve(port: int) -> None:
    uvloop.run(_listen(port))


async def _listen(port: int) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", port)
    await server.serve_forever()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
