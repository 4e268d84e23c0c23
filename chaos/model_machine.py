"""The stateful model: random tenants, plans, delivery faults and Kinde faults against the real pipe.

Every action goes through the sandbox's control API (which signs and delivers the webhooks to the
ingest) or on-call's own tools; the machine keeps only aliases for what it made and the roles it gave
by hand. After each sequence (`teardown`): Kinde is healed, the pipe settles, one reconcile runs if
an event was lost or a scope was withdrawn (once the scope is granted again, the workers' probe
replays the events held as `kinde_forbidden` by itself),
and every (org, user) is checked against chaos/model_oracle.py from the sandbox's final state alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from chaos.model_oracle import (
    GrantGiven,
    Target,
    Wrong,
    b2c_org_of,
    holdings,
    placement,
    wrong_answers,
    wrong_notifications,
    wrong_rows,
    wrong_targets,
)
from chaos.model_pipe import WORKERS, ModelPipe
from chaos.model_timing import TIMINGS
from common.entitlements.hand_grant_changes import UnknownGrantError
from common.entitlements.manual_grants import BadGrantError, HandGrant, new_grant_id
from common.errors import PermanentError, RetryableError
from common.infra.audit_trail import Actor
from common.plans.mapping import PlanMap, parse_plans
from sandbox.config import PLANS_TOML
from sandbox.tokens import ALL_SCOPES

PLANS: PlanMap = parse_plans(PLANS_TOML)
BOUGHT = ("plan_subscriber", "plan_client", "plan_unknown")  # plan_unknown: not in plans.toml, grants nothing
HAND_ROLE = "role_admin"  # unmanaged: only the test gives it
# "+" joins scopes withdrawn together: a pass reads the agreements only when the entitlements read fails
# (worker/convergence/in_force.py), so both billing reads must go for the pass to lack what is in force
BILLING_READS = "read:billing_entitlements+read:billing_agreements"
WITHDRAWN = (BILLING_READS, "delete:organization_user_roles", "read:users")
DELIVERY_MODES = ("in order", "duplicated", "shuffled", "held", "released", "lose the next action's events")
KINDE_FAULTS = ("normally", "401", "403", "429", "5xx")
GIVEN = ("role_subscriber", "role_client")  # managed: what `rolesync grants add --role` may give
GRANT_ENDS = ("until removed", "in 3 s", "in a day")  # "in 3 s": ends inside the sequence (the teardown waits for it)
ENDS_AFTER_S = {"in 2 s": 2.0, "in 3 s": 3.0, "in a day": 86400.0}
GRANT_VIA = ("cli", "api")  # `rolesync grants add|remove` (ops/grants.py), or PUT/DELETE /v1/grants with grants:write


SINKS = ("wrong read API answers", "wrong table rows", "wrong last notifications")


class AccessMismatchError(AssertionError):
    """Some (org, user) holds other roles than its covering customers grant (plus hand-given ones)."""


@dataclass
class Tally:
    """What a run saw across sequences, for the chaos report."""

    sequences: int = 0
    steps: int = 0
    failed_sequences: int = 0
    wrong_targets: int = 0
    reconciles: int = 0
    lost_events: int = 0
    restarts: int = 0
    wrong_answers: int = 0  # read API answers (per user and org) that differ from the covering customers'
    wrong_rows: int = 0  # entitlements table rows missing, left over or differing
    wrong_notifications: int = 0  # (org, user)s whose last notification is not what they hold now
    broken: list[str] = field(default_factory=list)  # batches that raised something other than a wrong role
    shortest: dict[str, str] = field(default_factory=dict)  # kind of wrong -> the shortest report of it seen

    def failed(self, wrong: list[Wrong], report: str, sinks: Mapping[str, Sequence[str]]) -> None:
        """Races make a failure flaky to replay, so the shortest failing sequence of each kind is kept as it ran.

        `sinks`: what else was wrong, by kind (SINKS: the read API, the table, the notifications)."""
        self.failed_sequences += 1
        self.wrong_targets += len(wrong)
        self.wrong_answers += len(sinks.get(SINKS[0], ()))
        self.wrong_rows += len(sinks.get(SINKS[1], ()))
        self.wrong_notifications += len(sinks.get(SINKS[2], ()))
        print(f"-- sequence {self.sequences} ended wrong:\n{report}\n", flush=True)  # the run goes on; read it now
        for kind in {kind_of(w) for w in wrong} | {kind for kind, found in sinks.items() if found}:
            if kind not in self.shortest or len(report) < len(self.shortest[kind]):
                self.shortest[kind] = report


def kind_of(wrong: Wrong) -> str:
    """Missing or extra roles, and how many customers cover the (org, user)."""
    missing, extra = bool(wrong.expected - wrong.actual), bool(wrong.actual - wrong.expected)
    what = "missing and extra" if missing and extra else "missing" if missing else "extra"
    return f"{what} role, {len(wrong.covering)} covering customer(s)"


def _step_kind(text: str) -> str:
    """A step's text without its aliases' numbers and notes: "c(u) buys plan_client"."""
    return re.sub(r"\d+", "", text.split(" [")[0])[:44]


def compress(steps: list[str]) -> list[str]:
    """Repeated consecutive steps as one line with a count."""
    out: list[tuple[str, int]] = []
    for step in steps:
        out[-1:] = [(step, out[-1][1] + 1)] if out and out[-1][0] == step else [*out[-1:], (step, 1)]
    return [f"{step} (x{n})" if n > 1 else step for step, n in out]


class AccessModel(RuleBasedStateMachine):
    pipe: ClassVar[ModelPipe | None] = None
    max_restarts: ClassVar[int] = 1
    raise_on_wrong: ClassVar[bool] = True  # False: count and keep going (a large run counts every failure)
    tally: ClassVar[Tally] = Tally()

    def __init__(self) -> None:
        super().__init__()
        assert self.pipe is not None, "set AccessModel.pipe to a running ModelPipe first"
        self.p: ModelPipe = self.pipe
        self.p.reset()
        self.b2c = b2c_org_of(self.p.kinde.state())
        self.alias: dict[str, str] = {self.b2c: "default"}
        self.orgs_of: dict[str, list[str]] = {}  # live user id -> orgs, in joining order (as Kinde lists them)
        self.orgs: list[str] = [self.b2c]  # live orgs
        self.owner: dict[str, str] = {}  # live customer id -> owner id (user id or org code)
        self.hand: dict[Target, frozenset[str]] = {}
        self.failing: set[str] = set()
        self.steps: list[str] = []
        self.restarts = 0
        self.scope_withdrawn = False
        self.fault = "normally"  # how Kinde answers now (KINDE_FAULTS)
        self.lose_next = False
        self.no_repair = False  # a regression sequence asserting the pipe converges with no reconcile at the end
        self.held = False  # deliveries paused: nothing settles until they are released
        self.grants: dict[str, Target] = {}  # live hand grants the machine made: id -> (org or "" for B2C, user)
        self.granted_users: set[str] = set()  # every user a hand grant named in this sequence
        self._step_started = time.monotonic()

    # --- helpers ---
    def _name(self, kind: str, real: str) -> str:
        self.alias[real] = f"{kind}{sum(a.startswith(kind) for a in self.alias.values()) + 1}"
        return self.alias[real]

    def _say(self, text: str) -> None:
        self.steps.append(text)
        now = time.monotonic()
        TIMINGS.add("step: " + _step_kind(text), now - self._step_started)
        self._step_started = now

    def _customer(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.owner, key=self.alias.__getitem__)), label="customer")

    def _members(self) -> list[str]:
        """Users in some org, by alias: real ids are random per run, and a draw must not depend on them."""
        return sorted((u for u, o in self.orgs_of.items() if o), key=self.alias.__getitem__)

    def _user(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.orgs_of, key=self.alias.__getitem__)), label="user")

    def _act(self, action: Any, *args: Any, **kwargs: Any) -> tuple[Any, str]:
        """Run a control call; if the previous step asked, lose exactly its events. (result, note for the log)."""
        lose, self.lose_next = self.lose_next, False
        if lose:
            self.p.kinde.set_webhooks(lose_rate=1.0)
        try:
            return action(*args, **kwargs), " [its events lost]" if lose else ""
        finally:
            if lose:
                self.p.kinde.set_webhooks(lose_rate=0.0)

    def _forget_hand(self, *, user: str | None = None, org: str | None = None) -> None:
        self.hand = {t: r for t, r in self.hand.items() if t.user_id != user and t.org_code != org}

    # --- tenant: users, orgs, memberships ---
    @initialize(
        orgs=st.lists(st.sampled_from((*BOUGHT[:2], None)), min_size=1, max_size=2),
        users=st.lists(
            st.tuples(st.sampled_from((1, 2, 0)), st.sampled_from((*BOUGHT[:2], None))), min_size=1, max_size=3
        ),
    )
    def tenant(self, orgs: list[str | None], users: list[tuple[int, str | None]]) -> None:
        """A starting tenant whose customers overlap from the start: paying orgs, and members with their own plans.

        Users go into a paying org more often than into the default org (index 0), which has no customer.
        """
        for plan in orgs:
            self.create_org(with_customer=True)
            self._buy(list(self.owner)[-1], plan)
        for where, plan in users:
            self._create_user(self.orgs[min(where, len(self.orgs) - 1)], with_customer=True)
            self._buy(list(self.owner)[-1], plan)

    def _buy(self, customer: str, plan: str | None) -> None:
        if plan is not None:
            self.p.kinde.change_plan(customer, plan)
            self._say(f"{self.alias[customer]} buys {plan}")

    @rule(data=st.data(), with_customer=st.booleans())
    def create_user(self, data: st.DataObject, with_customer: bool) -> None:
        self._create_user(data.draw(st.sampled_from(self.orgs), label="org"), with_customer=with_customer)

    def _create_user(self, org: str, *, with_customer: bool) -> str:
        made, note = self._act(self.p.kinde.create_user, org_code=org, with_customer=with_customer)
        name = self._name("u", made["id"])
        self.orgs_of[made["id"]] = [org]
        if made["customer_id"]:
            self.owner[made["customer_id"]] = made["id"]
            self.alias[made["customer_id"]] = f"c({name})"
        self._say(f"create user {name} in {self.alias[org]}" + ("" if with_customer else " (no customer)") + note)
        return str(made["id"])

    @precondition(lambda self: self.orgs_of)
    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        self._delete_user(self._user(data))

    def _delete_user(self, user: str) -> None:
        _, note = self._act(self.p.kinde.delete_user, user)
        self._say(f"delete user {self.alias[user]}" + note)
        del self.orgs_of[user]
        self.owner = {c: o for c, o in self.owner.items() if o != user}
        self._forget_hand(user=user)
        self.grants = {g: t for g, t in self.grants.items() if t.user_id != user}  # the deletion drops them

    @rule(with_customer=st.booleans())
    def create_org(self, with_customer: bool) -> None:
        self._create_org(with_customer=with_customer)

    def _create_org(self, *, with_customer: bool) -> str:
        made, note = self._act(
            self.p.kinde.create_org, name=f"model org {len(self.alias)}", with_customer=with_customer
        )
        name = self._name("o", made["code"])
        self.orgs.append(made["code"])
        if made["customer_id"]:
            self.owner[made["customer_id"]] = made["code"]
            self.alias[made["customer_id"]] = f"c({name})"
        self._say(f"create org {name}" + ("" if with_customer else " (no customer)") + note)
        return str(made["code"])

    @precondition(lambda self: len(self.orgs) > 1)
    @rule(data=st.data())
    def delete_org(self, data: st.DataObject) -> None:
        self._delete_org(data.draw(st.sampled_from(self.orgs[1:]), label="org"))

    def _delete_org(self, org: str) -> None:
        _, note = self._act(self.p.kinde.delete_org, org)
        self._say(f"delete org {self.alias[org]}" + note)
        self.orgs.remove(org)
        self.owner = {c: o for c, o in self.owner.items() if o != org}
        for joined in self.orgs_of.values():
            if org in joined:
                joined.remove(org)
        self._forget_hand(org=org)
        self.grants = {g: t for g, t in self.grants.items() if t.org_code != org}

    @precondition(lambda self: self.orgs_of)
    @rule(data=st.data())
    def join_org(self, data: st.DataObject) -> None:
        user = self._user(data)
        others = [o for o in self.orgs if o not in self.orgs_of[user]]
        if not others:
            return
        self._join(user, data.draw(st.sampled_from(others), label="org"))

    def _join(self, user: str, org: str) -> None:
        _, note = self._act(self.p.kinde.add_user_to_org, user, org, send_webhook=True)
        self._say(f"{self.alias[user]} joins {self.alias[org]}" + note)
        self.orgs_of[user].append(org)

    @precondition(lambda self: any(self.orgs_of.values()))
    @rule(data=st.data())
    def leave_org(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(self._members()), label="user")
        self._leave(user, data.draw(st.sampled_from(self.orgs_of[user]), label="org"))

    def _leave(self, user: str, org: str, *, event: bool = True) -> None:
        """`event` False: as Kinde does it (no event for a removal), so only a pass or a later event can see it."""
        _, note = self._act(self.p.kinde.remove_user_from_org, user, org, send_webhook=event)
        self._say(f"{self.alias[user]} leaves {self.alias[org]}" + ("" if event else " (no event)") + note)
        self.orgs_of[user].remove(org)
        self.hand.pop(Target(org, user), None)

    def _outsiders(self) -> list[tuple[str, str]]:
        """(org with a customer, live user with no customer of its own not in it) pairs, by alias: who can join a
        paying org and leave it with no event. Not a user with its own customer: where that customer is placed
        depends on the user's orgs (one org: there; two: the B2C org), and Kinde says nothing of a removal, so
        after a silent leave the service keeps the old placement until the user's next event or a reconcile
        (docs/kinde-facts.md); the oracle, reading Kinde, would expect the new one at once."""
        paying = [o for o in self.orgs if o in self.owner.values()]
        own = set(self.owner.values())
        pairs = [(o, u) for o in paying for u in self.orgs_of if o not in self.orgs_of[u] and u not in own]
        return sorted(pairs, key=lambda pair: (self.alias[pair[0]], self.alias[pair[1]]))

    @precondition(lambda self: not self.held and bool(self._outsiders()))
    @rule(data=st.data(), plans=st.permutations(BOUGHT[:2]))
    def join_then_leave_before_the_orgs_pass(self, data: st.DataObject, plans: list[str]) -> None:
        """A user joins an org whose customer holds a plan with roles by event, and leaves it with no event (as
        Kinde), each settled, with Kinde answering; then the org's customer buys another plan, so its pass runs
        after the leave and must leave the target it no longer covers.

        The org's plan comes first: a join into an org holding nothing writes nothing to leave. And Kinde
        answers first: a join's pass refused for a withdrawn scope writes nothing either (both cases made an
        earlier version of this rule reach nothing: docs/reliability.md)."""
        org, user = data.draw(st.sampled_from(self._outsiders()), label="org, user")
        if self.fault != "normally":
            self._kinde("normally")
        self._change_plan(self.customer_of(org), plans[0])
        self.settle()
        self._join(user, org)
        self.settle()
        self._leave(user, org, event=False)  # as Kinde: the org's pass alone must see it
        self.settle()
        self._change_plan(self.customer_of(org), plans[1])

    @precondition(lambda self: any(self.orgs_of.values()))
    @rule(data=st.data())
    def grant_by_hand(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(self._members()), label="user")
        org = data.draw(st.sampled_from(self.orgs_of[user]), label="org")
        self.p.kinde.grant_role(user, HAND_ROLE, org)
        target = Target(org, user)
        self.hand[target] = self.hand.get(target, frozenset()) | {HAND_ROLE}
        self._say(f"give {HAND_ROLE} to {self.alias[user]} in {self.alias[org]} by hand")

    # --- hand grants (common/entitlements/manual_grants.py): on-call gives a managed role no plan pays for ---
    @precondition(lambda self: any(self.orgs_of.values()))
    @rule(data=st.data(), role=st.sampled_from(GIVEN), ends=st.sampled_from(GRANT_ENDS),
          via=st.sampled_from(GRANT_VIA))  # fmt: skip
    def grants_add(self, data: st.DataObject, role: str, ends: str, via: str) -> None:
        """A member of an org (a B2C user in the default org too: the grant then names no org) gets a role by hand."""
        user = data.draw(st.sampled_from(self._members()), label="user")
        self._grant(user, data.draw(st.sampled_from(self.orgs_of[user]), label="org"), role, ends, via=via)

    def _grant(self, user: str, org: str, role: str, ends: str, *, via: str = "cli", grant_id: str = "") -> str:
        """`rolesync grants add --user U [--org O] --role R [--until ...] --reason ...` or its PUT; `grant_id`:
        replace that grant (`--id`)."""
        until = time.time() + ENDS_AFTER_S[ends] if ends in ENDS_AFTER_S else None
        replaced, grant_id = bool(grant_id), grant_id or new_grant_id()
        name = self.alias.get(grant_id) or self._name("g", grant_id)
        named = "" if org == self.b2c else org  # as `grants add` without --org: the B2C org
        reason = f"model {name}"
        if via == "api":
            body = {"user_id": user, "roles": [role], "reason": reason, **({"org_code": named} if named else {}),
                    **({"until": until} if until is not None else {})}  # fmt: skip
            status = self.p.api_grants("PUT", grant_id, body)
            assert status in (200, 404, 409), f"PUT /v1/grants/{grant_id} answered {status}"
            if status != 200:  # the API knows a member only from events it has seen (one may be lost or queued)
                self._say(f"PUT /v1/grants answered {status}: on-call uses `rolesync grants add`, which asks Kinde")
                via = "api, then cli"
        if via != "api" and not self._grant_by_cli(HandGrant(grant_id, user, named, (role,), reason, "model",
                                                             time.time(), until)):  # fmt: skip
            return ""
        self.grants[grant_id] = Target(named, user)
        self.granted_users.add(user)
        where = self.alias[org] + ("" if named else " (no --org)")
        self._say(f"grants {'replace' if replaced else 'add'} {name}: {role} to {self.alias[user]} in {where}, "
                  f"{ends}, by {via}")  # fmt: skip
        return grant_id

    def _grant_by_cli(self, grant: HandGrant) -> bool:
        """`rolesync grants add`: it asks Kinde whether the user is in the org first, so while Kinde is faulted it
        may refuse; then nothing may be stored (what on-call sees is a one-line error, and they try again)."""
        try:
            self.p.grant_changes.add(grant)
            return True
        except (RetryableError, PermanentError) as exc:
            if self.fault == "normally" or isinstance(exc, BadGrantError):
                raise
            assert grant.grant_id not in {g.grant_id for g in self.p.grant_store.listed()}, "a refused grant was kept"
            self._say(f"grants add refused while Kinde answers {self.fault}: {type(exc).__name__}; nothing stored")
            return False

    @precondition(lambda self: bool(self.grants))
    @rule(data=st.data(), via=st.sampled_from(GRANT_VIA))
    def grants_remove(self, data: st.DataObject, via: str) -> None:
        self._ungrant(data.draw(st.sampled_from(sorted(self.grants, key=self.alias.__getitem__)), label="grant"), via)

    def _ungrant(self, grant_id: str, via: str = "cli") -> None:
        """`rolesync grants remove ID --reason ...` or its DELETE; a grant already ended by its `until` is gone."""
        if via == "api":
            status = self.p.api_grants("DELETE", grant_id, reason="model: ends")
            assert status in (200, 404), f"DELETE /v1/grants/{grant_id} answered {status}"
            gone = status == 404
        else:
            try:
                self.p.grant_changes.remove(grant_id, Actor("model", "ends"))
                gone = False
            except UnknownGrantError:
                gone = True
        del self.grants[grant_id]
        self._say(f"grants remove {self.alias[grant_id]} by {via}" + (" (it had ended)" if gone else ""))

    # --- billing ---
    @precondition(lambda self: self.owner)
    @rule(data=st.data(), plan=st.sampled_from(BOUGHT))
    def buy_plan(self, data: st.DataObject, plan: str) -> None:
        self._change_plan(self._customer(data), plan)

    def _change_plan(self, customer: str, plan: str) -> None:
        _, note = self._act(self.p.kinde.change_plan, customer, plan)
        self._say(f"{self.alias[customer]} buys {plan}" + note)
        self.failing.discard(customer)  # a new agreement is a checkout that went through

    @precondition(lambda self: self.owner)
    @rule(data=st.data())
    def cancel_plan(self, data: st.DataObject) -> None:
        self._cancel(self._customer(data))

    def _cancel(self, customer: str) -> None:
        _, note = self._act(self.p.kinde.cancel_plan, customer)
        self._say(f"{self.alias[customer]} cancels" + note)

    @precondition(lambda self: self.owner)
    @rule(data=st.data(), outcome=st.sampled_from(("failed", "succeeded")))
    def payment(self, data: st.DataObject, outcome: str) -> None:
        customer = self._customer(data)
        _, note = self._act(self.p.kinde.payment, customer, outcome)
        self._say(f"{self.alias[customer]} payment {outcome}" + note)
        (self.failing.add if outcome == "failed" else self.failing.discard)(customer)

    # --- on-call ---
    @precondition(lambda self: self.owner)
    @rule(data=st.data())
    def link_by_hand(self, data: st.DataObject) -> None:
        """On-call links a customer to where Kinde says it belongs now (its org, or its user's placement)."""
        self._link_by_hand(self._customer(data))

    def _link_by_hand(self, customer: str) -> None:
        owner = self.owner[customer]
        if owner in self.orgs_of:
            org = placement({"org_codes": self.orgs_of[owner]}, None, self.b2c)
            self.p.link_by_hand(customer, owner, org)
            self._say(f"link {self.alias[customer]} by hand to {self.alias[owner]} in {self.alias.get(org, org)}")
        else:
            self.p.link_by_hand(customer, None, owner)
            self._say(f"link {self.alias[customer]} by hand to org {self.alias[owner]}")

    # --- deliveries, processes and Kinde: one rule each, so the tenant's own actions dominate a sequence ---
    def settle(self) -> None:
        """Wait until the pipe is quiet: what came before is done before what comes next (regression sequences)."""
        self.p.wait_quiet(why="a step's settle")
        self._say("(settle)")

    def customer_of(self, owner: str) -> str:
        return next(c for c, o in self.owner.items() if o == owner)

    @rule(mode=st.sampled_from(DELIVERY_MODES))
    def delivery(self, mode: str) -> None:
        """Duplicated, shuffled (delayed up to 400 ms, so reordered), held then released at once, or lost."""
        kinde = self.p.kinde
        if mode == "lose the next action's events":
            self.lose_next = True
        elif mode in ("held", "released"):
            kinde.set_webhooks(paused=mode == "held")
            self.held = mode == "held"
        else:
            kinde.set_webhooks(duplicate_rate=1.0 if mode == "duplicated" else 0.0, shuffle=mode == "shuffled",
                               delay_ms=400 if mode == "shuffled" else 0)  # fmt: skip
        self._say(f"deliveries {mode}")

    @precondition(lambda self: self.restarts < self.max_restarts)
    @rule(slot=st.integers(0, WORKERS - 1))
    def restart_worker(self, slot: int) -> None:
        self.p.restart_worker(slot)
        self.restarts += 1
        self._say(f"kill -9 worker {slot} and start it again")

    @rule(fault=st.sampled_from(KINDE_FAULTS), data=st.data())
    def kinde_fault(self, fault: str, data: st.DataObject) -> None:
        self._kinde(fault, data.draw(st.sampled_from(WITHDRAWN), label="scope") if fault == "403" else "")

    def _kinde(self, fault: str, scope: str = "") -> None:
        kinde = self.p.kinde
        if fault == "401":
            kinde.expire_tokens()
        elif fault == "403":
            kinde.set_scopes([s for s in ALL_SCOPES if s not in scope.split("+")])
            self.scope_withdrawn = True
            fault = f"403 (no {scope})"
        elif fault == "429":
            kinde.set_rate_limit(5, burst=5)
        elif fault == "5xx":
            kinde.set_faults("*", error_503=0.3, error_500=0.1)
        else:
            kinde.clear_faults()
            kinde.set_scopes(list(ALL_SCOPES))
            kinde.set_rate_limit(0)
        self.fault = fault
        self._say(f"Kinde answers {fault}")

    # --- the check ---
    def teardown(self) -> None:
        tally = type(self).tally
        tally.sequences += 1
        tally.steps += len(self.steps)
        tally.restarts += self.restarts
        with TIMINGS.timed("teardown: heal"):
            self.p.heal()
        self.p.wait_quiet(why="teardown")
        lost = self.p.kinde.lost_deliveries()
        tally.lost_events += lost
        if self.scope_withdrawn:
            self.p.wait_forbidden_replayed()
            self.p.wait_quiet(why="after the forbidden replay")
        if (lost or self.scope_withdrawn) and not self.no_repair:
            tally.reconciles += 1
            self.p.reconcile()
            self.p.wait_quiet(why="after reconcile")
            self._say(f"(quiet; reconcile: {lost} event(s) lost, scope withdrawn: {self.scope_withdrawn})")
        with TIMINGS.timed("oracle: sandbox state"):
            state, grants = self.p.kinde.state(), self.p.granted()
        now = datetime.now(UTC)
        wrong = wrong_targets(state, PLANS, self.hand, now=now, b2c_org=self.b2c, failing=self.failing, grants=grants)
        sinks = self.wrong_sinks(state, now, grants)
        self.p.checked = True  # quiet, and only read since: the next reset need not wait out a quiet again
        if wrong or any(sinks.values()):
            report = self.report(wrong, sinks)
            tally.failed(wrong, report, sinks)
            if self.raise_on_wrong:
                raise AccessMismatchError(report)

    def wrong_sinks(
        self, state: Mapping[str, Any], now: datetime, grants: tuple[GrantGiven, ...] = ()
    ) -> dict[str, list[str]]:
        """The read API's answer per user, the table's rows and the last notification per (org, user), each
        against what the sandbox's state and the hand grants give; by kind (SINKS)."""
        answers = self.p.read_api([str(u["id"]) for u in state["users"]])
        held = holdings(state, PLANS, now=now, b2c_org=self.b2c, failing=self.failing, grants=grants)
        misread = wrong_answers(state, PLANS, answers, now=now, b2c_org=self.b2c, failing=self.failing,
                                grants=grants, granted_before=self.granted_users)  # fmt: skip
        with TIMINGS.timed("oracle: table rows"):
            found_rows = self.p.sinks.rows()
        with TIMINGS.timed("oracle: notifications"):
            last = self.p.sinks.last_notifications()
        rows = wrong_rows(held, found_rows, answers, PLANS)
        notified = wrong_notifications(held, last, answers, PLANS)
        return dict(zip(SINKS, (misread, rows, notified), strict=True))

    def report(self, wrong: list[Wrong], sinks: Mapping[str, Sequence[str]] | None = None) -> str:
        lines = ["steps:", *(f"  {n}. {s}" for n, s in enumerate(compress(self.steps), 1)), "wrong (org, user):"]
        lines += [f"  {w.describe()}" for w in wrong]
        for kind, found in (sinks or {}).items():
            lines += [f"{kind}:", *(f"  {m}" for m in found)] if found else []
        text = "\n".join(lines)
        for real, name in sorted(self.alias.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(real, name)
        return text
