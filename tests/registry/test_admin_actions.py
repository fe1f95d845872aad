"""The admin offers a list action only to those who may carry it out (an auditor or a
validator, who may archive nothing and map no event again, sees no archive or remap action,
nor the boxes to tick for it), and says "view", not "change", to those who may change none
of its kind."""

import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from registry.services import model_permission_grant
from tests.conftest import _user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def listed(pipeline, credit_model):
    """Something in every list (the admin shows no actions on an empty one): the model, and a
    job, a dataset with a feature and a raw event from one lineage event."""
    client = APIClient()
    client.force_authenticate(pipeline)
    schema = {"fields": [{"name": "amount", "type": "DOUBLE"}]}
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-01T10:00:00Z",
        "producer": "https://github.com/apache/airflow",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "airflow", "name": "etl"},
        "outputs": [{"namespace": "s3://lake", "name": "loans", "facets": {"schema": schema}}],
    }
    assert client.post("/api/v1/lineage", event, format="json").status_code == 201


LISTS = {
    "archive_model": "/admin/registry/registeredmodel/",
    "archive_dataset": "/admin/registry/dataset/",
    "archive_feature": "/admin/registry/feature/",
    "archive_job": "/admin/registry/job/",
    "remap": "/admin/lineage/lineageevent/",
}


def _offered(user) -> set[str]:
    client = Client()
    client.force_login(user)
    offered = set()
    for action, path in LISTS.items():
        html = client.get(path).content.decode()
        if f'<option value="{action}">' in html:
            offered.add(action)
    return offered


def test_auditors_and_validators_are_offered_no_action_they_could_not_take(auditor, validator):
    assert _offered(auditor) == set()
    assert _offered(validator) == set()
    assert 'name="_selected_action"' not in _client_page(auditor, LISTS["archive_dataset"])


def test_a_model_owner_may_archive_models_and_a_poster_remap(owner, pipeline):
    assert "archive_model" in _offered(owner)
    assert "remap" in _offered(pipeline)


def test_a_scientist_owning_no_model_is_not_offered_to_archive_models(owner, credit_model):
    idle = _user("idle-scientist", "data-scientist")
    assert "archive_model" not in _offered(idle)
    model_permission_grant(
        actor=owner, model=credit_model, grantee=idle, permission="change_registeredmodel"
    )
    assert "archive_model" in _offered(idle)


def test_superusers_are_offered_every_action(superuser):
    assert _offered(superuser) == set(LISTS)


def _client_page(user, path) -> str:
    client = Client()
    client.force_login(user)
    return client.get(path).content.decode()


def test_those_who_may_change_no_model_read_view_not_change(auditor, owner, credit_model):
    client = Client()
    client.force_login(auditor)
    for path, noun in (
        ("/admin/registry/registeredmodel/", "registered model"),
        ("/admin/registry/modelversion/", "model version"),
    ):
        assert f"Select {noun} to view" in client.get(path).content.decode()
    # the same refusal for a model they cannot see as for one that does not exist
    for pk in (credit_model.pk, credit_model.pk + 1000):
        page = f"/admin/registry/registeredmodel/{pk}/change/"
        assert client.post(page, {"description": "x"}).status_code == 403
    other = _user("other-owner", "data-scientist")
    client.force_login(other)
    assert "Select registered model to view" in client.get(LISTS["archive_model"]).content.decode()
    from registry import services

    services.registered_model_create(actor=other, name="other-model")
    assert (
        "Select registered model to change" in client.get(LISTS["archive_model"]).content.decode()
    )
    page = f"/admin/registry/registeredmodel/{credit_model.pk}/change/"
    assert client.post(page, {"description": "x"}).status_code == 302  # "does not exist"
    credit_model.refresh_from_db()
    assert credit_model.description != "x"
