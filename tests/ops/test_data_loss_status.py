"""`rolesync status` says when Redis lost its data and the fleet is healing it (common/infra/data_loss.py)."""

from __future__ import annotations

import json

import redis

from common.infra import data_loss
from tests.ops.conftest import run_cli


def test_status_warns_while_a_loss_heals_and_shows_it_healed_after(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    data_loss.note(client, "e1", 1_000.0, "ingest@a")
    healing = json.loads(run_cli({"REDIS_URL": redis_url}, "status", "--json").output)
    assert healing["data_loss"]["state"] == "pending"
    assert any(w.startswith("Redis lost its data (pending") for w in healing["warnings"])
    data_loss.advance(client, "e1", "healed", healed_at=1_030.0, customers=12)
    shown = run_cli({"REDIS_URL": redis_url}, "status").output
    assert "Redis lost its data" not in shown
    assert "Redis data last lost:" in shown
    assert "healed in 30s (12 customers)" in shown
