"""Every Redis key shape the service uses, in one place.

Our own keys live under `rolesync:`; Dramatiq's live under its namespace `dramatiq:` and are
written here only because the ingest enqueues natively (see ingest/enqueue.py) with the layout
documented by Dramatiq's "enqueueing from other languages" protocol.
"""

from __future__ import annotations

PREFIX = "rolesync"
DRAMATIQ_NAMESPACE = "dramatiq"


# --- Dramatiq's queue layout (dramatiq/brokers/redis/dispatch.lua) ---
def queue_list(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}"


def queue_messages(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}.msgs"


def delay_queue_list(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}.DQ"


def delay_queue_messages(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}.DQ.msgs"


DRAMATIQ_HEARTBEATS = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"


def ack_set(broker_id: str, queue: str) -> str:
    """One broker's (one worker process's) set of fetched-but-unacked ids for `queue`."""
    return f"{DRAMATIQ_NAMESPACE}:__acks__.{broker_id}.{queue}"


def ack_sets_pattern(queue: str) -> str:
    """SCAN pattern of every broker's set of fetched-but-unacked ids for `queue` (in flight)."""
    return f"{DRAMATIQ_NAMESPACE}:__acks__.*.{queue}"


# --- ingest dedupe: one key per signed event_id; its value records the webhook-id ---
def seen_event(event_id: str) -> str:
    return f"{PREFIX}:seen:{event_id}"


# --- customer links: customer_id -> {kind, user_id, org_code, source, learned_at} ---
def customer_link(customer_id: str) -> str:
    return f"{PREFIX}:link:{customer_id}"


def user_customers(user_id: str) -> str:
    """Set of customer ids linked to a user, so user.deleted can drop them."""
    return f"{PREFIX}:user-customers:{user_id}"


def org_customers(org_code: str) -> str:
    """Set of customer ids whose link names the org (its own, or a member's), so organization.deleted can drop them."""
    return f"{PREFIX}:org-customers:{org_code}"


def org_payers(org_code: str) -> str:
    """Set of customer ids whose link is the org's own (kind org): they cover every member."""
    return f"{PREFIX}:org-payers:{org_code}"


LINKS_INDEX = f"{PREFIX}:links"  # set of every linked customer id (reconcile sweeps it)


# --- converge coalescing: generation counters and a per-customer lease ---
def customer_generation(customer_id: str) -> str:
    return f"{PREFIX}:gen:{customer_id}"


def customer_converged(customer_id: str) -> str:
    return f"{PREFIX}:converged:{customer_id}"


def customer_lock(customer_id: str) -> str:
    return f"{PREFIX}:lock:{customer_id}"


def event_generation(event_id: str) -> str:
    return f"{PREFIX}:event-gen:{event_id}"


def event_parts(event_id: str) -> str:
    """Set of the parts of one user/org event already done (each customer or target it touched)."""
    return f"{PREFIX}:event-parts:{event_id}"


def customer_state(customer_id: str) -> str:
    """Hash: last converged time, desired roles, last error (for `rolesync customers show`)."""
    return f"{PREFIX}:customer:{customer_id}"


# --- Kinde client state shared by every worker process ---
KINDE_TOKEN = f"{PREFIX}:kinde:token"
KINDE_TOKEN_LOCK = f"{PREFIX}:kinde:token-lock"
KINDE_COOLDOWN_UNTIL = f"{PREFIX}:kinde:cooldown-until"
KINDE_RPS_CAP = f"{PREFIX}:kinde:rps-cap"  # "lowered:climb_from" after a 429, expires once climbed back
KINDE_PROBE = f"{PREFIX}:kinde:probe"  # held for a probe gap by the one call that probes a cool-down
KINDE_RATE_LIMIT = f"{PREFIX}:kinde:rate"
KINDE_ROLES = f"{PREFIX}:kinde:roles"
KINDE_DEFAULT_ORG = f"{PREFIX}:kinde:default-org"
KINDE_429_LOG = f"{PREFIX}:kinde:429s"
# Set (with a short expiry) while a fresh event's call waits for a slot: bulk work then leaves a reserve
# of each window's slots to it (worker/kinde/ratelimit.py).
KINDE_FRESH_WAITING = f"{PREFIX}:kinde:fresh-waiting"
SCOPE_PROBE_SLOT = f"{PREFIX}:kinde:scope-probe"  # held for one probe interval by the worker that probes

# --- the customer-index rebuild (worker/customers/rebuild.py) ---
REBUILD_CURSOR = f"{PREFIX}:rebuild:cursor"  # JSON cursor of the run in progress; absent when none runs
REBUILD_LEASE = f"{PREFIX}:rebuild:lease"  # holder id of the chunk chain running it, renewed per step
REBUILD_STARTED = f"{PREFIX}:rebuild:started"  # when the current or last run started (epoch s)
REBUILD_FINISHED = f"{PREFIX}:rebuild:finished"  # when the last finished run had started (epoch s)
REBUILD_REQUESTED = f"{PREFIX}:rebuild:requested"  # set: start another run when the current one ends

