"""The batcher's RESP packing gives the bytes redis-py's own packing gives, for every argument kind it is sent."""

from __future__ import annotations

import pytest
import redis.exceptions
from redis.asyncio.connection import Connection

from ingest.resp import packed

COMMANDS = [
    (
        "EVALSHA",
        "a" * 40,
        3,
        "rolesync:seen:event_1",
        "dramatiq:rolesync-events.msgs",
        "q",
        "",
        259200,
        b"\x00{\xc3\xa9}",
    ),
    ("EVALSHA", "b" * 40, 1, "caf\u00e9", 1.5, -7, b"x" * 10_000),
    ("SCRIPT", "LOAD", "return 1"),
    ("WAIT", 1, 2500),
]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_packed_is_what_redis_py_sends(encoding: str) -> None:
    connection = Connection(encoding=encoding)
    assert packed(COMMANDS, connection.encoder) == b"".join(connection.pack_commands(COMMANDS))


def test_an_argument_redis_py_refuses_is_refused() -> None:
    with pytest.raises(redis.exceptions.DataError):
        packed([("SET", "k", True)], Connection().encoder)
