"""The webhooks API: administrators subscribe (secret shown once), test, read the log."""

import pytest

from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_creating_answers_the_secret_once(api, superuser, receiver):
    response = api(superuser).post(
        "/api/v1/webhooks", {"name": "ci", "url": receiver.url, "events": []}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["model"] is None
    again = api(superuser).get(f"/api/v1/webhooks/{body['id']}").json()
    assert "secret" not in again and again["url"] == receiver.url


def test_a_per_model_webhook_on_a_hidden_model_is_404(api, receiver, outsider, credit_model):
    from django.contrib.auth.models import Permission

    outsider.user_permissions.add(*Permission.objects.filter(codename__endswith="_webhook"))
    response = api(outsider).post(
        "/api/v1/webhooks",
        {"name": "x", "url": receiver.url, "model": "credit-scoring"},
        format="json",
    )
    assert response.status_code == 404
    assert not Webhook.objects.exists()


def test_people_without_the_webhooks_permission_are_refused(api, owner, receiver):
    assert api(owner).get("/api/v1/webhooks").status_code == 403
    response = api(owner).post(
        "/api/v1/webhooks", {"name": "x", "url": receiver.url}, format="json"
    )
    assert response.status_code == 403
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "url": "http://127.0.0.2:9/x"},
        {"name": "x", "url": "not a url"},
        {"name": "x", "url": "https://example.com", "events": ["nope"]},
        {"name": "x", "url": "https://example.com", "secret": "mine"},
    ],
)
def test_bad_webhooks_are_400_and_nothing_is_written(api, superuser, receiver, body):
    response = api(superuser).post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 400, response.json()
    assert not Webhook.objects.exists()


def test_send_a_test_event_and_read_the_delivery_log(api, superuser, receiver):
    created = (
        api(superuser)
        .post("/api/v1/webhooks", {"name": "ci", "url": receiver.url}, format="json")
        .json()
    )
    receiver.secret = created["secret"]
    response = api(superuser).post(f"/api/v1/webhooks/{created['id']}/test")
    assert response.status_code == 202
    log = api(superuser).get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    (entry,) = log["results"]
    assert entry["event_type"] == "webhook.test"
    assert WebhookDelivery.objects.get().message_id == entry["message_id"]


def test_deactivating_stops_deliveries(api, superuser, receiver, owner, credit_model):
    from registry import services as registry

    created = (
        api(superuser)
        .post("/api/v1/webhooks", {"name": "ci", "url": receiver.url}, format="json")
        .json()
    )
    response = api(superuser).patch(
        f"/api/v1/webhooks/{created['id']}", {"active": False}, format="json"
    )
    assert response.status_code == 200 and response.json()["active"] is False
    registry.model_version_create(actor=owner, model=credit_model)
    assert not WebhookDelivery.objects.exists()
