"""The read API serves a stored snapshot as parsed (no rebuild), and every answer stays what `to_dict` makes of it.

`common.entitlements.snapshots.public_dict` trusts a snapshot stored in the current shape; one stored by an older
version (no hand grants, no `granted_by`, whole-number times) is rebuilt as before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import views
from api.reader import UserView
from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Target
from common.entitlements.snapshots import ByHand, Source, TargetSnapshot, public_dict

roles = st.lists(st.sampled_from(["role_a", "role_b"]), max_size=2, unique=True).map(tuple)
codes = st.sampled_from(["seats", "api_calls", "projects", "sso"])
times = st.floats(min_value=0, max_value=2e9, allow_nan=False) | st.integers(min_value=0, max_value=2_000_000_000)
features = st.builds(
    Feature, codes, st.text(max_size=8), st.none() | st.integers(0, 10**6), st.none() | st.integers(0, 9)
)
sources = st.builds(
    Source,
    st.sampled_from(["customer_1", "customer_2", "customer_é"]),
    st.lists(st.builds(PlanHeld, st.sampled_from(["plan_a", "plan_b"]), st.none() | st.just("2026-11-01")),
             max_size=2).map(tuple),
    st.lists(features, max_size=3).map(tuple),
    roles,
    st.sampled_from(["ok", "failing", "unknown"]),
    st.booleans(),
    st.integers(-1, 99),
    times,
    st.none() | times,
)  # fmt: skip
by_hand = st.builds(ByHand, st.text(min_size=1, max_size=6), st.text(max_size=12), st.text(max_size=6), roles,
                    st.none() | times)  # fmt: skip
snapshots = st.builds(TargetSnapshot, st.builds(Target, st.sampled_from(["org_a", "org_b"]), st.just("kp_1")),
                      roles, st.lists(sources, max_size=3).map(tuple), times,
                      st.lists(by_hand, max_size=2).map(tuple))  # fmt: skip


def answer(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()  # as api/app.py tagged() writes it


def rebuilt(raw: str) -> dict[str, Any]:
    """What the API served before: every stored snapshot rebuilt as a TargetSnapshot and back."""
    return TargetSnapshot.from_json(raw).to_dict()


@settings(max_examples=60, deadline=None)
@given(st.lists(snapshots, min_size=1, max_size=3))
def test_every_answer_is_byte_for_byte_the_rebuilt_one(found: list[TargetSnapshot]) -> None:
    stored = [s.to_json() for s in found]
    reading = {"feature_code": "seats", "value": 3.0, "kind": "absolute", "at": 1.5, "event_id": "e", "raw": "{}"}
    usage = {"customer_1": {"seats": reading}, "customer_é": {"sso": {**reading, "feature_code": "sso"}}}
    served = UserView([public_dict(raw) for raw in stored], usage)
    before = UserView([rebuilt(raw) for raw in stored], usage)
    for org in (None, "org_a"):
        assert answer(views.user_entitlements("kp_1", org, served)) == answer(
            views.user_entitlements("kp_1", org, before)
        )
        assert answer(views.user_feature("kp_1", "seats", org, served)) == answer(
            views.user_feature("kp_1", "seats", org, before)
        )


@settings(max_examples=30, deadline=None)
@given(snapshots)
def test_a_snapshot_this_version_stored_is_served_as_parsed(snapshot: TargetSnapshot) -> None:
    raw = snapshot.to_json()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TargetSnapshot, "from_json", _no_rebuild)
        assert public_dict(raw) == json.loads(raw)


def test_a_snapshot_stored_before_hand_grants_is_rebuilt_as_before() -> None:
    source = Source("customer_1", (PlanHeld("plan_a", None),), (Feature("seats", "Seats", 5),), ("role_a",), "ok",
                    False, 3, 100.0, None)  # fmt: skip
    old = TargetSnapshot(Target("org_a", "kp_1"), ("role_a",), (source,), 101.0).to_dict()
    del old["hand_grants"], old["granted_by"]
    old["computed_at"] = 101  # a whole number, as an older writer could store it
    raw = json.dumps(old, sort_keys=True)
    assert public_dict(raw) == rebuilt(raw)
    assert public_dict(raw)["hand_grants"] == []
    assert public_dict(raw)["granted_by"] == {"role_a": [{"customer": "customer_1"}]}
    assert answer(public_dict(raw)) == answer(rebuilt(raw))


def test_times_are_stored_as_floats_so_the_stored_shape_is_the_public_one() -> None:
    source = Source("customer_1", (), (), ("role_a",), "ok", False, 3, 100, 90)
    stored = json.loads(TargetSnapshot(Target("org_a", "kp_1"), ("role_a",), (source,), 101).to_json())
    assert isinstance(stored["computed_at"], float)
    assert isinstance(stored["customers"][0]["read_at"], float)


def _no_rebuild(raw: str) -> TargetSnapshot:
    raise AssertionError("a snapshot in the current shape was rebuilt")
