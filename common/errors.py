"""The one error tree of the service.

    ServiceError
    ├── ConfigError            a setting or the plans file is wrong; the command exits 2
    ├── RetryableError         try again later: timeouts, connection errors, 5xx, Redis down
    │   ├── RateLimitedError   Kinde answered 429; carries retry_after_s from RateLimit-Reset
    │   └── ContendedError     another worker holds the customer's lock; try again shortly
    └── PermanentError         a human must act: 4xx, bad data
        ├── UnresolvedCustomerError   no user or org is known for the billing customer
        └── ForbiddenError     Kinde answered 403 to a freshly issued token: the M2M app lacks a scope

Foreign exceptions (httpx, redis) are translated into this tree at the adapter that calls
them, and nowhere else. `reason` is a short machine-readable code used for dead letters and
metrics; `str(exc)` is the human sentence. Neither ever holds a secret.
"""

from __future__ import annotations


class ServiceError(Exception):
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ConfigError(ServiceError):
    reason = "config"


class RetryableError(ServiceError):
    reason = "retryable"

    def __init__(self, message: str, *, reason: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s


class RateLimitedError(RetryableError):
    reason = "rate_limited"


class ContendedError(RetryableError):
    reason = "contended"


class PermanentError(ServiceError):
    reason = "permanent"


class UnresolvedCustomerError(PermanentError):
    reason = "customer_unresolved"


class ForbiddenError(PermanentError):
    """Names the endpoint and the scope it needs, so the parked event can wait for exactly that scope."""

    reason = "kinde_forbidden"

    def __init__(self, message: str, *, endpoint: str, scope: str | None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.scope = scope
