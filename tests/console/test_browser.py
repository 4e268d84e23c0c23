"""The console in a real browser (Debian's Chromium via Playwright) against the whole pipe: embedded Valkey,
the sandbox Kinde, the ingest, a Dramatiq worker and `rolesync api` serving `/console/`.

One pipe and one browser for the module; each test opens a fresh browser context (no cookies). Every
page visited is saved as a screenshot under the test's tmp dir and checked to be a PNG of the viewport.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page

from common import keys
from common.infra import minute_counts
from common.infra.deadletters import UNRESOLVED, RedisDeadLetterStore
from launch.pipe import PipeOptions, running_pipe
from launch.redis_server import RunningRedis
from tests.console.browser import VIEWPORT, chromium, screenshot
from tests.ops.conftest import ONCALL_ENV, OnCall, fresh_db, parked, parked_for_an_heir, run_cli
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 14
WRITE, READ, USERS, WORKFLOW = (secrets.token_urlsafe(32) for _ in range(4))
KEYS = f"oncall:{WRITE}:console:write,viewer:{READ}:console,app:{USERS}:users"


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnCall]:
    server = RunningRedis(fresh_db(redis_server_url, PIPE_DB))
    env = {**ONCALL_ENV, "ROLESYNC_API_KEYS": KEYS, "ROLESYNC_WORKFLOW_SECRET": WORKFLOW}
    options = PipeOptions(env=env, api=True)
    with running_pipe(tmp_path_factory.mktemp("console"), options, redis_server=server) as launched:
        yield OnCall(launched)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        yield context.new_page()
    finally:
        context.close()


def console(pipe: OnCall, path: str = "") -> str:
    return f"{pipe.pipe.api_url}/console/{path}"


def sign_in(page: Page, pipe: OnCall, key: str = WRITE) -> None:
    page.goto(console(pipe, "sign-in"))
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def dead_letters(pipe: OnCall, customer_id: str) -> list[Any]:
    return RedisDeadLetterStore(pipe.redis()).list(customer_id=customer_id)


def park_ghost(pipe: OnCall) -> str:
    """A billing event for a customer nobody in Kinde has: parked as customer_unresolved."""
    customer_id = f"cus_ghost_{uuid.uuid4().hex[:8]}"
    pipe.kinde.send_event("customer.plan_assigned", {"customer_id": customer_id, "plan": {"code": "plan_client"}})
    wait_until(lambda: dead_letters(pipe, customer_id), timeout=30, what=f"{customer_id} parked")
    return customer_id


def counted(pipe: OnCall) -> dict[str, int]:
    return {name: sum(found) for name, found in minute_counts.last_hour(pipe.redis(), time.time()).items()}


def test_sign_in_and_overview_numbers_equal_rolesync_status(page: Page, pipe: OnCall, tmp_path: Path) -> None:
    park_ghost(pipe)
    wait_until(pipe.settled, timeout=30, what="the pipe to settle")
    wait_until(lambda: counted(pipe)[minute_counts.ACCEPTED], timeout=10, what="the ingest's count written")
    sign_in(page, pipe)
    assert page.url == console(pipe)
    found = json.loads(run_cli(pipe.env, "status", "--json").stdout)
    for queue in found["queues"]:
        row = page.locator(f"tr[data-queue='{queue['name']}']")
        shown = [row.locator(f"td.{name}").inner_text() for name in ("waiting", "in-flight", "delayed")]
        assert shown == [str(queue["waiting"]), str(queue["in_flight"]), str(queue["delayed"])]
    shown_counts = {r.get_attribute("data-reason"): int(r.locator("td.count").inner_text())
                    for r in page.locator("tr[data-reason]").all()}  # fmt: skip
    assert shown_counts == found["dead_letters"]
    assert page.locator("#workers").inner_text() == str(len(found["workers"]))
    assert page.locator("#kinde-429s").inner_text() == str(found["kinde_429s_5m"])
    problems = [p.inner_text().removeprefix("needs a human: ") for p in page.locator("p.problem").all()]
    assert problems == found["problems"]
    assert page.locator("#signed-in-as").inner_text() == "oncall"
    drawn = {f.get_attribute("data-series"): int(f.locator(".total").inner_text())
             for f in page.locator("figure.panel").all()}  # fmt: skip
    assert drawn == counted(pipe)
    assert drawn[minute_counts.ACCEPTED] >= 1  # the ghost's webhook
    assert drawn[minute_counts.DEAD_LETTERS] >= 1  # and its dead letter
    assert page.locator("figure.panel svg rect").count() >= 2
    screenshot(page, tmp_path / "overview.png")


def test_a_parked_event_is_listed_linked_from_the_customer_page_and_replays(page: Page, pipe: OnCall,
                                                                            tmp_path: Path) -> None:  # fmt: skip
    customer, heir = parked_for_an_heir(pipe)
    sign_in(page, pipe)
    page.goto(console(pipe, f"dead-letters?failed={UNRESOLVED}"))
    assert customer in page.locator("#records").inner_text()
    screenshot(page, tmp_path / "dead-letters.png")
    page.locator("#records a", has_text=customer).first.click()
    assert page.locator("#linked-to").inner_text().startswith("none")
    screenshot(page, tmp_path / "customer-unlinked.png")
    page.fill("#link-user", heir["id"])
    page.click("button#link")
    assert f"user {heir['id']}" in page.locator("#preview").inner_text()  # looked up in Kinde first
    screenshot(page, tmp_path / "confirm-link.png")
    page.fill("input[name=reason]", "ticket 7: the heir takes over the plan")
    page.click("button#confirm")
    assert "replayed" in page.locator("main").inner_text()
    wait_until(lambda: pipe.kinde.user_roles(heir["id"]) == ["role_client"], timeout=30, what="the heir's role")
    wait_until(lambda: parked(pipe, customer) == [], timeout=10, what="nothing left parked")
    # The worker counts each pass for the chart, just after its roles are written: wait for it, not race it.
    wait_until(lambda: counted(pipe)[minute_counts.CONVERGED] >= 1, timeout=10, what="the pass counted")
    page.goto(console(pipe, f"customers/{customer}"))
    timeline = page.locator("table.timeline").inner_text()
    assert "by=console:oncall" in timeline
    assert "reason=ticket 7: the heir takes over the plan" in timeline
    assert WRITE not in page.content()
    screenshot(page, tmp_path / "customer.png")
    page.click("#reconcile")
    page.fill("input[name=reason]", "check the heir's access")
    page.click("button#confirm")
    assert "Reconciled: in_step; nothing to change" in page.locator("main").inner_text()
    page.goto(console(pipe, f"customers/{customer}"))
    assert "action=reconcile by=console:oncall" in page.locator("table.timeline").inner_text()


def test_purge_refuses_without_the_typed_count(page: Page, pipe: OnCall, tmp_path: Path) -> None:
    ghost = park_ghost(pipe)
    sign_in(page, pipe)
    page.goto(console(pipe, f"dead-letters?customer={ghost}"))
    page.click("#purge-matching")
    assert "1 dead letter(s) match" in page.locator("#confirm-count").inner_text()
    screenshot(page, tmp_path / "confirm-purge.png")
    page.fill("input[name=reason]", "test data")
    page.click("button#confirm")  # no count typed
    assert "Nothing purged" in page.locator("#problem").inner_text()
    assert dead_letters(pipe, ghost)
    page.go_back()
    page.fill("input[name=reason]", "test data")
    page.fill("#typed", "1")
    page.click("button#confirm")
    assert page.locator("#done").inner_text() == "Purged 1 dead letter(s)"
    assert dead_letters(pipe, ghost) == []


# ids by name: a random key in a test id differs between xdist workers, which then refuse to run
@pytest.mark.parametrize(
    ("key", "says"), [(None, "opens nothing"), (USERS, "has no console scope")], ids=["wrong-key", "users-only-key"]
)
def test_a_wrong_key_and_a_users_only_key_see_no_console(page: Page, pipe: OnCall, key: str | None,
                                                         says: str) -> None:  # fmt: skip
    sign_in(page, pipe, key or secrets.token_urlsafe(32))
    assert says in page.locator("#problem").inner_text()
    page.goto(console(pipe, "dead-letters"))
    assert page.url.startswith(console(pipe, "sign-in"))
    assert page.context.cookies() == []


def test_a_cross_site_post_without_the_token_is_refused(page: Page, pipe: OnCall) -> None:
    ghost = park_ghost(pipe)
    (record,) = dead_letters(pipe, ghost)
    sign_in(page, pipe)
    target = console(pipe, f"dead-letters/{record.id}/replay")
    forged = page.request.post(target, form={"reason": "forged"}, headers={"origin": "https://evil.example"})
    assert forged.status == 403
    no_token = page.request.post(target, form={"reason": "forged"})
    assert no_token.status == 403
    assert "CSRF" in no_token.text()
    page.set_content(f'<form method="post" action="{target}"><input name="reason" value="x">'
                     '<button id="go">go</button></form>')  # fmt: skip
    page.click("#go")  # from another site: no cookie goes with it (SameSite=Strict), nor a token
    assert "That did not work" in page.content()
    assert dead_letters(pipe, ghost) == [record]


def test_why_names_the_org_plan_and_the_personal_plan(page: Page, pipe: OnCall, tmp_path: Path) -> None:
    org = pipe.kinde.create_org(name=f"Acme {uuid.uuid4().hex[:6]}")
    client = redis.Redis.from_url(pipe.redis_url)
    wait_until(lambda: client.exists(keys.customer_link(org["customer_id"])), timeout=30, what="org link learned")
    member = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com", org_code=org["code"])
    pipe.kinde.change_plan(org["customer_id"], "plan_client")
    pipe.kinde.change_plan(member["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(member["id"], org["code"]) == ["role_client"], timeout=30,
               what="the member's role")  # fmt: skip
    wait_until(pipe.settled, timeout=30, what="both passes")
    sign_in(page, pipe, READ)
    page.goto(console(pipe, "customers"))
    page.fill("#q", member["id"])
    page.click("main button[type=submit]")
    page.select_option("#why-org", org["code"])
    page.select_option("#why-role", "role_client")
    page.click("button#why")
    answer = page.locator("#why-answer").inner_text()
    assert org["customer_id"] in answer
    assert member["customer_id"] in answer
    assert f"holds role_client in {org['code']}: granted by" in answer
    assert f"org {org['code']} (B2B)" in answer  # the org's plan covers every member
    assert f"user {member['id']} in org {org['code']}" in answer  # the personal plan
    assert 'plan_client = ["role_client"]' in answer
    screenshot(page, tmp_path / "why.png")


def test_the_guard_page_shows_the_last_decision_with_its_reason(page: Page, pipe: OnCall, tmp_path: Path) -> None:
    user = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="the user's role")
    body = {"billing": {"currentPlanCode": "plan_client", "requestedPlanCode": "plan_subscriber"},
            "user": {"id": user["id"]}, "organization": {"code": user["org_code"]}}  # fmt: skip
    answer = httpx.post(f"{pipe.pipe.api_url}/v1/plan-selection", json=body, timeout=30,
                        headers={"x-rolesync-workflow-secret": WORKFLOW})  # fmt: skip
    assert answer.status_code == 200, answer.text
    sign_in(page, pipe, READ)

    def listed() -> bool:
        page.goto(console(pipe, "guard"))
        return user["customer_id"] in page.locator("#decisions").inner_text()

    wait_until(listed, timeout=10, what="the decision listed")  # written after the answer is sent
    row = page.locator("#decisions tr", has_text=user["customer_id"]).first
    assert "plan_client → plan_subscriber" in row.inner_text()
    assert "allowed" in row.locator(".outcome").inner_text()
    screenshot(page, tmp_path / "guard.png")
