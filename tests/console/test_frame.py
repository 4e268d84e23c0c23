"""The console's security frame, in-process over a real Redis: sign-in, the session cookie, CSRF, headers.

The browser tests (test_browser.py) drive the same pages through Chromium against the whole pipe; these
pin each rule of the frame on its own, with its failing case.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette

from common.infra.deadletters import UNRESOLVED, DeadLetter, RedisDeadLetterStore
from common.settings import Settings
from console.app import console_routes
from console.headers import CSP
from tests.ingest.servers import serving

WRITE, READ, USERS = (secrets.token_urlsafe(32) for _ in range(3))


def settings_for(redis_url: str, keys: str, **env: str) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": keys, **env})


@pytest.fixture
def settings(redis_url: str) -> Settings:
    keys = f"ops:{WRITE}:console:write,viewer:{READ}:console,app:{USERS}:users"
    return settings_for(redis_url, keys, ROLESYNC_CONSOLE_SESSION_S="60")


@contextmanager
def console(settings: Settings) -> Iterator[httpx.Client]:
    """The console's routes under real uvicorn, as `rolesync api` mounts them; a client keeping cookies."""
    with serving(Starlette(routes=console_routes(settings))) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with console(settings) as found:
        yield found


def sign_in(client: httpx.Client, key: str) -> httpx.Client:
    answer = client.post("/console/sign-in", data={"key": key, "next": "/console/dead-letters"})
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def park(redis_url: str, customer_id: str) -> DeadLetter:
    import redis

    store = RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True))
    now = time.time()
    claims = {"type": "customer.plan_assigned", "data": {"customer_id": customer_id}, "id": f"ev_{customer_id}"}
    return store.put(DeadLetter(f"ev_{customer_id}", claims, UNRESOLVED, "no link", 1, now, now, customer_id,
                                "customer.plan_assigned"))  # fmt: skip


def test_no_console_key_means_no_console(redis_url: str) -> None:
    """Off unless a key has a console scope: without one the routes are not there at all."""
    assert console_routes(settings_for(redis_url, f"app:{USERS}")) == []


def test_pages_need_a_session_and_say_so(client: httpx.Client) -> None:
    answer = client.get("/console/dead-letters")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/dead-letters"


