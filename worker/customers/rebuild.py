"""The customer-index rebuild: page Kinde's users and orgs and learn every billing customer's link.

Kinde's billing webhooks name only a billing customer, so a customer no user/org event told us about
is found by paging the tenant: users (`expand=billing`, or one `GET /user` each where the tenant
answers INVALID_EXPAND_VALUES), then orgs (one `GET /organization` each for an org listed without
`billing`). On a big tenant that is thousands of calls at the shared rate, so the rebuild
* learns each page's links (and replays the events parked for them) as soon as the page is read,
  and only then moves its cursor: no page is read twice and nothing learned is lost;
* runs as its own actor (`rebuild_index` on `rolesync-rebuild`) in chunks of about `CHUNK_S`, each
  sending the next, so no actor time limit aborts it and a 429 only delays the next chunk;
* is coalesced (worker/customers/rebuild_store.py): an event is covered by any run that started after it was
  received; otherwise it asks for one, which starts at once or as soon as the current run ends.

`discover` walks the same steps in-process and learns nothing (`rolesync reconcile --dry-run`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import structlog

from common.customers.links import CustomerLink, LinkStore
from common.errors import PermanentError
from worker.customers.park import Parking
from worker.customers.placement import INVALID_EXPAND, org_link, takes_over, user_links
from worker.customers.rebuild_store import RebuildStore
from worker.kinde.api import Json, KindeApi, Page
from worker.kinde.ratelimit import patient_slot_waits
from worker.runtime.retry_policy import patiently

log = structlog.get_logger(__name__)
USERS, USERS_ONE_BY_ONE, ORGS, DONE = "users", "users_one_by_one", "orgs", "done"
SOURCE = "rebuild"
CHUNK_S = 30.0  # per message: far below the actor's time limit (worker/runtime/actors.py), long enough to amortise
DISCOVER_PATIENCE_S = 300.0  # how long an in-process walk waits out Kinde's cool-downs on one step
Learn = Callable[[list[CustomerLink]], None]
Start = Callable[[str], None]  # holder -> send a `rebuild_index` message


@dataclass(frozen=True)
class Cursor:
    """Where a run stands: its listing, the page to read next, and the ids of a read page still to look up."""

    started_at: float
    phase: str = USERS
    next_token: str | None = None
    expand: bool = True  # the org listing asks for billing (until the tenant refuses the expand)
    pending: list[list[str]] = field(default_factory=list)  # [["user"|"org", id], ...]
    pages: int = 0
    lookups: int = 0

    @property
    def done(self) -> bool:
        return self.phase == DONE and not self.pending

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Cursor:
        data: dict[str, Any] = json.loads(raw)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class Stepper:
    """One Kinde call per step: read the next page, or look up one id a read page left pending."""

    kinde: KindeApi
    links: LinkStore
    org_code: str  # KINDE_ORG_CODE: preferred when a user belongs to several orgs
    learn: Learn

    def step(self, cursor: Cursor) -> Cursor:
        if cursor.pending:
            return self._look_up(cursor)
        if cursor.phase == ORGS:
            return self._org_page(cursor)
        if cursor.phase == USERS_ONE_BY_ONE:
            return self._user_ids_page(cursor)
        return self._user_page(cursor)

    def _look_up(self, cursor: Cursor) -> Cursor:
        kind, key = cursor.pending[0]
        if kind == "user":
            self.learn(user_links(self.kinde.get_user(key), self.org_code, SOURCE))
        else:
            self.learn([link] if (link := org_link(self.kinde.get_organization(key), SOURCE)) else [])
        return replace(cursor, pending=cursor.pending[1:], lookups=cursor.lookups + 1)

    def _links_of(self, row: Json) -> list[CustomerLink]:
        return user_links(row, self.org_code, SOURCE)

    def _user_page(self, cursor: Cursor) -> Cursor:
        try:
            page = self.kinde.users_page(expand_billing=True, next_token=cursor.next_token)
        except PermanentError as exc:
            if exc.reason != INVALID_EXPAND:
                raise
            return replace(cursor, phase=USERS_ONE_BY_ONE, next_token=None)
        self.learn([link for row in page.rows for link in self._links_of(row)])
        return _advanced(cursor, page, ORGS, [])

    def _user_ids_page(self, cursor: Cursor) -> Cursor:
        page = self.kinde.users_page(expand_billing=False, next_token=cursor.next_token)
        ids = [str(row["id"]) for row in page.rows if row.get("id")]
        return _advanced(cursor, page, ORGS, [["user", i] for i in ids if not self._placed_by_kinde(i)])

    def _placed_by_kinde(self, user_id: str) -> bool:
        """Whether the user's customers were all placed from Kinde's data: one taught by an event's ids
        is looked up again, so a reconcile corrects its placement."""
        found = [self.links.get(c) for c in self.links.customers_of_user(user_id)]
        return bool(found) and all(link is not None and link.source != "event" for link in found)

    def _org_page(self, cursor: Cursor) -> Cursor:
        try:
            page = self.kinde.organizations_page(expand_billing=cursor.expand, next_token=cursor.next_token)
        except PermanentError as exc:
            if exc.reason != INVALID_EXPAND or not cursor.expand:
                raise
            return replace(cursor, expand=False)
        billed = [row for row in page.rows if "billing" in row]
        self.learn([link for row in billed if (link := org_link(row, SOURCE))])
        bare = [["org", str(row["code"])] for row in page.rows if "billing" not in row and row.get("code")]
        return _advanced(cursor, page, DONE, bare)


def _advanced(cursor: Cursor, page: Page, then: str, pending: list[list[str]]) -> Cursor:
    moved = replace(cursor, next_token=page.next_token, pending=pending, pages=cursor.pages + 1)
    return moved if page.next_token else replace(moved, phase=then)


def learner(links: LinkStore, parking: Parking) -> Learn:
    """Store each new or changed link; `Parking.learned` replays the events parked for its customer."""

    def learn(found: list[CustomerLink]) -> None:
        for link in found:
            if takes_over(links.get(link.customer_id), link):
                parking.learned(link)

    return learn


@dataclass(frozen=True)
class Rebuilds:
    store: RebuildStore
    stepper: Stepper
    start: Start
    chunk_s: float = CHUNK_S
    clock: Callable[[], float] = time.time

    def request(self, received_at: float) -> bool:
        """Make sure a run covers an event received at `received_at`; True if a chain was started for it."""
        now, holder = self.clock(), uuid.uuid4().hex
        if not self.store.request(received_at, now, Cursor(now).to_json(), holder):
            return False
        log.info("index_rebuild_requested", holder=holder)
        self.start(holder)
        return True

    def run_chunk(self, holder: str) -> str:
        """Advance the run for about `chunk_s`, then send the next chunk; the outcome word for logs."""
        raw = self.store.hold(holder)
        if raw is None:
            return "rebuild_held_elsewhere"
        cursor, deadline = Cursor.from_json(raw), time.monotonic() + self.chunk_s
        with patient_slot_waits():  # giving up a slot wait only delays this chain; waiting is cheaper
            while not cursor.done:
                cursor = self.stepper.step(cursor)
                if not self.store.save(holder, cursor.to_json()):
                    return "rebuild_lease_lost"
                if time.monotonic() >= deadline:
                    break
        return self._next(holder, cursor)

    def _next(self, holder: str, cursor: Cursor) -> str:
        if not cursor.done:
            self.start(holder)
            return "rebuild_continued"
        now = self.clock()
        log.info("index_rebuilt", pages=cursor.pages, lookups=cursor.lookups, seconds=round(now - cursor.started_at, 1))
        if self.store.finish(holder, cursor.started_at, now, Cursor(now).to_json()):
            self.start(holder)  # a request came in during the run: the next one starts now
            return "rebuild_restarted"
        return "rebuilt"

    def finished_since(self, since: float) -> bool:
        last = self.store.last_finished()
        return last is not None and last >= since

    def discover(self) -> list[CustomerLink]:
        """Every link a rebuild would learn, learning nothing and leaving the shared cursor alone."""
        found: list[CustomerLink] = []
        walk(replace(self.stepper, learn=found.extend), Cursor(self.clock()))
        return found


def walk(stepper: Stepper, cursor: Cursor, *, patience_s: float = DISCOVER_PATIENCE_S) -> Cursor:
    """Step to the end in this process, waiting out cool-downs in place (a CLI, not a worker thread);
    patience is for one stalled step, not the whole walk."""
    step = patiently(stepper.step, patience_s=patience_s)
    while not cursor.done:
        cursor = step(cursor)
    return cursor
