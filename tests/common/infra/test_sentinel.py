"""`REDIS_URL=redis+sentinel://…`: parsed in one place, with one-line errors; every client reaches the primary.

The clients are checked against a real Sentinel deployment on loopback (chaos/sentinel_group.py: a
primary, a replica, three sentinels): each write must land on the primary the sentinels name, not on
a default host (a connection made outside its pool once dialled localhost:6379 instead).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chaos.sentinel_group import SentinelGroup
from common.errors import ConfigError
from common.infra.connections import async_redis_client, redis_client
from common.infra.redis_url import parse_sentinel
from common.messages import converge_message
from common.settings import Settings, mask_url
from ingest.enqueue import RedisEventQueue
from launch.processes import wait_until
from worker.runtime.broker import build_broker


def test_the_full_form_is_read() -> None:
    target = parse_sentinel("rediss+sentinel://app:p%40ss@h1:26380,h2/mymaster/3?ssl_ca_certs=/ca.pem")
    assert target.sentinels == (("h1", 26380), ("h2", 26379))
    assert (target.master, target.db, target.username, target.password) == ("mymaster", 3, "app", "p@ss")
    assert target.connection_options() == {"ssl": True, "ssl_ca_certs": "/ca.pem"}


def test_db_defaults_to_zero_and_plain_has_no_tls() -> None:
    target = parse_sentinel("redis+sentinel://h1:26379/mymaster")
    assert (target.db, target.password, target.connection_options()) == (0, None, {})


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel:///mymaster/0", "names no sentinel host"),
        ("redis+sentinel://h1:port/mymaster/0", "bad port"),
        ("redis+sentinel://h1:26379", "must name the Sentinel master"),
        ("redis+sentinel://h1:26379/mymaster/zero", "must be a number"),
        ("redis+sentinel://h1:26379/mymaster/0/extra", "must name the Sentinel master"),
        ("redis+sentinel://h1:26379/mymaster/0?timeout=3", "unknown option(s) timeout"),
    ],
)
def test_a_bad_url_is_one_config_error_at_start_up(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": url})
    assert says in str(caught.value)
    assert "redis+sentinel://h1:26379,h2:26379/<master>/<db>" in str(caught.value)


def test_the_password_is_masked_and_sentinel_urls_wait_for_a_replica() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis+sentinel://:s3cret@h1:26379,h2:26379/m/0"})
    assert "s3cret" not in repr(settings)
    assert mask_url(settings.redis_url.reveal()) == "redis+sentinel://:****@h1:26379,h2:26379/m/0"
    assert settings.redis_min_replicas == 1
    assert Settings.from_env({"REDIS_URL": "redis://h:6379/0"}).redis_min_replicas == 0
    given = {"REDIS_URL": "redis+sentinel://h1/m/0", "ROLESYNC_REDIS_MIN_REPLICAS": "0"}
    assert Settings.from_env(given).redis_min_replicas == 0


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    found = SentinelGroup(Path(tmp_path_factory.mktemp("sentinel")))
    try:
        found.start()
        yield found
    finally:
        found.stop()


def _on_primary(group: SentinelGroup) -> redis.Redis:
    port = group.primary_port()
    assert port is not None
    return redis.Redis(port=port, socket_timeout=5)


@pytest.mark.e2e
def test_sync_and_async_clients_write_to_the_primary(group: SentinelGroup) -> None:
    settings = Settings.from_env({"REDIS_URL": group.url})
    key = f"test:{uuid.uuid4().hex}"
    redis_client(settings).set(key, "sync")
    assert _on_primary(group).get(key) == b"sync"

    async def write() -> None:
        client = async_redis_client(settings)
        await client.set(key, "async")
        await client.aclose()

    asyncio.run(write())
    assert _on_primary(group).get(key) == b"async"


@pytest.mark.e2e
def test_the_ingest_queues_on_the_primary_once_a_replica_has_it(group: SentinelGroup) -> None:
    settings = Settings.from_env({"REDIS_URL": group.url})
    event_id = f"event_{uuid.uuid4().hex}"

    async def enqueue() -> bool:
        client = async_redis_client(settings)
        queue = RedisEventQueue(client, dedupe_ttl_s=60, min_replicas=settings.redis_min_replicas)
        try:
            return await queue.enqueue_once({"event_id": event_id, "type": "user.deleted", "data": {}}, None, 0.0)
        finally:
            await queue.aclose()
            await client.aclose()

    assert asyncio.run(enqueue()) is True
    assert _on_primary(group).exists(f"rolesync:seen:{event_id}")
    replicas = [n.port for n in group.data if n.port != group.primary_port()]
    # WAIT: the 200 survives a failover (one replica is enough; give the other its usual sub-second lag)
    wait_until(lambda: any(redis.Redis(port=p).exists(f"rolesync:seen:{event_id}") for p in replicas), timeout=5)


@pytest.mark.e2e
def test_the_dramatiq_broker_enqueues_on_the_primary(group: SentinelGroup) -> None:
    broker = build_broker(Settings.from_env({"REDIS_URL": group.url}))
    try:
        message = broker.enqueue(converge_message(f"customer_{uuid.uuid4().hex}", "test"))
        queued = _on_primary(group).hget(f"dramatiq:{message.queue_name}.msgs", message.options["redis_message_id"])
        assert queued is not None
    finally:
        broker.close()


@pytest.mark.e2e
def test_sentinels_with_a_password_of_their_own_are_reached_with_sentinel_password(tmp_path: Path) -> None:
    """`?sentinel_password=` authenticates to the sentinels (`requirepass` in their conf); without it none answers."""
    group = SentinelGroup(tmp_path, replicas=1, sentinel_password="sentinel-Pw7Kq2")
    try:
        group.start()
        key = f"test:{uuid.uuid4().hex}"
        redis_client(Settings.from_env({"REDIS_URL": group.url})).set(key, "with the sentinels' password")
        assert _on_primary(group).get(key) == b"with the sentinels' password"
        without = group.url.split("?", 1)[0]
        with pytest.raises(redis.RedisError):
            redis_client(Settings.from_env({"REDIS_URL": without}), timeout_s=2.0).set(key, "refused")
    finally:
        group.stop()