def test_sign_in_sets_a_signed_httponly_strict_cookie_naming_no_key(client: httpx.Client) -> None:
    answer = client.post("/console/sign-in", data={"key": WRITE, "next": "/console/dead-letters"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/dead-letters")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=60" in cookie
    assert "Secure" not in cookie  # plain http here; https gets Secure
    assert WRITE not in cookie
    page = client.get("/console/dead-letters")
    assert page.status_code == 200
    assert "ops" in page.text
    assert WRITE not in page.text


def test_wrong_key_and_users_only_key_open_nothing(client: httpx.Client) -> None:
    wrong = client.post("/console/sign-in", data={"key": secrets.token_urlsafe(32)})
    users = client.post("/console/sign-in", data={"key": USERS})
    assert (wrong.status_code, users.status_code) == (401, 403)
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in users.headers
    assert "no console scope" in users.text
    assert client.get("/console/dead-letters").status_code == 303


def test_a_forged_or_expired_cookie_is_refused(settings: Settings) -> None:
    from console.session import Sessions

    sessions = Sessions(settings.api_keys, max_age_s=60)
    cookie, _ = sessions.issue("ops")
    assert sessions.read(cookie) is not None
    assert sessions.read(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert Sessions(settings.api_keys, max_age_s=-1).read(cookie) is None  # older than the expiry
    other = Sessions(settings_for(settings.redis_url.reveal(), f"ops:{secrets.token_urlsafe(32)}:console").api_keys, 60)
    assert other.read(cookie) is None  # the key changed: every session it signed ends


def test_every_answer_has_the_strict_headers(client: httpx.Client) -> None:
    for path in ("/console/sign-in", "/console/dead-letters"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP
        assert "unsafe-inline" not in CSP
        assert "frame-ancestors 'none'" in CSP
        assert headers["x-frame-options"] == "DENY"


def test_a_post_without_the_csrf_token_or_from_another_site_changes_nothing(client: httpx.Client,
                                                                            redis_url: str) -> None:  # fmt: skip
    record = park(redis_url, "cus_csrf")
    sign_in(client, WRITE)
    path = f"/console/dead-letters/{record.id}/replay"
    token = csrf(client, f"/console/dead-letters/{record.id}")
    missing = client.post(path, data={"reason": "x"})
    wrong = client.post(path, data={"reason": "x", "csrf": "nope"})
    elsewhere = client.post(path, data={"reason": "x", "csrf": token}, headers={"origin": "https://evil.example"})
    assert (missing.status_code, wrong.status_code, elsewhere.status_code) == (403, 403, 403)
    assert "CSRF" in missing.text
    assert client.get(f"/console/dead-letters/{record.id}").status_code == 200  # still there


def test_a_read_only_key_reads_but_cannot_act(client: httpx.Client, redis_url: str) -> None:
    record = park(redis_url, "cus_reader")
    sign_in(client, READ)
    page = client.get(f"/console/dead-letters/{record.id}")
    assert page.status_code == 200
    assert "Replay this dead letter" not in page.text
    token = csrf(client, "/console/dead-letters")
    refused = client.post(f"/console/dead-letters/{record.id}/replay", data={"reason": "x", "csrf": token})
    assert refused.status_code == 403
    assert "console:write" in refused.text


def test_sign_in_refuses_after_too_many_wrong_keys(redis_url: str) -> None:
    keys = f"ops:{WRITE}:console:write"
    settings = settings_for(redis_url, keys, ROLESYNC_API_AUTH_FAILURES="2")
    with console(settings) as client:
        for _ in range(2):
            assert client.post("/console/sign-in", data={"key": secrets.token_urlsafe(32)}).status_code == 401
        assert client.post("/console/sign-in", data={"key": WRITE}).status_code == 429


def test_sign_in_goes_back_only_to_a_console_page(client: httpx.Client) -> None:
    answer = client.post("/console/sign-in", data={"key": WRITE, "next": "https://evil.example/"})
    assert answer.headers["location"] == "/console/"


def test_unlink_from_the_console_is_the_clis_and_names_the_keys_label(client: httpx.Client, redis_url: str) -> None:
    import redis

    from common.customers.links import CustomerLink, RedisLinkStore

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    RedisLinkStore(r).put(CustomerLink("cus_move", "user", "kp_1", None, "event", time.time()))
    sign_in(client, WRITE)
    confirm = client.get("/console/customers/cus_move/confirm/unlink")
    assert "Forget customer cus_move" in confirm.text
    token = csrf(client, "/console/customers/cus_move/confirm/unlink")
    nobody = client.post("/console/customers/cus_move/unlink", data={"csrf": token, "reason": " "})
    assert nobody.status_code == 400  # no reason, nothing done: the CLI's own NoReasonError
    assert RedisLinkStore(r).get("cus_move") is not None
    done = client.post("/console/customers/cus_move/unlink", data={"csrf": token, "reason": "ticket 9"})
    assert done.status_code == 200
    assert "Unlinked (was user kp_1" in done.text
    assert RedisLinkStore(r).get("cus_move") is None
    [audited] = [e for e in client.get("/console/customers/cus_move").text.split("<tr") if "customers_unlink" in e]
    assert "by=console:ops" in audited
    assert "reason=ticket 9" in audited


def test_a_dead_letters_payload_is_shown_with_its_credentials_masked(client: httpx.Client, redis_url: str) -> None:
    import redis

    store = RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True))
    now, secret = time.time(), secrets.token_urlsafe(16)
    claims = {"type": "customer.plan_assigned", "data": {"customer_id": "cus_s", "access_token": secret,
              "callback": f"https://app.example/hook?token={secret}"}}  # fmt: skip
    record = store.put(DeadLetter("ev_secret", claims, UNRESOLVED, f"failed with password={secret}", 1, now, now,
                                  "cus_s", "customer.plan_assigned"))  # fmt: skip
    sign_in(client, READ)
    for path in (f"/console/dead-letters/{record.id}", "/console/dead-letters"):
        page = client.get(path)
        assert page.status_code == 200
        assert secret not in page.text
        assert "**********" in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [("/console/dead-letters?within=soon", 400), ("/console/dead-letters/ev_nobody", 404),
     ("/console/dead-letters?page=99999999999999999999", 200), ("/console/customers/cus_nobody", 404)],
)  # fmt: skip
def test_bad_input_is_a_page_that_says_so_never_a_500(client: httpx.Client, path: str, status: int) -> None:
    sign_in(client, READ)
    answer = client.get(path)
    assert answer.status_code == status
    assert "Traceback" not in answer.text


def test_a_post_that_is_not_a_small_form_is_refused(client: httpx.Client) -> None:
    sign_in(client, WRITE)
    json_body = client.post("/console/dead-letters/replay", json={"csrf": "x"})
    huge = client.post("/console/dead-letters/replay", data={"reason": "x" * 20_000})
    assert (json_body.status_code, huge.status_code) == (400, 400)


def test_behind_https_the_cookie_is_secure(client: httpx.Client) -> None:
    """uvicorn takes the scheme from X-Forwarded-Proto of a trusted proxy (here: loopback, its default)."""
    answer = client.post("/console/sign-in", data={"key": WRITE}, headers={"x-forwarded-proto": "https"})
    assert "Secure" in answer.headers["set-cookie"]


def test_the_list_pages_by_25(client: httpx.Client, redis_url: str) -> None:
    for n in range(30):
        park(redis_url, f"cus_page_{n:02d}")
    sign_in(client, READ)
    first = client.get("/console/dead-letters", params={"customer": ""})
    second = client.get("/console/dead-letters", params={"page": "2"})
    assert first.text.count('<tr><td><a href="/console/dead-letters/') == 25
    assert second.text.count('<tr><td><a href="/console/dead-letters/') == 5
    assert "Page 1 of 2" in first.text
    assert 'id="next-page"' in first.text
    assert 'id="next-page"' not in second.text


def test_a_bulk_action_whose_count_moved_does_nothing_and_asks_again(client: httpx.Client, redis_url: str) -> None:
    park(redis_url, "cus_moving")
    sign_in(client, WRITE)
    confirm = client.get("/console/dead-letters/confirm/purge", params={"customer": "cus_moving"})
    assert "1 dead letter(s) match customer cus_moving" in confirm.text
    token = csrf(client, "/console/dead-letters")
    import redis

    store = RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True))
    now = time.time()
    store.put(DeadLetter("ev_late", {"type": "customer.plan_changed"}, UNRESOLVED, "no link", 1, now, now,
                         "cus_moving", "customer.plan_changed"))  # fmt: skip
    form = {"csrf": token, "customer": "cus_moving", "count": "1", "typed": "1", "reason": "cleanup"}
    moved = client.post("/console/dead-letters/purge", data=form)
    assert moved.status_code == 400  # the typed 1 is not the 2 that match now
    assert len(store.list(customer_id="cus_moving")) == 2
    moved = client.post("/console/dead-letters/purge", data={**form, "typed": "2"})
    assert moved.status_code == 409
    assert "The selection changed: 2 match now, you confirmed 1" in moved.text
    assert len(store.list(customer_id="cus_moving")) == 2
    done = client.post("/console/dead-letters/purge", data={**form, "typed": "2", "count": "2"})
    assert "Purged 2 dead letter(s)" in done.text
    assert store.list(customer_id="cus_moving") == []


def test_sign_out_ends_the_session(client: httpx.Client) -> None:
    sign_in(client, READ)
    token = csrf(client, "/console/dead-letters")
    assert client.post("/console/sign-out", data={"csrf": token}).status_code == 303
    assert client.get("/console/dead-letters").status_code == 303


def test_look_up_by_customer_user_or_org(client: httpx.Client, redis_url: str) -> None:
    import redis

    from common.customers.links import CustomerLink, RedisLinkStore

    links = RedisLinkStore(redis.Redis.from_url(redis_url, decode_responses=True))
    links.put(CustomerLink("cus_acme", "org", None, "org_acme", "event", time.time()))
    sign_in(client, READ)
    assert (
        client.get("/console/customers", params={"q": "cus_acme"}).headers["location"] == "/console/customers/cus_acme"
    )
    assert client.get("/console/customers", params={"q": "kp_1"}).headers["location"] == "/console/users/kp_1"
    org = client.get("/console/customers", params={"q": "org_acme"})
    assert org.status_code == 200
    assert 'href="/console/customers/cus_acme"' in org.text
    assert client.get("/console/customers", params={"q": "nothing_here"}).status_code == 404
