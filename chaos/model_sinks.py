"""The model pipe's two optional outputs, turned on so the oracle can read them back.

* The Postgres entitlements table: an embedded server (launch/postgres_server.py), migrated, named by
  `ROLESYNC_POSTGRES_URL`, so every worker keeps `rolesync_entitlements` and runs its drain helper.
* The app's notifications: `ROLESYNC_NOTIFY_URL` points at a receiver that only records
  (chaos/capture.py); the last notification per (org, user) is the one with the latest `timestamp`,
  as a receiver treating bodies as state keeps it (a retried delivery can arrive after a newer one).

Between sequences the table is emptied and the captured notifications dropped, with our Redis.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from chaos.capture import Captured, capturing
from chaos.model_oracle import Target
from common.table.entitlements_table import TABLE
from common.table.schema import migrate
from launch.postgres_server import EmbeddedPostgres

_ROWS = f"SELECT org_code, user_id, roles, plans, features, hand_grants FROM {TABLE}"  # noqa: S608 - the table name is ours
_EMPTY = f"TRUNCATE {TABLE}"


@dataclass
class Sinks:
    table: EmbeddedPostgres
    captured: Captured
    notify_url: str
    notify_secret: str = field(repr=False)  # a failing test prints the pipe: never the key

    def env(self) -> dict[str, str]:
        return {"ROLESYNC_POSTGRES_URL": self.table.url, "ROLESYNC_NOTIFY_URL": self.notify_url,
                "ROLESYNC_NOTIFY_SECRET": self.notify_secret}  # fmt: skip

    def rows(self) -> dict[Target, dict[str, Any]]:
        """Every row of the table: its roles, plans, features and hand grants, by (org, user)."""
        with psycopg.connect(self.table.url, autocommit=True) as conn:
            found = conn.execute(_ROWS).fetchall()
        return {Target(str(o), str(u)): {"roles": list(r), "plans": p, "features": f, "hand_grants": h or []}
                for o, u, r, p, f, h in found}  # fmt: skip

    def last_notifications(self) -> dict[Target, dict[str, Any]]:
        """The `data` of the latest notification per (org, user), by its `timestamp` (ties: the later arrival)."""
        last: dict[Target, tuple[datetime, dict[str, Any]]] = {}
        for raw in self.captured.bodies():
            body = json.loads(raw)
            data, at = body["data"], datetime.fromisoformat(str(body["timestamp"]).replace("Z", "+00:00"))
            target = Target(str(data["org_code"]), str(data["user_id"]))
            if target not in last or at >= last[target][0]:
                last[target] = (at, data)
        return {target: data for target, (_, data) in last.items()}

    def clear(self) -> None:
        with psycopg.connect(self.table.url, autocommit=True) as conn:
            conn.execute(_EMPTY)
        self.captured.clear()


@contextmanager
def model_sinks() -> Iterator[Sinks]:
    """A migrated Postgres and a recording receiver, stopped on the way out."""
    key = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with EmbeddedPostgres() as server, capturing() as (url, captured):
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate(conn)
        yield Sinks(server, captured, url, key)
