"""The guard's member cache (#13): a listing read before a join or a leave does not undo it; a newer one
settles. Real Valkey.
"""

from __future__ import annotations

import time

import pytest
import redis

from common import keys
from common.guard.members import MemberCount, RedisMemberCache

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


# --- 4. a member listing read before a user joined erases what the user's event recorded ----------------------


def test_a_listing_read_before_a_user_joined_does_not_erase_the_join(client: redis.Redis) -> None:
    cache = RedisMemberCache(client)
    listing_read_at = time.time()  # the refresh actor reads the listing: kp_a only
    cache.user_orgs("kp_new", ["org_x"])  # then kp_new joins; its user.updated is handled first
    cache.replace("org_x", ["kp_a"], read_at=listing_read_at)  # the older listing lands last
    found = cache.count("org_x")
    assert found is not None
    assert found.count == 2  # kp_a and kp_new: the guard counts one member short


def test_a_listing_read_before_a_user_left_does_not_bring_it_back_and_a_newer_one_settles(client: redis.Redis) -> None:
    cache = RedisMemberCache(client)
    cache.replace("org_x", ["kp_a", "kp_gone"], read_at=time.time())
    listing_read_at = time.time()  # a refresh reads the listing while kp_gone is still a member
    cache.user_orgs("kp_gone", [])  # kp_gone leaves; its user.updated is handled first
    cache.replace("org_x", ["kp_a", "kp_gone"], read_at=listing_read_at)
    assert cache.count("org_x") == MemberCount(1, pytest.approx(listing_read_at))  # type: ignore[arg-type]
    cache.replace("org_x", ["kp_a"], read_at=time.time())  # a listing read after the leave holds it
    assert client.hlen(keys.org_members_seen("org_x")) == 0
