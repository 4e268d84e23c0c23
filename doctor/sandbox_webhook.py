"""The webhook check against the local sandbox, which delivers to its own `--webhook-url` unasked.

Registering a webhook there too (`rolesync kinde register-webhook`) doubles every delivery, so the
advice differs from a real Kinde's: the sandbox says where it delivers (common/infra/sandbox_marker.py).
"""

from __future__ import annotations

from doctor.report import Result, fail, ok, warn
from doctor.webhooks import Webhook, missing_events, pointing_at, same_endpoint

NAME = "webhook"


def for_sandbox(webhooks: list[Webhook], delivers_to: str, url: str) -> Result:
    """`delivers_to`: the sandbox's --webhook-url (not empty); `url`: the ingest doctor checks ("" unknown)."""
    if url and not same_endpoint(delivers_to, url):
        return _elsewhere(webhooks, delivers_to, url)
    target = url or delivers_to
    doubled = pointing_at(webhooks, target)
    if doubled is not None:
        return warn(NAME, f"the sandbox delivers every event to {target} by itself and webhook {doubled.id} too: "
                    "each arrives twice", f"delete webhook {doubled.id} (DELETE /api/v1/webhooks/{doubled.id}, or "
                    "POST /_sandbox/reset): the sandbox needs no registration")  # fmt: skip
    return ok(NAME, f"the sandbox delivers every event type to {target} by itself (its --webhook-url)")


def _elsewhere(webhooks: list[Webhook], delivers_to: str, url: str) -> Result:
    registered = pointing_at(webhooks, url)
    if registered is not None and not missing_events(registered):
        return ok(NAME, f"webhook {registered.id} → {url} sends every event type we act on")
    return fail(NAME, f"the sandbox delivers to {delivers_to}, not to {url}",
                f"restart `rolesync sandbox` with --webhook-url {url} (or POST /_sandbox/webhooks "
                f'{{"url": "{url}"}}); no register-webhook: the sandbox delivers to that URL by itself')  # fmt: skip
