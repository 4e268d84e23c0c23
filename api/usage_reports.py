"""`PUT /v1/customers/{customer_id}/usage/{metric}`: the app reports a usage total the guard compares with limits.

Needs a key with the `usage:write` scope. The body is api/contract.py's UsageReport. 200 with what is
kept (`kept: false` when a newer report of the metric is already kept), 400 with what is wrong for a bad
body or metric name, 404 for a customer no link names (nothing kept). A linked customer need not have had
its first pass yet. Reports expire with the customer's timeline (common/guard/usage_reports.py).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import views
from api.bodies import BadBodyError, json_body
from api.contract import UsageKept, UsageReport, read_as, to_body
from api.reader import Reader
from common.guard.usage_reports import BadReportError, Report, report_of

MAX_BODY_BYTES = 4096


async def put_usage(request: Request, reader: Reader) -> Response:
    customer_id = request.path_params["customer_id"]
    try:
        report = await _report(request)
    except (BadBodyError, BadReportError) as exc:
        return JSONResponse(views.error("bad_request", str(exc)), status_code=400)
    kept = await request.app.state.guard_store.report(customer_id, report, request.app.state.usage_ttl_s)
    if kept == "unknown_customer":
        return JSONResponse(views.error("customer_not_found", f"no customer {customer_id} is known: no link names it "
                                        "(it is learned from Kinde's user and org events, or `customers link`)"),
                            status_code=404)  # fmt: skip
    answer = UsageKept(customer_id, report.metric, report.value, report.at, kept == "kept")
    return JSONResponse(to_body(answer))


async def _report(request: Request) -> Report:
    body = read_as(UsageReport, await json_body(request, MAX_BODY_BYTES))
    at = None if body.at is msgspec.UNSET else body.at
    return report_of(request.path_params["metric"], body.value, at, request.state.caller_label)
