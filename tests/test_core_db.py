"""core.db: the plain statements of hot paths behave as the ORM would."""

from datetime import datetime

import pytest

from core import db
from registry.models import Dataset, DatasetVersion, Run
from registry.services import dataset_create, job_create, run_create

pytestmark = pytest.mark.django_db


def test_insert_new_skips_stored_keys_and_returns_only_what_it_inserted(pipeline):
    stored = dataset_create(actor=pipeline, namespace="s3://a", name="old")
    new = [Dataset(namespace="s3://a", name=n, owner=pipeline) for n in ("old", "new")]
    returned = db.insert_new(
        new,
        fields=(
            "namespace",
            "name",
            "description",
            "owner",
            "contains_pii",
            "archived",
            "created_at",
        ),
        unique_fields=("namespace", "name"),
        returning=("id", "name"),
    )
    assert [name for _, name in returned] == ["new"]
    assert Dataset.objects.get(name="new").pk == returned[0][0]
    assert isinstance(new[1].created_at, datetime)  # auto_now_add stamped, as save() would
    assert Dataset.objects.get(name="old").pk == stored.pk


def test_find_loads_instances_as_the_orm_does(pipeline):
    job = job_create(actor=pipeline, namespace="airflow", name="j")
    run = run_create(actor=pipeline, job=job, facets={"a": [1, 2]})
    dataset = dataset_create(actor=pipeline, namespace="s3://a", name="d")
    DatasetVersion.objects.create(dataset=dataset, version="v1", schema=[{"name": "x"}])
    [found] = db.find(Run, ("run_id",), [(run.run_id,)], for_update=True)
    orm = Run.objects.get(pk=run.pk)
    assert [getattr(found, f.attname) for f in Run._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in Run._meta.concrete_fields
    ]
    [version] = db.find(
        DatasetVersion, ("dataset", "version"), [(dataset.pk, "v1")], defer=("schema",)
    )
    assert version.get_deferred_fields() == {"schema"}
    assert version.schema == [{"name": "x"}]  # loaded on access, as with defer()
    assert db.find(Run, ("run_id",), []) == []


def test_update_fields_writes_only_those_columns(pipeline):
    job = job_create(actor=pipeline, namespace="airflow", name="j")
    run = run_create(actor=pipeline, job=job)
    run.state, run.external_id = "COMPLETE", "not saved"
    db.update_fields(run, ["state"])
    run.refresh_from_db()
    assert (run.state, run.external_id) == ("COMPLETE", "")
