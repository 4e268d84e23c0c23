"""JwksCache: cooldown on unknown kids, stale-while-error, key filtering. Fetch and clock are in-memory fakes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.errors import RetryableError
from ingest.jwks import JwksCache, parse_jwks
from ingest.rejection import Rejected
from tests.ingest.tokens import Signer, jwks


class FakeTenant:
    """A JWKS endpoint in memory: its document, whether it is up, and every fetch made."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.up = True
        self.fetches = 0

    async def fetch(self) -> object:
        self.fetches += 1
        if not self.up:
            raise RetryableError("down", reason="jwks_unavailable")
        return self.document


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(tenant: FakeTenant, clock: Clock, results: list[str] | None = None) -> JwksCache:
    record = results.append if results is not None else (lambda r: None)
    return JwksCache(tenant.fetch, cooldown_s=30, clock=clock, on_refresh=record)


def test_forged_kids_cause_at_most_one_refetch_per_cooldown(signer: Signer) -> None:
    tenant, clock = FakeTenant(jwks(signer)), Clock()
    keys = cache(tenant, clock)

    async def storm() -> None:
        await keys.refresh()
        await asyncio.gather(*(keys.ensure(f"forged-{n}") for n in range(50)))
        clock.now += 29
        await keys.ensure("forged-late")
        clock.now += 1
        await keys.ensure("forged-after-cooldown")

    asyncio.run(storm())
    assert tenant.fetches == 3  # initial load, one storm refetch, one after the cooldown
    with pytest.raises(Rejected) as caught:
        keys.key_for("forged-1")
    assert caught.value.reason == "unknown_kid"


def test_a_rotated_key_is_found_by_one_refetch(signer: Signer, other_signer: Signer) -> None:
    tenant, clock = FakeTenant(jwks(signer)), Clock()
    keys = cache(tenant, clock)

    async def rotate() -> None:
        await keys.refresh()
        tenant.document = jwks(other_signer)
        await keys.ensure(other_signer.kid)

    asyncio.run(rotate())
    assert keys.key_for(other_signer.kid).key_id == other_signer.kid


def test_keys_already_fetched_keep_working_while_the_endpoint_is_down(signer: Signer) -> None:
    tenant, clock, results = FakeTenant(jwks(signer)), Clock(), []
    keys = cache(tenant, clock, results)

    async def outage() -> bool:
        await keys.refresh()
        tenant.up = False
        return await keys.try_refresh()

    assert asyncio.run(outage()) is False
    assert keys.key_for(signer.kid).key_id == signer.kid
    assert results == ["ok", "error"]


def test_with_no_key_and_the_endpoint_down_ensure_is_retryable(signer: Signer) -> None:
    tenant, clock = FakeTenant(jwks(signer)), Clock()
    tenant.up = False
    keys = cache(tenant, clock)
    for _ in range(2):  # the second call is inside the cooldown: no fetch, still retryable
        with pytest.raises(RetryableError):
            asyncio.run(keys.ensure(signer.kid))
    assert tenant.fetches == 1
    assert not keys.loaded


def test_only_rsa_signing_keys_are_kept(signer: Signer) -> None:
    oct_key = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    enc_key = {**Signer().jwk(), "kid": "enc", "use": "enc"}
    no_kid = {k: v for k, v in Signer().jwk().items() if k != "kid"}
    parsed = parse_jwks({"keys": [oct_key, enc_key, no_kid, "junk", signer.jwk()]})
    assert list(parsed) == [signer.kid]


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": "x"}, [], "text", {"keys": [{"kty": "oct"}]}])
def test_a_document_without_usable_keys_is_retryable(document: object) -> None:
    with pytest.raises(RetryableError):
        parse_jwks(document)
