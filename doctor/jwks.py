"""The JWKS the ingest verifies webhooks with: reachable, and at least one RSA signing key."""

from __future__ import annotations

from typing import Any

from common.errors import RetryableError
from common.webhooks.signing_keys import usable_keys
from doctor.http_probe import probe_json
from doctor.report import Result, fail, ok, skip
from doctor.session import Session


def rsa_signing_kids(body: Any) -> list[str]:
    """Key ids of the keys the ingest can verify webhooks with (the ingest's rule, common/webhooks/signing_keys.py)."""
    return sorted(usable_keys(body))


def check_jwks(session: Session) -> Result:
    if not session.domain_ok:
        return skip("jwks", "a reachable KINDE_DOMAIN")
    url = session.settings.jwks_url
    fix = "set KINDE_JWKS_URL if your domain serves it elsewhere (Kinde documents /.well-known/jwks too)"
    try:
        status, body = probe_json(session.http, url)
    except RetryableError as exc:
        return fail("jwks", str(exc), fix)
    kids = rsa_signing_kids(body)
    if not kids:
        return fail("jwks", f"{url} answered {status} with no RS256 signing key the ingest can use", fix)
    return ok("jwks", f"{url} has {len(kids)} RSA signing key(s)")
