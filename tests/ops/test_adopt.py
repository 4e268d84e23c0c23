"""`rolesync adopt`'s pure part (ops/adopt.py) and its refusals: which roles are adopted, counted, written out."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from common.entitlements.shadow_writes import NO_PLAN, ShadowWrite
from ops.adopt import Adoption, adoptions, per_role, write_csv

WRITES = [
    ShadowWrite("org_a", "kp_1", (), ("role_client",), {"role_client": [NO_PLAN]}),
    ShadowWrite("org_a", "kp_2", ("role_subscriber",), (), {"role_subscriber": ["customer c: plan p"]}),
    ShadowWrite("org_a", "kp_3", (), ("role_client", "role_subscriber"), {}),
]


def test_only_removals_are_adopted_and_a_role_filter_keeps_the_others_out() -> None:
    assert adoptions(WRITES) == [Adoption("org_a", "kp_1", ("role_client",)),
                                 Adoption("org_a", "kp_3", ("role_client", "role_subscriber"))]  # fmt: skip
    assert adoptions(WRITES, frozenset({"role_subscriber"})) == [Adoption("org_a", "kp_3", ("role_subscriber",))]
    assert per_role(adoptions(WRITES)) == {"role_client": 2, "role_subscriber": 1}


def test_the_csv_has_one_row_per_user_and_role(tmp_path: Path) -> None:
    path = tmp_path / "adopt.csv"
    write_csv(path, [Adoption("org_a", "kp_3", ("role_client", "role_subscriber"), "hg_1")], granted=True)

    with path.open() as rows:
        found = [(r["user_id"], r["role"], r["action"], r["grant_id"]) for r in csv.DictReader(rows)]
    assert found == [("kp_3", "role_client", "granted", "hg_1"), ("kp_3", "role_subscriber", "granted", "hg_1")]


def test_grant_without_a_reason_is_refused_in_one_line_before_anything_is_read() -> None:
    result = CliRunner().invoke(cli, ["adopt", "--grant"], env={"REDIS_URL": ""})

    assert result.exit_code == 1
    assert "say why with --reason" in result.stderr
    assert "Traceback" not in result.output
