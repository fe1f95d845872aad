"""API tokens: hashed at rest, named, expiring, revocable at once; minted by CLI and admin."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from registry import services
from registry.models import ApiToken, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


def _bearer(plain):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_pipeline_token_creates_a_model_and_a_version(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    client = _bearer(plain)
    assert client.post("/api/v1/models/", {"name": "churn"}, format="json").status_code == 201
    response = client.post(
        "/api/v1/models/churn/versions/", {"metrics": {"auc": 0.8}}, format="json"
    )
    assert response.status_code == 201
    assert ModelVersion.objects.get().created_by == pipeline


def test_plain_token_value_is_not_stored_anywhere_in_the_database(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    token = ApiToken.objects.get()
    assert plain not in (token.digest, token.token_key)
    # Look for the secret in every text column of every table.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            for column in columns:
                cursor.execute(
                    f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} "
                    f"WHERE CAST({connection.ops.quote_name(column)} AS TEXT) LIKE %s",
                    [f"%{plain}%"],
                )
                assert cursor.fetchone()[0] == 0, f"{table}.{column} holds the token"


def test_token_audit_event_names_the_token_in_request_context(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    _bearer(plain).post("/api/v1/models/", {"name": "churn"}, format="json")
    event = AuditEvent.objects.get(action="registry.registered_model.created")
    assert event.context["token_id"] == ApiToken.objects.get().token_key
    assert event.actor_kind == "service"


def test_wrong_token_answers_401(db):
    response = _bearer("not-a-token").get("/api/v1/models/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_revoked_token_is_refused_at_once(pipeline):
    token, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    client = _bearer(plain)
    assert client.get("/api/v1/models/").status_code == 200
    services.api_token_revoke(actor=pipeline, token=token)
    assert client.get("/api/v1/models/").status_code == 401
    assert ApiToken.objects.filter(pk=token.pk).exists()  # kept for the record


def test_expired_token_is_refused(pipeline):
    token, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _bearer(plain).get("/api/v1/models/").status_code == 401


def test_token_of_inactive_user_is_refused(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    pipeline.is_active = False
    pipeline.save()
    assert _bearer(plain).get("/api/v1/models/").status_code == 401


def test_user_cannot_issue_a_token_for_someone_else(owner, pipeline):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.api_token_issue(actor=owner, user=pipeline, name="x")
    assert not ApiToken.objects.exists()


def test_issue_token_command_prints_the_token_alone_on_the_last_line(pipeline, capsys):
    call_command("issue_token", "pipeline-bot", "--name", "ci", "--days", "7")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert _bearer(last).get("/api/v1/models/").status_code == 200
    token = ApiToken.objects.get()
    assert token.name == "ci"
    assert timedelta(days=6, hours=23) < token.expiry - timezone.now() <= timedelta(days=7)
    event = AuditEvent.objects.get(action="registry.api_token.issued")
    assert event.channel == "cli"


def test_issue_token_command_refuses_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user named"):
        call_command("issue_token", "ghost", "--name", "x")


def test_issue_token_command_refuses_bad_lifetime(pipeline):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="1–3650"):
        call_command("issue_token", "pipeline-bot", "--name", "x", "--days", "0")
    assert not ApiToken.objects.exists()


def test_admin_mints_a_token_and_shows_it_once(client, superuser, pipeline):
    client.force_login(superuser)
    response = client.post(
        "/admin/registry/apitoken/add/", {"user": pipeline.pk, "name": "from-admin", "days": "30"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="issued-token"')
    plain = html[html.index(">", start) + 1 : html.index("</code>", start)]
    assert _bearer(plain).get("/api/v1/models/").status_code == 200
    listing = client.get("/admin/registry/apitoken/").content.decode()
    assert plain not in listing


def test_admin_revoke_action_takes_effect_at_once(client, superuser, pipeline):
    token, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    client.force_login(superuser)
    client.post("/admin/registry/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert _bearer(plain).get("/api/v1/models/").status_code == 401
    assert RegisteredModel.objects.count() == 0


def test_a_person_s_token_records_events_as_a_user_not_a_service(owner):
    _, plain = services.api_token_issue(actor=None, user=owner, name="laptop")
    assert (
        _bearer(plain).post("/api/v1/models/", {"name": "mine"}, format="json").status_code == 201
    )
    event = AuditEvent.objects.get(action="registry.registered_model.created")
    assert (event.actor_id, event.actor_kind) == (owner.pk, "user")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_admin_revoke_of_revoked_tokens_says_nothing_was_revoked(client, superuser, pipeline):
    token, _ = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    services.api_token_revoke(actor=superuser, token=token)
    client.force_login(superuser)
    response = client.post(
        "/admin/registry/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    messages = _messages(response)
    assert "Nothing was revoked." in messages
    assert not any("takes effect" in m for m in messages)


def test_admin_revoke_counts_what_it_revoked(client, superuser, pipeline):
    token, _ = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    client.force_login(superuser)
    response = client.post(
        "/admin/registry/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    assert any(m.startswith("Revoked 1 token(s)") for m in _messages(response))


def test_a_token_with_the_right_key_and_a_wrong_secret_is_refused(pipeline):
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    tampered = plain[:-4] + ("0000" if not plain.endswith("0000") else "1111")
    assert _bearer(tampered).get("/api/v1/models/").status_code == 401
    assert _bearer(plain).get("/api/v1/models/").status_code == 200


def test_a_token_still_valid_until_its_expiry_is_accepted(pipeline):
    token, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() + timedelta(minutes=1))
    assert _bearer(plain).get("/api/v1/models/").status_code == 200


def test_a_token_s_last_use_is_stamped_at_most_once_per_resolution(pipeline):
    from registry.authentication import LAST_USED_RESOLUTION

    token, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    client = _bearer(plain)
    assert client.get("/api/v1/models/").status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    assert client.get("/api/v1/models/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first  # fresh: not written again
    stale = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert client.get("/api/v1/models/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_a_token_s_user_is_the_whole_user(pipeline):
    """What the request needs of the token's user later (its name, its kind) is read with
    the token, not left out."""
    _, plain = services.api_token_issue(actor=None, user=pipeline, name="airflow")
    response = _bearer(plain).post("/api/v1/models/", {"name": "churn"}, format="json")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="registry.registered_model.created")
    assert (event.actor_id, event.actor_username) == (pipeline.pk, pipeline.username)
