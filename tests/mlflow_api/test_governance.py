"""Governance through MLflow's own verbs: a stage transition files a promotion request,
governed aliases move only by approval, other aliases are ordinary audited writes."""

import pytest

from approvals.models import PromotionRequest
from audit.models import AuditEvent
from registry.models import ModelAlias, ModelVersion
from tests.mlflow_api.test_door import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture
def door(token_client):
    def make(user):
        client = token_client(user)

        def call(method, path, params):
            send = getattr(client, method.lower())
            if method == "GET":
                response = send(f"{BASE}/{path}", params)
            else:
                response = send(f"{BASE}/{path}", params, format="json")
            return response.status_code, response.json()

        return call

    return make


def test_a_transition_files_a_promotion_request_and_leaves_the_stage(
    door, owner, version, validator
):
    status, body = door(owner)(
        "POST",
        "model-versions/transition-stage",
        {
            "name": "credit-scoring",
            "version": str(version.version),
            "stage": "Staging",
            "archive_existing_versions": False,
        },
    )
    assert status == 200
    request = PromotionRequest.objects.get()
    assert (request.version_id, request.to_stage, request.status) == (
        version.pk,
        "staging",
        "pending",
    )
    assert body["model_version"]["current_stage"] == "None"
    assert f"Promotion request #{request.pk} to Staging is pending" in body["message"]
    assert "model-validator" in body["model_version"]["status_message"]
    version.refresh_from_db()
    assert version.stage == "development"
    filed = AuditEvent.objects.get(action="approvals.promotion_request.filed")
    assert filed.channel == "mlflow"


def test_transitioning_again_answers_the_pending_request(door, owner, version, validator):
    call = door(owner)
    params = {"name": "credit-scoring", "version": str(version.version), "stage": "staging"}
    call("POST", "model-versions/transition-stage", params)
    status, body = call("POST", "model-versions/transition-stage", params)
    assert status == 200
    assert PromotionRequest.objects.count() == 1


def test_a_transition_the_workflow_refuses_is_resource_conflict(door, owner, version):
    status, body = door(owner)(
        "POST",
        "model-versions/transition-stage",
        {"name": "credit-scoring", "version": str(version.version), "stage": "Production"},
    )
    assert (status, body["error_code"]) == (409, "RESOURCE_CONFLICT")
    assert "cannot move to production" in body["message"]
    assert not PromotionRequest.objects.exists()


def test_an_unknown_stage_is_invalid_parameter_value(door, owner, version):
    status, body = door(owner)(
        "POST",
        "model-versions/transition-stage",
        {"name": "credit-scoring", "version": str(version.version), "stage": "Live"},
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not PromotionRequest.objects.exists()


def test_who_may_not_file_gets_permission_denied(door, auditor, version):
    status, body = door(auditor)(
        "POST",
        "model-versions/transition-stage",
        {"name": "credit-scoring", "version": str(version.version), "stage": "Staging"},
    )
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert not PromotionRequest.objects.exists()


def test_deleting_a_version_deletes_nothing_and_files_a_withdrawal(door, owner, version, promote):
    promote(version, "staging")
    promote(version, "production")
    status, _ = door(owner)(
        "DELETE",
        "model-versions/delete",
        {"name": "credit-scoring", "version": str(version.version)},
    )
    assert status == 200
    assert ModelVersion.objects.filter(pk=version.pk, stage="production").exists()
    assert PromotionRequest.objects.get(status="pending").to_stage == "archived"


@pytest.mark.parametrize("alias", ["champion", "production"])
def test_setting_a_governed_alias_is_permission_denied_and_names_the_request(
    door, owner, version, alias
):
    status, body = door(owner)(
        "POST",
        "registered-models/alias",
        {"name": "credit-scoring", "alias": alias, "version": str(version.version)},
    )
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert "transition_model_version_stage" in body["message"]
    assert not ModelAlias.objects.exists()
    assert not AuditEvent.objects.filter(action="registry.model_alias.set").exists()


def test_deleting_a_governed_alias_is_permission_denied(door, owner, version):
    status, body = door(owner)(
        "DELETE", "registered-models/alias", {"name": "credit-scoring", "alias": "champion"}
    )
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")


def test_other_aliases_are_ordinary_audited_writes(door, owner, version, make_version):
    call = door(owner)
    second = make_version()
    key = {"name": "credit-scoring", "alias": "challenger"}
    assert call("POST", "registered-models/alias", {**key, "version": "1"})[0] == 200
    assert (
        call("POST", "registered-models/alias", {**key, "version": str(second.version)})[0] == 200
    )
    _, body = call("GET", "registered-models/alias", key)
    assert body["model_version"]["version"] == str(second.version)
    assert body["model_version"]["aliases"] == ["challenger"]
    _, body = call("GET", "registered-models/get", {"name": "credit-scoring"})
    assert body["registered_model"]["aliases"] == [
        {"alias": "challenger", "version": str(second.version)}
    ]
    assert call("DELETE", "registered-models/alias", key)[0] == 200
    status, body = call("GET", "registered-models/alias", key)
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    changes = [
        e.changes
        for e in AuditEvent.objects.filter(action__startswith="registry.model_alias").order_by("id")
    ]
    assert changes == [
        {"aliases.challenger": [None, 1]},
        {"aliases.challenger": [1, second.version]},
        {"aliases.challenger": [second.version, None]},
    ]


@pytest.mark.parametrize(
    "alias",
    ["latest", "Latest", "LATEST", "v3", "V3", "has space", "x" * 256, "Champion", "PRODUCTION"],
)
def test_reserved_malformed_or_governed_look_alike_aliases_are_refused(door, owner, version, alias):
    status, body = door(owner)(
        "POST",
        "registered-models/alias",
        {"name": "credit-scoring", "alias": alias, "version": str(version.version)},
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not ModelAlias.objects.exists()
    if alias.casefold() in ("champion", "production"):
        assert "only in letter case" in body["message"]


def test_an_approved_promotion_moves_the_governed_aliases_and_the_stage(
    door, owner, version, promote
):
    call = door(owner)
    status, body = call(
        "GET", "registered-models/alias", {"name": "credit-scoring", "alias": "champion"}
    )
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    promote(version, "staging")
    promote(version, "production")
    _, body = call(
        "GET", "registered-models/alias", {"name": "credit-scoring", "alias": "champion"}
    )
    assert body["model_version"]["current_stage"] == "Production"
    assert body["model_version"]["aliases"] == ["champion", "production"]
    _, body = call(
        "POST",
        "registered-models/get-latest-versions",
        {"name": "credit-scoring", "stages": ["Production"]},
    )
    assert [v["version"] for v in body["model_versions"]] == [str(version.version)]


def test_the_admin_shows_tags_and_aliases(client, superuser, owner, version):
    from registry import services

    services.model_version_label_set(actor=owner, version=version, key="qa", value="passed")
    services.model_alias_set(actor=owner, model=version.model, alias="challenger", version=version)
    client.force_login(superuser)
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "passed" in page and "@challenger" in page
    page = client.get(
        f"/admin/registry/registeredmodel/{version.model.pk}/change/"
    ).content.decode()
    assert f"@challenger → v{version.version}" in page


def test_a_transition_nobody_could_decide_is_refused_and_files_nothing(door, owner, version):
    status, body = door(owner)(
        "POST",
        "model-versions/transition-stage",
        {"name": "credit-scoring", "version": str(version.version), "stage": "Staging"},
    )
    assert status == 409
    assert body["error_code"] == "RESOURCE_CONFLICT"
    assert "model-validator" in body["message"]
    assert not PromotionRequest.objects.exists()
