"""Fixed sequences of the access model: bugs found once, each replayed by the same machine and oracle.

Random sequences reach a given overlap only when the draws and the timing line up, so a bug they
once caught can slip through a small budget (docs/reliability.md, "The model's regression
sequences"). Each sequence here is a deterministic operation list with `settle` (the pipe quiet)
where the order of passes matters; it ends in the machine's own teardown, which checks every
(org, user)'s roles and the read API's answer for every user against the sandbox's state alone.
`make test` runs every one of them beside the random budget (tests/model/test_model.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chaos.model_machine import BILLING_READS, AccessMismatchError, AccessModel
from chaos.model_pipe import ModelPipe

Sequence = Callable[[AccessModel], None]
SIGN_UP_TIMEOUT_S = 30.0  # the sign-up's role not there by then: it fails (no payer still waits by then)


def union_both_ways(m: AccessModel) -> None:
    """An org plan and a member's personal plan on one (org, user): each party's pass keeps the other's roles.

    Catches: a pass keeping only its own customer's roles (worker/convergence/targets.py's union deleted).
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_client")
    user = m._create_user(org, with_customer=True)
    m._change_plan(m.customer_of(user), "plan_subscriber")
    m.settle()
    m._cancel(m.customer_of(org))  # the org's pass: the member keeps its personal plan's role
    m.settle()
    m._change_plan(m.customer_of(org), "plan_client")
    m.settle()
    m._cancel(m.customer_of(user))  # the user's pass: it keeps the org's role


