"""The index rebuild through the real Kinde adapter against the sandbox over HTTP, with 429s on.

250 users (3 pages of 100) and 121 orgs listed without billing (2 pages, 121 look-ups). Each 429 ends
the chunk as it ends an actor attempt (a raised RateLimitedError); the same holder runs it again
after the cool-down, as Dramatiq's delayed retry would. The sandbox's call log must show every
page read once, every org looked up once, and every customer linked.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from common.customers.links import RedisLinkStore
from common.errors import RateLimitedError
from common.infra.connections import redis_client
from common.infra.deadletters import RedisDeadLetterStore
from common.settings import Secret, Settings
from tests.sandbox_fixture import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, running_sandbox
from worker.customers.park import Parking
from worker.customers.rebuild import Rebuilds, Stepper, learner
from worker.customers.rebuild_store import RedisRebuildStore
from worker.kinde.api import HttpxKindeApi
from worker.kinde.ratelimit import RedisKindeGate
from worker.kinde.token import shared_tokens

USERS, ORGS = 250, 120


def rebuilds_against(url: str, redis_url: str, chunks: list[str]) -> tuple[Rebuilds, RedisLinkStore]:
    settings = Settings(
        kinde_domain=url,
        kinde_client_id=SANDBOX_CLIENT_ID,
        kinde_client_secret=Secret(SANDBOX_CLIENT_SECRET),
        redis_url=Secret(redis_url),
    )
    client, http = redis_client(settings), httpx.Client(timeout=10.0)
    tokens = shared_tokens(client, http, settings, on_fetch=lambda: None)
    kinde = HttpxKindeApi(http, url, tokens, RedisKindeGate(client, 1000.0))
    links = RedisLinkStore(client)
    parking = Parking(links, RedisDeadLetterStore(client), lambda *_: None)
    return Rebuilds(RedisRebuildStore(client), Stepper(kinde, links, "", learner(links, parking)), chunks.append), links


def run_with_retries(rebuilds: Rebuilds, chunks: list[str]) -> int:
    """Run the chunk chain to its end; a 429 sends the same chunk back after the cool-down. How many 429s."""
    refused = 0
    while chunks:
        holder = chunks.pop(0)
        try:
            rebuilds.run_chunk(holder)
        except RateLimitedError as exc:
            refused += 1
            time.sleep(exc.retry_after_s or 0.5)
            chunks.insert(0, holder)
    return refused


def ok_reads(calls: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["method"] == "GET" and c["path"] == path and c["status"] == 200]


def test_a_rebuild_over_http_with_429s_reads_each_page_and_org_once_and_links_everyone(
    tmp_path: Path, redis_url: str
) -> None:
    with running_sandbox(tmp_path) as sandbox:
        kinde = sandbox.client
        kinde.seed_bulk(users=USERS, orgs=ORGS)
        kinde.set_rate_limit(40, burst=2)
        chunks: list[str] = []
        rebuilds, links = rebuilds_against(sandbox.url, redis_url, chunks)
        assert rebuilds.request(time.time())
        assert run_with_retries(rebuilds, chunks) > 0  # the 429s really happened
        calls = kinde.calls()
    assert any(c["status"] == 429 for c in calls)
    assert len(links.all_customer_ids()) == USERS + ORGS
    for path, pages in (("/api/v1/users", 3), ("/api/v1/organizations", 2)):
        tokens = Counter((parse_qs(c["query"]).get("next_token") or [""])[0] for c in ok_reads(calls, path))
        assert (len(tokens), max(tokens.values())) == (pages, 1)
    looked_up = Counter(parse_qs(c["query"])["code"][0] for c in ok_reads(calls, "/api/v1/organization"))
    assert (len(looked_up), max(looked_up.values())) == (ORGS + 1, 1)  # + the default org
