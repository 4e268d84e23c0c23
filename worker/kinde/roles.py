"""Tenant lookups shared by every process and cached in Redis: role key → id, and the default org.

Kinde assigns roles by id, while plans.toml names keys. The key → id map (`keys.KINDE_ROLES`) is
read from `GET /api/v1/roles` once an hour, or at once when Kinde says ROLE_NOT_FOUND. The
tenant's default organization (`is_default`, `keys.KINDE_DEFAULT_ORG`) is where B2C roles go when
neither the customer's link nor `KINDE_ORG_CODE` names an org.
"""

from __future__ import annotations

from typing import Protocol

import redis
from redis.typing import EncodableT, FieldT

from common import keys
from common.errors import PermanentError
from common.infra.connections import redis_errors
from worker.kinde.api import KindeApi

ROLES_TTL_S = 3600
DEFAULT_ORG_TTL_S = 3600


class RoleCatalog(Protocol):
    def id_of(self, role_key: str) -> str:
        """The role's id; PermanentError `role_not_found:<key>` when the tenant has no such role."""

    def forget(self) -> None:
        """Drop the cached map (Kinde said ROLE_NOT_FOUND for an id we held)."""


class RedisRoleCatalog:
    def __init__(self, client: redis.Redis, kinde: KindeApi) -> None:
        self._redis = client
        self._kinde = kinde

    def id_of(self, role_key: str) -> str:
        with redis_errors("reading the role catalog"):
            cached = self._redis.hget(keys.KINDE_ROLES, role_key)
        found = str(cached) if cached else self._refresh().get(role_key)
        if not found:
            raise PermanentError(
                f"role {role_key!r} (plans.toml) does not exist in Kinde", reason=f"role_not_found:{role_key}"
            )
        return found

    def forget(self) -> None:
        with redis_errors("dropping the role catalog"):
            self._redis.delete(keys.KINDE_ROLES)

    def _refresh(self) -> dict[str, str]:
        by_key: dict[str, str] = {
            str(r["key"]): str(r["id"]) for r in self._kinde.roles() if r.get("key") and r.get("id")
        }
        stored: dict[FieldT, EncodableT] = dict(by_key.items())
        if by_key:
            with redis_errors("storing the role catalog"), self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.KINDE_ROLES)
                pipe.hset(keys.KINDE_ROLES, mapping=stored)
                pipe.expire(keys.KINDE_ROLES, ROLES_TTL_S)
                pipe.execute()
        return by_key


def default_org(client: redis.Redis, kinde: KindeApi) -> str:
    with redis_errors("reading the default org"):
        cached = client.get(keys.KINDE_DEFAULT_ORG)
    if cached:
        return str(cached)
    code = next((str(o["code"]) for o in kinde.list_organizations(expand_billing=False) if o.get("is_default")), None)
    if code is None:
        raise PermanentError("the tenant has no default organization; set KINDE_ORG_CODE", reason="no_default_org")
    with redis_errors("storing the default org"):
        client.set(keys.KINDE_DEFAULT_ORG, code, ex=DEFAULT_ORG_TTL_S)
    return code