def join_then_leave_before_the_orgs_pass(m: AccessModel) -> None:
    """A user joins a paying org by event, leaves it (no event, as Kinde), then the org's pass runs: the read API
    shows nothing held there.

    Catches: the join's target not put on the org customer's record (worker/convergence/converge.py `join`), so the
    org's pass never leaves it and the snapshot keeps the org's roles.
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_client")
    user = m._create_user(m.b2c, with_customer=False)
    m.settle()
    m._join(user, org)
    m.settle()
    m._leave(user, org, event=False)  # as Kinde: no event for a removal, so the org's pass alone can see it
    m.settle()
    m._change_plan(m.customer_of(org), "plan_subscriber")  # the org's next pass


def forbidden_pass_replayed(m: AccessModel) -> None:
    """A customer pass refused for a withdrawn scope is held, and the probe's replay runs that pass again.

    The plan's events are lost, so only on-call's link (a `converge_customer` pass) brings the roles; the
    scope is withdrawn under it. No reconcile follows (the sequence says so): the probe's replay alone
    must converge. Catches: a replay that sends every record as a webhook event to `handle_event`.
    """
    m.no_repair = True
    user = m._create_user(m.b2c, with_customer=True)
    m.settle()
    m.lose_next = True
    m._change_plan(m.customer_of(user), "plan_client")
    m.settle()
    m._kinde("403", BILLING_READS)
    m._link_by_hand(m.customer_of(user))
    m.settle()
    m.p.wait_held()
    m._kinde("normally")


def sign_up_behind_a_burst(m: AccessModel) -> None:
    """A burst of plan changes of paying customers goes bulk; a sign-up's first plan inside it stays fresh.

    Kinde answers slowly, so the bulk backlog drains for seconds. Fresh work does not wait behind it:
    when the sign-up's role reaches Kinde, at least a quarter of the payers' new roles must still be
    missing (measured: 18-19 of 24 still missing on the real code, none behind the planted bug, as the
    sign-up's plan then waits at the bulk queue's tail). Relative, not a wall-clock bound, so a loaded
    machine slows both sides alike. Catches: ingest routing to bulk every customer with a grant record
    (the sign-up's pass wrote a plan-less one) instead of every customer with plans.
    """
    payers = [m._create_user(m.b2c, with_customer=True) for _ in range(BURST_CUSTOMERS)]
    for user in payers:
        m._change_plan(m.customer_of(user), "plan_client")
    signing = m._create_user(m.b2c, with_customer=True)
    m.settle()  # every payer's record lists a plan; the sign-up's lists none
    m.p.kinde.set_faults("*", latency_ms=BURST_LATENCY_MS)
    m._say(f"Kinde answers in {BURST_LATENCY_MS} ms")
    for user in payers:
        m._change_plan(m.customer_of(user), "plan_subscriber")
    m.p.wait_delivered()  # the burst is in the ingest's queues: the sign-up's event is not behind it in delivery
    m._change_plan(m.customer_of(signing), "plan_subscriber")
    started = time.monotonic()
    while "role_subscriber" not in m.p.kinde.user_roles(signing, m.b2c):
        if time.monotonic() - started > SIGN_UP_TIMEOUT_S:
            break
        time.sleep(0.05)
    waiting = sum("role_subscriber" not in m.p.kinde.user_roles(u, m.b2c) for u in payers)
    m._say(f"the sign-up's role arrived after {time.monotonic() - started:.1f} s; {waiting} payers still wait")
    if waiting < BURST_CUSTOMERS // 4:
        raise AccessMismatchError(
            m.report(
                [],
                {
                    "the sign-up waited": [
                        f"the sign-up's first plan waited behind the bulk burst: "
                        f"{waiting} of {BURST_CUSTOMERS} payers still wait"
                    ]
                },
            )
        )


def org_deleted_under_a_members_personal_customer(m: AccessModel) -> None:
    """Users with their own paying customers are members of an org, and the org is deleted: each user's
    personal roles end up where Kinde places the user now.

    `organization.deleted` drops the links into the org and asks for an index rebuild (Kinde sends no event
    for the members), which re-places every user. `silent` is placed in the org at its pass, then added to
    the default org by API with no webhook, so the pipe's link and roles stay in the org; once the org is
    gone the rebuild re-learns the dropped link in the default org. `twice` is in two orgs (placed in the
    default org, where it is no member), then only in `other` (a move of a link the deletion kept).
    `alone` had only the org and belongs to none after: nothing to hold, the read API still knows it.
    Catches: a link re-learned at another placement than its grant record's targets stored as new, with no
    pass (worker/customers/park.py `Parking.learned`), so `silent`'s roles are never written in the default org.
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_client")
    other = m._create_org(with_customer=False)
    silent = m._create_user(org, with_customer=True)  # its only org: placed there
    m._change_plan(m.customer_of(silent), "plan_subscriber")
    alone = m._create_user(org, with_customer=True)
    m._change_plan(m.customer_of(alone), "plan_subscriber")
    twice = m._create_user(org, with_customer=True)
    m._join(twice, other)  # two orgs, neither the default one: placed in the default org
    m._change_plan(m.customer_of(twice), "plan_subscriber")
    m.settle()
    m.p.kinde.add_user_to_org(silent, m.b2c)  # no webhook: the pipe keeps it placed in the org
    m.orgs_of[silent].append(m.b2c)
    m._say(f"{m.alias[silent]} joins {m.alias[m.b2c]} (no event)")
    m._delete_org(org)  # the rebuild: `silent` in the default org, `twice` in `other`, `alone` nowhere


def org_deleted_with_its_event_lost(m: AccessModel) -> None:
    """A paying org with a member and a user who joined it by event is deleted, and `organization.deleted` is
    lost; the teardown's reconcile must still clear what they held there (read API, table row, `removed`).

    Catches: an org customer's pass failing for good (dead-lettered `kinde_ORGANIZATION_NOT_FOUND`) when its
    org is gone, instead of doing what `organization.deleted` does (worker/events/handlers.py `_org_gone`).
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_client")
    m._create_user(org, with_customer=False)
    joiner = m._create_user(m.b2c, with_customer=False)
    m.settle()
    m._join(joiner, org)
    m.settle()
    m.lose_next = True
    m._delete_org(org)


def member_leaves_with_no_pass_after(m: AccessModel) -> None:
    """A member of a paying org leaves it by event and the org's customer never passes again: the read API,
    the table and the last notification must not keep showing the org's plan for it (404: it holds nothing).

    Catches: a user event converging only the orgs the user is in (Kinde sends no event for a removal), so
    an ex-member's snapshot waited for the org customer's next pass (worker/events/handlers.py `_left_targets`).
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_subscriber")
    user = m._create_user(org, with_customer=False)
    m.settle()
    m._leave(user, org)


def hand_grants(m: AccessModel) -> None:
    """Hand grants beside paying customers, ending by themselves, and back with a member who rejoins: three cases
    on their own users and orgs, interleaved so they share their settles (each settle waits for the whole pipe).

    * Kept by every pass: a member of a paying org and a B2C user with their own plans each get `role_client`
      by hand (one by the CLI's function, one by `PUT /v1/grants`); then the org cancels and the member's and
      the B2C user's customers change plans: three passes that must each leave the grant's role, and the read
      API, the table and the last notification name the grant. Catches: a customer's pass dropping the hand
      grants from the union (worker/convergence/targets.py), so it removes a role only a grant gives.
    * Ended by themselves: a B2C user with a plan holds `role_client` by hand until removed, settled; on-call
      shortens it to end in 2 s (`grants add --id` with a new `--until`); a user with no customer gets
      `role_subscriber` for 3 s by `PUT /v1/grants`. Quiet waits for both to end (their targets are due within
      its horizon); then the first holds only its plan's role, the second nothing (no row, `removed`).
      Catches: an expired grant never removed (worker/sweeps/grant_schedule.py's end of a grant, or its pass, not run).
    * Back with its member: a user with no customer holds `role_client` by hand in an org no customer pays
      for; it leaves by event (its snapshot goes) and joins again. Catches: a user event converging only the
      paying orgs it joined (worker/events/handlers.py `_member_targets`), so nobody converges the grant's target.
    """
    org = m._create_org(with_customer=True)
    m._change_plan(m.customer_of(org), "plan_subscriber")
    member = m._create_user(org, with_customer=True)
    b2c = m._create_user(m.b2c, with_customer=True)
    m._change_plan(m.customer_of(b2c), "plan_subscriber")
    ending = m._create_user(m.b2c, with_customer=True)
    m._change_plan(m.customer_of(ending), "plan_subscriber")
    free = m._create_user(m.b2c, with_customer=False)
    rejoiner = m._create_user(m.b2c, with_customer=False)
    bare = m._create_org(with_customer=False)
    m._join(rejoiner, bare)
    m.settle()
    m._grant(member, org, "role_client", "until removed", via="cli")
    m._grant(b2c, m.b2c, "role_client", "in a day", via="api")
    shortened = m._grant(ending, m.b2c, "role_client", "until removed", via="cli")
    m._grant(rejoiner, bare, "role_client", "until removed", via="cli")
    m.settle()
    m._cancel(m.customer_of(org))  # the org's pass over its member
    m._change_plan(m.customer_of(member), "plan_subscriber")  # the member's own pass, placed in the org
    m._change_plan(m.customer_of(b2c), "plan_unknown")  # the B2C user's pass: its plan now grants nothing
    m._grant(ending, m.b2c, "role_client", "in 2 s", via="cli", grant_id=shortened)
    m._grant(free, m.b2c, "role_subscriber", "in 3 s", via="api")
    m._leave(rejoiner, bare)
    m.settle()
    m._join(rejoiner, bare)


BURST_CUSTOMERS, BURST_LATENCY_MS = 24, 200
REGRESSIONS: dict[str, Sequence] = {
    "union both ways": union_both_ways,
    "join then leave before the org's pass": join_then_leave_before_the_orgs_pass,
    "forbidden pass replayed": forbidden_pass_replayed,
    "sign-up behind a burst": sign_up_behind_a_burst,
    "org deleted under a member's personal customer": org_deleted_under_a_members_personal_customer,
    "org deleted with its event lost": org_deleted_with_its_event_lost,
    "a member leaves with no pass after": member_leaves_with_no_pass_after,
    "hand grants: kept by every pass, ended by themselves, back with their member": hand_grants,
}


def run_regression(pipe: ModelPipe, name: str) -> None:
    """One fixed sequence on the machine, then its teardown's check; AccessMismatchError if it ends wrong."""
    machine = type("AccessModelRegression", (AccessModel,), {"pipe": pipe, "raise_on_wrong": True})()
    try:
        REGRESSIONS[name](machine)
    finally:
        machine.p.kinde.clear_faults()
    machine.teardown()
