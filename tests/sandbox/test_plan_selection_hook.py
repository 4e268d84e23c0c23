"""The sandbox runs the plan-selection hook like Kinde runs its workflow, over HTTP against a stub hook.

A control-API or Management-API plan change first POSTs the workflow event's context to the hook; a refusal
answers 409 PLAN_SELECTION_DENIED with the message and reasons and changes nothing (no agreement, no
webhook); a hook that is down, slow or broken lets the change through; a customer's first plan never asks.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.client import SandboxError
from tests.procs import wait_until
from tests.sandbox.receiver import Receiver
from tests.sandbox_fixture import RunningSandbox

SECRET = "hook-secret-for-tests"
MESSAGE = "Your organization does not fit plan_small yet:"
REASONS = ["2 members hold seats; plan_small allows 1. Remove 1 member."]


@dataclass
class Hook:
    """rolesync's endpoint as the contract has it: 401 on a bad secret, else refuse plan_small, allow the rest."""

    url: str = ""
    asked: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str | None] = field(default_factory=list)
    mode: str = "decide"  # or "fail" (500) or "hang" (answers after 3 s)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any], secret: str | None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.asked.append(body)
            self.secrets.append(secret)
        if self.mode == "hang":
            time.sleep(3)
        if self.mode == "fail":
            return 500, {"error": "boom"}
        if secret != SECRET:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad workflow secret"}]}
        if body["billing"]["requestedPlanCode"] == "plan_small":
            return 200, {"allow": False, "message": MESSAGE, "reasons": REASONS}
        return 200, {"allow": True, "message": "", "reasons": []}


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            status, answer = hook.answer(body, self.headers.get("x-rolesync-workflow-secret"))
            raw = json.dumps(answer).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the sandbox gave up on a "hang"
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def running_hook() -> Iterator[Hook]:
    hook = Hook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/v1/plan-selection"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hook(sandbox: RunningSandbox) -> Iterator[Hook]:
    with running_hook() as running:
        sandbox.client.set_plan_selection_hook(running.url, SECRET, timeout_s=1.0)
        yield running
        sandbox.client.clear_plan_selection_hook()


def _subscribed(sandbox: RunningSandbox, plan: str = "plan_big") -> str:
    customer: str = sandbox.client.create_user(send_webhook=False)["customer_id"]
    sandbox.client.change_plan(customer, plan)
    return customer


def _active_plans(sandbox: RunningSandbox, customer: str) -> list[str]:
    agreements = sandbox.client.state()["agreements"]
    return [a["plan_code"] for a in agreements if a["customer_id"] == customer and a["expires_on"] is None]


def test_a_customers_first_plan_does_not_ask_the_hook(sandbox: RunningSandbox, hook: Hook) -> None:
    customer = _subscribed(sandbox, "plan_small")
    assert hook.asked == []
    assert _active_plans(sandbox, customer) == ["plan_small"]


def test_a_refused_change_answers_409_with_the_reasons_and_changes_nothing(
    sandbox: RunningSandbox, hook: Hook, receiver: Receiver
) -> None:
    customer = _subscribed(sandbox)
    with pytest.raises(SandboxError) as refused:
        sandbox.client.change_plan(customer, "plan_small")
    assert (refused.value.status, refused.value.code) == (409, "PLAN_SELECTION_DENIED")
    assert (refused.value.message, refused.value.reasons) == (MESSAGE, REASONS)
    assert _active_plans(sandbox, customer) == ["plan_big"]

    sandbox.client.change_plan(customer, "plan_other")  # allowed: its 3 events follow the first plan's 2
    assert _active_plans(sandbox, customer) == ["plan_other"]
    wait_until(lambda: len(receiver.snapshot()) >= 5, timeout=10, what="the first plan's and the change's events")
    assert len(receiver.snapshot()) == 5, "the refused change sent no webhook"


