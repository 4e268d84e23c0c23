"""Adding and removing hand grants (common/entitlements/manual_grants.py), the same way from the CLI and the read API.

A change is checked first (only managed roles, a reason, an `until` to come, a user that exists and
is in the grant's org: common/entitlements/grant_recipients.py; nothing is stored otherwise), stored (which marks
the target due: the worker's schedule queues its pass), then recorded in the audit trail
(common/infra/audit_trail.py) with who made it: `--by` on the CLI, the key's label through the API. The
audit entry lands on the timeline of every customer linked to the user, so `customers history` shows
it beside the passes, and on the fleet's list (`rolesync audit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from common.entitlements.grant_recipients import Recipients
from common.entitlements.manual_grants import HandGrant, HandGrantStore, checked
from common.errors import PermanentError
from common.infra.audit_trail import Actor, Audit


class UnknownGrantError(PermanentError):
    reason = "unknown_grant"


@dataclass(frozen=True)
class HandGrantChanges:
    store: HandGrantStore
    audit: Audit
    managed: frozenset[str]  # plans.toml's managed roles: the only ones a grant may give
    customers_of_user: Callable[[str], list[str]]
    recipients: Recipients  # who may be granted: Kinde's answer (CLI) or what the service knows (API)
    clock: Callable[[], float] = time.time

    def add(self, grant: HandGrant) -> HandGrant | None:
        """Store the grant (replacing one of the same id); the replaced grant, if any."""
        now = self.clock()
        checked(grant, self.managed, now)
        self.recipients.check(grant.user_id, grant.org_code)
        old = self.store.put(grant, now)
        self.audit.record("grants_add", Actor.of(grant.by, grant.reason), self.customers_of_user(grant.user_id),
                          grant=grant.grant_id, user_id=grant.user_id, org_code=grant.org_code or None,
                          roles=list(grant.roles), until=grant.until, replaced=old is not None)  # fmt: skip
        return old

    def remove(self, grant_id: str, actor: Actor) -> HandGrant:
        removed = self.store.remove(grant_id, self.clock())
        if removed is None:
            raise UnknownGrantError(f"no hand grant {grant_id} (see: rolesync grants list)")
        self.audit.record("grants_remove", actor, self.customers_of_user(removed.user_id), grant=grant_id,
                          user_id=removed.user_id, roles=list(removed.roles),
                          granted_reason=removed.reason)  # fmt: skip
        return removed
