"""The plans file: plan codes map to managed roles; mistakes get a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from common.plans.mapping import load_plans, parse_plans, plans_from_json

GOOD = """
[plans]
plan_subscriber = ["role_subscriber"]
plan_client = ["role_client", "role_reports"]
"""


def test_managed_roles_are_every_role_named() -> None:
    """Every role under [plans] is managed, and only those."""
    plans = parse_plans(GOOD)
    assert plans.managed_roles == {"role_subscriber", "role_client", "role_reports"}


def test_desired_roles_follow_active_plans_and_ignore_unknown_codes() -> None:
    """Unknown plan codes grant nothing instead of failing."""
    plans = parse_plans(GOOD)
    assert plans.desired_roles(["plan_client", "plan_typo"]) == {"role_client", "role_reports"}
    assert plans.unknown_plans(["plan_client", "plan_typo"]) == {"plan_typo"}
    assert plans.desired_roles([]) == frozenset()


def test_malformed_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """Broken TOML says which file and that it is not valid TOML."""
    path = tmp_path / "plans.toml"
    path.write_text("[plans\nplan_a = ")
    with pytest.raises(ConfigError, match=r"plans\.toml is not valid TOML"):
        load_plans(path)


def test_plan_listing_a_non_string_is_rejected() -> None:
    """A number in a role list names the plan at fault."""
    with pytest.raises(ConfigError, match="plan_client"):
        parse_plans('[plans]\nplan_client = ["role_client", 3]\n')


def test_plan_given_a_bare_string_is_rejected() -> None:
    """A single string instead of a list is a common slip; it is caught, not iterated per character."""
    with pytest.raises(ConfigError, match="plan_client"):
        parse_plans('[plans]\nplan_client = "role_client"\n')


def test_missing_plans_table_is_rejected() -> None:
    """A file without [plans] explains what it should contain."""
    with pytest.raises(ConfigError, match=r"\[plans\]"):
        parse_plans('plan_client = ["role_client"]\n')


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A missing plans file names the path and the variable that points at it."""
    with pytest.raises(ConfigError, match="ROLESYNC_PLANS"):
        load_plans(tmp_path / "nope.toml")


def test_payment_failed_defaults_to_keep_with_no_grants() -> None:
    """Without a [payment_failed] table, roles follow Kinde's agreements only."""
    plans = parse_plans(GOOD)
    assert not plans.suspends()
    assert plans.payment_failed.grants == ()


def test_suspend_policy_grants_are_managed_roles() -> None:
    """Roles given while suspended are managed: they are taken away again once payment succeeds."""
    plans = parse_plans(GOOD + '[payment_failed]\naction = "suspend"\ngrants = ["role_past_due"]\n')
    assert plans.suspends()
    assert plans.payment_failed.grants == ("role_past_due",)
    assert "role_past_due" in plans.managed_roles


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('[payment_failed]\naction = "revoke"\n', 'action must be "keep" or "suspend"'),
        ('[payment_failed]\naction = "suspend"\ngrants = "role_past_due"\n', r"\[payment_failed\] grants must list"),
        ('payment_failed = "suspend"\n', r"\[payment_failed\] must be a table"),
    ],
)
def test_a_bad_payment_failed_table_is_a_clear_config_error(table: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_plans(table + GOOD if not table.startswith("[") else GOOD + table)


def test_the_fingerprint_is_the_mappings_meaning_not_its_spelling() -> None:
    """Reordered plans, reordered or repeated roles and comments keep the fingerprint; a role moved changes it."""
    same = '# a comment\n[plans]\nplan_client = ["role_reports", "role_client", "role_client"]\n' \
        'plan_subscriber = [ "role_subscriber" ]\n'  # fmt: skip
    assert parse_plans(same).fingerprint == parse_plans(GOOD).fingerprint
    moved = GOOD.replace('plan_subscriber = ["role_subscriber"]', 'plan_subscriber = ["role_client"]')
    assert parse_plans(moved).fingerprint != parse_plans(GOOD).fingerprint
    suspends = GOOD + '[payment_failed]\naction = "suspend"\n'
    assert parse_plans(suspends).fingerprint != parse_plans(GOOD).fingerprint


def test_a_stored_mapping_reads_back_as_the_same_mapping() -> None:
    plans = parse_plans(GOOD + '[payment_failed]\naction = "suspend"\ngrants = ["role_past_due"]\n')
    back = plans_from_json(plans.to_json())
    assert back.fingerprint == plans.fingerprint
    assert back.granted(["plan_client"], failing=True) == {"role_past_due"}
    assert back.granted(["plan_client"], failing=False) == {"role_client", "role_reports"}
