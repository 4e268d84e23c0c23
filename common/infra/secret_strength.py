"""Whether a shared secret is strong enough: at least 128 bits, and not a repetition.

Bearer API keys, the plan-selection workflow's secret and the notify HMAC key are the only things
between a caller on the network and the data or the decision behind them; a short or patterned one
falls to guessing. We cannot measure how a value was made, so we estimate from the value itself:

* its alphabet: length times log2(the size of the character classes it uses: lower, upper, digits, other)
  must reach 128 bits (22 characters of `secrets.token_urlsafe`, 32 of hex);
* its spread: the Shannon entropy of its characters must reach half the most its length and
  alphabet allow, it must not be one block repeated (`abcabc…`, `aaaa…`), nor hold a run of more than
  five equal or consecutive characters (`…0123456789…`): patterns the alphabet estimate cannot see.
  Mixed-case letters count as base64's 64 symbols (a `token_urlsafe(16)` without a digit is still 128 bits).

A value made by `python -c "import secrets; print(secrets.token_urlsafe(32))"` passes with room.
"""

from __future__ import annotations

import itertools
import math
import string
from collections import Counter

MIN_BITS = 128
MIN_SPREAD = 0.5  # of log2(min(length, alphabet)) bits per character
MAX_RUN = 5  # steps in a row between equal or consecutive characters (0→1→2…, a→a→a…)
_BASE64 = 64
HOW = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
_OTHER = 33  # printable ASCII punctuation and space


def weakness(value: str) -> str | None:
    """Why `value` is too weak to be a shared secret, or None when it is strong enough. Never quotes it."""
    if alphabet_bits(value) < MIN_BITS:
        return f"about {int(alphabet_bits(value))} bits, fewer than {MIN_BITS}: too short"
    if _repeats_a_block(value) or _longest_run(value) > MAX_RUN or _spread(value) < MIN_SPREAD:
        return "repetitive: a pattern, not random characters"
    return None


def weak_key(key: bytes) -> str | None:
    """The same for a raw key (a decoded `whsec_` secret): 16 bytes at least, not one repeated block."""
    if len(key) * 8 < MIN_BITS:
        return f"{len(key) * 8} bits, fewer than {MIN_BITS}: too short"
    if _repeats_a_block(key.hex()) or len(set(key)) < len(key) // 4:
        return "repetitive: a pattern, not random bytes"
    return None


def alphabet_bits(value: str) -> float:
    pool = _pool(value)
    return len(value) * math.log2(pool) if pool > 1 else 0.0


def _pool(value: str) -> int:
    used = [c for c in _CLASSES if any(ch in c for ch in value)]
    pool = sum(len(c) for c in used) + (_OTHER if any(not any(ch in c for c in _CLASSES) for ch in value) else 0)
    mixed_case = string.ascii_lowercase in used and string.ascii_uppercase in used
    return max(pool, _BASE64) if mixed_case else pool


def _spread(value: str) -> float:
    """Shannon entropy per character, as a share of the most this length and alphabet allow."""
    counts, n = Counter(value), len(value)
    most = math.log2(min(n, _pool(value)))
    return -sum(c / n * math.log2(c / n) for c in counts.values()) / most if most > 0 else 0.0


def _longest_run(value: str) -> int:
    """The most steps in a row of one kind: equal (0), up by one (+1) or down by one (-1)."""
    longest, run, last = 0, 0, None
    for a, b in itertools.pairwise(value):
        step = ord(b) - ord(a)
        run = run + 1 if step in (-1, 0, 1) and step == last else (1 if step in (-1, 0, 1) else 0)
        last, longest = step, max(longest, run)
    return longest


def _repeats_a_block(value: str) -> bool:
    return len(value) > 1 and (value + value).find(value, 1) < len(value)
