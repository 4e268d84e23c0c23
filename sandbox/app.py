"""The sandbox Starlette app: a faithful local Kinde tenant (see docs/sandbox.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from sandbox import control, management, oauth
from sandbox.calllog import CallLog
from sandbox.config import SandboxConfig
from sandbox.faults import Faults
from sandbox.problems import ApiProblem, answer_problem
from sandbox.runtime import Sandbox


def create_app(config: SandboxConfig) -> Starlette:
    sandbox = Sandbox.build(config)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await sandbox.deliverer.start()
        try:
            yield
        finally:
            await sandbox.deliverer.close()
            sandbox.save_snapshot()

    app = Starlette(
        routes=[*oauth.routes, *management.routes, *control.routes],
        # CallLog outermost: the log shows what the client saw, injected faults and 429s included.
        middleware=[Middleware(CallLog, calls=sandbox.calls), Middleware(Faults, plan=sandbox.faults)],
        exception_handlers={ApiProblem: answer_problem},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
