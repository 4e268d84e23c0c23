"""How the on-call commands end: one line and a status code, never a traceback for a mistake.

* a missing setting or a bad plans file (`ConfigError`): exit 2, as every `rolesync` command;
* a bad argument (unknown id, bad duration) or a failure on the way (Redis down, Kinde refused):
  exit 1 with `rolesync: <sentence>` on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from common.errors import ConfigError, ServiceError
from common.infra.durations import BadDurationError
from common.infra.logs import configure_logging
from common.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"rolesync: {message}", err=True)
    sys.exit(code)


def oncall_command(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BadDurationError as exc:
            fail(str(exc))
        except ConfigError as exc:
            fail(str(exc), 2)
        except ServiceError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def settings_for(*needed: str, writes: bool = False) -> Settings:
    """The environment's settings; logs go to stderr so stdout stays a clean table or JSON. A command that `writes`
    Redis first checks its layout (common/infra/layout.py): a newer one stops it with one line, an older one is
    migrated."""
    settings = Settings.from_env().require(*needed)
    configure_logging("warning", stream=sys.stderr)
    if writes:
        from common.infra.layout import check_at_start

        check_at_start(settings)
    return settings


def console() -> Console:
    """stdout, read at call time (so click's test runner captures it); wide enough for ids."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)


def progress_console() -> Console:
    """Progress bars go to stderr, so stdout stays a clean report or JSON document."""
    return Console(file=sys.stderr)