def test_the_hook_gets_the_workflow_context_and_the_secret(sandbox: RunningSandbox, hook: Hook) -> None:
    user = sandbox.client.create_user(send_webhook=False)
    sandbox.client.change_plan(user["customer_id"], "plan_big")
    sandbox.client.change_plan(user["customer_id"], "plan_other")
    assert hook.secrets == [SECRET]
    assert hook.asked == [
        {
            "billing": {"currentPlanCode": "plan_big", "requestedPlanCode": "plan_other"},
            "user": {"id": user["id"]},
            "organization": {"code": user["org_code"]},
        }
    ]


def test_an_org_customer_is_asked_about_as_the_org_with_a_member_selecting(sandbox: RunningSandbox, hook: Hook) -> None:
    org = sandbox.client.create_org(name="Acme", send_webhook=False)
    member = sandbox.client.create_user(org_code=org["code"], with_customer=False, send_webhook=False)
    sandbox.client.change_plan(org["customer_id"], "plan_big")
    sandbox.client.change_plan(org["customer_id"], "plan_other")
    [asked] = hook.asked
    assert asked["organization"] == {"code": org["code"]}
    assert asked["user"] == {"id": member["id"]}


def test_the_management_api_change_is_refused_the_same_way(
    sandbox: RunningSandbox, hook: Hook, kinde: httpx.Client
) -> None:
    customer = _subscribed(sandbox)
    refused = kinde.post("/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": "plan_small"})
    assert refused.status_code == 409
    assert refused.json() == {"errors": [{"code": "PLAN_SELECTION_DENIED", "message": MESSAGE, "reasons": REASONS}]}
    assert _active_plans(sandbox, customer) == ["plan_big"]
    allowed = kinde.post("/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": "plan_other"})
    assert allowed.status_code == 200
    assert _active_plans(sandbox, customer) == ["plan_other"]


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_broken_or_slow_hook_lets_the_change_through(sandbox: RunningSandbox, hook: Hook, mode: str) -> None:
    customer = _subscribed(sandbox)
    hook.mode = mode
    sandbox.client.change_plan(customer, "plan_small")
    assert len(hook.asked) == 1
    assert _active_plans(sandbox, customer) == ["plan_small"]


def test_a_bad_secret_gets_no_decision_so_the_change_goes_through(sandbox: RunningSandbox, hook: Hook) -> None:
    sandbox.client.set_plan_selection_hook(hook.url, "not-the-secret")
    customer = _subscribed(sandbox)
    sandbox.client.change_plan(customer, "plan_small")
    assert hook.secrets == ["not-the-secret"]
    assert _active_plans(sandbox, customer) == ["plan_small"]


def test_an_unreachable_hook_lets_the_change_through(sandbox: RunningSandbox) -> None:
    with running_hook() as gone:
        url = gone.url
    sandbox.client.set_plan_selection_hook(url, SECRET, timeout_s=1.0)
    try:
        customer = _subscribed(sandbox)
        sandbox.client.change_plan(customer, "plan_small")
        assert _active_plans(sandbox, customer) == ["plan_small"]
    finally:
        sandbox.client.clear_plan_selection_hook()


def test_a_cleared_hook_is_not_asked(sandbox: RunningSandbox, hook: Hook) -> None:
    sandbox.client.clear_plan_selection_hook()
    customer = _subscribed(sandbox)
    sandbox.client.change_plan(customer, "plan_small")
    assert hook.asked == []
    assert _active_plans(sandbox, customer) == ["plan_small"]


@pytest.mark.parametrize(
    "body",
    [{"url": "ftp://x", "secret": "s"}, {"url": "http://x"}, {"url": "http://x", "secret": "s", "timeout_s": 0}],
)
def test_a_bad_hook_setting_is_a_clear_400(sandbox: RunningSandbox, body: dict[str, Any]) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/plan_selection_hook", json=body)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, "INVALID_FIELD")
