"""The scope check's verdict: every missing scope named, with where to grant it."""

from __future__ import annotations

from doctor.report import Result, fail, ok, skip, warn
from doctor.scopes import ScopeReport, check_scopes
from doctor.session import Session

WHERE = (
    "Kinde → Settings → Applications → your M2M app → APIs → Kinde Management API → Manage scopes: "
    "enable {scopes}, save, then run `rolesync doctor` again"
)


def _listed(found: dict[str, str]) -> str:
    return ", ".join(f"{scope} ({how})" for scope, how in sorted(found.items()))


def check_grants(session: Session) -> Result:
    if session.kinde is None:
        return skip("scopes", "an M2M token")
    entitlements = session.plans.entitlements_enabled if session.plans is not None else True
    report = check_scopes(session.kinde.api, session.kinde.token_scopes, entitlements=entitlements)
    session.missing_scopes = frozenset(report.missing) | frozenset(report.setup_missing)
    return verdict(report)


def verdict(report: ScopeReport) -> Result:
    if report.missing:
        every = sorted({**report.missing, **report.setup_missing})
        return fail("scopes", f"missing {_listed(report.missing)}", WHERE.format(scopes=", ".join(every)))
    if report.setup_missing:
        summary = f"the service's scopes are granted; set-up lacks {_listed(report.setup_missing)}"
        return warn("scopes", summary, WHERE.format(scopes=", ".join(sorted(report.setup_missing))))
    if report.unknown:
        summary = f"read scopes granted; could not check {', '.join(report.unknown)} (the token lists no scopes)"
        return warn("scopes", summary, "make sure these write scopes are enabled too")
    return ok("scopes", "every scope the service and its set-up use is granted")
