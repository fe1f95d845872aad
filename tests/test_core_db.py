"""core.db: INSERT … ON CONFLICT DO NOTHING RETURNING only the new rows, and lists sent to
PostgreSQL as binary arrays, statements planned for their values."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from psycopg.adapt import PyFormat
from psycopg.pq import Format

from core import db
from registry.ingest import DATASET_INSERTED
from registry.models import Dataset, Job, Run
from registry.services import dataset_create

pytestmark = pytest.mark.django_db


def test_insert_new_skips_stored_keys_and_returns_only_what_it_inserted(pipeline):
    stored = dataset_create(actor=pipeline, namespace="s3://a", name="old")
    new = [Dataset(namespace="s3://a", name=n, owner=pipeline) for n in ("old", "new")]
    returned = db.insert_new(
        new,
        fields=DATASET_INSERTED,
        unique_fields=("namespace", "name"),
        returning=("id", "name"),
    )
    assert [name for _, name in returned] == ["new"]
    assert Dataset.objects.get(name="new").pk == returned[0][0]
    assert isinstance(new[1].created_at, datetime)  # auto_now_add stamped, as save() would
    assert Dataset.objects.get(name="old").pk == stored.pk


def test_insert_new_of_one_object_whose_key_is_stored_returns_nothing(pipeline):
    """A lone row that clashes comes back as no row (Django's own single-row fetch would
    read it as one), on both databases, also with a returned value the backend converts (a
    UUID is text on SQLite)."""
    job = Job.objects.create(namespace="airflow", name="etl")
    run_id = uuid.uuid4()
    Run.objects.create(run_id=run_id, job=job)
    fields = ("run_id", "job", "state", "facets", "external_id", "created_at")
    assert (
        db.insert_new(
            [Run(run_id=run_id, job=job, facets={})],
            fields=fields,
            unique_fields=("run_id",),
            returning=("id", "run_id"),
        )
        == []
    )
    other = uuid.uuid4()
    returned = db.insert_new(
        [Run(run_id=other, job=job, facets={})],
        fields=fields,
        unique_fields=("run_id",),
        returning=("id", "run_id"),
    )
    assert returned == [(Run.objects.get(run_id=other).pk, other)]
    assert isinstance(returned[0][1], uuid.UUID)
    assert Run.objects.count() == 2


def test_insert_new_stores_a_batch_larger_than_one_statement_takes(pipeline, monkeypatch):
    monkeypatch.setattr(db, "INSERT_PARAMETERS", 14)  # two rows of seven fields a statement
    new = [Dataset(namespace="s3://a", name=f"d{i}", owner=pipeline) for i in range(5)]
    returned = db.insert_new(
        new,
        fields=DATASET_INSERTED,
        unique_fields=("namespace", "name"),
        returning=("id", "name"),
    )
    assert sorted(name for _, name in returned) == [f"d{i}" for i in range(5)]
    assert Dataset.objects.filter(namespace="s3://a").count() == 5


@pytest.mark.postgres
def test_lists_are_sent_to_postgresql_as_binary_arrays_and_arrive_unchanged():
    """Bulk inserts send one array per column: binary, not text escaped element by element.
    The values text arrays must escape (quotes, backslashes, braces, commas, spaces, the word
    NULL, empty strings, non-ASCII) and a NULL arrive as sent."""
    connection.ensure_connection()
    dumper = connection.connection.adapters.get_dumper(list, PyFormat.AUTO)
    assert dumper.format == Format.BINARY
    values = ['a"b', "back\\slash", "{brace}", "x,y", " spaced ", "NULL", "", "ß→😀", None]
    when = [datetime(2026, 11, 1, 12, 0, tzinfo=UTC), None]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::varchar[], %s::timestamptz[], %s::bigint[]", [values, when, [1, 2**40]]
        )
        assert cursor.fetchone() == (values, when, [1, 2**40])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_each_statement_is_planned_for_its_values_until_the_transaction_ends():

    def mode() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            return cursor.fetchone()[0]

    before = mode()
    with transaction.atomic():
        db.plan_each_statement()
        assert mode() == "force_custom_plan" != before
    # SET LOCAL: the connection's other transactions (requests, the accept path) keep theirs
    assert mode() == before


@pytest.mark.django_db(transaction=True)
def test_planning_each_statement_outside_a_transaction_is_refused():
    """SET LOCAL in autocommit would change nothing, silently."""
    with pytest.raises(RuntimeError, match="inside one"):
        db.plan_each_statement()
