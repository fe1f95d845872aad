"""Admin forms over services: validating a form writes nothing; the write is the admin's save
step, and a refusal there comes back as errors on the form with the input kept, with nothing
of the attempt written."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory

from audit.models import AuditEvent
from core.admin import refusal_errors
from core.errors import Conflict
from registry import hooks, services
from registry.models import Dataset, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


def _counts():
    return (
        RegisteredModel.objects.count(),
        ModelVersion.objects.count(),
        Dataset.objects.count(),
        AuditEvent.objects.count(),
        LogEntry.objects.count(),
    )


def test_validating_an_admin_form_writes_nothing(owner):
    request = RequestFactory().post("/")
    request.user = owner
    model_admin = admin.site.get_model_admin(RegisteredModel)
    form = model_admin.get_form(request)(
        data={"name": "quiet", "risk_tier": "low", "owner": owner.pk, "tags": "[]"}
    )
    before = _counts()
    assert form.is_valid(), form.errors
    assert _counts() == before


def test_a_refusal_in_the_save_step_is_shown_on_the_form_with_the_input_kept(
    client, pipeline, superuser
):
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    services.dataset_archive(actor=pipeline, dataset=dataset)
    client.force_login(superuser)
    before = _counts()
    response = client.post(
        f"/admin/registry/dataset/{dataset.pk}/change/",
        {"description": "Kept as typed.", "contains_pii": "on"},
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"__all__": ["This dataset is archived and cannot be changed."]}
    html = response.content.decode()
    assert "This dataset is archived and cannot be changed." in html
    assert "Kept as typed." in html
    assert _counts() == before
    assert Dataset.objects.get(pk=dataset.pk).description == ""


def test_what_the_service_wrote_before_refusing_is_not_kept(
    client, owner, credit_model, monkeypatch
):
    """The version and its audit event are written, then a version hook refuses: the admin's
    transaction is rolled back and the form shows the refusal on the field it names."""
    seen = []

    def refuse(*, actor, version, created):
        seen.append(version.pk)
        raise Conflict("The training run cannot be linked.", field="training_run")

    monkeypatch.setitem(hooks._VERSION_SAVED, "test.refuse", refuse)
    client.force_login(owner)
    before = _counts()
    response = client.post(
        "/admin/registry/modelversion/add/",
        {
            "model": credit_model.pk,
            "artifact_uri": "s3://models/credit/typed",
            "parameters": "{}",
            "metrics": "{}",
        },
    )
    assert seen and seen[0] is not None  # the version had been written when it was refused
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "training_run": ["The training run cannot be linked."]
    }
    assert "s3://models/credit/typed" in response.content.decode()
    assert _counts() == before


def test_a_refusal_of_who_you_are_is_the_admins_403(client, owner, superuser, monkeypatch):
    def refuse(*, actor, version, created):
        raise PermissionDenied("Not yours.")

    model = services.registered_model_create(actor=owner, name="m")
    monkeypatch.setitem(hooks._VERSION_SAVED, "test.refuse", refuse)
    client.force_login(superuser)
    before = _counts()
    response = client.post(
        "/admin/registry/modelversion/add/",
        {"model": model.pk, "parameters": "{}", "metrics": "{}"},
    )
    assert response.status_code == 403
    assert _counts() == before


def test_one_mapping_of_refusals():
    assert refusal_errors(ValidationError({"name": ["Taken.", "Too long."]})) == [
        ("name", "Taken.; Too long.")
    ]
    assert refusal_errors(ValidationError("Bad.")) == [(None, "Bad.")]
    assert refusal_errors(Conflict("Clash.", field="version")) == [("version", "Clash.")]
    assert refusal_errors(PermissionDenied("No.")) == [(None, "No.")]


def test_governed_fields_once_set_are_shown_read_only_on_the_version_page(
    client, owner, credit_version
):
    client.force_login(owner)
    response = client.get(f"/admin/registry/modelversion/{credit_version.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    # set: shown, not offered; unset (no training run yet) and documentation: editable
    for name in ("artifact_uri", "artifact_sha256", "parameters", "metrics"):
        assert name not in form.fields
        assert f'name="{name}"' not in response.content.decode()
    assert "s3://models/credit/1" in response.content.decode()
    assert {"training_run", "intended_use"} <= set(form.fields)


def test_a_dataset_version_shows_its_schema_as_a_table_and_the_list_the_newest_first(
    client, pipeline, superuser
):
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    schema = [
        {"name": "id", "type": "bigint", "description": ""},
        {"name": "<b>note</b>", "type": "string", "description": "free text"},
    ]
    old = services.dataset_version_create(actor=pipeline, dataset=dataset, version="1")
    new = services.dataset_version_create(
        actor=pipeline, dataset=dataset, version="2", schema=schema
    )
    client.force_login(superuser)
    page = client.get(f"/admin/registry/datasetversion/{new.pk}/change/").content.decode()
    assert "<tr><td>id</td><td>bigint</td><td></td></tr>" in page
    assert "<td>&lt;b&gt;note&lt;/b&gt;</td>" in page  # text, never markup
    assert '"description": "free text"' not in page  # not the raw JSON
    assert "the registry, or a lineage event stored before event times were kept" in page
    listed = client.get("/admin/registry/datasetversion/")
    assert [v.pk for v in listed.context["cl"].result_list] == [new.pk, old.pk]


def test_a_dataset_page_names_it_first_and_links_its_versions(client, pipeline, superuser):
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    other = services.dataset_create(actor=pipeline, namespace="s3://lake", name="other")
    for version in ("1", "2"):
        services.dataset_version_create(actor=pipeline, dataset=dataset, version=version)
    services.dataset_version_create(actor=pipeline, dataset=other, version="9")
    client.force_login(superuser)
    page = client.get(f"/admin/registry/dataset/{dataset.pk}/change/").content.decode()
    rows = re.findall(r'class="form-row field-([a-z_]+)"', page)
    assert rows.index("namespace") == 0 and rows.index("name") == 1
    assert rows.index("versions") < rows.index("lineage")
    link = f"/admin/registry/datasetversion/?dataset__id__exact={dataset.pk}"
    assert f'<a href="{link}">2 versions, the newest first</a>' in page
    listed = client.get(link)
    assert listed.status_code == 200
    assert [v.version for v in listed.context["cl"].result_list] == ["2", "1"]


@pytest.mark.parametrize("schema", ["5", '{"id": "bigint"}', '["id", "name"]'])
def test_a_dataset_version_schema_that_is_not_a_list_of_fields_is_refused(
    client, pipeline, superuser, schema
):
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    client.force_login(superuser)
    before = _counts()
    response = client.post(
        "/admin/registry/datasetversion/add/",
        {"dataset": dataset.pk, "version": "1", "schema": schema, "produced_by": ""},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "schema": ["Must be a list of field objects (name, type, …)."]
    }
    assert _counts() == before and not dataset.versions.exists()


def test_a_stored_schema_of_another_shape_is_shown_as_written(client, pipeline, superuser):
    from registry.models import DatasetVersion

    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    version = services.dataset_version_create(actor=pipeline, dataset=dataset, version="1")
    DatasetVersion.objects.filter(pk=version.pk).update(schema={"<id>": "bigint"})
    client.force_login(superuser)
    page = client.get(f"/admin/registry/datasetversion/{version.pk}/change/")
    assert page.status_code == 200
    assert "&quot;&lt;id&gt;&quot;: &quot;bigint&quot;" in page.content.decode()
