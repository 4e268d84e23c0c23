"""Is Kinde registered to send our event types to this service? (`GET /api/v1/webhooks`)"""

from __future__ import annotations

from doctor.report import Result, fail, ok, skip, warn
from doctor.sandbox_webhook import for_sandbox
from doctor.session import Session
from doctor.webhooks import INGEST_PATH, KindeWebhookRegistry, Webhook, covering, missing_events, pointing_at

REGISTER = "rolesync kinde register-webhook --url {url}"
SOME_URL = f"https://<your ingest host>{INGEST_PATH}"


def check_webhook(session: Session) -> Result:
    if session.kinde is None or session.lacks("read:webhooks"):
        return skip("webhook", "an M2M token with read:webhooks")
    listing = KindeWebhookRegistry(session.kinde.api).listing()
    webhooks = listing.webhooks
    if listing.sandbox_delivers_to:
        return for_sandbox(webhooks, listing.sandbox_delivers_to, session.webhook_url)
    if session.webhook_url:
        return for_url(webhooks, session.webhook_url)
    return without_url(webhooks)


def for_url(webhooks: list[Webhook], url: str) -> Result:
    found = pointing_at(webhooks, url)
    fix = REGISTER.format(url=url)
    if found is None:
        return fail("webhook", f"no Kinde webhook points at {url}", fix)
    missing = missing_events(found)
    if missing:
        return fail("webhook", f"webhook {found.id} → {url} lacks {', '.join(missing)}", fix)
    return ok("webhook", f"webhook {found.id} → {url} sends every event type we act on")


def without_url(webhooks: list[Webhook]) -> Result:
    full = covering(webhooks)
    fix = REGISTER.format(url=SOME_URL)
    if not full:
        return fail("webhook", "no Kinde webhook sends every event type we act on", fix)
    endpoints = ", ".join(w.endpoint for w in full)
    return warn(
        "webhook",
        f"every event type we act on goes to {endpoints} (set ROLESYNC_WEBHOOK_URL to check it is this service)",
        "export ROLESYNC_WEBHOOK_URL=<this service's public URL>",
    )
