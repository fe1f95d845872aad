"""Who may change a model and its versions — through the API and through the admin."""

import pytest

from registry.models import ModelVersion, RegisteredModel
from registry.services import model_permission_grant, model_permission_revoke

pytestmark = pytest.mark.django_db
MODEL = "/api/v1/models/credit-scoring/"
VERSIONS = MODEL + "versions/"


def test_user_without_rights_cannot_see_the_model_through_the_api(
    api, other_scientist, credit_version
):
    assert api(other_scientist).patch(MODEL, {"description": "x"}, format="json").status_code == 404
    assert api(other_scientist).get(f"{VERSIONS}1/").status_code == 404


def test_reviewer_may_see_but_not_change_a_model(api, validator, credit_version):
    client = api(validator)
    assert client.get(MODEL).status_code == 200
    assert client.patch(MODEL, {"description": "x"}, format="json").status_code == 403
    assert client.patch(f"{VERSIONS}1/", {"limitations": "x"}, format="json").status_code == 403
    assert client.post(VERSIONS, {}, format="json").status_code == 403
    assert RegisteredModel.objects.get().description == "PD model."
    assert ModelVersion.objects.count() == 1


def test_view_grant_does_not_allow_changes(api, owner, other_scientist, credit_version):
    model_permission_grant(
        actor=owner,
        model=credit_version.model,
        grantee=other_scientist,
        permission="view_registeredmodel",
    )
    response = api(other_scientist).patch(f"{VERSIONS}1/", {"limitations": "x"}, format="json")
    assert response.status_code == 403


def test_change_grant_allows_editing_model_and_versions(api, owner, pipeline, credit_version):
    model_permission_grant(
        actor=owner,
        model=credit_version.model,
        grantee=pipeline,
        permission="change_registeredmodel",
    )
    client = api(pipeline)
    assert client.post(VERSIONS, {}, format="json").status_code == 201
    assert client.patch(f"{VERSIONS}1/", {"limitations": "x"}, format="json").status_code == 200


def test_revoked_grant_takes_effect_at_once(api, owner, pipeline, credit_version):
    model = credit_version.model
    model_permission_grant(
        actor=owner, model=model, grantee=pipeline, permission="change_registeredmodel"
    )
    model_permission_revoke(
        actor=owner, model=model, grantee=pipeline, permission="change_registeredmodel"
    )
    assert api(pipeline).post(VERSIONS, {}, format="json").status_code == 404


def test_global_change_permission_does_not_reach_every_model(api, other_scientist, credit_model):
    from django.contrib.auth.models import Permission

    other_scientist.user_permissions.add(
        Permission.objects.get(codename="change_registeredmodel"),
        Permission.objects.get(codename="view_registeredmodel"),
    )
    response = api(other_scientist).patch(MODEL, {"description": "x"}, format="json")
    assert response.status_code == 403


def test_only_the_owner_may_hand_the_model_to_a_new_owner(api, owner, pipeline, credit_model):
    model_permission_grant(
        actor=owner, model=credit_model, grantee=pipeline, permission="change_registeredmodel"
    )
    response = api(pipeline).patch(MODEL, {"owner": pipeline.username}, format="json")
    assert response.status_code == 403
    credit_model.refresh_from_db()
    assert credit_model.owner == owner


# --- the admin door --------------------------------------------------------------------------


def _admin_change_url(obj):
    meta = obj._meta
    return f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/change/"


def test_admin_refuses_a_change_by_a_user_without_rights(client, validator, credit_version):
    client.force_login(validator)
    response = client.post(
        _admin_change_url(credit_version.model),
        {"description": "hacked", "risk_tier": "low", "tags": "[]", "owner": validator.pk},
    )
    assert response.status_code == 403
    assert RegisteredModel.objects.get().description == "PD model."


def test_admin_hides_a_model_from_a_user_who_may_not_see_it(
    client, other_scientist, credit_version
):
    client.force_login(other_scientist)
    response = client.get(_admin_change_url(credit_version))
    assert response.status_code == 302  # the admin redirects "does not exist" to its index
    response = client.post(_admin_change_url(credit_version), {"limitations": "x"})
    assert ModelVersion.objects.get().limitations == ""


def _version_form(version, **overrides):
    data = {
        "artifact_uri": version.artifact_uri,
        "artifact_sha256": version.artifact_sha256,
        "framework": version.framework,
        "parameters": '{"depth": 6}',
        "metrics": '{"auc": 0.87}',
        "training_run": "",
        "intended_use": version.intended_use,
        "out_of_scope_uses": "",
        "limitations": "",
        "ethical_considerations": "",
        "training_data_summary": "",
        "evaluation_summary": "",
    }
    data.update(overrides)
    return data


def test_admin_does_not_change_what_the_api_refuses_to_change_immutable_sha(
    client, owner, credit_version
):
    """The admin shows a set digest read-only; a crafted post changing it writes nothing."""
    client.force_login(owner)
    response = client.post(
        _admin_change_url(credit_version), _version_form(credit_version, artifact_sha256="b" * 64)
    )
    assert response.status_code == 302
    assert ModelVersion.objects.get().artifact_sha256 == credit_version.artifact_sha256


def test_admin_refuses_non_numeric_metrics(client, owner, credit_model):
    client.force_login(owner)
    from registry.services import model_version_create

    version = model_version_create(actor=owner, model=credit_model)
    response = client.post(
        _admin_change_url(version),
        _version_form(version, metrics='{"auc": "high"}', parameters="{}"),
    )
    assert response.status_code == 200
    assert "must be a number" in response.content.decode()
    assert ModelVersion.objects.get().metrics == {}


def test_admin_edit_by_owner_goes_through_the_service(client, owner, credit_version):
    from audit.models import AuditEvent

    client.force_login(owner)
    response = client.post(
        _admin_change_url(credit_version), _version_form(credit_version, limitations="Retail only.")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    fresh = ModelVersion.objects.get()
    assert fresh.limitations == "Retail only."
    assert fresh.content_digest != credit_version.content_digest
    event = AuditEvent.objects.filter(action="registry.model_version.updated").get()
    assert event.channel == "admin"
    assert event.actor_id == owner.pk


def test_admin_never_offers_delete(client, superuser, credit_version):
    client.force_login(superuser)
    response = client.get(f"/admin/registry/modelversion/{credit_version.pk}/delete/")
    assert response.status_code == 403


def test_the_audit_names_owners_by_username_as_every_door_does(api, owner, other_scientist):
    """Created and handed over: the audit diff names the owners as the API does."""
    from audit.models import AuditEvent

    created = api(owner).post(
        "/api/v1/models/", {"name": "handed", "risk_tier": "low"}, format="json"
    )
    assert created.status_code == 201, created.content
    path = "/api/v1/models/handed/"
    handed = api(owner).patch(path, {"owner": other_scientist.username}, format="json")
    assert handed.status_code == 200, handed.content
    assert handed.json()["owner"] == other_scientist.username
    events = AuditEvent.objects.filter(object_type="registry.registeredmodel").order_by("id")
    owners = [event.changes["owner"] for event in events]
    assert owners == [[None, owner.username], [owner.username, other_scientist.username]]
