"""Model versions: numbering, digests, immutability, read-only stage."""

import pytest

from audit.models import AuditEvent
from registry import services
from registry.models import ModelVersion
from tests.conftest import SHA

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit-scoring/versions/"


def test_versions_are_numbered_one_two_three(api, owner, credit_model):
    client = api(owner)
    numbers = [client.post(URL, {}, format="json").json()["version"] for _ in range(3)]
    assert numbers == [1, 2, 3]


def test_numbering_is_per_model(api, owner, credit_model):
    services.model_version_create(actor=owner, model=credit_model)
    other = services.registered_model_create(actor=owner, name="other")
    assert services.model_version_create(actor=owner, model=other).version == 1


def test_new_version_starts_in_development(api, owner, credit_model):
    assert api(owner).post(URL, {}, format="json").json()["stage"] == "development"


def test_stage_cannot_be_set_on_create(api, owner, credit_model):
    response = api(owner).post(URL, {"stage": "production"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "stage"
    assert not ModelVersion.objects.exists()


def test_stage_cannot_be_changed_by_patch(api, owner, credit_version):
    response = api(owner).patch(f"{URL}1/", {"stage": "production"}, format="json")
    assert response.status_code == 400
    credit_version.refresh_from_db()
    assert credit_version.stage == "development"


@pytest.mark.parametrize("field", ["version", "created_by", "content_digest", "id", "created_at"])
def test_server_owned_fields_cannot_be_written(api, owner, credit_version, field):
    response = api(owner).patch(f"{URL}1/", {field: "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_content_digest_changes_when_documentation_changes(api, owner, credit_version):
    before = credit_version.content_digest
    response = api(owner).patch(f"{URL}1/", {"limitations": "Not for SMEs."}, format="json")
    assert response.status_code == 200
    assert response.json()["content_digest"] != before
    credit_version.refresh_from_db()
    assert credit_version.content_digest == services.content_digest(credit_version)


def test_identical_content_gives_identical_digest(owner, credit_model):
    kwargs = {"artifact_uri": "s3://x", "metrics": {"auc": 0.5}, "intended_use": "y"}
    a = services.model_version_create(actor=owner, model=credit_model, **kwargs)
    a.version = 99
    b = services.model_version_create(actor=owner, model=credit_model, **kwargs)
    b.version = 99
    assert services.content_digest(a) == services.content_digest(b)


@pytest.mark.parametrize(
    "field,value",
    [
        ("artifact_uri", "s3://elsewhere"),
        ("artifact_sha256", "b" * 64),
        ("parameters", {"depth": 7}),
        ("metrics", {"auc": 0.99}),
    ],
)
def test_governed_field_is_immutable_once_set(api, owner, credit_version, field, value):
    events = AuditEvent.objects.count()
    response = api(owner).patch(f"{URL}1/", {field: value}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == field
    fresh = ModelVersion.objects.get(pk=credit_version.pk)
    assert getattr(fresh, field) == getattr(credit_version, field)
    assert AuditEvent.objects.count() == events


def test_governed_field_left_empty_may_be_set_once(api, owner, credit_model):
    services.model_version_create(actor=owner, model=credit_model)
    response = api(owner).patch(f"{URL}1/", {"artifact_sha256": SHA}, format="json")
    assert response.status_code == 200
    response = api(owner).patch(f"{URL}1/", {"artifact_sha256": "c" * 64}, format="json")
    assert response.status_code == 409


def test_resending_the_same_governed_value_is_not_a_change(api, owner, credit_version):
    events = AuditEvent.objects.count()
    response = api(owner).patch(f"{URL}1/", {"artifact_sha256": SHA}, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.count() == events


def test_training_run_links_by_run_id(api, owner, pipeline, credit_model):
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job)
    response = api(owner).post(URL, {"training_run": str(run.run_id)}, format="json")
    assert response.status_code == 201
    assert response.json()["training_run"] == str(run.run_id)


def test_the_audit_names_a_training_run_by_its_run_id(api, owner, pipeline, credit_model):
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job)
    api(owner).post(URL, {"training_run": str(run.run_id)}, format="json")
    created = AuditEvent.objects.get(action="registry.model_version.created")
    assert created.changes["training_run"] == [None, str(run.run_id)]


def test_unknown_training_run_is_refused(api, owner, credit_model):
    response = api(owner).post(
        URL, {"training_run": "00000000-0000-0000-0000-000000000000"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "training_run"


def test_delete_of_a_version_answers_405(api, owner, credit_version):
    response = api(owner).delete(f"{URL}1/")
    assert response.status_code == 405
    assert ModelVersion.objects.filter(pk=credit_version.pk).exists()


def test_version_list_filters_by_stage(api, owner, credit_version):
    assert api(owner).get(f"{URL}?stage=development").json()["count"] == 1
    assert api(owner).get(f"{URL}?stage=production").json()["count"] == 0


def test_a_version_outside_production_takes_content_changes(api, owner, credit_version):
    response = api(owner).patch(f"{URL}1/", {"limitations": "Thin files."}, format="json")
    assert response.status_code == 200


def test_a_dataset_versions_schema_is_kept_as_written(api, pipeline):
    """Stored as written (PostgreSQL `json`, not `jsonb`, which orders keys by length, then
    bytes): each field's keys come back in the order they were posted."""
    client = api(pipeline)
    dataset = client.post(
        "/api/v1/datasets/", {"namespace": "s3://lake", "name": "orders"}, format="json"
    ).json()
    schema = [{"type": "BIGINT", "name": "id"}, {"type": "DOUBLE", "name": "total", "x": "y"}]
    url = f"/api/v1/datasets/{dataset['id']}/versions/"
    created = client.post(url, {"version": "v1", "schema": schema}, format="json")
    assert created.status_code == 201, created.content
    listed = client.get(f"{url}{created.json()['id']}/").json()
    assert [list(field) for field in listed["schema"]] == [["type", "name"], ["type", "name", "x"]]
    assert listed["schema"] == schema
