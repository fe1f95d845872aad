"""Data migrations: what they do to rows stored before them."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.usefixtures("latest_schema")

BEFORE = [("registry", "0011_run_facet_times")]
AFTER = [("registry", "0012_dataset_version_schema_by_reader")]


@pytest.mark.django_db(transaction=True)
def test_versions_stored_without_a_producer_but_with_a_schema_are_marked_a_readers(pipeline):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    dataset = old.get_model("registry", "Dataset").objects.create(
        namespace="s3://lake", name="orders", owner_id=pipeline.pk
    )
    job = old.get_model("registry", "Job").objects.create(namespace="airflow", name="load")
    run = old.get_model("registry", "Run").objects.create(run_id=uuid.uuid4(), job=job)
    versions = old.get_model("registry", "DatasetVersion").objects
    field = [{"name": "id", "type": "long", "description": ""}]
    versions.create(dataset=dataset, version="read", schema=field)
    versions.create(dataset=dataset, version="bare", schema=[])
    versions.create(dataset=dataset, version="written", schema=field, produced_by=run)
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("registry", "DatasetVersion")
    marked = dict(new.objects.values_list("version", "schema_by_reader"))
    assert marked == {"read": True, "bare": False, "written": False}
