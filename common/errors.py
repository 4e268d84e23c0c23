"""The one error tree of the service: every subclass, wherever it lives (tests/common/test_errors.py
fails when a class is missing here or sits under another parent).

    ServiceError                     common.errors
    ├── ConfigError                  common.errors     a setting or plans.toml is wrong; the command exits 2
    │   ├── BadDurationError         common.infra.durations  a duration (setting or CLI option) that does not parse
    │   └── LayoutTooNewError        common.infra.layout  Redis holds a newer layout than this release writes
    ├── RetryableError               common.errors     try later: timeouts, connection errors, 5xx, Redis down
    │   ├── RateLimitedError         common.errors     Kinde answered 429; retry_after_s from RateLimit-Reset
    │   ├── NoDeskError              api.grants        an API built without a hand-grant store (tests only): a 503
    │   └── ContendedError           common.errors     another worker holds the customer's lock; try again shortly
    │       ├── LeaseLostError       worker.convergence.lease  a pass's lease expired or was taken: stop before writing
    │       ├── SettlingError        worker.events.handlers  a customer's billing events are still settling: wait
    │       └── AwaitingLinkError    worker.events.handlers  a billing event waits for its customer's user or org event
    ├── PermanentError               common.errors     a human must act: 4xx, bad data
    │   ├── UnresolvedCustomerError  common.errors     no user or org is known for the billing customer
    │   ├── ForbiddenError           common.errors     a 403 to a fresh token: the M2M app lacks a scope
    │   ├── NotifyFailedError        worker.outputs.notify_delivery  the app refused or never took a change notification
    │   ├── BadReportError           common.guard.usage_reports  an app's usage report that is not a number and a time
    │   ├── BadSelectionError        api.selection     a plan-selection body that is not a workflow context
    │   ├── BadBodyError             api.bodies        a request body not JSON, too large, or not its declared type
    │   ├── Rejected                 ingest.rejection  a webhook body that will never be accepted as it is
    │   ├── UnknownCustomerError     ops.customers     on-call named a customer with no link
    │   ├── BadIdError               ops.customers     on-call gave an empty id or one holding spaces
    │   ├── NotInKindeError          ops.customers     on-call named a user or org Kinde does not have
    │   ├── UnknownDeadLetterError   ops.dlq           on-call named a dead letter that does not exist
    │   ├── BadFilterError           ops.dlq           on-call's dead-letter filter holds an age that does not parse
    │   ├── BadFormError             console.forms     a console POST that is not a small urlencoded form
    │   ├── BadGrantError            common.entitlements.manual_grants  a hand grant refused: unmanaged role, no reason
    │   │   └── UnknownRecipientError  common.entitlements.grant_recipients  its user is not in Kinde, or not in its org
    │   ├── UnknownGrantError        common.entitlements.hand_grant_changes  no hand grant has that id
    │   ├── NoReasonError            common.infra.audit_trail  on-call changed state without saying why (--reason)
    │   └── ApiProblem               sandbox.problems  the sandbox's Kinde-format API error answer
    └── SandboxError                 sandbox.client    the sandbox refused a control call

Foreign exceptions (httpx, redis, psycopg) are translated into this tree at the adapter that calls
them, and nowhere else (the adapters are listed in tests/common/test_foreign_errors.py). `reason`
is a short machine-readable code used for dead letters and metrics; `str(exc)` is the human
sentence. Neither ever holds a secret.
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
