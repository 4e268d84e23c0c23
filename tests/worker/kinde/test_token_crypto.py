"""The shared token's seal (worker/kinde/token_crypto.py): only the client secret opens it, only under its key name."""

from __future__ import annotations

import pytest

from common.settings import Secret
from worker.kinde.token_crypto import TokenCipher

SECRET = Secret("m2m-client-secret-for-tests-0123456789")
KEY = "rolesync:kinde:token"


def test_a_sealed_value_opens_with_the_same_secret_on_another_host() -> None:
    sealed = TokenCipher.from_secret(SECRET).seal('{"token": "eyJ.abc"}', bound_to=KEY)
    assert "eyJ" not in sealed
    assert "token" not in sealed
    assert TokenCipher.from_secret(Secret(SECRET.reveal())).open(sealed, bound_to=KEY) == '{"token": "eyJ.abc"}'


def test_each_seal_uses_a_fresh_nonce() -> None:
    cipher = TokenCipher.from_secret(SECRET)
    assert cipher.seal("same", bound_to=KEY) != cipher.seal("same", bound_to=KEY)


@pytest.mark.parametrize(
    "value",
    [
        '{"token": "plain JSON from an older release", "refresh_at": 9e9}',
        "v1.not-base64!!",
        "v1.",
        "v2.AAAA",
        "",
    ],
)
def test_anything_not_sealed_by_this_key_opens_to_none(value: str) -> None:
    assert TokenCipher.from_secret(SECRET).open(value, bound_to=KEY) is None


def test_a_rotated_secret_or_another_key_name_cannot_open_it() -> None:
    sealed = TokenCipher.from_secret(SECRET).seal("x", bound_to=KEY)
    assert TokenCipher.from_secret(Secret("the-rotated-client-secret-9876543210")).open(sealed, bound_to=KEY) is None
    assert TokenCipher.from_secret(SECRET).open(sealed, bound_to="rolesync:other") is None


def test_a_tampered_value_does_not_open() -> None:
    cipher = TokenCipher.from_secret(SECRET)
    sealed = cipher.seal("x" * 40, bound_to=KEY)
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    assert cipher.open(flipped, bound_to=KEY) is None


def test_the_repr_hides_the_key() -> None:
    assert repr(TokenCipher.from_secret(SECRET)) == "TokenCipher(<key hidden>)"
