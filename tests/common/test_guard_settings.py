"""The guard's settings: the workflow secret, and the usage:write scope that a key must name."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.settings import API_SCOPES, Settings


def test_the_workflow_secret_is_a_masked_secret_and_unset_means_off() -> None:
    found = Settings.from_env({"ROLESYNC_WORKFLOW_SECRET": "  workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H "})
    assert found.workflow_secret.reveal() == "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
    assert "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H" not in repr(found)
    assert not Settings.from_env({}).workflow_secret


def test_a_short_workflow_secret_is_a_config_error_without_the_value() -> None:
    with pytest.raises(ConfigError, match="ROLESYNC_WORKFLOW_SECRET") as caught:
        Settings.from_env({"ROLESYNC_WORKFLOW_SECRET": "short-one"})
    assert "short-one" not in str(caught.value)


def test_a_key_without_scopes_reads_only_and_usage_write_must_be_named() -> None:
    keys = Settings.from_env(
        {"ROLESYNC_API_KEYS": "ops:ops-Bw4nR7tY2kHq9Lx5Mz3Vc8Pd,app:app-Fs2gK8wN5rTj1Yq7Hc4Xb9Lm:usage:write"}
    )
    assert keys.api_keys[0].scopes == API_SCOPES
    assert "usage:write" not in keys.api_keys[0].scopes
    assert keys.api_keys[1].scopes == frozenset({"usage:write"})
    with pytest.raises(ConfigError, match="usage:write"):
        Settings.from_env({"ROLESYNC_API_KEYS": "app:app-Fs2gK8wN5rTj1Yq7Hc4Xb9Lm:usage:delete"})
