"""Usage the app itself reports per customer and metric (`PUT /v1/customers/{id}/usage/{metric}`).

For what Kinde does not count: projects, seats used, anything the app knows best. The body is
`{"value": <number >= 0>, "at": <epoch seconds, optional>}` (api/contract.py); only the newest report of a metric is
kept (a late, older one is ignored, as for meter readings). The guard compares it with the plan's
limit of the same name (common/guard/decision.py).

Only a customer known by a link takes reports (else nothing is kept: a typo in an id must not grow Redis
forever). Redis: `keys.customer_usage_reports(customer)`, a hash metric -> JSON {value, at, by} where `by`
is the label of the API key that reported it (never the key); it expires ROLESYNC_HISTORY_TTL_S after the
last report, as the customer's timeline does after its last entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from common.errors import PermanentError
from common.plans.limits import METRIC_NAME

# The API keeps a report with common/guard/usage.py's KEEP_NEWER (keep_newer.lua, the meter readings' script too).
# KEYS: reports hash, the customer's link. ARGV: metric, report JSON, its time, ttl s. Keeps the newer report of a
# metric of a linked customer: -1 unlinked (nothing kept), 0 a newer one is kept, 1 kept.
Kept = Literal["kept", "older", "unknown_customer"]
KEPT_BY_ANSWER: dict[int, Kept] = {1: "kept", 0: "older", -1: "unknown_customer"}
MAX_FUTURE_S = 300.0  # a report dated further ahead would shadow every honest one after it


class BadReportError(PermanentError):
    reason = "bad_usage_report"


@dataclass(frozen=True)
class Report:
    metric: str
    value: float
    at: float
    by: str

    def to_json(self) -> str:
        return json.dumps({"metric": self.metric, "value": self.value, "at": self.at, "by": self.by}, sort_keys=True)


def report_of(metric: str, value: float, at: float | None, by: str, now: float | None = None) -> Report:
    """The report a request makes (its body already read as api/contract.py declares it), or BadReportError.

    `at` defaults to now; one ahead of now by more than MAX_FUTURE_S is kept as of now, so a skewed clock
    cannot shadow every honest report after it."""
    now = time.time() if now is None else now
    if not METRIC_NAME.match(metric):
        raise BadReportError("the metric name must be 1-64 letters, digits, _ . : or -")
    return Report(metric, value, now if at is None or at > now + MAX_FUTURE_S else at, by)


def report_rows(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """A reports hash as stored, metric -> report."""
    return {str(k): json.loads(v) for k, v in sorted(raw.items())}
