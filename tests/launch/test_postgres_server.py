"""The embedded PostgreSQL starts even when the port it picked is taken first, and says why when it cannot."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest

from launch.postgres_server import EmbeddedPostgres, EmbeddedPostgresError
from launch.processes import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_picked_port_taken_before_the_server_binds_it_moves_to_another(taken_port: int) -> None:
    server = EmbeddedPostgres()
    server.port = taken_port  # as if another process took the free port between the pick and the bind
    with server:
        assert server.port != taken_port
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def test_a_given_port_that_is_taken_fails_with_the_servers_reason(taken_port: int) -> None:
    server = EmbeddedPostgres(port=taken_port)
    with pytest.raises(EmbeddedPostgresError, match=f"port {taken_port}.*could not bind"):
        server.__enter__()
