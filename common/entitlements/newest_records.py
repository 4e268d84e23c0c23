"""One JSON record per customer in Redis, replaced only by a newer one: the grant records
(common/entitlements/grants.py) and the entitlement records (common/entitlements/customer.py) alike.

"Newer" is the put script's rule (grants.py `PUT_IF_NOT_OLDER`: a newer generation, or the same one read no
earlier); a store passes its script and, when the script touches more than the record, the keys it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

import redis

from common.infra.connections import redis_errors


class Record(Protocol):
    @property
    def customer_id(self) -> str: ...

    @property
    def generation(self) -> int: ...

    @property
    def read_at(self) -> float: ...

    def to_json(self) -> str: ...


R = TypeVar("R", bound=Record)


class RedisNewestRecords(Generic[R]):
    def __init__(
        self, client: redis.Redis, key: Callable[[str], str], parse: Callable[[str], R], what: str, put_script: str
    ) -> None:
        self._redis, self._key, self._parse, self._what = client, key, parse, what
        self._put = client.register_script(put_script)

    def get(self, customer_id: str) -> R | None:
        return self.get_many([customer_id]).get(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, R]:
        """The records that exist, by customer id."""
        wanted = list(customer_ids)
        if not wanted:
            return {}
        with redis_errors(f"reading {self._what}"):
            raws = self._redis.mget([self._key(c) for c in wanted])
        return {c: self._parse(str(raw)) for c, raw in zip(wanted, raws, strict=True) if raw}

    def put(self, record: R) -> bool:
        """Store the record unless the script keeps a newer one; True if written."""
        with redis_errors(f"writing {self._what}"):
            args: list[str | int] = [record.to_json(), record.generation, repr(record.read_at)]
            return bool(self._put(keys=self._put_keys(record.customer_id), args=args))

    def _put_keys(self, customer_id: str) -> list[str]:
        return [self._key(customer_id)]
