"""Contract tests: the same tests run on the in-memory fakes and on the Redis stores."""

from __future__ import annotations

import json

import pytest
import redis

from common import keys
from common.customers.links import CustomerLink, LinkStore, RedisLinkStore
from common.entitlements.grants import Grants, RedisGrantStore, Target
from common.errors import RetryableError
from common.infra.deadletters import DeadLetter, DeadLetterStore, RedisDeadLetterStore
from common.plans.payments import PaymentStore, RedisPaymentStore
from tests.worker.fakes import FakeDeadLetterStore, FakeLinkStore, FakePaymentStore


@pytest.fixture(params=["fake", pytest.param("redis", marks=pytest.mark.integration)])
def links(request: pytest.FixtureRequest) -> LinkStore:
    if request.param == "fake":
        return FakeLinkStore()
    return RedisLinkStore(redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True))


@pytest.fixture(params=["fake", pytest.param("redis", marks=pytest.mark.integration)])
def dead_letters(request: pytest.FixtureRequest) -> DeadLetterStore:
    if request.param == "fake":
        return FakeDeadLetterStore()
    return RedisDeadLetterStore(redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True))


@pytest.fixture(params=["fake", pytest.param("redis", marks=pytest.mark.integration)])
def payments(request: pytest.FixtureRequest) -> PaymentStore:
    if request.param == "fake":
        return FakePaymentStore()
    return RedisPaymentStore(redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True))


def test_a_newer_payment_event_replaces_the_standing_and_an_older_one_does_not(payments: PaymentStore) -> None:
    assert payments.standing("customer_1") is None
    assert payments.record("customer_1", "failing", 200.0)  # flipped: not failing -> failing
    assert not payments.record("customer_1", "ok", 100.0)  # a late delivery of an older success
    assert payments.standing("customer_1") == {"standing": "failing", "at": 200.0}
    assert not payments.record("customer_1", "failing", 250.0)  # kept, but nothing flipped
    assert payments.standing("customer_1") == {"standing": "failing", "at": 250.0}
    assert payments.record("customer_1", "ok", 300.0)
    assert payments.standing("customer_1") == {"standing": "ok", "at": 300.0}
    assert not payments.record("customer_2", "ok", 100.0)  # never failing: nothing flipped


def test_on_a_tie_ok_wins(payments: PaymentStore) -> None:
    """Two events stamped the same instant: never suspend a customer on a race."""
    payments.record("customer_1", "ok", 100.0)
    assert not payments.record("customer_1", "failing", 100.0)
    assert payments.standing("customer_1") == {"standing": "ok", "at": 100.0}
    assert payments.record("customer_2", "failing", 100.0)
    assert payments.record("customer_2", "ok", 100.0)
    assert payments.standing("customer_2") == {"standing": "ok", "at": 100.0}


def test_a_retry_of_the_event_that_made_the_latest_flip_still_reports_it(payments: PaymentStore) -> None:
    """Recorded, then the worker died before counting the flip: the retry must still count it."""
    assert payments.record("customer_1", "failing", 200.0, "ev_f")
    assert payments.record("customer_1", "failing", 200.0, "ev_f")  # the retry: same flip, still its own
    assert not payments.record("customer_1", "failing", 200.0, "ev_other")
    assert payments.record("customer_1", "failing", 250.0, "ev_g") is False  # kept, flipped by ev_f still
    assert payments.record("customer_1", "failing", 200.0, "ev_f")
    assert payments.record("customer_1", "ok", 300.0, "ev_s")  # flipped back: ev_f's flip is history
    assert not payments.record("customer_1", "failing", 200.0, "ev_f")
    assert payments.standing("customer_1") == {"standing": "ok", "at": 300.0}


def link(customer: str, user: str | None = "kp_1", org: str | None = None) -> CustomerLink:
    return CustomerLink(customer, "user" if user else "org", user, org, "event", 1000.0)


def letter(id_: str, reason: str, customer: str | None = "customer_1", at: float = 100.0) -> DeadLetter:
    claims = {"type": "customer.plan_changed", "event_id": id_}
    return DeadLetter(id_, claims, reason, "boom", 1, at, at, customer, "customer.plan_changed")


def test_a_link_reads_back_as_written(links: LinkStore) -> None:
    links.put(link("customer_1", org="org_a"))
    assert links.get("customer_1") == link("customer_1", org="org_a")
    assert links.get("customer_2") is None
    assert links.all_customer_ids() == ["customer_1"]


def test_relinking_a_customer_moves_it_to_the_new_user(links: LinkStore) -> None:
    links.put(link("customer_1", user="kp_1"))
    links.put(link("customer_1", user="kp_2"))
    assert links.customers_of_user("kp_1") == []
    assert links.customers_of_user("kp_2") == ["customer_1"]


def test_dropping_a_user_removes_only_their_links(links: LinkStore) -> None:
    links.put(link("customer_1", user="kp_1"))
    links.put(link("customer_2", user="kp_1"))
    links.put(link("customer_3", user="kp_3"))
    assert links.drop_user("kp_1") == ["customer_1", "customer_2"]
    assert links.all_customer_ids() == ["customer_3"]
    assert links.get("customer_1") is None
    assert links.drop_user("kp_unknown") == []


