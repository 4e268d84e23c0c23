"""The dead-letters pages: list with filters and paging, one record, replay one or all matching, purge.

Every action is ops/actions.py's, as `rolesync dlq replay|purge` runs it. A bulk action states its count
on a confirmation page, and the POST re-selects with the same filters: if the count moved meanwhile
nothing is done and the page asks again. A purge needs the count typed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from common.infra.deadletters import DeadLetter
from common.infra.durations import BadDurationError, parse_duration
from common.infra.redaction import masked_assignments, redacted
from console.frame import form, problem, render
from console.parts import Parts
from console.session import Session
from ops import actions, dlq
from ops.audit import Actor
from ops.customers import timeline

PAGE_SIZE = 25
AROUND_S = 3600.0  # a record's page shows its customer's timeline this long before and after it failed
FILTERS = ("failed", "customer", "within", "older")  # `failed`: the dead letters' reason (`reason` is why on-call acts)


@dataclass(frozen=True)
class Chosen:
    """A selection as the page states it: its filters, and the records they match now."""

    given: dict[str, str]
    records: list[DeadLetter]

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in self.given.items() if v})

    @property
    def described(self) -> str:
        said = {"failed": "reason {}", "customer": "customer {}", "within": "failed within {}",
                "older": "older than {}"}  # fmt: skip
        return ", ".join(said[k].format(v) for k, v in self.given.items() if v) or "all"


def filters_of(given: dict[str, str], now: float) -> dlq.Filters:
    try:
        since = now - parse_duration(given["within"]) if given.get("within") else None
        before = now - parse_duration(given["older"]) if given.get("older") else None
    except BadDurationError as exc:
        raise dlq.BadFilterError(str(exc)) from None
    return dlq.Filters(reason=given.get("failed") or None, customer_id=given.get("customer") or None, since=since,
                       before=before)  # fmt: skip


def choose(parts: Parts, source: Any) -> Chosen:
    given = {k: str(source.get(k, "")).strip() for k in FILTERS}
    return Chosen(given, dlq.select(parts.stores.dead_letters, filters_of(given, time.time())))


def actor(session: Session, reason: str) -> Actor:
    """Who acts, for the audit trail: the key's label, never the key."""
    return Actor.of(f"console:{session.label}", reason)


async def listing(request: Request, parts: Parts, session: Session) -> Response:
    chosen = await run_in_threadpool(choose, parts, request.query_params)
    counts = await run_in_threadpool(parts.stores.dead_letters.count_by_reason)
    number = max(1, _int(request.query_params.get("page", "1")))
    pages = max(1, -(-len(chosen.records) // PAGE_SIZE))
    shown = chosen.records[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    return render(request, "dead_letters.html", session, chosen=chosen, counts=counts, shown=shown, page=number,
                  pages=pages)  # fmt: skip


async def record(request: Request, parts: Parts, session: Session) -> Response:
    (found,) = await run_in_threadpool(dlq.find, parts.stores.dead_letters, [request.path_params["record_id"]])
    entries = await run_in_threadpool(_around, parts, found)
    return render(request, "dead_letter.html", session, record=found, claims=redacted("claims", found.claims),
                  last_error=masked_assignments(found.last_error), timeline=entries)  # fmt: skip


def _around(parts: Parts, found: DeadLetter) -> list[dict[str, Any]]:
    if not found.customer_id:
        return []
    start, end = found.first_failed_at - AROUND_S, found.last_failed_at + AROUND_S
    return [e for e in timeline(parts.stores, found.customer_id) if start <= float(e.get("at") or 0) <= end]


async def replay_one(request: Request, parts: Parts, session: Session) -> Response:
    fields = form(request)
    chosen = await run_in_threadpool(dlq.find, parts.stores.dead_letters, [request.path_params["record_id"]])
    done = await run_in_threadpool(actions.replay_dead_letters, parts.stores, parts.broker(), chosen,
                                   actor(session, fields.get("reason", "")), f"ids: {chosen[0].id}")  # fmt: skip
    return render(request, "done.html", session, title="Replayed", lines=done.lines, back="/console/dead-letters")


async def confirm_bulk(request: Request, parts: Parts, session: Session) -> Response:
    action = request.path_params["action"]
    chosen = await run_in_threadpool(choose, parts, request.query_params)
    return render(request, "confirm_bulk.html", session, action=action, chosen=chosen)


async def replay_matching(request: Request, parts: Parts, session: Session) -> Response:
    fields = form(request)
    chosen = await run_in_threadpool(choose, parts, fields)
    moved = _moved(request, session, chosen, fields.get("count", ""), "replay")
    if moved is not None:
        return moved
    done = await run_in_threadpool(actions.replay_dead_letters, parts.stores, parts.broker(), chosen.records,
                                   actor(session, fields.get("reason", "")), chosen.described)  # fmt: skip
    return render(request, "done.html", session, title=f"Replayed {len(chosen.records)} dead letter(s)",
                  lines=done.lines, back="/console/dead-letters")  # fmt: skip


async def purge_matching(request: Request, parts: Parts, session: Session) -> Response:
    fields = form(request)
    chosen = await run_in_threadpool(choose, parts, fields)
    if fields.get("typed", "").strip() != str(len(chosen.records)):
        return problem(request, session, 400, f"Nothing purged: type the number of dead letters to purge "
                       f"({len(chosen.records)} match {chosen.described}) to confirm.")  # fmt: skip
    moved = _moved(request, session, chosen, fields.get("count", ""), "purge")
    if moved is not None:
        return moved
    done = await run_in_threadpool(actions.purge_dead_letters, parts.stores, chosen.records,
                                   actor(session, fields.get("reason", "")), chosen.described)  # fmt: skip
    kept = [f"{done.changed} changed meanwhile and were kept"] if done.changed else []
    return render(request, "done.html", session, title=f"Purged {done.purged} dead letter(s)", lines=kept,
                  back="/console/dead-letters")  # fmt: skip


def _moved(request: Request, session: Session, chosen: Chosen, confirmed: str, action: str) -> Response | None:
    """The confirmation page's count against what matches now: a different count asks again, doing nothing."""
    if confirmed.strip() == str(len(chosen.records)) and chosen.records:
        return None
    return render(request, "confirm_bulk.html", session, status=409, action=action, chosen=chosen,
                  moved=f"The selection changed: {len(chosen.records)} match now, you confirmed {confirmed or 0}. "
                  "Nothing was done; confirm again.")  # fmt: skip


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 1
