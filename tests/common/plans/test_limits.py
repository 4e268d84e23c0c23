"""plans.toml `[limits.<plan>]` and `[guard]`: parsed with the roles, every mistake one clear ConfigError."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.plans.mapping import parse_plans

BASE = '[plans]\nfree = []\npro = ["role_pro"]\n'


def test_limits_and_the_guard_policy_are_read_with_the_plans() -> None:
    found = parse_plans(BASE + '[limits.free]\norg_members = 3\nprojects = 10\n[guard]\non_error = "deny"\n'
                        'member_refresh_s = 60\nmember_wait_s = 0.5\nplan_names = { free = "Free" }\n')  # fmt: skip
    assert found.limits == {"free": {"org_members": 3, "projects": 10}}
    assert (found.guard.on_error, found.guard.member_refresh_s, found.guard.member_wait_s) == ("deny", 60.0, 0.5)
    assert (found.guard.plan_name("free"), found.guard.plan_name("pro")) == ("Free", "pro")


def test_without_limits_every_plan_allows_and_on_error_defaults_to_allow() -> None:
    found = parse_plans(BASE)
    assert found.limits == {}
    assert found.guard.on_error == "allow"


def test_limits_do_not_change_the_mapping_fingerprint() -> None:
    """A limit grants no role: changing one must not ask the fleet for a mapping sweep."""
    assert parse_plans(BASE).fingerprint == parse_plans(BASE + "[limits.free]\norg_members = 3\n").fingerprint


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("[limits]\nfree = 3\n", "[limits.free] must be a table"),
        ("[limits.free]\norg_members = -1\n", "whole number >= 0"),
        ('[limits.free]\norg_members = "3"\n', "whole number >= 0"),
        ("[limits.free]\norg_members = true\n", "whole number >= 0"),
        ("[limits.free]\norg_members = 2.5\n", "whole number >= 0"),
        ('[limits.free]\n"bad metric" = 1\n', "metric 'bad metric'"),
        ('[guard]\non_error = "maybe"\n', 'on_error must be "allow" or "deny"'),
        ("[guard]\nmember_wait_s = -1\n", "member_wait_s"),
        ("[guard]\nplan_names = { free = 3 }\n", "plan_names"),
        ('[guard]\nmember_refresh_s = "soon"\n', "member_refresh_s"),
    ],
)
def test_a_bad_limit_or_guard_setting_is_a_config_error_naming_it(extra: str, said: str) -> None:
    with pytest.raises(ConfigError, match=r"plans\.toml") as caught:
        parse_plans(BASE + extra)
    assert said in str(caught.value)
