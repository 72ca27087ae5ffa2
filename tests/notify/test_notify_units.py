"""Signing, outbound policy, retry timing, secret encryption and payload mapping, without a database."""

from __future__ import annotations

import ipaddress
import json
import random
import stat
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import jsonschema
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from backend.config import Settings
from backend.context import system_context
from backend.events import DomainEvent
from backend.notify.catalog import EVENT_TYPES
from backend.notify.crypto import SecretBox, SecretDecryptionError, resolve_notify_key
from backend.notify.delivery import retry_delay_s
from backend.notify.email import email_message, parse_recipients
from backend.notify.http_client import classify_response, parse_retry_after
from backend.notify.payloads import envelope, event_data, new_event_id, public_details
from backend.notify.signing import new_signing_secret
from backend.notify.slack import slack_message
from backend.notify.ssrf import OutboundPolicy, OutboundRefused, is_public_address
from backend.notify.webhook import webhook_request

EVENTS_DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
NOW = datetime(2025, 3, 4, 8, 15, tzinfo=timezone.utc)
INCIDENT = {
    "id": 7,
    "title": "Cinta línea 3 se para",
    "description": "El motor se calienta. " * 60,
    "area": "production",
    "priority": "high",
    "status": "open",
    "category": None,
    "external_ref": "MES-1",
    "tags": ["line-3"],
    "assignee_id": 12,
    "assignee_name": "maria.lopez",
    "reporter_id": 3,
    "reporter_name": "juan.perez",
    "resolution": None,
    "reopened_count": 0,
    "created_at": NOW,
    "updated_at": NOW,
    "resolved_at": None,
    "closed_at": None,
}


class TestSigning:
    def test_every_signature_verifies_with_the_reference_package(self):
        secret = new_signing_secret()
        payload = {"id": new_event_id(), "type": "test.ping", "version": 1, "timestamp": "x", "data": {"á": 1}}
        headers, body = webhook_request(payload, secrets_in_use=[secret], sent_at=datetime.now(timezone.utc))
        assert Webhook(secret).verify(body, headers) == payload
        assert headers["webhook-id"] == payload["id"]

    def test_during_a_rotation_old_and_new_secret_both_verify_and_a_stranger_does_not(self):
        new, old = new_signing_secret(), new_signing_secret()
        payload = {"id": new_event_id(), "type": "test.ping", "version": 1, "timestamp": "x", "data": {}}
        headers, body = webhook_request(payload, secrets_in_use=[new, old], sent_at=datetime.now(timezone.utc))
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(new).verify(body, headers)
        Webhook(old).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(new_signing_secret()).verify(body, headers)

    def test_a_changed_body_fails_verification(self):
        secret = new_signing_secret()
        payload = {"id": new_event_id(), "type": "test.ping", "version": 1, "timestamp": "x", "data": {}}
        headers, body = webhook_request(payload, secrets_in_use=[secret], sent_at=datetime.now(timezone.utc))
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace(b"ping", b"pong"), headers)


class TestSecretsAtRest:
    def test_secret_round_trips_and_each_ciphertext_is_different(self):
        box = SecretBox("k" * 40)
        secret = new_signing_secret()
        first, second = box.encrypt(secret), box.encrypt(secret)
        assert first != second and secret.encode() not in first
        assert box.decrypt(first) == secret == box.decrypt(second)

    def test_another_key_or_a_flipped_byte_cannot_decrypt(self):
        stored = SecretBox("k" * 40).encrypt("whsec_abc")
        with pytest.raises(SecretDecryptionError):
            SecretBox("z" * 40).decrypt(stored)
        tampered = stored[:-1] + bytes([stored[-1] ^ 1])
        with pytest.raises(SecretDecryptionError):
            SecretBox("k" * 40).decrypt(tampered)

    def test_generated_key_is_kept_private_and_stable(self, tmp_path):
        settings = Settings(data_dir=tmp_path)
        key = resolve_notify_key(settings)
        path = tmp_path / "notify-key"
        assert len(key) >= 32 and resolve_notify_key(settings) == key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_a_short_configured_key_is_refused(self, tmp_path):
        with pytest.raises(ValueError):
            resolve_notify_key(Settings(data_dir=tmp_path, notify_secret_key="short"))


REFUSED_ADDRESSES = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "2002:7f00:1::1",
    "64:ff9b::a00:1",
]


