"""`rolesync status` says so while ROLESYNC_INSECURE_LOCAL=1 lets http and loopback URLs through, or a store's
TLS does not verify the server (common/infra/insecure_settings.py)."""

from __future__ import annotations

from common.infra.url_policy import INSECURE_WARNING
from common.settings import Secret, Settings
from ops.status import gather
from ops.stores import open_stores
from tests.ops.conftest import run_cli


def test_status_warns_while_insecure_local_is_on_and_still_exits_by_its_problems(redis_url: str) -> None:
    shown = run_cli({"REDIS_URL": redis_url, "ROLESYNC_INSECURE_LOCAL": "1"}, "status")
    assert f"warning: {INSECURE_WARNING}" in shown.output
    quiet = run_cli({"REDIS_URL": redis_url, "ROLESYNC_INSECURE_LOCAL": "0"}, "status")
    assert "ROLESYNC_INSECURE_LOCAL" not in quiet.output
    assert shown.exit_code == quiet.exit_code  # a warning, not a page


def test_status_json_carries_the_warning(redis_url: str) -> None:
    settings = Settings(redis_url=Secret(redis_url), insecure_local=True)
    assert gather(open_stores(settings), settings).as_dict()["warnings"] == [INSECURE_WARNING]


def test_status_names_a_store_whose_tls_does_not_verify(redis_url: str) -> None:
    remote = "postgresql://rolesync:pw-Jt5wQ9zL2xVk7Rm4@db.internal/rolesync?sslmode=require"
    settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret(remote))
    (warning,) = gather(open_stores(settings), settings).as_dict()["warnings"]
    assert warning.startswith("ROLESYNC_POSTGRES_URL: sslmode=require to db.internal does not verify")
