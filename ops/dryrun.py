"""A Kinde port for `reconcile --dry-run`: reads go through to Kinde, writes are only written down.

The converge code path is the worker's own (worker/convergence/converge.py); only its Kinde port is swapped,
so the preview is what a real pass would do. Reads are counted in HTTP calls (list endpoints by
pages of `PAGE_SIZE`), so `calls` is what the pass would cost: its reads plus its writes. Token
and role-catalog look-ups are shared and cached by the fleet, so they are not charged to a customer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from common.entitlements.grants import Grants, GrantStore, Target
from worker.kinde.api import PAGE_SIZE, EntitlementRows, Json, KindeApi, Page

Write = tuple[str, str, str, str]  # (POST|DELETE, org_code, user_id, role_id)


def pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE_SIZE))


class DryRunKinde:
    def __init__(self, kinde: KindeApi) -> None:
        self._kinde = kinde
        self.reads = 0
        self.writes: list[Write] = []

    def reset(self) -> None:
        self.reads, self.writes = 0, []

    @property
    def calls(self) -> int:
        return self.reads + len(self.writes)

    def get_user(self, user_id: str) -> Json:
        self.reads += 1
        return self._kinde.get_user(user_id)

    def list_users(self, *, expand_billing: bool) -> Iterator[Json]:
        return self._paged(list(self._kinde.list_users(expand_billing=expand_billing)))

    def users_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        self.reads += 1
        return self._kinde.users_page(expand_billing=expand_billing, next_token=next_token)

    def get_organization(self, org_code: str) -> Json:
        self.reads += 1
        return self._kinde.get_organization(org_code)

    def list_organizations(self, *, expand_billing: bool) -> Iterator[Json]:
        return self._paged(list(self._kinde.list_organizations(expand_billing=expand_billing)))

    def organizations_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        self.reads += 1
        return self._kinde.organizations_page(expand_billing=expand_billing, next_token=next_token)

    def org_members(self, org_code: str) -> Iterator[Json]:
        return self._paged(list(self._kinde.org_members(org_code)))

    def agreements(self, customer_id: str) -> list[Json]:
        return list(self._paged(self._kinde.agreements(customer_id)))

    def entitlements(self, customer_id: str) -> EntitlementRows:
        self.reads += 1  # a dry run never asks (it keeps no snapshot); counted should that change
        return self._kinde.entitlements(customer_id)

    def roles(self) -> list[Json]:
        return self._kinde.roles()  # the fleet's cached catalog: not charged to a customer

    def user_roles(self, org_code: str, user_id: str) -> list[Json]:
        return list(self._paged(self._kinde.user_roles(org_code, user_id)))

    def add_role(self, org_code: str, user_id: str, role_id: str) -> None:
        self.writes.append(("POST", org_code, user_id, role_id))

    def remove_role(self, org_code: str, user_id: str, role_id: str) -> bool:
        self.writes.append(("DELETE", org_code, user_id, role_id))
        return True

    def _paged(self, rows: list[Json]) -> Iterator[Json]:
        self.reads += pages(len(rows))
        return iter(rows)


class DryRunGrants:
    """Grant records for a preview: reads see what the preview would have recorded, writes stay here."""

    def __init__(self, grants: GrantStore) -> None:
        self._grants = grants
        self._written: dict[str, Grants] = {}
        self._leaving: dict[str, set[Target]] = {}

    def get(self, customer_id: str) -> Grants | None:
        return self.get_many([customer_id]).get(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Grants]:
        wanted = list(customer_ids)
        stored = self._grants.get_many([c for c in wanted if c not in self._written])
        return {**stored, **{c: self._written[c] for c in wanted if c in self._written}}

    def put(self, grants: Grants) -> bool:
        stored = self.get(grants.customer_id)
        if stored is not None:  # as RedisGrantStore.put: what the stored record lists and this one drops is left
            self.add_leaving(grants.customer_id, set(stored.targets) - set(grants.targets))
        self._written[grants.customer_id] = grants
        return True

    def cover(self, customer_id: str, target: Target) -> bool:
        found = self.get(customer_id)
        if found is not None and target not in found.targets:
            self._written[customer_id] = replace(found, targets=(*found.targets, target))
        return found is not None

    def leaving(self, customer_id: str) -> list[Target]:
        found = self._leaving.setdefault(customer_id, set(self._grants.leaving(customer_id)))
        return sorted(found)

    def add_leaving(self, customer_id: str, targets: Iterable[Target]) -> None:
        self._leaving.setdefault(customer_id, set(self._grants.leaving(customer_id))).update(targets)

    def left(self, customer_id: str, target: Target) -> None:
        self._leaving.get(customer_id, set()).discard(target)


class _OpenFence:
    def check(self) -> None:
        return None

    def written_since(self, snapshot: int) -> bool:
        return False

    def wrote(self) -> None:
        return None


class DryRunLocks:
    """No leases for a preview: it writes nothing, so it cannot race a pass."""

    def snapshot(self) -> int:
        return 0

    @contextmanager
    def hold(self, target: Target) -> Iterator[_OpenFence]:
        yield _OpenFence()
