"""The JWKS the ingest verifies webhooks with: reachable, and at least one RSA signing key."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from doctor.report import Result, fail, ok, skip
from doctor.session import Session


def rsa_signing_kids(body: Any) -> list[str]:
    """Key ids of the RSA keys that may sign (`use` absent or `sig`); keys PyJWT cannot load are ignored."""
    found = []
    for item in body.get("keys", []) if isinstance(body, dict) else []:
        try:
            key = jwt.PyJWK.from_dict(item)
        except (jwt.PyJWTError, TypeError, ValueError):
            continue
        if key.key_type == "RSA" and key.public_key_use in (None, "sig"):
            found.append(str(key.key_id))
    return found


def check_jwks(session: Session) -> Result:
    if not session.domain_ok:
        return skip("jwks", "a reachable KINDE_DOMAIN")
    url = session.settings.jwks_url
    fix = "set KINDE_JWKS_URL if your domain serves it elsewhere (Kinde documents /.well-known/jwks too)"
    try:
        response = session.http.get(url)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return fail("jwks", f"{url} unreachable or not JSON ({type(exc).__name__})", fix)
    kids = rsa_signing_kids(body)
    if not kids:
        return fail("jwks", f"{url} answered {response.status_code} with no RSA signing key", fix)
    return ok("jwks", f"{url} has {len(kids)} RSA signing key(s)")
