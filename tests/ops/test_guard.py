"""`rolesync guard check|dry-run` on what the worker kept in real Redis (the API tests' world)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launch.processes import wait_until
from tests.api.test_plan_selection import PLANS, api_for, ask, context, guard_world, timeline
from tests.ops.conftest import run_cli
from tests.worker.conftest import World


@pytest.fixture
def world(redis_url: str) -> World:
    return guard_world(redis_url)


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "plans.toml").write_text(PLANS.format(on_error="allow"))
    return {"REDIS_URL": redis_url, "ROLESYNC_PLANS": str(tmp_path / "plans.toml")}


def test_check_prints_the_decision_and_what_it_was_decided_on(world: World, env: dict[str, str]) -> None:
    result = run_cli(env, "guard", "check", "--customer", "customer_acme", "--plan", "free")
    assert result.exit_code == 0, result.output
    assert "customer_acme → free: refused\n" in result.stdout  # the outcome would only repeat the verdict
    assert "- reduce org_members to 2 or fewer (now 3)" in result.stdout
    assert "org_members: 3 from kinde_members" in result.stdout
    assert "projects: nothing reported (limit 10)" in result.stdout
    found = json.loads(run_cli(env, "guard", "check", "--customer", "customer_acme", "--plan", "free",
                               "--json").stdout)  # fmt: skip
    assert (found["allow"], found["metrics"]["org_members"]["value"]) == (False, 3)


def test_check_of_an_uncounted_org_or_unknown_customer_says_so(world: World, env: dict[str, str]) -> None:
    world.redis.delete("rolesync:org-members-read:org_acme")
    result = run_cli(env, "guard", "check", "--customer", "customer_acme", "--plan", "free")
    assert "not counted yet (no member listing cached for org org_acme)" in result.stdout
    assert "allowed (fallback_allow)" in result.stdout
    unknown = run_cli(env, "guard", "check", "--customer", "customer_nobody", "--plan", "free")
    assert "allowed (unknown_customer)" in unknown.stdout


def test_check_of_an_unknown_plan_is_the_apis_decision_unknown_plan(
    world: World, env: dict[str, str], redis_url: str
) -> None:
    """A mistyped plan code: the CLI shows what the API decides for the same move, and says it is unknown."""
    result = run_cli(env, "guard", "check", "--customer", "customer_acme", "--plan", "plan_nope")
    assert "customer_acme → plan_nope: allowed (unknown_plan)" in result.stdout
    assert "plans.toml names no plan plan_nope" in result.stdout
    as_json = run_cli(env, "guard", "check", "--customer", "customer_acme", "--plan", "plan_nope", "--json")
    with api_for(redis_url) as api:
        ask(api, context("kp_a", "org_acme", requested="plan_nope"))
    wait_until(lambda: timeline(world, "customer_acme"), what="the API's decision in the timeline")
    assert json.loads(as_json.stdout)["outcome"] == timeline(world, "customer_acme")[0]["outcome"] == "unknown_plan"


def test_dry_run_lists_per_plan_who_would_be_refused_under_new_limits(
    world: World, env: dict[str, str], tmp_path: Path
) -> None:
    stricter = tmp_path / "stricter.toml"
    stricter.write_text('[plans]\nplan_client = ["role_client"]\nfree = []\nsolo = []\n'
                        "[limits.free]\norg_members = 3\n[limits.solo]\norg_members = 1\n")  # fmt: skip
    found = json.loads(run_cli(env, "guard", "dry-run", "--plans", str(stricter), "--json").stdout)
    by_plan = {p["plan"]: p for p in found["plans"]}
    assert by_plan["free"]["refused"] == []
    assert by_plan["solo"]["refused"] == [{"customer_id": "customer_acme",
                                           "reasons": ["reduce org_members to 1 or fewer (now 3)"]}]  # fmt: skip
    text = run_cli(env, "guard", "dry-run", "--plans", str(stricter)).stdout
    assert "solo: 1 customer(s) would be refused" in text
    assert "customer_acme: reduce org_members to 1 or fewer (now 3)" in text


def test_a_bad_plans_file_is_exit_2_and_one_line(world: World, env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[plans]\nfree = []\n[limits.free]\norg_members = -3\n")
    result = run_cli(env, "guard", "dry-run", "--plans", str(bad))
    assert result.exit_code == 2
    assert "whole number >= 0" in result.stderr
