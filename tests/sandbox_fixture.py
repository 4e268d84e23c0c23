"""Start a real `rolesync sandbox` subprocess for a test and hand back a client for it.

    with running_sandbox(tmp_path, webhook_url=ingest_url) as sandbox:
        user = sandbox.client.create_user()
        ...
        sandbox.set_webhook_url(other_url)   # or sandbox.client.set_webhooks(url=...)

The M2M credentials it accepts are `SANDBOX_CLIENT_ID` / `SANDBOX_CLIENT_SECRET`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox.client import SandboxClient
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"


@dataclass
class RunningSandbox:
    url: str
    client: SandboxClient
    proc: Proc

    @property
    def client_id(self) -> str:
        return SANDBOX_CLIENT_ID

    @property
    def client_secret(self) -> str:
        return SANDBOX_CLIENT_SECRET

    def set_webhook_url(self, url: str) -> None:
        self.client.set_webhooks(url=url)

    def kinde_env(self) -> dict[str, str]:
        """The environment a worker or ingest needs to talk to this sandbox."""
        return {"KINDE_DOMAIN": self.url, "KINDE_CLIENT_ID": self.client_id, "KINDE_CLIENT_SECRET": self.client_secret,
                "ROLESYNC_INSECURE_LOCAL": "1"}  # fmt: skip


@contextmanager
def running_sandbox(
    tmp_dir: Path, *, webhook_url: str = "", time_scale: float = 100.0, extra_args: list[str] | None = None
) -> Iterator[RunningSandbox]:
    port = free_port()
    argv = rolesync(
        "sandbox", "--no-banner", "--port", str(port), "--webhook-url", webhook_url, "--time-scale", str(time_scale),
        *(extra_args or []),
    )  # fmt: skip
    proc = Proc(f"sandbox-{port}", argv, {}, tmp_dir)
    url = f"http://127.0.0.1:{port}"
    client = SandboxClient(url)
    try:
        wait_until(lambda: http_ok(f"{url}/_sandbox/health") or _died(proc), timeout=20, what="the sandbox to answer")
        if not proc.alive():
            raise AssertionError(f"sandbox exited early:\n{proc.output()}")
        yield RunningSandbox(url=url, client=client, proc=proc)
    finally:
        client.close()
        proc.stop()


def _died(proc: Proc) -> bool:
    return not proc.alive()
