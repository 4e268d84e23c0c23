"""Every token kind of the hostile-input fuzz (chaos/fuzz_inputs.py) against the real app: a 4xx, never a 5xx.

The chaos suite sends thousands over raw sockets; this sends a few of each kind, seeded, through the test
fixtures, so a kind that crashes the ingest fails here in seconds.
"""

from __future__ import annotations

import random

import httpx
import pytest

from chaos.fuzz_inputs import TOKEN_KINDS, Material, nested
from tests.ingest.tokens import Signer, claims

SAMPLES = 4


@pytest.fixture
def material(signer: Signer, other_signer: Signer) -> Material:
    deep = [signer.sign_raw(nested(depth, as_object=obj).encode()) for depth in (2000, 5000) for obj in (True, False)]
    valid, unknown = [signer.sign(claims()) for _ in range(3)], [other_signer.sign(claims()) for _ in range(3)]
    return Material(valid, unknown, signer.public_pem(), signer.kid, 0, deep)


@pytest.mark.parametrize("kind", sorted(TOKEN_KINDS))
def test_each_fuzz_kind_is_refused_with_a_4xx(http: httpx.Client, ingest_url: str, material: Material,
                                              kind: str) -> None:  # fmt: skip
    rng = random.Random(kind)
    for _ in range(SAMPLES):
        body = TOKEN_KINDS[kind](rng, material)
        response = http.post(f"{ingest_url}/webhooks/kinde", content=body, headers={"content-type": "application/jwt"})
        assert 400 <= response.status_code < 500, (kind, response.status_code, response.text[:200])
