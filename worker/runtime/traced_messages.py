"""Each message a worker process runs, as spans of the trace its webhook started (common/infra/tracing.py).

The ingest puts the webhook's trace context in the message's `otel` option; here, in every Dramatiq worker
process, it becomes a finished `queue.wait` span (from the enqueue to now) and a current `pass` span for the
actor's run, whose Kinde calls and role writes (worker/kinde/api.py) are its children. A message without the
option (a reconcile pass, a rebuild chunk) starts a trace of its own; one a pass sends (a parked event replayed
once its link is learned, a converge request) carries the pass's context on. Off, and free, unless OTEL_* set an
endpoint: the provider starts after Dramatiq forks the process (the exporter runs a thread) and is flushed
when the process stops.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from typing import Any

import dramatiq

from common.infra import tracing
from common.messages import TRACE_OPTION
from common.settings import Settings
from common.webhooks.events import customer_id_of
from worker.runtime.middleware import claims_of, event_id_for


class TracedMessages(dramatiq.Middleware):
    def __init__(self, settings: Settings) -> None:
        self._enabled = settings.tracing
        self._open = threading.local()  # each worker thread's span in progress

    def after_process_boot(self, broker: Any) -> None:
        tracing.start("rolesync-worker", self._enabled)

    def before_process_stop(self, broker: Any) -> None:
        tracing.stop()

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        """A message sent during a pass (a parked event replayed, a converge request) joins the pass's trace."""
        if TRACE_OPTION not in message.options:
            carried = tracing.carrier()
            if carried:
                message.options[TRACE_OPTION] = carried

    def before_process_message(self, broker: Any, message: Any) -> None:
        parent, claims = message.options.get(TRACE_OPTION), claims_of(message)
        named = {"queue": message.queue_name, "actor": message.actor_name, "event.type": claims.get("type"),
                 "event.id": event_id_for(message, claims), "customer.id": customer_id_of(claims)}  # fmt: skip
        tracing.waited("queue.wait", message.message_timestamp / 1000, parent, named)
        stack = ExitStack()
        stack.enter_context(tracing.span("pass", named, parent=parent))
        self._open.stack = stack

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None:
            tracing.annotate(outcome="dead_lettered" if message.failed else "retried")
        self._close()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        tracing.annotate(outcome="skipped")
        self._close()

    def _close(self) -> None:
        stack: ExitStack | None = getattr(self._open, "stack", None)
        self._open.stack = None
        if stack is not None:
            stack.close()
