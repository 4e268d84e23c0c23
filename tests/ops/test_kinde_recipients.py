"""`rolesync grants add` asks Kinde whether the user exists and is in the org (ops/kinde_recipients.py)."""

from __future__ import annotations

from typing import Any

import pytest

from common.entitlements.grant_recipients import UnknownRecipientError
from common.errors import RetryableError
from ops import kinde_recipients
from ops.kinde_recipients import KindeRecipients

pytestmark = pytest.mark.unit


class Kinde:
    """Answers get_user after `failures` (each raised once, in turn)."""

    def __init__(self, *failures: Exception) -> None:
        self.failures, self.calls = list(failures), 0

    def get_user(self, user_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"id": user_id, "organizations": ["org_a"]}


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinde_recipients.tenacity.nap, "sleep", lambda _: None)


def test_a_worker_fetching_the_token_is_waited_for_not_reported() -> None:
    """A worker fetching the shared token made the CLI fail 'try again shortly' (seen by the model run)."""
    kinde = Kinde(RetryableError("another worker is fetching the Kinde token", reason="token_wait"))
    KindeRecipients(kinde).check("kp_1", "org_a")  # type: ignore[arg-type]
    assert kinde.calls == 2


def test_kinde_down_stops_the_command_at_once() -> None:
    kinde = Kinde(RetryableError("Kinde answered 503", reason="kinde_unavailable"))
    with pytest.raises(RetryableError):
        KindeRecipients(kinde).check("kp_1", "org_a")  # type: ignore[arg-type]
    assert kinde.calls == 1


def test_a_user_outside_the_org_is_refused() -> None:
    with pytest.raises(UnknownRecipientError):
        KindeRecipients(Kinde()).check("kp_1", "org_b")  # type: ignore[arg-type]
