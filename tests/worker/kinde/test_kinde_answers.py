"""What Kinde's answers mean: the error each status, header and body becomes (pure functions)."""

from __future__ import annotations

import httpx
import pytest

from common.errors import ForbiddenError, PermanentError, RateLimitedError, RetryableError
from worker.kinde import answers, api, token
from worker.kinde.answers import body_of, classify, error_codes, retry_after_s

SCOPE_BODY = {
    "errors": [{"code": "SCOPE_MISSING", "message": "The access token is missing the required scope: read:users"}]
}


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_and_timeouts_are_retryable(status: int) -> None:
    error = classify(status, {}, None, endpoint="GET /roles")
    assert type(error) is RetryableError


def test_429_carries_the_wait_from_ratelimit_reset() -> None:
    error = classify(429, {"ratelimit-reset": "7"}, None, endpoint="GET /roles")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("headers", "wait"), [({"retry-after": "3"}, 3.0), ({}, 1.0), ({"ratelimit-reset": "soon"}, 1.0)]
)
def test_429_tolerates_retry_after_or_no_header(headers: dict[str, str], wait: float) -> None:
    assert retry_after_s(headers) == wait


def test_403_is_forbidden_naming_the_scope_from_the_body() -> None:
    error = classify(403, {}, SCOPE_BODY, endpoint="GET /roles")
    assert isinstance(error, ForbiddenError)
    assert (error.reason, error.scope, error.endpoint) == ("kinde_forbidden", "read:users", "GET /roles")


def test_403_without_a_scope_takes_the_endpoints_and_keeps_the_code() -> None:
    body = {"errors": [{"code": "INVALID_CREDENTIALS", "message": "Invalid credentials used to access API"}]}
    error = classify(403, {}, body, endpoint="GET /billing/agreements")
    assert isinstance(error, ForbiddenError)
    assert error.scope == "read:billing_agreements"
    assert "INVALID_CREDENTIALS" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"errors": [{"code": "ROLE_NOT_FOUND", "message": "Role not found"}]},
        {"errors": {"code": "ROLE_NOT_FOUND", "message": "Route not found"}},
    ],
)
def test_other_4xx_are_permanent_with_the_code_whether_errors_is_a_list_or_an_object(body: object) -> None:
    error = classify(400, {}, body, endpoint="POST roles")
    assert isinstance(error, PermanentError)
    assert error.reason == "kinde_ROLE_NOT_FOUND"
    assert error_codes(body) == ["ROLE_NOT_FOUND"]


def test_a_4xx_without_a_body_names_the_status() -> None:
    error = classify(404, {}, None, endpoint="DELETE role")
    assert error is not None
    assert error.reason == "kinde_HTTP_404"


def test_success_is_no_error() -> None:
    assert classify(200, {}, {"code": "OK"}, endpoint="GET /roles") is None


@pytest.mark.parametrize(
    ("status", "code", "gone_membership", "gone_user"),
    [
        (404, "USER_NOT_FOUND", True, True),
        (400, "USER_NOT_IN_ORGANIZATION", True, False),
        (404, "ORGANIZATION_NOT_FOUND", True, False),
        (404, None, False, True),  # a code-less 404: the user id Kinde never had
        (400, "INVALID_REQUEST", False, False),
    ],
)
def test_gone_codes_are_the_reasons_classify_gives(status: int, code: str | None, gone_membership: bool,
                                                   gone_user: bool) -> None:  # fmt: skip
    from worker.kinde.answers import GONE, GONE_USER

    body = {"errors": [{"code": code, "message": "x"}]} if code else {}
    err = classify(status, {}, body, endpoint="GET /api/v1/user")
    assert isinstance(err, PermanentError)
    assert (err.reason in GONE, err.reason in GONE_USER) == (gone_membership, gone_user)


def test_every_caller_reads_the_gone_codes_from_answers() -> None:
    """One home: the pass, the members listing, resolve, the handlers and ops use answers' very sets."""
    from ops import kinde_recipients
    from worker.convergence import converge, members, targets
    from worker.customers import resolve
    from worker.events import handlers
    from worker.kinde import answers

    assert converge.GONE is members.GONE is targets.GONE is answers.GONE
    assert resolve.GONE_USER is kinde_recipients.GONE_USER is answers.GONE_USER
    assert handlers.ORG_NOT_FOUND is answers.ORG_NOT_FOUND
    assert not hasattr(targets, "ORG_NOT_FOUND")


@pytest.mark.parametrize(
    ("content", "body"),
    [(b'{"errors": [{"code": "X"}]}', {"errors": [{"code": "X"}]}), (b"<html>bad gateway</html>", None), (b"", None)],
    ids=["json", "html", "empty"],
)
def test_a_body_is_its_json_or_none_when_it_is_not_json(content: bytes, body: object) -> None:
    assert body_of(httpx.Response(502, content=content)) == body


def test_the_api_client_and_the_token_fetch_read_bodies_with_the_one_body_of() -> None:
    """Issue 25, item 6: one reading of an answer's body (each had its own `_json`)."""
    assert api.body_of is token.body_of is answers.body_of
