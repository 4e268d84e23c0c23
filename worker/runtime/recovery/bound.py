"""The numbers of the recovery guarantee, from the settings (worker/runtime/recovery/__init__.py)."""

from __future__ import annotations

from common.settings import Settings


def crash_bound_s(settings: Settings) -> int:
    """Seconds from a worker's death until every message it held is back on its queue.

    Its heartbeat's last move is no later than its death, so it counts as dead `heartbeat_timeout_s`
    after; the next sweep starts at most `janitor_interval_s` after that and requeues its ack sets.
    """
    return settings.heartbeat_timeout_s + settings.janitor_interval_s


def overdue_grace_s(settings: Settings) -> int:
    """How long past its eta a delayed message in a live worker's ack set counts as stuck there.

    A healthy delay-queue consumer moves a due message within about a second; the heartbeat timeout
    is the silence the service already treats as death, so no healthy worker comes near it.
    """
    return settings.heartbeat_timeout_s
