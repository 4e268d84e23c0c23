"""A failing model test prints the pipe it ran on (pytest shows a test's arguments): no secret may be in it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from chaos.model_sinks import Sinks
from launch.pipe import Pipe, PipeOptions

NOTHING: Any = None  # parts the repr does not need


def test_a_printed_pipe_or_its_sinks_show_no_client_secret_env_or_notify_key() -> None:
    secret = secrets.token_urlsafe(32)
    pipe = Pipe(Path("/logs"), NOTHING, NOTHING, "http://sandbox", "http://ingest", secret,
                {"KINDE_CLIENT_SECRET": secret}, PipeOptions())  # fmt: skip
    sinks = Sinks(NOTHING, NOTHING, "http://127.0.0.1:1/hook", f"whsec_{secret}")
    assert "http://ingest" in repr(pipe)
    assert secret not in repr(pipe)
    assert secret not in repr(sinks)