class TestOutboundPolicy:
    @pytest.mark.parametrize("address", REFUSED_ADDRESSES)
    def test_non_public_addresses_are_not_public(self, address):
        assert not is_public_address(ipaddress.ip_address(address))

    def test_public_addresses_are_public(self):
        assert is_public_address(ipaddress.ip_address("93.184.216.34"))
        assert is_public_address(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://10.0.0.7/hook",
            "http://169.254.169.254/latest",
            "http://[::1]:8080/hook",
            "http://localhost:9000/hook",
            "http://2130706433/hook",
            "http://[::ffff:127.0.0.1]/hook",
        ],
    )
    async def test_private_targets_are_refused_without_an_allow_list(self, url):
        with pytest.raises(OutboundRefused, match="non-public"):
            await OutboundPolicy().check_url(url)

    async def test_the_allow_list_admits_a_named_address_and_network_but_nothing_else(self):
        policy = OutboundPolicy(allowed_hosts="127.0.0.1, 10.20.0.0/16")
        assert (await policy.check_url("http://127.0.0.1:8080/hook")).port == 8080
        await policy.check_url("http://10.20.3.4/hook")
        for url in ("http://10.21.0.1/hook", "http://169.254.169.254/", "http://[::1]/"):
            with pytest.raises(OutboundRefused):
                await policy.check_url(url)

    async def test_a_host_name_on_the_allow_list_is_admitted_with_its_addresses(self):
        with pytest.raises(OutboundRefused, match="non-public"):
            await OutboundPolicy(allowed_hosts="erp.plant.local").check_url("http://localhost:9000/hook")
        await OutboundPolicy(allowed_hosts="erp.plant.local, LOCALHOST").check_url("http://localhost:9000/hook")

    def test_production_requires_https_and_no_credentials(self):
        policy = OutboundPolicy(require_https=True)
        with pytest.raises(OutboundRefused, match="https"):
            policy.parse_target("http://erp.example.com/hook")
        with pytest.raises(OutboundRefused, match="credentials"):
            policy.parse_target("https://user:pw@erp.example.com/hook")
        with pytest.raises(OutboundRefused):
            policy.parse_target("file:///etc/passwd")
        assert policy.parse_target("https://erp.example.com/hook").port == 443

    def test_production_setting_turns_https_on(self):
        assert OutboundPolicy.from_settings(Settings(environment="production")).require_https
        assert not OutboundPolicy.from_settings(Settings(environment="test")).require_https


class TestRetryPolicy:
    def test_backoff_grows_exponentially_with_jitter_and_stops_at_the_cap(self):
        rng = random.Random(1)
        delays = [
            retry_delay_s(n, base_s=1, max_s=16, retry_after_s=None, retry_after_max_s=60, rng=rng) for n in range(1, 9)
        ]
        for n, delay in enumerate(delays, start=1):
            ceiling = min(16, 2 ** (n - 1))
            assert ceiling / 2 <= delay <= ceiling
        assert len({round(d, 6) for d in delays}) == len(delays), "jitter makes every delay different"

    def test_retry_after_is_honoured_up_to_its_bound(self):
        rng = random.Random(2)
        assert retry_delay_s(1, base_s=1, max_s=4, retry_after_s=30, retry_after_max_s=60, rng=rng) == 30
        assert retry_delay_s(1, base_s=1, max_s=4, retry_after_s=900, retry_after_max_s=60, rng=rng) == 60

    def test_retry_after_parses_seconds_and_http_dates(self):
        assert parse_retry_after("7", now=NOW) == 7
        assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), now=NOW) == 90
        assert parse_retry_after("soon", now=NOW) is None

    @pytest.mark.parametrize(
        "status, outcome",
        [
            (200, "success"),
            (204, "success"),
            (301, "fail"),
            (302, "fail"),
            (400, "fail"),
            (404, "fail"),
            (410, "fail"),
            (429, "retry"),
            (500, "retry"),
            (503, "retry"),
        ],
    )
    def test_answers_are_classified(self, status, outcome):
        result = classify_response(status, {"retry-after": "3"}, "", now=NOW, duration_ms=1)
        assert result.outcome == outcome
        if outcome == "retry":
            assert result.retry_after_s == 3


def _event(name: str, **fields) -> DomainEvent:
    return DomainEvent(name=name, resource_type="incident", resource_id=7, at=NOW, ctx=system_context("t"), **fields)


