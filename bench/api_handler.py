"""`python -m bench api_handler`: the read API's cost per request in process, without HTTP or a load generator.

The app `rolesync api` serves (api/app.py create_app: middleware, routing, auth, the reader's one script
call to an embedded Valkey, the view, the ETag) is called as an ASGI app on uvloop, one request at a
time, over bench/api.py's seeded users and request mix; Reported as
CPU microseconds of this process per request (Valkey's own time is not in it), the best of `--rounds`,
so a busy box inflates it less than a wall-clock figure. Measures what a change to the handler saves,
not latency: that is `python -m bench api`.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from api import views
from api.app import create_app, tagged
from api.reader import RedisReader
from bench.api import KEY, seed
from common import keys
from common.infra.embedded_redis import EmbeddedRedis
from common.settings import Settings
from launch.processes import free_port

PATHS: dict[str, Callable[[int], str]] = {
    "user": lambda n: f"/v1/users/kp_{n}/entitlements",
    "feature": lambda n: f"/v1/users/kp_{n}/entitlements/seats",
    "customer": lambda n: f"/v1/customers/customer_{n}",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api_handler")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=2_000, help="per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with EmbeddedRedis(port=free_port()) as redis:
        seed(redis.url, args.users)
        os.environ.update({"REDIS_URL": redis.url, "ROLESYNC_API_KEYS": f"bench:{KEY}"})
        settings = Settings.from_env()
        uvloop.run(_run(settings, args))
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for route, path in PATHS.items():
            paths = [path(n % args.users) for n in range(args.requests)]
            best = min([await _requests(app, paths) for _ in range(args.rounds)])
            print(f"{route:9} {best * 1e6:6.1f} us CPU per request (ASGI app + Redis client; best of {args.rounds})")
        answer = await _Replayed.capture(app.state.reader, "kp_0")
        best = min([await _user_reads(answer, args.requests * 5) for _ in range(args.rounds)])
        print(f"user read {best * 1e6:6.1f} us CPU without Redis (reader's parse, view, ETag; best of {args.rounds})")


async def _requests(app: Any, paths: list[str]) -> float:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {KEY}".encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")

    started = time.process_time()
    for path in paths:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
        await app(scope, receive, send)
    return (time.process_time() - started) / len(paths)


class _NoHeaders:
    headers: dict[str, str] = {}  # a stand-in request: tagged() reads only its headers


class _Replayed:
    """A Redis client whose one script answers what the real one answered (the reader's own work, no I/O)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @classmethod
    async def capture(cls, reader: RedisReader, user_id: str) -> Any:
        script = reader._user  # the bench replays exactly what the reader's script returned
        return await script(keys=[keys.user_snapshots(user_id), keys.user_customers(user_id)], args=[keys.USAGE_PREFIX])

    def register_script(self, _: str) -> Callable[..., Awaitable[Any]]:
        async def call(**_: Any) -> Any:
            return self.answer

        return call


async def _user_reads(answer: Any, count: int) -> float:
    reader, request = RedisReader(_Replayed(answer)), _NoHeaders()  # type: ignore[arg-type]
    started = time.process_time()
    for _ in range(count):
        view = await reader.user("kp_0")
        assert view is not None
        tagged(request, views.user_entitlements("kp_0", None, view))  # type: ignore[arg-type]
    return (time.process_time() - started) / count
