"""The moved worker over a queue the pre-move code filled (tests/worker/runtime/test_premove_queue.py runs this).

Builds the broker as `dramatiq worker.runtime.broker:setup worker.runtime.actors` does, binds the moved actors
to it, and replaces only each actor's function by a recorder: the broker, its middleware, the decoding and the
dispatch by actor name and queue are the moved code's own. Runs a Dramatiq worker until `argv[1]` messages ran
(or 20 s passed), then prints what each actor was called with, as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import dramatiq

from worker.runtime import broker as broker_module


def main(expected: int) -> None:
    broker = broker_module.setup()
    from worker.runtime import actors  # noqa: F401  (binds the actors to this broker, as the worker does)

    ran: list[list[Any]] = []
    for name in sorted(broker.get_declared_actors()):
        broker.get_actor(name).fn = lambda *args, _name=name, **kwargs: ran.append([_name, list(args), kwargs])
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    deadline = time.monotonic() + 20
    while len(ran) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the acks of the last messages
    worker.stop()
    print(json.dumps(sorted(ran, key=json.dumps)))


if __name__ == "__main__":
    main(int(sys.argv[1]))
