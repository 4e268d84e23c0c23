"""Which keys of a JWKS can verify a Kinde webhook: one rule, for the ingest and for `rolesync doctor`.

Kinde signs webhooks with RS256 and names the key in the JWT header (docs/kinde-facts.md, Webhooks),
so a usable key is an RSA signing key (`use` absent or `sig`), for RS256 (`alg` absent or RS256),
with a string `kid`, that PyJWT can load. Doctor counting any other key would pass a JWKS whose
every webhook the ingest then refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt


def usable_keys(doc: object) -> dict[str, jwt.PyJWK]:
    """kid -> key for every key of the JWKS document a Kinde webhook can be verified with."""
    keys = doc.get("keys") if isinstance(doc, Mapping) else None
    found = {}
    for item in keys if isinstance(keys, list) else []:
        key = _loaded(item) if _is_rsa_signing_key(item) else None
        if key is not None:
            found[str(item["kid"])] = key
    return found


def _is_rsa_signing_key(key: Any) -> bool:
    return (
        isinstance(key, Mapping)
        and key.get("kty") == "RSA"
        and key.get("use", "sig") == "sig"
        and key.get("alg", "RS256") == "RS256"
        and isinstance(key.get("kid"), str)
    )


def _loaded(item: Mapping[str, Any]) -> jwt.PyJWK | None:
    try:
        return jwt.PyJWK.from_dict(dict(item))
    except (jwt.PyJWTError, TypeError, ValueError):
        return None
