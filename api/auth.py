"""Bearer API keys from ROLESYNC_API_KEYS, compared in constant time.

Every configured key is compared (no early exit on a match), on SHA-256 digests so keys of any
length take the same time; the answer names the key's label, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from common.settings import ApiKey


@dataclass(frozen=True)
class Caller:
    label: str
    scopes: frozenset[str]


class Keys:
    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = [(_digest(k.key.reveal()), Caller(k.label, k.scopes)) for k in keys]

    def caller(self, authorization: str) -> Caller | None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.by_key(given)

    def by_key(self, given: str) -> Caller | None:
        """The caller whose key this is (the console's sign-in form sends the key itself)."""
        if not given.strip():
            return None
        offered, found = _digest(given.strip()), None
        for digest, caller in self._keys:
            if hmac.compare_digest(digest, offered) and found is None:
                found = caller
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