def test_dropping_an_org_removes_its_own_link_and_every_link_into_it(links: LinkStore) -> None:
    links.put(link("customer_o", user=None, org="org_acme"))
    links.put(link("customer_1", user="kp_1", org="org_acme"))
    links.put(link("customer_2", user="kp_2", org="org_acme"))
    links.put(link("customer_2", user="kp_2", org="org_other"))  # moved out of org_acme since
    assert links.drop_org("org_acme") == ["customer_1", "customer_o"]
    assert links.all_customer_ids() == ["customer_2"]
    assert links.customers_of_user("kp_1") == []
    assert links.drop_org("org_acme") == []


def test_an_org_link_keeps_its_kind(links: LinkStore) -> None:
    links.put(link("customer_o", user=None, org="org_acme"))
    found = links.get("customer_o")
    assert found is not None
    assert (found.kind, found.org_code, found.user_id) == ("org", "org_acme", None)


def test_a_dead_letter_reads_back_and_keeps_its_first_failure(dead_letters: DeadLetterStore) -> None:
    dead_letters.put(letter("ev_1", "kinde_X", at=100.0))
    again = dead_letters.put(letter("ev_1", "retries_exhausted", at=200.0))
    assert again.first_failed_at == 100.0
    assert dead_letters.get("ev_1") == again
    assert (again.reason, again.last_failed_at) == ("retries_exhausted", 200.0)


def test_dead_letters_list_newest_first_with_filters(dead_letters: DeadLetterStore) -> None:
    dead_letters.put(letter("ev_a", "missing_scope:read:users", at=1.0))
    dead_letters.put(letter("ev_b", "customer_unresolved", customer="customer_2", at=2.0))
    dead_letters.put(letter("ev_c", "missing_scope:read:roles", at=3.0))
    assert [r.id for r in dead_letters.list()] == ["ev_c", "ev_b", "ev_a"]
    assert [r.id for r in dead_letters.list(reason="missing_scope:")] == ["ev_c", "ev_a"]
    assert [r.id for r in dead_letters.list(reason="customer_unresolved")] == ["ev_b"]
    assert [r.id for r in dead_letters.list(customer_id="customer_2")] == ["ev_b"]
    assert [r.id for r in dead_letters.list(limit=1)] == ["ev_c"]
    assert dead_letters.count_by_reason() == {
        "missing_scope:read:users": 1, "customer_unresolved": 1, "missing_scope:read:roles": 1,
    }  # fmt: skip


def test_removing_a_dead_letter_forgets_it_everywhere(dead_letters: DeadLetterStore) -> None:
    dead_letters.put(letter("ev_1", "kinde_X"))
    dead_letters.put(letter("ev_2", "kinde_X"))
    assert dead_letters.remove("ev_1") is True
    assert dead_letters.remove("ev_1") is False
    assert [r.id for r in dead_letters.of_customer("customer_1")] == ["ev_2"]
    assert [r.id for r in dead_letters.list()] == ["ev_2"]


def test_a_replayed_version_is_removed_and_a_newer_one_is_not(dead_letters: DeadLetterStore) -> None:
    dead_letters.put(letter("ev_1", "kinde_X", at=100.0))
    replayed = dead_letters.get("ev_1")
    assert replayed is not None
    dead_letters.put(letter("ev_1", "kinde_X", at=100.0))  # the same failure again: still a newer record
    assert dead_letters.remove_if_current(replayed) is False
    newer = dead_letters.get("ev_1")
    assert newer is not None
    assert dead_letters.remove_if_current(newer) is True
    assert dead_letters.remove_if_current(newer) is False
    assert (dead_letters.get("ev_1"), dead_letters.list(), dead_letters.of_customer("customer_1")) == (None, [], [])


def test_a_record_written_before_versions_existed_is_removed_by_its_replay(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisDeadLetterStore(client)
    old = letter("ev_1", "kinde_X")
    legacy = json.loads(old.to_json())
    del legacy["version"]
    client.set(keys.dead_letter("ev_1"), json.dumps(legacy))
    client.zadd(keys.DEAD_LETTERS, {"ev_1": 100.0})
    client.sadd(keys.dead_letters_of_customer("customer_1"), "ev_1")
    read = store.get("ev_1")
    assert read == old
    assert store.remove_if_current(old) is True
    assert store.list() == []


def test_a_dead_redis_is_a_retryable_error_not_a_redis_exception() -> None:
    gone = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, decode_responses=True)
    with pytest.raises(RetryableError):
        RedisLinkStore(gone).get("customer_1")
    with pytest.raises(RetryableError):
        RedisDeadLetterStore(gone).list()


@pytest.mark.integration
def test_a_stale_pass_does_not_overwrite_a_grant_record_of_its_own_generation(redis_url: str) -> None:
    """A pass that outlived its lease and the retry of the same message share a generation: the retry
    read Kinde later, and the stale pass's record (read before) must not replace it."""
    grants = RedisGrantStore(redis.Redis.from_url(redis_url, decode_responses=True))
    target = (Target("org_default", "kp_1"),)
    assert grants.put(Grants("customer_1", ("plan_client",), frozenset({"role_client"}), target, 5, 200.0))
    stale = Grants("customer_1", (), frozenset(), target, 5, 100.0)
    assert not grants.put(stale)  # was: written, as only a newer generation was refused
    kept = grants.get("customer_1")
    assert kept is not None
    assert kept.plans == ("plan_client",)
    assert grants.put(Grants("customer_1", ("plan_subscriber",), frozenset(), target, 5, 300.0))  # read later
    assert not grants.put(Grants("customer_1", ("plan_client",), frozenset(), target, 4, 400.0))  # older