SAMPLES = {
    "incident.created": (_event("incident.created", after=INCIDENT), INCIDENT),
    "incident.updated": (
        _event(
            "incident.updated",
            before={**INCIDENT, "priority": "low"},
            after=INCIDENT,
            details={"changed": ["priority", "description"]},
        ),
        INCIDENT,
    ),
    "incident.escalated": (
        _event(
            "incident.escalated",
            after=INCIDENT,
            details={
                "level": 2,
                "trigger": "sla_breached",
                "rule_name": "r",
                "actor_name": "ana",
                "messages": [{"x": 1}],
                "reassigned_to": 4,
                "target_department": "maintenance",
            },
        ),
        INCIDENT,
    ),
    "incident.resolved": (
        _event("incident.resolved", after={**INCIDENT, "resolution": "Se cambió el rodamiento."}),
        {**INCIDENT, "resolution": "Se cambió el rodamiento.", "status": "resolved"},
    ),
    "incident.reopened": (
        _event("incident.reopened", before={**INCIDENT, "status": "resolved"}, after=INCIDENT),
        INCIDENT,
    ),
    "suggestion.ready": (
        _event(
            "suggestion.ready",
            after={"incident_id": 7, "language": "es", "text": "Revisar [3]", "citations": [3], "model": "gemma3-270m"},
        ),
        INCIDENT,
    ),
    "sla.warning": (
        _event(
            "sla.warning",
            details={"clock_kind": "resolution", "threshold_percent": 75, "due_at": NOW, "notified_user": "x"},
        ),
        INCIDENT,
    ),
    "sla.breached": (
        _event("sla.breached", details={"clock_kind": "first_response", "threshold_percent": 100}),
        INCIDENT,
    ),
}


class TestPayloads:
    def test_every_event_type_has_a_schema_file_whose_examples_validate(self):
        for event_type in EVENT_TYPES:
            schema = json.loads((EVENTS_DOCS / event_type.schema_file).read_text())
            validator = jsonschema.Draft202012Validator(schema)
            for example in schema["examples"]:
                validator.validate(example)

    @pytest.mark.parametrize("event_type", sorted(SAMPLES))
    def test_payloads_match_their_documented_schema_and_name_nobody(self, event_type):
        event, incident = SAMPLES[event_type]
        payload = envelope(
            event_id=new_event_id(),
            event_type=event_type,
            occurred_at=NOW,
            data=event_data(event_type, event, incident),
        )
        schema = json.loads((EVENTS_DOCS / f"{event_type}.v1.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(payload)
        text = json.dumps(payload)
        for personal in ("maria.lopez", "juan.perez", "ana", "notified_user", "reassigned_to", "assignee_id"):
            assert personal not in text
        assert len(payload["data"]["incident"]["description_excerpt"]) <= 500

    def test_an_update_that_changed_nothing_is_not_an_event(self):
        event = _event("incident.updated", before=INCIDENT, after=INCIDENT, details={"changed": []})
        assert event_data("incident.updated", event, INCIDENT) is None

    def test_details_keep_scalars_and_drop_people_and_secrets(self):
        kept = public_details(
            {
                "level": 1,
                "rule_name": "r",
                "user_id": 3,
                "api_key": "k",
                "approved_by": "x",
                "client_ip": "1.2.3.4",
                "nested": {"a": 1},
                "Bad-Key": 1,
                "due_at": NOW,
            }
        )
        assert kept == {"level": 1, "rule_name": "r", "due_at": "2025-03-04T08:15:00Z"}


class TestChannels:
    def test_slack_message_has_fallback_text_and_escapes_control_characters(self):
        payload = envelope(
            event_id=new_event_id(),
            event_type="incident.created",
            occurred_at=NOW,
            data={
                "incident": {
                    **event_data("incident.created", SAMPLES["incident.created"][0], INCIDENT)["incident"],
                    "title": "A <b> & C",
                }
            },
        )
        message = slack_message(payload)
        assert message["text"] == "Incident #7 reported: A &lt;b&gt; &amp; C"
        assert "Priority: high" in message["blocks"][0]["text"]["text"]

    def test_email_carries_event_id_headers_and_the_json(self):
        payload = envelope(
            event_id=new_event_id(), event_type="test.ping", occurred_at=NOW, data={"endpoint_id": 3, "message": "hola"}
        )
        message = email_message(
            payload, sender="prs@example.test", recipients=["a@example.test"], endpoint_id=3, sent_at=NOW
        )
        assert message["Message-ID"] == f"<{payload['id']}.3@pr-system>"
        assert message["X-PRS-Event-Type"] == "test.ping"
        assert payload["id"] in message.get_content()

    @pytest.mark.parametrize("target", ["", "nobody", "a@b@c", "a@example.test, bad", ",".join(["a@x.test"] * 21)])
    def test_bad_recipient_lists_are_refused(self, target):
        with pytest.raises(ValueError):
            parse_recipients(target)

    def test_recipient_lists_are_split_and_trimmed(self):
        assert parse_recipients(" ops@example.test ,admin@plant.local") == ["ops@example.test", "admin@plant.local"]


def test_a_lease_not_longer_than_an_attempt_is_refused(tmp_path):
    from backend.clock import SystemClock
    from backend.notify.wiring import build_notify

    settings = Settings(data_dir=tmp_path, notify_timeout_s=30, notify_lease_s=30)
    with pytest.raises(ValueError, match="PRS_NOTIFY_LEASE_S"):
        build_notify(settings, pool=None, clock=SystemClock(), registry=None)
