"""The console's session: a signed, expiring cookie naming the signed-in key's label, never the key.

The cookie holds `{label, write, csrf}` signed with HMAC (itsdangerous) under a secret derived from the
console keys themselves, so every API pod with the same ROLESYNC_API_KEYS accepts the same sessions and
changing or removing a console key ends every session at once. It is refused once older than
ROLESYNC_CONSOLE_SESSION_S, and each read checks that the label still has a console scope. The CSRF
token every form carries is the session's own random `csrf`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from common.settings import CONSOLE_SCOPES, CONSOLE_WRITE_SCOPE, ApiKey

COOKIE = "rolesync_console"
_SALT = "rolesync-console-session"


@dataclass(frozen=True)
class Session:
    label: str  # the key's label: shown on the pages and written on the timeline of every action
    can_write: bool
    csrf: str


def console_keys(keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
    return tuple(k for k in keys if k.scopes & CONSOLE_SCOPES)


class Sessions:
    def __init__(self, keys: tuple[ApiKey, ...], max_age_s: int) -> None:
        mine = console_keys(keys)
        self._writers = {k.label: CONSOLE_WRITE_SCOPE in k.scopes for k in mine}
        self._signer = URLSafeTimedSerializer(_secret(mine), salt=_SALT)
        self.max_age_s = max_age_s

    def issue(self, label: str) -> tuple[str, Session]:
        """A new session for a key with a console scope: its cookie value, and what it says."""
        session = Session(label, self._writers[label], secrets.token_urlsafe(32))
        return self._signer.dumps({"label": label, "csrf": session.csrf}), session

    def read(self, cookie: str) -> Session | None:
        """The session of a cookie this console signed, unexpired, whose key still opens the console; else None."""
        try:
            found = self._signer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        label = found.get("label") if isinstance(found, dict) else None
        if label not in self._writers or not isinstance(found.get("csrf"), str):
            return None
        return Session(label, self._writers[label], found["csrf"])


def _secret(keys: tuple[ApiKey, ...]) -> bytes:
    digest = hashlib.sha256(_SALT.encode())
    for key in sorted(keys, key=lambda k: k.label):
        digest.update(f"\0{key.label}\0{key.key.reveal()}\0{'+'.join(sorted(key.scopes))}".encode())
    return digest.digest()
