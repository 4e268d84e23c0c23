"""verify(): every rejection reason from the issue, with real RS256 tokens and a recorded in-memory key source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.claims import Policy
from ingest.rejection import Rejected
from ingest.verify import token_text, verify
from tests.ingest.tokens import (
    Signer,
    ago,
    ahead,
    claims,
    deep_header,
    deep_header_object,
    deep_payload,
    hs256_with_public_key,
    tampered,
    unsigned,
)

POLICY = Policy(max_age=timedelta(hours=72), max_future=timedelta(minutes=5))


class FakeKeys:
    """The KeySource port in memory; records every kid asked for."""

    def __init__(self, *signers: Signer) -> None:
        self.keys = {s.kid: jwt.PyJWK(s.jwk()) for s in signers}
        self.asked: list[str] = []

    def key_for(self, kid: str) -> jwt.PyJWK:
        self.asked.append(kid)
        if kid not in self.keys:
            raise Rejected("unknown_kid", "no such kid")
        return self.keys[kid]


def check(body: bytes | str, keys: FakeKeys, now: datetime | None = None) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    return verify(token_text(raw), keys, now=now or datetime.now(UTC), policy=POLICY)


def reason_of(body: bytes | str, keys: FakeKeys) -> tuple[str, int]:
    with pytest.raises(Rejected) as caught:
        check(body, keys)
    return caught.value.reason, caught.value.status_code


def test_a_well_signed_event_yields_its_claims(signer: Signer) -> None:
    sent = claims()
    assert check(signer.sign(sent), FakeKeys(signer)) == sent


def test_surrounding_whitespace_is_tolerated(signer: Signer) -> None:
    assert check(f"{signer.sign(claims())}\r\n", FakeKeys(signer))["type"] == "customer.plan_assigned"


def test_alg_none_is_refused_without_a_key_lookup(signer: Signer) -> None:
    keys = FakeKeys(signer)
    assert reason_of(unsigned(claims(), signer.kid), keys) == ("alg_not_allowed", 401)
    assert keys.asked == []


def test_hs256_signed_with_the_rsa_public_key_is_refused(signer: Signer) -> None:
    assert reason_of(hs256_with_public_key(claims(), signer), FakeKeys(signer)) == ("alg_not_allowed", 401)


def test_a_header_without_kid_is_refused(signer: Signer) -> None:
    token = jwt.encode(claims(), signer.private_key, algorithm="RS256")
    assert reason_of(token, FakeKeys(signer)) == ("missing_kid", 401)


def test_an_unknown_kid_is_refused(signer: Signer) -> None:
    assert reason_of(signer.sign(claims(), kid="forged"), FakeKeys(signer)) == ("unknown_kid", 401)


def test_a_tampered_payload_is_refused(signer: Signer) -> None:
    token = tampered(signer.sign(claims()), type="customer.plan_changed")
    assert reason_of(token, FakeKeys(signer)) == ("bad_signature", 401)


def test_a_token_signed_by_another_key_under_our_kid_is_refused(signer: Signer, other_signer: Signer) -> None:
    token = other_signer.sign(claims(), kid=signer.kid)
    assert reason_of(token, FakeKeys(signer)) == ("bad_signature", 401)


@pytest.mark.parametrize("cut", [lambda t: t[: len(t) // 2], lambda t: t[:10]])
def test_truncated_tokens_are_refused(signer: Signer, cut: Any) -> None:
    assert reason_of(cut(signer.sign(claims())), FakeKeys(signer)) == ("malformed", 400)


def test_a_token_cut_inside_its_signature_is_refused(signer: Signer) -> None:
    # Whether the shortened signature still decodes as base64url depends on its last character
    # (PyJWT rejects non-canonical trailing bits), so either refusal is right: 400 malformed, 401 bad signature.
    reason, status = reason_of(signer.sign(claims())[:-20], FakeKeys(signer))
    assert (reason, status) in {("malformed", 400), ("bad_signature", 401)}


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", "é.é.é".encode(), b'{"type":"customer.plan_assigned","event_id":"e1","data":{}}', b""],
)
def test_bodies_that_are_not_a_jws_are_malformed(signer: Signer, body: bytes) -> None:
    assert reason_of(body, FakeKeys(signer)) == ("malformed", 400)


@pytest.mark.parametrize("make", [deep_header, deep_header_object, deep_payload])
def test_json_nested_past_the_recursion_limit_is_malformed(signer: Signer, make: Any) -> None:
    assert reason_of(make(signer), FakeKeys(signer)) == ("malformed", 400)


def test_an_event_older_than_the_window_is_expired(signer: Signer) -> None:
    assert reason_of(signer.sign(claims(at=ago(hours=73))), FakeKeys(signer)) == ("expired", 400)


def test_an_event_inside_the_window_is_accepted(signer: Signer) -> None:
    assert check(signer.sign(claims(at=ago(hours=71))), FakeKeys(signer))


def test_a_passed_exp_claim_is_expired(signer: Signer) -> None:
    token = signer.sign(claims(exp=int(ago(minutes=1).timestamp())))
    assert reason_of(token, FakeKeys(signer)) == ("expired", 400)


def test_a_timestamp_more_than_five_minutes_ahead_is_refused(signer: Signer) -> None:
    assert reason_of(signer.sign(claims(at=ahead(minutes=6))), FakeKeys(signer)) == ("future_timestamp", 400)
    assert check(signer.sign(claims(at=ahead(minutes=4))), FakeKeys(signer))


def test_the_injected_clock_decides(signer: Signer) -> None:
    sent = claims(at=datetime(2024, 5, 1, 17, 41, tzinfo=UTC))
    assert check(signer.sign(sent), FakeKeys(signer), now=datetime(2024, 5, 2, tzinfo=UTC)) == sent


def test_a_kinde_style_offset_timestamp_is_understood(signer: Signer) -> None:
    sent = {**claims(), "timestamp": "2024-05-01T17:41:45.592145+10:00"}
    assert check(signer.sign(sent), FakeKeys(signer), now=datetime(2024, 5, 1, 8, tzinfo=UTC))


def test_a_token_without_any_timestamp_is_accepted(signer: Signer) -> None:
    sent = {k: v for k, v in claims().items() if k != "timestamp"}
    assert check(signer.sign(sent), FakeKeys(signer)) == sent


@pytest.mark.parametrize("missing", ["type", "event_id", "data"])
def test_missing_required_claims_are_refused(signer: Signer, missing: str) -> None:
    sent = {k: v for k, v in claims().items() if k != missing}
    assert reason_of(signer.sign(sent), FakeKeys(signer)) == ("missing_claims", 400)


@pytest.mark.parametrize(
    "changes",
    [{"data": "not an object"}, {"event_id": ""}, {"type": 7}, {"timestamp": "yesterday"}, {"exp": "soon"}],
)
def test_invalid_claims_are_refused(signer: Signer, changes: dict[str, Any]) -> None:
    assert reason_of(signer.sign({**claims(), **changes}), FakeKeys(signer)) == ("invalid_claims", 400)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bodies_are_refused_never_crash(body: bytes) -> None:
    with pytest.raises(Rejected):
        check(body, FakeKeys())


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=8))
def test_corrupted_real_tokens_are_refused_never_crash(position: int, junk: bytes) -> None:
    token = _SIGNER.sign(claims()).encode()
    cut = position % len(token)
    corrupted = token[:cut] + junk + token[cut + len(junk) :]
    if corrupted != token:
        with pytest.raises(Rejected):
            check(corrupted, FakeKeys(_SIGNER))


_SIGNER = Signer()
