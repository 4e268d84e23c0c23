"""Bad webhook signatures limited per client address: after N within a window, 429 until one ages out.

A webhook whose RS256 signature fails against one of *our* keys (reason `bad_signature`: a known kid, a
forged or tampered token) counts against the sender's address. An address with
ROLESYNC_INGEST_SIGNATURE_FAILURES of them within ROLESYNC_INGEST_SIGNATURE_WINDOW_S seconds is answered
429 with Retry-After before its body is read or any token is parsed, so a flood from one address stops
costing verifications, while every other address is served as before (common/infra/failure_limit.py counts).

Why only `bad_signature`, and not `unknown_kid`: Kinde's deliveries come from Kinde's own delivery
infrastructure, whose addresses are shared by every Kinde business and are not published. Anyone can open
a Kinde business and point its webhooks at our URL; those arrive from the same addresses as ours, signed
by that business's keys, and fail here as `unknown_kid` (their cost is bounded already: a JWKS refetch at
most once per ROLESYNC_JWKS_COOLDOWN_S). Counting them would let a stranger's tenant block our own
deliveries. Kinde never sends our kid with a bad signature, so the count never blocks Kinde; and if it
ever did, the 429 is a non-200 that Kinde retries on its schedule (5 s, 30 s, 2 min, ... for ~36 h),
after the window has passed: delayed, not lost. Expired or future-dated tokens are not counted either:
their signature verified, so they are Kinde's (an old retry), not a forger's.

The address is the ASGI client's: behind an ingress, the ingress's, unless uvicorn's FORWARDED_ALLOW_IPS
names it, so deploy/k8s turns the limit off until an overlay sets that (docs/deploy.md).
"""

from __future__ import annotations

from common.infra.failure_limit import FailureLimiter
from ingest.webhook import Outcome

COUNTED = frozenset({"bad_signature"})
THROTTLED = "signature_failures"


def throttled(limiter: FailureLimiter, address: str) -> Outcome | None:
    """The 429 for an address over the limit, or None to serve it."""
    if not limiter.enabled:
        return None
    wait = limiter.retry_after(address)
    return None if wait is None else Outcome(429, "throttled", THROTTLED, retry_after_s=wait)


def count(limiter: FailureLimiter, address: str, outcome: Outcome) -> None:
    if limiter.enabled and outcome.outcome == "rejected" and outcome.reason in COUNTED:
        limiter.failed(address)
