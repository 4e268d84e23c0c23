"""Hand grants (common/entitlements/manual_grants.py): what may be granted, and the store contract, Redis and fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from common.entitlements.manual_grants import (
    BadGrantError,
    Due,
    HandGrant,
    HandGrantStore,
    RedisHandGrantStore,
    checked,
    parse_until,
)
from tests.worker.fakes import FakeHandGrantStore

NOW = 1_900_000_000.0
MANAGED = frozenset({"role_client", "role_subscriber"})


def grant(grant_id: str = "hg_1", user_id: str = "kp_1", *roles: str, until: float | None = None,
          org: str = "") -> HandGrant:  # fmt: skip
    return HandGrant(grant_id, user_id, org, roles or ("role_client",), "partner", "ada", NOW, until)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.integration), "fake"])
def store(request: pytest.FixtureRequest) -> Iterator[HandGrantStore]:
    if request.param == "fake":
        yield FakeHandGrantStore()
        return
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url, decode_responses=True)
    yield RedisHandGrantStore(client)
    client.close()


# --- what may be granted ---


def test_a_role_not_in_plans_toml_is_refused_naming_the_managed_ones() -> None:
    with pytest.raises(BadGrantError, match=r"role_admin are not managed.*role_client, role_subscriber"):
        checked(grant("hg_1", "kp_1", "role_admin"), MANAGED, NOW)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (HandGrant("hg_1", "kp_1", "", ("role_client",), "  ", "ada", NOW), "reason"),
        (HandGrant("hg_1", "kp_1", "", (), "why", "ada", NOW), "at least one role"),
        (HandGrant("hg_1", "user_1", "", ("role_client",), "why", "ada", NOW), "not a Kinde user id"),
        (HandGrant("hg 1", "kp_1", "", ("role_client",), "why", "ada", NOW), "grant id"),
        (HandGrant("hg_1", "kp_1", "org x", ("role_client",), "why", "ada", NOW), "org code"),
        (HandGrant("hg_1", "kp_1", "", ("role_client",), "why", "ada", NOW, NOW - 1), "not in the future"),
    ],
)
def test_a_grant_that_cannot_be_stored_is_refused_with_what_is_wrong(bad: HandGrant, said: str) -> None:
    with pytest.raises(BadGrantError, match=said):
        checked(bad, MANAGED, NOW)


def test_until_reads_a_date_as_midnight_utc_and_refuses_words() -> None:
    assert parse_until("2027-03-01") == 1803859200.0
    assert parse_until("2027-03-01T12:00:00Z") == 1803859200.0 + 12 * 3600
    with pytest.raises(BadGrantError, match="not a date"):
        parse_until("next week")


# --- the store contract ---


def test_a_stored_grant_reads_back_by_id_and_by_user(store: HandGrantStore) -> None:
    assert store.put(grant(until=NOW + 60), NOW) is None
    assert store.get("hg_1") == grant(until=NOW + 60)
    assert store.of_user("kp_1") == [grant(until=NOW + 60)]
    assert store.of_user("kp_2") == []


def test_replacing_a_grant_for_another_user_moves_it_and_marks_both_targets_due(store: HandGrantStore) -> None:
    store.put(grant(), NOW)
    old = store.put(grant("hg_1", "kp_2"), NOW + 1)

    assert old == grant()
    assert store.of_user("kp_1") == []
    assert [g.user_id for g in store.of_user("kp_2")] == ["kp_2"]
    assert {(d.kind, d.user_id) for d in store.due(NOW + 1)} == {("changed", "kp_1"), ("changed", "kp_2")}


def test_listed_is_soonest_ending_first_and_filters_by_end(store: HandGrantStore) -> None:
    store.put(grant("hg_a"), NOW)
    store.put(grant("hg_b", until=NOW + 100), NOW)
    store.put(grant("hg_c", until=NOW + 10), NOW)

    assert [g.grant_id for g in store.listed()] == ["hg_c", "hg_b", "hg_a"]
    assert [g.grant_id for g in store.listed(NOW + 50)] == ["hg_c"]
    assert store.counts(NOW + 50) == (3, 1)


def test_a_grant_is_due_at_once_and_again_at_its_until(store: HandGrantStore) -> None:
    store.put(grant(until=NOW + 60), NOW)

    assert store.due(NOW) == [Due("changed", "hg_1", "", "kp_1")]
    assert store.done(Due("changed", "hg_1", "", "kp_1"), NOW)
    assert store.due(NOW + 59) == []
    assert store.due(NOW + 60) == [Due("expires", "hg_1", "", "kp_1")]


def test_done_keeps_an_entry_marked_due_again_after_the_tick_read_it(store: HandGrantStore) -> None:
    store.put(grant(), NOW)
    (due,) = store.due(NOW)
    store.put(grant(), NOW + 5)  # changed again while the tick ran

    assert not store.done(due, NOW)
    assert store.due(NOW + 5) == [due]


def test_removing_forgets_the_grant_and_marks_its_target_due(store: HandGrantStore) -> None:
    store.put(grant(), NOW)
    store.done(Due("changed", "hg_1", "", "kp_1"), NOW)

    assert store.remove("hg_1", NOW + 1) == grant()
    assert store.remove("hg_1", NOW + 2) is None
    assert store.get("hg_1") is None
    assert store.of_user("kp_1") == []
    assert store.listed() == []
    assert store.due(NOW + 1) == [Due("changed", "hg_1", "", "kp_1")]


def test_an_active_grant_is_one_whose_until_has_not_come() -> None:
    assert grant().active(NOW + 10**9)
    assert grant(until=NOW + 1).active(NOW)
    assert not grant(until=NOW + 1).active(NOW + 1)
