"""`--by` and `--reason`: the operator and the why that every state-changing on-call command records (ops/audit.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

REASON_HELP = "Why (required): recorded with your name on each customer's timeline and in `rolesync audit`."


def _os_user() -> str:
    from ops.audit import os_user

    return os_user()


def operator_options(*, reason_required: bool = True) -> Callable[[F], F]:
    def wrap(func: F) -> F:
        func = click.option("--reason", required=reason_required, help=REASON_HELP)(func)
        by = click.option("--by", default=_os_user, show_default="your OS user", help="Who acts, for the audit trail.")
        return by(func)

    return wrap


def confirmed(question: str, *, yes: bool, nothing_done: str) -> bool:
    """True with --yes or a "y"; a missing answer (no terminal) fails naming --yes, never hangs or guesses."""
    if yes:
        return True
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        from cli.exits import fail

        fail(f"no answer to the confirmation; {nothing_done} (add --yes to skip it)")
