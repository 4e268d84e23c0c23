"""Recovery of stuck messages: every message a worker fetched and can no longer run goes back on its queue.

**The guarantee.** A message held by a worker process that died (SIGKILL, OOM kill, lost host) is
back on its queue within `crash_bound_s(settings)` seconds of the death, that is
`ROLESYNC_HEARTBEAT_TIMEOUT_S` + `ROLESYNC_JANITOR_INTERVAL_S` (60 s + 15 s = 75 s by default),
counted from the death or from the first worker replica starting, whichever is later. It is never
lost: its body stays in Redis until an ack, and recovery only moves its id. It is requeued once per
death (the move out of the dead worker's ack set is one atomic step), so it runs again at most once
per crash. A delayed message (a retry, a settling event) goes back on its delay queue and runs at
its eta, or at once if that has passed. Handlers are idempotent (docs/architecture.md, Ordering),
so the re-run is harmless even when the worker died after its Kinde writes.

A message is held, in Dramatiq's Redis broker, by being in its worker's ack set
(`dramatiq:__acks__.<broker_id>.<queue>`) from the fetch until the ack (docs/stack-notes.md, Crash
recovery). It gets stuck there in three ways; each has its part here, and nothing else in the
service returns messages:

1. **The worker died.** Its broker heartbeat stops moving; once it is `heartbeat_timeout` old,
   Dramatiq's maintenance puts that broker's ack sets back, but only when a 1-in-1,000 roll hits
   the queue (measured 708 s). The sweep (`sweeper.sweep`, run by every worker replica's forked helper
   process `worker.entrypoints.recovery_sweep:run`) forces maintenance on every queue and delay queue each
   `ROLESYNC_JANITOR_INTERVAL_S`: hence the bound above.
2. **A live worker's consumer lost them** (a fetch reply that died with the connection, a prefetch
   cache or an in-memory delay queue dropped on a connection error). Maintenance never returns
   these, as the heartbeat still moves. Every consumer (re)start first requeues what its own ack
   set holds that the process does not (`own_acks.reclaim`, from `WorkerRedisBroker.consume`):
   back as soon as Redis answers again.
3. **Anything else a live worker keeps past its eta.** A second net for delayed messages: the same
   sweep requeues any overdue by more than `overdue_grace_s` (`overdue.requeue_overdue`).

A worker that is alive but sends Redis no command for longer than the heartbeat timeout (a stopped
container, clock skew) counts as dead: its messages run again while it still runs them, a
duplicate the idempotent handlers absorb. Raising the timeout trades that risk for a longer bound.
"""

from __future__ import annotations

from worker.runtime.recovery.bound import crash_bound_s, overdue_grace_s
from worker.runtime.recovery.own_acks import Outstanding, TrackingConsumer, reclaim

__all__ = ["Outstanding", "TrackingConsumer", "crash_bound_s", "overdue_grace_s", "reclaim"]
