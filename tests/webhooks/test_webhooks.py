"""Webhook subscriptions, the events derived from audit events, and signed deliveries to a
receiver that verifies them with the `standardwebhooks` package."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from registry import services as registry
from tests.conftest import _user
from webhooks import events, services
from webhooks.models import Webhook, WebhookDelivery
from webhooks.tasks import deliver_due_webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(receiver, superuser):
    """subscribe(**kw) → a webhook to the receiver, whose verifier gets the secret."""

    def subscribe(**kwargs):
        webhook, secret = services.webhook_create(
            actor=superuser, name="ci", url=receiver.url, **kwargs
        )
        receiver.secret = secret
        return webhook

    return subscribe


def test_the_secret_is_returned_once_and_stored_encrypted(hook, receiver):
    webhook = hook()
    assert receiver.secret.startswith("whsec_")
    stored = Webhook.objects.get(pk=webhook.pk)
    assert receiver.secret not in stored.secret_encrypted
    event = AuditEvent.objects.get(action="webhooks.webhook.created")
    assert receiver.secret not in str(event.changes)


def test_only_webhook_administrators_subscribe(receiver, owner):
    with pytest.raises(PermissionDenied):
        services.webhook_create(actor=owner, name="x", url=receiver.url)
    assert not Webhook.objects.exists()


def test_a_registry_wide_subscription_needs_sight_of_every_model(receiver, owner):
    from django.contrib.auth.models import Permission

    owner.user_permissions.add(Permission.objects.get(codename="change_webhook"))
    owner = type(owner).objects.get(pk=owner.pk)  # fresh permission cache
    with pytest.raises(PermissionDenied, match="registry-wide"):
        services.webhook_create(actor=owner, name="x", url=receiver.url)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "http://169.254.169.254/latest/meta-data"},
        {"url": "http://10.0.0.1/hooks"},
        {"url": "ftp://example.com/x"},
        {"events": ["no.such.event"]},
        {"name": ""},
    ],
)
def test_bad_subscriptions_are_refused_and_nothing_is_written(superuser, receiver, kwargs):
    data = {"name": "x", "url": receiver.url, **kwargs}
    with pytest.raises(ValidationError):
        services.webhook_create(actor=superuser, **data)
    assert not Webhook.objects.exists()
    assert not AuditEvent.objects.filter(action="webhooks.webhook.created").exists()


def test_a_new_version_is_delivered_signed_after_commit(
    hook, receiver, owner, credit_model, django_capture_on_commit_callbacks
):
    hook(events=["model_version.created"])
    with django_capture_on_commit_callbacks(execute=True):
        version = registry.model_version_create(actor=owner, model=credit_model, metrics={"auc": 1})
    assert receiver.rejected == []
    (message,) = receiver.received
    assert message["payload"]["type"] == "model_version.created"
    data = message["payload"]["data"]
    assert data["model"] == "credit-scoring" and data["object"]["id"] == str(version.pk)
    assert data["actor"] == "owner-scientist" and data["changes"]["version"] == [None, 1]
    delivery = WebhookDelivery.objects.get()
    assert message["headers"]["webhook-id"] == delivery.message_id
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)
    assert delivery.latency_ms is not None and delivery.delivered_at is not None


def test_a_change_that_rolls_back_sends_nothing(hook, receiver, owner, credit_model):
    hook()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        registry.model_version_create(actor=owner, model=credit_model)
        assert WebhookDelivery.objects.count() == 1  # written in the same transaction…
        raise Boom
    assert not WebhookDelivery.objects.exists()  # …and gone with it


def test_subscriptions_get_only_their_event_types_and_model(hook, receiver, owner, credit_model):
    other = registry.registered_model_create(actor=owner, name="other")
    hook(events=["registered_model.created"])
    hook(model=credit_model, events=["model_version.created"])
    registry.model_version_create(actor=owner, model=other)
    registry.model_version_create(actor=owner, model=credit_model)
    registry.registered_model_create(actor=owner, name="third")
    assert sorted(
        (d.event_type, d.payload["data"]["model"]) for d in WebhookDelivery.objects.all()
    ) == [("model_version.created", "credit-scoring"), ("registered_model.created", "third")]


def test_a_registry_wide_webhook_skips_models_its_creator_cannot_see(receiver, owner, credit_model):
    auditor = _user("hook-admin")
    from django.contrib.auth.models import Permission

    auditor.user_permissions.add(
        Permission.objects.get(codename="change_webhook"),
        Permission.objects.get(codename="view_registeredmodel"),
    )
    auditor = type(auditor).objects.get(pk=auditor.pk)
    webhook, _ = services.webhook_create(actor=auditor, name="x", url=receiver.url)
    auditor.user_permissions.remove(Permission.objects.get(codename="view_registeredmodel"))
    registry.model_version_create(actor=owner, model=credit_model)
    assert not WebhookDelivery.objects.filter(webhook=webhook).exists()


def test_promotion_events_follow_the_workflow(hook, receiver, version, file, decide, approvers):
    hook()
    request = file(version, "staging")
    decide(request, approvers["validator"])
    rejected = file(version, "production")
    decide(rejected, approvers["validator"], outcome="reject", comment="Not yet.")
    types = [d.event_type for d in WebhookDelivery.objects.order_by("id")]
    assert types == [
        "promotion.requested",
        "promotion.approved",
        "model_version.stage_changed",
        "promotion.requested",
        "promotion.rejected",
    ]


def test_an_approval_short_of_quorum_is_not_promotion_approved(
    hook, receiver, version, file, decide, approvers, promote
):
    promote(version, "staging")
    hook(events=["promotion.approved", "model_version.stage_changed"])
    request = file(version, "production")  # high risk: 2 validators + 1 risk officer
    decide(request, approvers["validator"])
    assert not WebhookDelivery.objects.exists()
    decide(request, approvers["validator_2"])
    decide(request, approvers["risk_officer"])
    assert sorted(WebhookDelivery.objects.values_list("event_type", flat=True)) == [
        "model_version.stage_changed",
        "promotion.approved",
    ]


def test_a_new_event_type_is_one_registration(hook, receiver, owner, credit_model, monkeypatch):
    monkeypatch.setattr(events, "EVENT_TYPES", dict(events.EVENT_TYPES))
    monkeypatch.setattr(events, "_BY_ACTION", {k: list(v) for k, v in events._BY_ACTION.items()})
    events.register_event(
        "registered_model.tagged", action="registry.registered_model.tagged", model=lambda m: m
    )
    hook(events=["registered_model.tagged"])
    registry.registered_model_label_set(actor=owner, model=credit_model, key="k", value="v")
    assert WebhookDelivery.objects.get().event_type == "registered_model.tagged"


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    hook, receiver, owner, credit_model, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 500
    hook()
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_version_create(actor=owner, model=credit_model)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert deliver_due_webhooks() == 0  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver_due_webhooks() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 2, "HTTP 500")
    assert len(receiver.received) == 2
    assert (
        receiver.received[0]["headers"]["webhook-id"]
        == receiver.received[1]["headers"]["webhook-id"]
    )  # the same message, so receivers can de-duplicate


def test_a_delivery_is_not_sent_twice(hook, receiver, owner, credit_model):
    hook()
    registry.model_version_create(actor=owner, model=credit_model)
    delivery = WebhookDelivery.objects.get()
    assert services.delivery_attempt(delivery_id=delivery.pk).status == "succeeded"
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.received) == 1


def test_a_target_that_became_internal_is_not_called(hook, receiver, owner, credit_model, settings):
    hook()
    registry.model_version_create(actor=owner, model=credit_model)
    settings.WEBHOOK_ALLOWED_TARGETS = []
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert delivery.status == "pending" and "internal address" in delivery.last_error
    assert receiver.received == []


def test_a_test_event_is_signed_and_logged(
    hook, receiver, superuser, django_capture_on_commit_callbacks
):
    webhook = hook(events=["model_card.ready"])
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_test_send(actor=superuser, webhook=webhook)
    (message,) = receiver.received
    assert message["payload"]["type"] == "webhook.test"
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert AuditEvent.objects.filter(action="webhooks.webhook.test_sent").count() == 1


def test_a_rendered_model_card_is_model_card_ready(
    hook, receiver, owner, credit_version, settings, tmp_path
):
    from modelcards import services as cards

    settings.MEDIA_ROOT = str(tmp_path)
    hook(events=["model_card.ready"])
    card, _ = cards.model_card_request(actor=owner, version=credit_version)
    cards.model_card_render(card_id=card.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "model_card.ready"
    assert delivery.payload["data"]["model"] == "credit-scoring"
    assert delivery.payload["data"]["changes"]["sha256"]


def test_a_delivery_connects_to_the_address_it_checked(
    receiver, superuser, owner, credit_model, monkeypatch
):
    # `hooks.test` resolves nowhere but through this resolver: reaching the receiver proves
    # the connection went to the checked address, not to a second lookup (DNS rebinding).
    monkeypatch.setattr(services, "resolve", lambda host, port: ["127.0.0.1"])
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    _, receiver.secret = services.webhook_create(
        actor=superuser, name="x", url=f"http://hooks.test:{port}/hooks"
    )
    registry.model_version_create(actor=owner, model=credit_model)
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert delivery.status == "succeeded", delivery.last_error
    assert receiver.received[0]["headers"]["Host"] == f"hooks.test:{port}"


def test_an_unreachable_receiver_is_logged_and_retried(receiver, superuser, owner, credit_model):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    services.webhook_create(actor=superuser, name="x", url=f"http://127.0.0.1:{closed_port}/")
    registry.model_version_create(actor=owner, model=credit_model)
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    assert delivery.response_status is None and "Error" in delivery.last_error


def test_https_deliveries_still_verify_the_certificate_of_the_host(
    superuser, owner, credit_model, monkeypatch, settings, tmp_path
):
    """Pinning the address keeps TLS honest: a self-signed certificate is refused."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1"]
        monkeypatch.setattr(services, "resolve", lambda host, port: ["127.0.0.1"])
        port = server.server_address[1]
        services.webhook_create(actor=superuser, name="x", url=f"https://hooks.test:{port}/h")
        registry.model_version_create(actor=owner, model=credit_model)
        delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
    assert hits == []


