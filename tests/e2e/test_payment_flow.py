"""`[payment_failed] action = "suspend"` end to end: signed payment webhooks → ingest → worker → Kinde roles.

Kinde's payment events are sent by the sandbox's `/events` (it does not simulate Stripe's dunning);
their timestamps are what orders them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from common import keys
from launch.pipe import Pipe
from tests.procs import wait_until

pytestmark = pytest.mark.e2e


def test_a_failed_payment_withholds_the_role_until_a_later_payment_succeeds(pipe: Pipe) -> None:
    user = pipe.kinde.create_user(email="dunning@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=20, what="role_client")
    data, failed_at = {"customer_id": user["customer_id"]}, datetime.now(UTC)
    pipe.kinde.send_event("customer.payment_failed", data, timestamp=failed_at.isoformat())
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == [], timeout=20, what="the role withheld")
    older = (failed_at - timedelta(seconds=1)).isoformat()
    late = pipe.kinde.send_event("customer.payment_succeeded", data, timestamp=older)  # delivered late
    with redis.Redis.from_url(pipe.redis_url) as r:  # its generation is assigned just after its payment record
        wait_until(lambda: r.exists(keys.event_generation(late["event_id"])), timeout=20, what="the late success")
    assert pipe.kinde.user_roles(user["id"]) == []
    later = (failed_at + timedelta(seconds=1)).isoformat()
    pipe.kinde.send_event("customer.payment_succeeded", data, timestamp=later)
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=20, what="the role back")
