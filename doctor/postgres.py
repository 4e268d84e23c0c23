"""`rolesync doctor`: the optional Postgres entitlements table answers and has the shipped schema.

Not configured (no ROLESYNC_POSTGRES_URL) is fine: the table is optional. Configured, the worker
writes it in every pass, so a server that does not answer, or a schema `rolesync db migrate` has
not brought up to date, is a failure: the table would lag (`rolesync status` shows by how much).
"""

from __future__ import annotations

from common.table.postgres import connect
from common.table.schema import missing
from doctor.report import Result, fail, ok
from doctor.session import Session

NAME = "postgres table"


def check_postgres(session: Session) -> Result:
    if not session.settings.postgres_url:
        return ok(NAME, "not configured (ROLESYNC_POSTGRES_URL unset): no entitlements table")
    with connect(session.settings) as conn:
        behind = missing(conn)
    if behind:
        return fail(NAME, f"schema not up to date: {', '.join(behind)} not applied", "run `rolesync db migrate`")
    return ok(NAME, "answers; schema up to date")
