"""What may be written where a human reads: one list of secret-sounding words, one function, used by
every sink (log lines, common/infra/logs.py; customers' timelines, common/customers/history.py).

A net under the rule that secrets are never written at all: a value under a key that sounds like a
credential is masked whole, and inside any other string a URL's password (`redis://:pw@host`) and a
secret-sounding query parameter (`?token=…`) are masked, so a setting such as `REDIS_URL` or
`ROLESYNC_NOTIFY_URL` logged by name shows its host but not its credential.
"""

from __future__ import annotations

import functools
import re
from typing import Any

SECRET_WORDS = ("token", "secret", "password", "authorization", "jwt", "api_key", "credential")
MASK = "**********"
_URL_PASSWORD = re.compile(r"(://[^/@\s:]*:)[^@\s/]+@")
_WORDS = "|".join(SECRET_WORDS)
_QUERY_SECRET = re.compile(rf"([?&;][^=&;#\s]*(?:{_WORDS}|key|sig|pass)[^=&;#\s]*=)[^&;#\s]+", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def secret_sounding(key: str) -> bool:
    """Cached: log keys come from a small fixed set in the code, and this runs for every key of every line."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redacted(key: str, value: Any) -> Any:
    """`value` as it may be written under `key`: masked whole under a secret-sounding key, else with the
    credentials inside its strings masked (dicts, lists and tuples throughout)."""
    if secret_sounding(key):
        return MASK
    if isinstance(value, str):
        return _masked_text(value)
    if isinstance(value, dict):
        return {k: redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(key, v) for v in value]
    return value


_ASSIGNED_SECRET = re.compile(rf"(\b\w*(?:{_WORDS})\w*\s*[=:]\s*)[^\s&;,]+", re.IGNORECASE)


def masked_assignments(text: str) -> str:
    """Free text a person reads whole (a dead letter's last error in the console): besides what `redacted`
    masks, any `password=…`, `token: …` the text holds, whatever comes before it."""
    return _ASSIGNED_SECRET.sub(rf"\g<1>{MASK}", _masked_text(text))


def _masked_text(text: str) -> str:
    if "@" not in text and "=" not in text:  # the common case, on the ingest's hot path: nothing to look for
        return text
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text))
