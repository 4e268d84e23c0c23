"""Why a webhook was refused, as a short reason code and the HTTP status Kinde gets back.

400 means the request itself is bad: a body that is not a well-formed JWT (truncated, not base64,
not JSON, nested past any sane depth), or one Kinde signed whose claims are missing, invalid or
outside the accepted time window; 401 means a well-formed token we cannot trust (signature, key or
algorithm). Either way Kinde retries, so nothing valid is lost by a wrong rejection, only delayed.
"""

from __future__ import annotations

from common.errors import PermanentError

UNTRUSTED = frozenset({"alg_not_allowed", "missing_kid", "unknown_kid", "bad_signature"})
BAD_REQUEST = frozenset({"malformed", "missing_claims", "invalid_claims", "expired", "future_timestamp"})
REASONS = UNTRUSTED | BAD_REQUEST


class Rejected(PermanentError):
    """A webhook body that will never be accepted as it is."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message, reason=reason)

    @property
    def status_code(self) -> int:
        return 401 if self.reason in UNTRUSTED else 400
