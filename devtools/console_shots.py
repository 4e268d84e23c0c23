"""`python -m devtools.console_shots`: draw docs/img/console-*.png, the console's screenshots in the docs.

Starts the whole pipe (as `rolesync demo` does: embedded Valkey, sandbox Kinde, ingest, worker, API),
makes a little history (a paying user, an org paying for a member who also pays personally, a
plan-selection decision, an event parked for an unknown customer), then signs in to the console in
Debian's headless Chromium (devtools/browser.py) and saves each page.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from devtools.browser import VIEWPORT, chromium
from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.processes import wait_until

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"
KEY, WORKFLOW = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


def history(pipe: Pipe) -> dict[str, Any]:
    kinde = pipe.kinde
    ada = kinde.create_user(email="ada@example.com")
    kinde.change_plan(ada["customer_id"], "plan_client")
    org = kinde.create_org(name="Acme")
    time.sleep(2)  # the org's link is learned from organization.created
    member = kinde.create_user(email="grace@example.com", org_code=org["code"])
    kinde.change_plan(org["customer_id"], "plan_client")
    kinde.change_plan(member["customer_id"], "plan_client")
    kinde.send_event("customer.plan_assigned", {"customer_id": f"cus_{uuid.uuid4().hex[:12]}",
                                                "plan": {"code": "plan_client"}})  # fmt: skip
    wait_until(lambda: kinde.user_roles(member["id"], org["code"]) == ["role_client"], timeout=30, what="roles")
    body = {"billing": {"currentPlanCode": "plan_client", "requestedPlanCode": "plan_subscriber"},
            "user": {"id": ada["id"]}, "organization": {"code": ada["org_code"]}}  # fmt: skip
    httpx.post(f"{pipe.api_url}/v1/plan-selection", json=body, headers={"x-rolesync-workflow-secret": WORKFLOW})
    time.sleep(3)  # the passes settle and the ingest's per-minute counts are written
    return {"ada": ada, "org": org, "member": member}


def shoot(page: Page, pipe: Pipe, made: dict[str, Any]) -> None:
    base = f"{pipe.api_url}/console/"
    page.goto(f"{base}sign-in")
    page.fill("input[name=key]", KEY)
    page.screenshot(path=str(OUT / "console-sign-in.png"))
    page.click("button[type=submit]")
    page.screenshot(path=str(OUT / "console-overview.png"))
    page.goto(f"{base}dead-letters")
    page.screenshot(path=str(OUT / "console-dead-letters.png"))
    page.click("#records tbody a >> nth=0")
    page.screenshot(path=str(OUT / "console-dead-letter.png"))
    page.goto(f"{base}dead-letters/confirm/purge")
    page.screenshot(path=str(OUT / "console-purge.png"))
    page.goto(f"{base}users/{made['member']['id']}?org={made['org']['code']}&role=role_client")
    page.screenshot(path=str(OUT / "console-why.png"))
    page.goto(f"{base}customers/{made['ada']['customer_id']}")
    page.screenshot(path=str(OUT / "console-customer.png"))
    page.goto(f"{base}guard")
    page.screenshot(path=str(OUT / "console-guard.png"))


def main() -> int:
    env = {"ROLESYNC_API_KEYS": f"oncall:{KEY}:console:write", "ROLESYNC_WORKFLOW_SECRET": WORKFLOW}
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as logs, running_pipe(Path(logs), PipeOptions(env=env, api=True)) as pipe:
        made = history(pipe)
        with chromium() as browser:
            page = browser.new_context(viewport=VIEWPORT).new_page()  # type: ignore[arg-type]
            shoot(page, pipe, made)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('console-*.png')))} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