# --- dead letters (our own store; Dramatiq's .XQ expires and keeps no reason) ---
DEAD_LETTERS = f"{PREFIX}:dlq"  # zset id -> last failure time (s)


def dead_letter(record_id: str) -> str:
    return f"{PREFIX}:dlq:record:{record_id}"


def dead_letters_of_customer(customer_id: str) -> str:
    return f"{PREFIX}:dlq:customer:{customer_id}"


def dead_letter_replayed(record_id: str) -> str:
    """A replayed record, kept a while so that failing again counts on from its first failure."""
    return f"{PREFIX}:dlq:replayed:{record_id}"


# --- ops ---
# --- a lost Redis noticed and healed (common/infra/data_epoch.py, data_loss.py, worker/sweeps/data_heal.py) ---
DATA_EPOCH = (
    f"{PREFIX}:epoch"  # hash {id, tick}: made by the first process to find none, its tick raised by every check
)
DATA_LOSS = f"{PREFIX}:data-loss"  # hash {epoch, noticed_at, noticed_by, state, ...}: the last loss and its healing
DATA_HEAL_LOCK = f"{PREFIX}:data-loss:heal-lock"  # holder id of the one replica healing, renewed while it runs

# --- the Redis layout version (common/infra/layout.py) ---
LAYOUT_VERSION = f"{PREFIX}:layout"  # the layout version the data was written with (an integer as a string)
LAYOUT_LOCK = f"{PREFIX}:layout:lock"  # holder id of the one process migrating the layout, renewed per step

AUDIT_LOG = f"{PREFIX}:audit"  # list of JSON entries, newest first, capped: on-call's actions (ops/audit.py)
WORKER_HEARTBEATS = f"{PREFIX}:workers"  # zset worker id -> last beat (s)
RECONCILE_LAST = f"{PREFIX}:reconcile:last"
RECONCILE_SCHEDULER_LOCK = f"{PREFIX}:reconcile:scheduler"  # held for one interval by the replica that swept

# --- the plans.toml mapping: what the fleet runs and what a sweep applied (common/plans/fleet_mapping.py) ---
MAPPING_APPLIED = f"{PREFIX}:mapping:applied"  # JSON {fingerprint, plans, at}: the mapping a finished sweep applied
MAPPING_PENDING = f"{PREFIX}:mapping:pending"  # JSON {fingerprint, plans, at, held}: one running, not applied yet
MAPPING_SWEEP = f"{PREFIX}:mapping:sweep"  # JSON {fingerprint, total, done, started_at}: the sweep applying it
MAPPING_SWEEP_LOCK = f"{PREFIX}:mapping:sweep-lock"  # holder id of the one replica (or CLI) sweeping
WORKER_MODES = f"{PREFIX}:workers:mode"  # hash worker id -> live or shadow (ROLESYNC_MODE), written with its beat
# hash target key ("org|user") -> JSON: what a shadow pass would write there, and why
# (common/entitlements/shadow_writes.py)
SHADOW_TARGETS = f"{PREFIX}:shadow:targets"
WORKER_MAPPINGS = f"{PREFIX}:workers:mapping"  # hash worker id (as in WORKER_HEARTBEATS) -> mapping fingerprint


# --- payment standing: customer_id -> {standing: ok|failing, at: event time} (common/plans/payments.py) ---
def customer_payment(customer_id: str) -> str:
    return f"{PREFIX}:payment:{customer_id}"


# --- bulk without starvation (ingest/enqueue.py) ---
def billing_burst(window: int) -> str:
    """Counter of the billing events ingested in one burst window (numbered from the epoch)."""
    return f"{PREFIX}:ingest:billing-burst:{window}"


# --- convergence per (org, user) target (common/entitlements/grants.py, worker/convergence/targets.py) ---
def customer_grants(customer_id: str) -> str:
    """JSON record: the plans a customer pays for, the managed roles they grant, the targets it covers."""
    return f"{PREFIX}:grants:{customer_id}"


def customer_leaving(customer_id: str) -> str:
    """Set of targets ("org|user", org empty = the B2C org) the customer's roles must still leave."""
    return f"{PREFIX}:grants-leaving:{customer_id}"


def target_lock(target_key: str) -> str:
    """Lease held while one (org, user) target's roles are read and written."""
    return f"{PREFIX}:target-lock:{target_key}"


def target_written(target_key: str) -> str:
    """The value of `TARGET_WRITES` after the last write to the target (a member listing older than it is stale)."""
    return f"{PREFIX}:target-written:{target_key}"


TARGET_WRITES = f"{PREFIX}:target-writes"  # counter raised by every write to any target


