"""Commands in Redis's wire format (RESP arrays of bulk strings), for the batcher's own connection.

redis-py's `pack_commands` costs ~12 µs for one enqueue script call (`EVALSHA` with 16 keys and
arguments: each argument goes through a generator and its encoder before hiredis packs it); the same
bytes are built here in ~4 µs (docs/benchmarks.md, Ingest). Arguments are encoded exactly as redis-py
encodes them: bytes as they are, text with the connection's encoding, anything else by its encoder
(numbers as their repr; a bool or another type is its DataError). The command's name is one word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis._parsers.encoders import Encoder


def packed(commands: Sequence[Sequence[Any]], encoder: Encoder) -> bytes:
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, str):
                data = arg.encode(encoder.encoding, encoder.encoding_errors)
            elif isinstance(arg, bytes):
                data = arg
            elif type(arg) is int:  # not a bool: that is the encoder's DataError
                data = b"%d" % arg
            else:
                data = bytes(encoder.encode(arg))  # type: ignore[no-untyped-call]
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
