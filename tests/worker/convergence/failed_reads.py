"""A Kinde that fails a target's role reads a given number of times (a 503), for the convergence tests."""

from __future__ import annotations

from typing import Any

from common.errors import RetryableError
from tests.worker.conftest import World


def fail_reads_of(world: World, org: str, user: str, times: int = 1) -> None:
    """The next `times` reads of (org, user)'s roles fail as a Kinde 503 would."""
    original, left = world.kinde.user_roles, {"n": times}

    def flaky(o: str, u: str) -> list[dict[str, Any]]:
        if (o, u) == (org, user) and left["n"] > 0:
            left["n"] -= 1
            raise RetryableError("Kinde answered 503", reason="kinde_unavailable")
        return original(o, u)

    world.kinde.user_roles = flaky  # type: ignore[method-assign]
