"""The shared M2M token at rest in Redis: sealed with a key only holders of `KINDE_CLIENT_SECRET` can derive.

Redis is the fleet's control plane, and whoever can read it (a stolen dump, a replica, a misrouted
`MONITOR`) must not get a working Management API token from it. The key is HKDF-SHA256 of the client
secret (so no new secret to distribute, and rotating the secret rotates the key), the seal AES-256-GCM
with a random nonce per value and the Redis key name as associated data (a sealed value moved to
another key does not open). A value that does not open (a rotated secret, a tampered or plain-JSON
value from an older release) opens to None: the caller treats it as absent and fetches a new token.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.settings import Secret

VERSION = "v1"
_SALT = b"kinde-role-sync token seal"
_INFO = b"rolesync:kinde:token v1 aes-256-gcm"
_NONCE_BYTES = 12


def derive_key(secret: Secret) -> bytes:
    """32 bytes for AES-256-GCM, from the client secret; the same secret gives the same key on every host."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
    return hkdf.derive(secret.reveal().encode())


class TokenCipher:
    """Seals and opens values bound to one Redis key name; its repr never shows the key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_secret(cls, secret: Secret) -> TokenCipher:
        return cls(derive_key(secret))

    def seal(self, plaintext: str, *, bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, *, bound_to: str) -> str | None:
        """The plaintext, or None when `value` was not sealed by this key for `bound_to`."""
        version, dot, body = value.partition(".")
        if version != VERSION or not dot:
            return None
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            opened = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode())
        except (binascii.Error, ValueError, InvalidTag):
            return None
        return opened.decode()

    def __repr__(self) -> str:
        return "TokenCipher(<key hidden>)"
