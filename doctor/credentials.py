"""The M2M credentials obtain a token, or Kinde's refusal is named with the way to fix it."""

from __future__ import annotations

from common.errors import PermanentError, RetryableError
from doctor.access import connect
from doctor.report import Result, fail, ok, skip
from doctor.session import Session

APP_PAGE = "Kinde → Settings → Applications → your machine-to-machine app"
_FIXES = {
    "kinde_invalid_client": f"copy KINDE_CLIENT_ID and KINDE_CLIENT_SECRET from {APP_PAGE} → Details",
    "kinde_invalid_request": "set KINDE_DOMAIN to your Kinde domain (the token audience is KINDE_DOMAIN/api)",
    "kinde_unauthorized_client": f"authorise the app for the Kinde Management API: {APP_PAGE} → APIs",
    "kinde_access_denied": f"authorise the app for the Kinde Management API: {APP_PAGE} → APIs",
}


def check_token(session: Session) -> Result:
    if not (session.domain_ok and session.settings.kinde_client_id and session.settings.kinde_client_secret):
        return skip("m2m token", "a reachable KINDE_DOMAIN, KINDE_CLIENT_ID and KINDE_CLIENT_SECRET")
    try:
        session.kinde = connect(session.settings, session.http)
    except PermanentError as exc:
        return fail("m2m token", str(exc), _FIXES.get(exc.reason, f"check the M2M app in {APP_PAGE}"))
    except RetryableError as exc:
        return fail("m2m token", str(exc), "Kinde did not answer; run `rolesync doctor` again shortly")
    return ok("m2m token", f"client {session.settings.kinde_client_id} obtained a Management API token")
