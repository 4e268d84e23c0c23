"""Human durations as on-call types them: `90s`, `15m`, `6h`, `30d`, `2w`, or combined `1h30m`.

One parser for the CLI (`--older-than`, `--since`, `--reconcile-every`) and for settings
(`ROLESYNC_RECONCILE_EVERY`), so a duration means the same thing everywhere.
"""

from __future__ import annotations

import re

from common.errors import ConfigError

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


class BadDurationError(ConfigError):
    reason = "bad_duration"


def parse_duration(text: str) -> float:
    """Seconds in `text`; BadDurationError (one sentence, with an example) when it is not a duration."""
    raw = text.strip().lower()
    if not _WHOLE.fullmatch(raw):
        raise BadDurationError(f"{text!r} is not a duration; use e.g. 90s, 15m, 6h, 30d or 1h30m")
    seconds = sum(float(amount) * _UNIT_S[unit] for amount, unit in _PART.findall(raw))
    if seconds <= 0:
        raise BadDurationError(f"{text!r} is not a positive duration")
    return seconds


def format_duration(seconds: float) -> str:
    """A short reading of `seconds`: `42s`, `5m 3s`, `2h 10m`, `3d 4h`."""
    whole = int(max(0.0, seconds))
    for unit, size, minor, minor_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // minor_size
            return f"{whole // size}{unit}" + (f" {rest}{minor}" if rest else "")
    return f"{whole}s"
