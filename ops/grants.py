"""Hand grants for on-call (common/entitlements/manual_grants.py): the store and its changes over the CLI's Redis."""

from __future__ import annotations

from common.customers.links import RedisLinkStore
from common.entitlements.grant_recipients import Recipients
from common.entitlements.hand_grant_changes import HandGrantChanges
from common.entitlements.manual_grants import RedisHandGrantStore
from common.infra.connections import redis_client
from common.plans.mapping import load_plans
from common.settings import Settings
from ops.stores import audit_over


def open_store(settings: Settings) -> RedisHandGrantStore:
    return RedisHandGrantStore(redis_client(settings))


def open_changes(settings: Settings, recipients: Recipients | None = None) -> HandGrantChanges:
    """Adds and removes, checked against the managed roles of ROLESYNC_PLANS and `recipients` (by default Kinde,
    as `rolesync grants add` asks it), and recorded in the audit trail."""
    recipients = recipients if recipients is not None else kinde_recipients(settings)
    client = redis_client(settings)
    managed = load_plans(settings.plans_path).managed_roles
    return HandGrantChanges(RedisHandGrantStore(client), audit_over(client, settings), managed,
                            RedisLinkStore(client).customers_of_user, recipients)  # fmt: skip


def kinde_recipients(settings: Settings) -> Recipients:
    """Recipients checked against Kinde, on the fleet's shared token and rate gate."""
    import httpx

    from ops.kinde_recipients import KindeRecipients
    from worker.entrypoints.bootstrap import build_kinde

    client = redis_client(settings)
    return KindeRecipients(build_kinde(settings, client, httpx.Client(timeout=settings.kinde_http_timeout_s)))