def _batch_of_new_models(owner, models):
    """Record "registered_model.created" for every model in one batch, as a service that
    audits many changes at once does; (deliveries, statements reading subscriptions)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.services import audit_record_many

    before = WebhookDelivery.objects.count()
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        audit_record_many(
            actor=owner,
            records=[{"action": "registry.registered_model.created", "target": m} for m in models],
        )
    lookups = [q["sql"] for q in captured.captured_queries if 'FROM "webhooks_webhook"' in q["sql"]]
    return WebhookDelivery.objects.count() - before, lookups


def test_a_batch_of_events_looks_its_subscriptions_up_once(hook, receiver, owner, credit_model):
    models = [registry.registered_model_create(actor=owner, name=f"batch-{i}") for i in range(5)]
    hook(events=["registered_model.created"])
    hook(model=models[0], events=["registered_model.created"])
    hook(model=credit_model)  # another model's: fetched for none of the batch
    delivered, lookups = _batch_of_new_models(owner, models)
    assert delivered == 5 + 1
    assert len(lookups) == 2, lookups  # does anyone subscribe? then the batch's subscriptions


def test_without_subscriptions_a_batch_costs_one_exists(owner):
    models = [registry.registered_model_create(actor=owner, name=f"batch-{i}") for i in range(5)]
    delivered, lookups = _batch_of_new_models(owner, models)
    assert delivered == 0
    assert len(lookups) == 1, lookups
    assert lookups[0].endswith("LIMIT 1")  # .exists()


def test_lineage_that_changes_after_registration_is_delivered(hook, pipeline, settings):
    """The model is registered by its run's COMPLETE (linked to the run); the run's START (its
    inputs) arrives next, then the producer of one input: each change to what the version was
    trained on is delivered to a subscriber of those events."""
    from lineage import services as lineage
    from registry.models import RegisteredModel
    from tests.lineage.test_arrival_order import model_training

    settings.LINEAGE_MAP_INLINE = False
    produce, start, complete, _ = model_training()
    hook(events=["model_version.lineage_linked", "model_version.training_data_repointed"])
    for event in (complete, start, produce):
        lineage.lineage_events_accept(actor=pipeline, payloads=[event])
        lineage.lineage_events_map_all()
    version = RegisteredModel.objects.get(name="churn").versions.get()
    registered, linked, repointed = WebhookDelivery.objects.order_by("id")
    assert [d.event_type for d in (registered, linked, repointed)] == [
        "model_version.lineage_linked",
        "model_version.lineage_linked",
        "model_version.training_data_repointed",
    ]
    for delivery in (registered, linked, repointed):
        data = delivery.payload["data"]
        assert (data["model"], data["object"]["id"]) == ("churn", str(version.pk))

    def edges(delivery):
        return {tuple(edge[:2]) for edge in delivery.payload["data"]["changes"]["edges"][1]}

    run = f"run:{start['run']['runId']}"
    features = "dataset:s3://bakery:features"
    assert edges(registered) == {(run, "output")}
    assert edges(linked) == {
        (f"{features}#external", "trained_on"),
        (
            "dataset:s3://bakery:labels#v3",
            "trained_on",
        ),
    }
    written = f"{features}#run:{produce['run']['runId']}"
    assert repointed.payload["data"]["changes"]["trained_on"] == [f"{features}#external", written]


def test_every_event_type_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in events.EVENT_TYPES if f"| `{name}` |" not in readme]
    assert missing == [], f"add a row to README's event types table for {missing}"
