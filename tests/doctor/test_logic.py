"""Pure logic of doctor and register-webhook, with an in-memory webhook registry that records calls."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from common.errors import ConfigError, RetryableError
from common.webhooks.events import SUBSCRIBED_EVENTS, is_acted_on
from doctor.jwks import rsa_signing_kids
from doctor.queue_redis import problems
from doctor.register import Action, plan_registration, register
from doctor.roles import closest
from doctor.webhooks import Webhook, checked_url, webhook_of

URL = "https://rolesync.example.com/webhooks/kinde"


class FakeRegistry:
    def __init__(self, webhooks: list[Webhook]) -> None:
        self.webhooks = webhooks
        self.sent: list[tuple[str, object]] = []

    def list(self) -> list[Webhook]:
        return list(self.webhooks)

    def create(self, endpoint: str, event_types: Sequence[str]) -> str:
        self.sent.append(("create", tuple(event_types)))
        self.webhooks.append(Webhook("webhook_new", endpoint, frozenset(event_types)))
        return "webhook_new"

    def update(self, webhook_id: str, event_types: Sequence[str]) -> None:
        self.sent.append(("update", tuple(event_types)))
        self.webhooks = [Webhook(w.id, w.endpoint, frozenset(event_types)) for w in self.webhooks]


def test_subscribed_events_are_exactly_what_the_ingest_acts_on() -> None:
    assert all(map(is_acted_on, SUBSCRIBED_EVENTS))
    assert "customer.plan_changed" in SUBSCRIBED_EVENTS
    assert "user.authenticated" not in SUBSCRIBED_EVENTS


@pytest.mark.parametrize(
    "item",
    [
        {"id": "w1", "endpoint": URL, "event_types": ["user.created"]},
        {"id": "w1", "url": URL + "/", "event_types": [{"code": "user.created"}]},
        {"id": "w1", "endpoint": URL.upper(), "event_types": [{"key": "user.created"}, None, 3]},
    ],
)
def test_every_documented_list_shape_is_read(item: dict[str, object]) -> None:
    webhook = webhook_of(item)
    assert webhook is not None
    assert webhook.event_types == {"user.created"}
    assert plan_registration([webhook], URL).webhook_id == "w1"


def test_register_creates_then_changes_nothing() -> None:
    registry = FakeRegistry([Webhook("other", "https://elsewhere.example/hook", frozenset({"user.created"}))])
    first = register(registry, URL, dry_run=False)
    second = register(registry, URL, dry_run=False)
    assert first.startswith("created webhook webhook_new")
    assert second.endswith("nothing changed")
    assert registry.sent == [("create", SUBSCRIBED_EVENTS)]


def test_dry_run_sends_nothing() -> None:
    registry = FakeRegistry([])
    assert "POST /api/v1/webhooks" in register(registry, URL, dry_run=True)
    assert registry.sent == []


def test_extra_event_types_are_removed_by_an_update() -> None:
    hook = Webhook("w1", URL, frozenset({*SUBSCRIBED_EVENTS, "role.created"}))
    plan = plan_registration([hook], URL)
    assert plan.action is Action.UPDATE
    assert plan.removed == ("role.created",)


@pytest.mark.parametrize("url", ["ftp://x/webhooks/kinde", "rolesync.example.com", "http://example.com/webhooks/kinde"])
def test_webhook_url_must_be_https_unless_local(url: str) -> None:
    with pytest.raises(ConfigError):
        checked_url(url)


def test_rsa_signing_keys_counted_and_others_ignored() -> None:
    rsa_jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)
    ec_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    body = {"keys": [{**rsa_jwk, "kid": "a", "use": "sig"}, {**rsa_jwk, "kid": "b", "use": "enc"}, ec_jwk, {"x": 1}]}
    assert rsa_signing_kids(body) == ["a"]
    assert rsa_signing_kids("not json object") == []


def test_doctor_counts_only_keys_the_ingest_can_verify_with() -> None:
    """An RS512-only or kid-less JWKS passed doctor while the ingest refused every webhook with it."""
    from ingest.jwks import parse_jwks

    rsa_jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)
    for body in ({"keys": [{**rsa_jwk, "kid": "a", "alg": "RS512"}]}, {"keys": [{**rsa_jwk, "use": "sig"}]}):
        assert rsa_signing_kids(body) == []
        with pytest.raises(RetryableError):
            parse_jwks(body)
    good = {"keys": [{**rsa_jwk, "kid": "a", "alg": "RS256"}]}
    assert rsa_signing_kids(good) == sorted(parse_jwks(good)) == ["a"]


def test_redis_config_problems() -> None:
    assert problems({"maxmemory-policy": "noeviction", "appendonly": "no", "save": "3600 1"}) == []
    found = problems({"maxmemory-policy": "volatile-lru", "appendonly": "no", "save": ""})
    assert len(found) == 2


def test_closest_key_or_none() -> None:
    assert closest("role_clinet", ["role_client", "role_admin"]) == "role_client"
    assert closest("zzz", ["role_client"]) is None
