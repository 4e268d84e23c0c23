"""POST /v1/plan-selection and PUT usage over real HTTP (uvicorn) and real Redis, on what the worker kept.

The world is the worker's in-process core (tests/worker/conftest.py) handling real events; the
member cache is filled by the worker's own refresh function, as the `refresh_org_members` actor does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import httpx
import pytest

from api.app import create_app
from common import keys
from common.customers.history import entry
from common.guard import selection_log
from common.messages import GUARD_QUEUE, REFRESH_MEMBERS_ACTOR
from common.plans.mapping import PlanMap, parse_plans
from common.settings import Settings
from launch.processes import free_port, wait_until
from tests.ingest.servers import serving
from tests.worker.conftest import World, build_world
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.convergence.members import refresh_members
from worker.events.handlers import handle_event

SECRET = "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
OPS_KEY, APP_KEY = "ops-Jt5wQ9zL2xVk7Rm4Pc8Hn3Fb", "app-Ud6sY1gT8rKq3Zw5Mx9Ce2La"
KEYS = f"ops:{OPS_KEY},app:{APP_KEY}:users+usage:write"
PLANS = """
[plans]
plan_client = ["role_client"]
plan_team = ["role_client"]
free = []
[limits.free]
org_members = 2
projects = 10
api_calls = 100
[guard]
on_error = "{on_error}"
member_wait_s = 0.3
plan_names = {{ free = "Free" }}
"""


def plans(on_error: str = "allow") -> PlanMap:
    return parse_plans(PLANS.format(on_error=on_error))


@pytest.fixture
def world(redis_url: str) -> World:
    return guard_world(redis_url)


def guard_world(redis_url: str) -> World:
    """An org of three paying as a B2B customer, a B2C user, both orgs' members counted."""
    found = build_world(redis_url, plans=plans())
    found.kinde.orgs["org_acme"] = {"code": "org_acme", "billing": {"billing_customer_id": "customer_acme"}}
    for user in ("kp_a", "kp_b", "kp_c"):
        found.kinde.add_user(user, None, org="org_acme")
    found.kinde.set_plan("customer_acme", "plan_team")
    org_event = {"type": "organization.created", "event_id": "ev_o", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(found.deps, org_event, OLD) == "converged"
    found.kinde.add_user("kp_1", "customer_1")
    found.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(found.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert found.deps.members is not None
    for org in ("org_acme", "org_default"):
        refresh_members(found.kinde, found.deps.members, org)
    return found


@contextmanager
def api_for(redis_url: str, on_error: str = "allow", secret: str = SECRET) -> Iterator[httpx.Client]:
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": KEYS, "ROLESYNC_WORKFLOW_SECRET": secret}
    app = create_app(Settings.from_env(env), plans=plans(on_error))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        yield client


@pytest.fixture
def api(redis_url: str, world: World) -> Iterator[httpx.Client]:
    with api_for(redis_url) as client:
        yield client


def context(user: str, org: str | None, requested: str = "free", current: str = "plan_team") -> dict[str, Any]:
    found: dict[str, Any] = {"billing": {"currentPlanCode": current, "requestedPlanCode": requested},
                             "user": {"id": user}}  # fmt: skip
    if org:
        found["organization"] = {"code": org}
    return found


def ask(api: httpx.Client, body: Any, secret: str = SECRET) -> httpx.Response:
    return api.post("/v1/plan-selection", json=body, headers={"x-rolesync-workflow-secret": secret})


def test_org_members_counted_from_kinde_refuse_a_move_to_a_plan_allowing_fewer(api: httpx.Client) -> None:
    answer = ask(api, context("kp_a", "org_acme"))
    assert answer.status_code == 200
    assert answer.json() == {"allow": False, "message": "To move to Free you first need to:",
                             "reasons": ["reduce org_members to 2 or fewer (now 3)"]}  # fmt: skip


def test_a_member_who_leaves_by_a_user_event_lets_the_move_through(api: httpx.Client, world: World) -> None:
    world.kinde.users["kp_c"]["organizations"] = ["org_default"]
    handle_event(world.deps, {**user_created("ev_moved", "kp_c"), "type": "user.updated"}, OLD)
    assert ask(api, {"context": context("kp_a", "org_acme")}).json() == {"allow": True, "message": "", "reasons": []}


def test_a_personal_customer_counts_only_itself_not_the_default_orgs_members(api: httpx.Client, world: World) -> None:
    for user in ("kp_2", "kp_3", "kp_4"):  # other B2C users in the default org: not kp_1's team
        world.kinde.add_user(user, f"customer_{user}")
    assert world.deps.members is not None
    refresh_members(world.kinde, world.deps.members, "org_default")
    assert world.deps.members.count("org_default").count >= 3  # type: ignore[union-attr]
    assert ask(api, context("kp_1", None, current="plan_client")).json() == {
        "allow": True,
        "message": "",
        "reasons": [],
    }


def test_meter_usage_from_the_webhook_refuses_by_its_feature_code(api: httpx.Client, world: World) -> None:
    meter = billing("ev_m", "customer_1", "customer.meter_usage_updated", feature_code="api_calls",
                    meter_value="150", meter_type_code="absolute")  # fmt: skip
    handle_event(world.deps, meter, OLD)
    answer = ask(api, context("kp_1", None, current="plan_client")).json()
    assert answer["reasons"] == ["reduce api_calls to 100 or fewer (now 150)"]


def test_app_reported_usage_refuses_and_needs_the_usage_write_scope(api: httpx.Client) -> None:
    path = "/v1/customers/customer_1/usage/projects"
    assert api.put(path, json={"value": 12}, headers={"Authorization": f"Bearer {OPS_KEY}"}).status_code == 403
    assert api.put(path, json={"value": 12}).status_code == 401
    put = api.put(path, json={"value": 12}, headers={"Authorization": f"Bearer {APP_KEY}"})
    assert (put.status_code, put.json()["kept"]) == (200, True)
    answer = ask(api, context("kp_1", "org_default", current="plan_client")).json()
    assert (answer["allow"], answer["reasons"]) == (False, ["reduce projects to 10 or fewer (now 12)"])
    for bad in ({"value": -1}, {"value": "12"}, {"value": 1, "extra": 2}, [12], {"value": 1, "at": 4e12}):
        refused = api.put(path, json=bad, headers={"Authorization": f"Bearer {APP_KEY}"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_request")
    not_json = api.put(path, content=b"{", headers={"Authorization": f"Bearer {APP_KEY}"})
    assert not_json.status_code == 400


def test_the_secret_is_required_and_a_wrong_one_is_401_with_a_json_error(api: httpx.Client) -> None:
    assert api.post("/v1/plan-selection", json=context("kp_a", "org_acme")).status_code == 401
    wrong = ask(api, context("kp_a", "org_acme"), secret=SECRET + "x")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")
    assert SECRET not in wrong.text
    bearer = api.post("/v1/plan-selection", json=context("kp_a", "org_acme"),
                      headers={"Authorization": f"Bearer {OPS_KEY}"})  # fmt: skip
    assert bearer.status_code == 401  # an API key is no workflow secret


def test_without_a_configured_secret_the_endpoint_is_404_saying_the_guard_is_off(redis_url: str, world: World) -> None:
    with api_for(redis_url, secret="") as client:
        answer = ask(client, context("kp_a", "org_acme"), secret="")
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "guard_disabled")


@pytest.mark.parametrize(
    "body",
    [[1, 2], "free", {"billing": {"requestedPlanCode": "free"}}, {"user": {"id": "kp_a"}, "billing": "free"},
     {"context": {"billing": {"requestedPlanCode": ""}, "user": {"id": "kp_a"}}}],
)  # fmt: skip
def test_a_body_that_is_not_a_context_object_is_400(api: httpx.Client, body: Any) -> None:
    answer = ask(api, body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")


def test_a_body_that_is_not_json_or_too_large_is_400(api: httpx.Client) -> None:
    headers = {"x-rolesync-workflow-secret": SECRET}
    assert api.post("/v1/plan-selection", content=b"{nope", headers=headers).status_code == 400
    huge = json.dumps({**context("kp_a", "org_acme"), "pad": "x" * 100_000})
    assert api.post("/v1/plan-selection", content=huge, headers=headers).status_code == 400


def test_an_unknown_customer_or_plan_is_allowed(api: httpx.Client) -> None:
    assert ask(api, context("kp_nobody", "org_nowhere")).json()["allow"] is True
    assert ask(api, context("kp_a", "org_acme", requested="plan_nobody_sells")).json()["allow"] is True
    assert ask(api, context("kp_a", "org_acme", requested="plan_client")).json()["allow"] is True  # no limits


def test_each_decision_lands_in_the_customers_timeline(api: httpx.Client, world: World) -> None:
    ask(api, context("kp_a", "org_acme"))
    wait_until(lambda: timeline(world, "customer_acme"), what="the decision in the timeline")  # written after it
    history = api.get("/v1/customers/customer_acme/history", headers={"Authorization": f"Bearer {OPS_KEY}"}).json()
    found = history["entries"][0]
    assert (found["kind"], found["requested_plan"], found["current_plan"]) == ("plan_selection", "free", "plan_team")
    assert (found["allow"], found["outcome"], found["user_id"]) == (False, "refused", "kp_a")
    assert found["reasons"] == ["reduce org_members to 2 or fewer (now 3)"]
    assert found["metrics"]["org_members"] == {"limit": 2, "value": 3, "source": "kinde_members", "unreadable": False}


def test_an_uncounted_org_asks_the_worker_once_and_applies_on_error_both_ways(redis_url: str, world: World) -> None:
    """No worker answers here: the count stays missing past member_wait_s, so on_error decides."""
    world.kinde.orgs["org_new"] = {"code": "org_new", "billing": {"billing_customer_id": "customer_new"}}
    world.kinde.add_user("kp_n", None, org="org_new")
    org_event = {"type": "organization.created", "event_id": "ev_on", "data": {"organization": {"code": "org_new"}}}
    handle_event(world.deps, org_event, OLD)
    world.redis.delete(keys.org_members_read("org_new"))  # as if its pass had not run yet (a miss)
    with api_for(redis_url, on_error="deny") as client:
        denied = ask(client, context("kp_n", "org_new")).json()
        exposed = client.get("/metrics").text
    assert (denied["allow"], denied["reasons"]) == (False, [])
    assert "Free" in denied["message"]
    assert 'rolesync_guard_fallbacks_total{on_error="deny",reason="members_unavailable"} 1.0' in exposed
    with api_for(redis_url, on_error="allow") as client:
        assert ask(client, context("kp_n", "org_new")).json() == {"allow": True, "message": "", "reasons": []}
    queued = world.redis.lrange(keys.queue_list(GUARD_QUEUE), 0, -1)
    assert len(queued) == 1  # the second decision found the first request still held
    message = dramatiq.Message.decode(world.redis.hget(keys.queue_messages(GUARD_QUEUE), queued[0]).encode())
    assert (message.actor_name, message.args) == (REFRESH_MEMBERS_ACTOR, ("org_new",))
    wait_until(lambda: len(timeline(world, "customer_new")) == 2, what="both decisions in the timeline")
    found = [(h["outcome"], h["allow"]) for h in timeline(world, "customer_new")]
    assert found == [("fallback_allow", True), ("fallback_deny", False)]


def timeline(world: World, customer_id: str) -> list[dict[str, Any]]:
    """The customer's plan-selection decisions: a list of their own, apart from the timeline."""
    return selection_log.recent(world.redis, customer_id)


def test_a_burst_of_decisions_cannot_push_the_timeline_out(api: httpx.Client, world: World) -> None:
    """A user retrying a refused change many times: the decisions are capped on their own list; on-call's
    audit entry and the passes stay in the timeline, and the API's history shows both, newest first."""
    assert world.deps.history is not None
    world.deps.history.add("customer_acme", entry("oncall", action="customers_link", by="ada", reason="ticket 9"))
    before = world.deps.history.recent("customer_acme")
    for _ in range(selection_log.CAP + 20):
        ask(api, context("kp_a", "org_acme"))
    wait_until(lambda: world.redis.llen(keys.customer_plan_selections("customer_acme")) == selection_log.CAP,
               what="the capped decision list")  # fmt: skip
    assert world.deps.history.recent("customer_acme") == before  # no decision went into the timeline
    headers = {"Authorization": f"Bearer {OPS_KEY}"}
    shown = api.get("/v1/customers/customer_acme/history", headers=headers).json()["entries"]
    kinds = [e["kind"] for e in shown]
    assert kinds[: selection_log.CAP] == ["plan_selection"] * selection_log.CAP  # the newest, merged by time
    assert "oncall" in kinds[selection_log.CAP :]
    assert [e["at"] for e in shown] == sorted((e["at"] for e in shown), reverse=True)


def test_with_redis_down_the_answer_is_on_error_not_an_error(redis_url: str) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    for on_error, allow in (("deny", False), ("allow", True)):
        with api_for(down, on_error=on_error) as client:
            answer = ask(client, context("kp_a", "org_acme"))
            assert (answer.status_code, answer.json()["allow"]) == (200, allow)
            assert 'reason="redis"' in client.get("/metrics").text


def put_usage(api: httpx.Client, customer: str, value: float = 12) -> httpx.Response:
    return api.put(f"/v1/customers/{customer}/usage/projects", json={"value": value},
                   headers={"Authorization": f"Bearer {APP_KEY}"})  # fmt: skip


def test_usage_for_a_customer_nobody_linked_is_404_and_nothing_is_kept(api: httpx.Client, world: World) -> None:
    answer = put_usage(api, "customer_ghost")
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "customer_not_found")
    assert world.redis.exists(keys.customer_usage_reports("customer_ghost")) == 0


def test_usage_reports_expire_as_the_customers_timeline_does(api: httpx.Client, world: World) -> None:
    assert put_usage(api, "customer_acme").status_code == 200  # known by its org link
    ttl = world.redis.ttl(keys.customer_usage_reports("customer_acme"))
    assert 0 < ttl <= Settings.from_env({}).history_ttl_s


def test_the_customer_answer_shows_the_apps_usage_beside_the_meters(api: httpx.Client, world: World) -> None:
    meter = billing("ev_m2", "customer_1", "customer.meter_usage_updated", feature_code="api_calls",
                    meter_value="150", meter_type_code="absolute")  # fmt: skip
    handle_event(world.deps, meter, OLD)
    assert put_usage(api, "customer_1").status_code == 200
    usage = api.get("/v1/customers/customer_1", headers={"Authorization": f"Bearer {OPS_KEY}"}).json()["usage"]
    assert sorted((u["metric"], u["value"], u["source"]) for u in usage) == [
        ("api_calls", 150.0, "meter"),
        ("projects", 12.0, "app"),
    ]
