"""Why a webhook was refused, as a short reason code and the HTTP status Kinde gets back.

401 means we could not trust the body at all (signature, key or algorithm); 400 means Kinde
signed it but its claims are missing, invalid or outside the accepted time window. Either way
Kinde retries, so nothing valid is lost by a wrong rejection, only delayed.
"""

from __future__ import annotations

from common.errors import PermanentError

UNTRUSTED = frozenset({"malformed", "alg_not_allowed", "missing_kid", "unknown_kid", "bad_signature"})
INVALID_CLAIMS = frozenset({"missing_claims", "invalid_claims", "expired", "future_timestamp"})
REASONS = UNTRUSTED | INVALID_CLAIMS


class Rejected(PermanentError):
    """A webhook body that will never be accepted as it is."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message, reason=reason)

    @property
    def status_code(self) -> int:
        return 401 if self.reason in UNTRUSTED else 400
