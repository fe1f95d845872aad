"""Webhooks in the admin: subscribe (secret shown once), send a test event, read the log."""

import pytest

from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_adding_a_webhook_shows_its_secret_once(client, superuser, receiver):
    client.force_login(superuser)
    response = client.post(
        "/admin/webhooks/webhook/add/",
        {"name": "ci", "url": receiver.url, "events": ["model_version.created"]},
        follow=True,
    )
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.events == ["model_version.created"] and webhook.created_by == superuser
    page = response.content.decode()
    assert "Signing secret of" in page and "whsec_" in page
    again = client.get(f"/admin/webhooks/webhook/{webhook.pk}/change/").content.decode()
    assert "whsec_" not in again


def test_an_internal_target_is_a_form_error_and_nothing_is_written(client, superuser):
    client.force_login(superuser)
    response = client.post(
        "/admin/webhooks/webhook/add/", {"name": "ci", "url": "http://169.254.169.254/x"}
    )
    assert response.status_code == 200
    assert "internal address" in response.content.decode()
    assert not Webhook.objects.exists()


def test_the_send_a_test_event_action_delivers_and_logs(
    client, superuser, receiver, django_capture_on_commit_callbacks
):
    from webhooks import services

    webhook, receiver.secret = services.webhook_create(actor=superuser, name="ci", url=receiver.url)
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/webhooks/webhook/",
            {"action": "send_test_event", "_selected_action": [webhook.pk]},
        )
    assert [m["payload"]["type"] for m in receiver.received] == ["webhook.test"]
    log = client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert "webhook.test" in log and WebhookDelivery.objects.get().status == "succeeded"
