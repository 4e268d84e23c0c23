"""The bodies the API answers with, built from what the reader found (pure functions)."""

from __future__ import annotations

from typing import Any

from api.reader import UserView
from common.guard.decision import APP_SOURCE, METER_SOURCE


def user_entitlements(user_id: str, org_code: str | None, view: UserView) -> dict[str, Any]:
    shown = [s for s in view.snapshots if org_code is None or s["org_code"] == org_code]
    return {"user_id": user_id, "org_code": org_code, "organizations": [_target(s, view) for s in shown]}


def user_feature(user_id: str, feature_code: str, org_code: str | None, view: UserView) -> dict[str, Any]:
    rows = [
        {"org_code": org["org_code"], **{k: v for k, v in feature.items() if k != "feature_code"}}
        for org in user_entitlements(user_id, org_code, view)["organizations"]
        for feature in org["features"]
        if feature["feature_code"] == feature_code
    ]
    return {"user_id": user_id, "feature_code": feature_code, "org_code": org_code, "entitled": bool(rows),
            "organizations": rows}  # fmt: skip


def _target(snapshot: dict[str, Any], view: UserView) -> dict[str, Any]:
    """The stored snapshot as it is, each feature with its `usage` (the one thing the answer adds)."""
    features = [{**f, "usage": _usage(view, f["granted_by"], f["feature_code"])} for f in snapshot["features"]]
    return {**snapshot, "features": features}


def _usage(view: UserView, customers: list[str], feature_code: str) -> list[dict[str, Any]]:
    found = ((c, view.usage.get(c, {}).get(feature_code)) for c in customers)
    return [{"customer_id": c, "value": r["value"], "kind": r.get("kind"), "at": r["at"]} for c, r in found if r]


def customer(customer_id: str, found: dict[str, Any]) -> dict[str, Any]:
    grants, held = found["grants"] or {}, found["entitlements"] or {}
    payment = found["payment"] or {}
    return {
        "customer_id": customer_id,
        "link": _link(found["link"]),
        "plans": _plans(grants.get("plans", []), held.get("plans", [])),
        "roles": grants.get("roles", []),
        "targets": [{"org_code": o, "user_id": u} for o, u in grants.get("targets", [])],
        "features": held.get("features", []),
        "payment_standing": payment.get("standing", "unknown"),
        "payment_standing_at": float(payment["at"]) if "at" in payment else None,
        "usage": _customer_usage(found["usage"], found.get("reports", {})),
        "generation": grants.get("generation"),
        "read_at": grants.get("read_at"),
        "entitlements_read_at": held.get("read_at"),
    }


def _customer_usage(meter: dict[str, dict[str, Any]], app: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every latest reading, each with its `metric` (a meter's feature code) and `source` (as the guard names it)."""
    readings = [{**r, "metric": r["feature_code"], "source": METER_SOURCE} for r in meter.values()]
    return readings + [{**r, "source": APP_SOURCE} for r in app.values()]


def _plans(codes: list[str], read: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plans of the last pass, with `subscribed_on` from the entitlements read when it was for those plans."""
    if sorted(p["code"] for p in read) == sorted(codes):
        return read
    return [{"code": c, "subscribed_on": None} for c in codes]


def _link(link: dict[str, Any] | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {k: link.get(k) for k in ("kind", "user_id", "org_code", "source", "learned_at")}


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