# --- hand grants: managed roles given by hand to an (org, user), with a reason and an optional expiry ---
# (common/entitlements/manual_grants.py; not the customers' grant records above)
def hand_grant(grant_id: str) -> str:
    """JSON record of one hand grant: user, org ("" = the B2C org), roles, reason, by, created_at, until."""
    return f"{PREFIX}:hand-grant:{grant_id}"


def user_hand_grants(user_id: str) -> str:
    """Set of the ids of the hand grants naming the user (in any org): a target's union reads them."""
    return f"{PREFIX}:hand-grants-of-user:{user_id}"


HAND_GRANTS = f"{PREFIX}:hand-grants"  # zset grant id -> its `until` (+inf without one): list and expiring-within
# zset "kind|grant id|org|user" -> when the grant's target must be converged (kind: changed or expires)
HAND_GRANTS_DUE = f"{PREFIX}:hand-grants:due"
HAND_GRANTS_SLOT = f"{PREFIX}:hand-grants:slot"  # held for one tick by the replica running the schedule


# --- the snapshot: what is in force per customer and per target ---
# (common/entitlements/customer.py, common/entitlements/snapshots.py)
def customer_entitlements(customer_id: str) -> str:
    """JSON record: the features and limits Kinde last listed for the customer, and the agreements digest."""
    return f"{PREFIX}:entitlements:{customer_id}"


def deleted_user(user_id: str) -> str:
    """Set on `user.deleted` (worker/convergence/deleted.py): a pass checks it before storing a snapshot."""
    return f"{PREFIX}:deleted-user:{user_id}"


def deleted_org(org_code: str) -> str:
    """Set when `organization.deleted` is handled (worker/convergence/deleted.py), like `deleted_user`."""
    return f"{PREFIX}:deleted-org:{org_code}"


def user_snapshots(user_id: str) -> str:
    """Hash org code -> JSON snapshot of the (org, user) target: one read gives the API all of a user's."""
    return f"{PREFIX}:snapshots:{user_id}"


def customer_usage(customer_id: str) -> str:
    """Hash feature code -> JSON {value, at, event_id, raw}: the latest metered usage per feature."""
    return f"{USAGE_PREFIX}{customer_id}"


USAGE_PREFIX = f"{PREFIX}:usage:"  # the read API's one-call script builds usage keys from snapshots it reads


def minute_counts(minute: int) -> str:
    """Hash name -> count of one minute (epoch s // 60), expiring: the console chart (common/infra/minute_counts.py)."""
    return f"{PREFIX}:minute:{minute}"


def customer_history(customer_id: str) -> str:
    """List of JSON entries, newest first, capped: what happened to the customer (common/customers/history.py)."""
    return f"{PREFIX}:history:{customer_id}"


PLAN_SELECTIONS = f"{PREFIX}:plan-selections"  # list: the fleet's last decisions, newest first, capped (the console)


def customer_plan_selections(customer_id: str) -> str:
    """List of JSON plan-selection decisions, newest first, capped apart from the timeline.

    (common/guard/selection_log.py)
    """
    return f"{PREFIX}:plan-selections:{customer_id}"


# --- the optional Postgres entitlements table (common/table/table_outbox.py, worker/outputs/table_sync.py) ---
TABLE_GENERATION = f"{PREFIX}:table:generation"  # counter: one number per snapshot change, fleet-wide, never reused
TABLE_PENDING = f"{PREFIX}:table:pending"  # zset target key ("org|user") -> when its oldest unwritten change was noted
TABLE_CHANGES = f"{PREFIX}:table:changes"  # hash target key -> JSON {generation, row|null}: its newest unwritten change


# --- the plan-selection guard (common/guard/members.py, common/guard/usage_reports.py, api/plan_selection.py) ---
def org_members(org_code: str) -> str:
    """Set of the org's member user ids: a Kinde member listing, kept up by user events since."""
    return f"{PREFIX}:org-members:{org_code}"


def org_members_read(org_code: str) -> str:
    """When the member listing that filled `org_members(org)` was read (epoch s); absent = never filled."""
    return f"{PREFIX}:org-members-read:{org_code}"


def org_members_seen(org_code: str) -> str:
    """Hash user id -> "+t" / "-t": a join or leave a user event showed at t (epoch s), kept until a
    listing read after t replaces the org's set, so a listing read before it cannot undo it."""
    return f"{PREFIX}:org-members-seen:{org_code}"


def org_members_asked(org_code: str) -> str:
    """Held (SET NX EX) while a refresh of the org's members is queued: at most one per interval per org."""
    return f"{PREFIX}:org-members-asked:{org_code}"


def user_orgs(user_id: str) -> str:
    """Set of the orgs the member cache has the user in, so a user event or deletion can take it out."""
    return f"{PREFIX}:user-orgs:{user_id}"


def customer_usage_reports(customer_id: str) -> str:
    """Hash metric -> JSON {value, at, by}: usage the app reported (PUT /v1/customers/{id}/usage/{metric})."""
    return f"{PREFIX}:usage-reports:{customer_id}"
