"""A dead-lettered index-rebuild chunk: recorded as the rebuild's, replayed to `rebuild_index` itself.

Real Redis for the stores, the recording fake for Kinde; the dead letter is written by the worker's
own middleware from the failed message, and what the replayer sends is run as the worker would run it.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from common.errors import ForbiddenError
from common.infra.deadletters import FORBIDDEN, UNRESOLVED
from common.messages import REBUILD_INDEX_ACTOR, rebuild_message
from tests.worker.conftest import World
from tests.worker.events.test_handlers import OLD, billing
from worker.events.handlers import handle_event
from worker.kinde.api import Page
from worker.runtime.durable_retries import GIVEN_UP
from worker.runtime.middleware import DeadLetters
from worker.runtime.replay import Replayer

REFUSED = ForbiddenError("Kinde answered 403", endpoint="GET /users", scope="read:users")


def failed_chunk(world: World, holder: str) -> None:
    """The chunk's message fails as the retry policy gives it up (a 403 is permanent): the middleware records it."""
    message = MessageProxy(rebuild_message(holder))
    message.fail()
    message.options[GIVEN_UP] = (FORBIDDEN, "ForbiddenError: Kinde answered 403")
    DeadLetters(lambda: world.dead_letters).after_process_message(None, message, exception=REFUSED)


def run_as_the_worker(world: World, events: list[tuple[Any, ...]], messages: list[dramatiq.Message[Any]]) -> None:
    for claims, meta, _ in events:
        handle_event(world.deps, claims, meta)
    for message in messages:
        assert message.actor_name == REBUILD_INDEX_ACTOR, message
        world.deps.resolver.rebuilds.run_chunk(*message.args)
    world.run_rebuilds()


def test_a_replayed_rebuild_chunk_resumes_the_rebuild_and_the_parked_events_come_back(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "parked"
    (holder,) = world.rebuild_chunks
    read_page, refusing = world.kinde.users_page, [True]

    def users_page(*, expand_billing: bool, next_token: str | None) -> Page:
        if refusing[0]:
            raise REFUSED  # the app lacks read:users
        return read_page(expand_billing=expand_billing, next_token=next_token)

    world.kinde.users_page = users_page  # type: ignore[method-assign]
    try:
        world.run_rebuilds()
    except ForbiddenError:
        failed_chunk(world, holder)
    (record,) = world.dead_letters.list(reason=FORBIDDEN)
    # was: filed under the chain's holder as a customer id
    assert (record.customer_id, record.claims.get("rebuild")) == (None, holder)
    assert world.dead_letters.of_customer(holder) == []

    refusing[0] = False  # the scope is granted
    events: list[tuple[Any, ...]] = []
    messages: list[dramatiq.Message[Any]] = []
    replayer = Replayer(world.dead_letters, lambda *a: events.append(a), lambda c, r: None, send=messages.append)
    assert replayer.replay(record) == f"{record.id}: {REBUILD_INDEX_ACTOR} message re-enqueued"
    run_as_the_worker(world, events, messages)

    # was: sent as a webhook, `ignored` by handle_event: the link never learned, the event parked for good
    assert world.deps.links.get("customer_1") is not None
    assert world.dead_letters.list(reason=UNRESOLVED) == []
    assert [claims["event_id"] for claims, _, _ in world.enqueued] == ["ev_1"]  # the parked event, replayed
    assert world.dead_letters.list() == []
