"""Ingestion of OpenLineage events: mapping, idempotency, leniency and refusals."""

import gzip
import json
import uuid

import pytest

from audit.models import AuditEvent
from lineage.models import Edge, LineageEvent
from registry.models import Dataset, DatasetVersion, Feature, Job, ModelVersion, Run
from tests.lineage.conftest import dataset, run_event, schema_facet

pytestmark = pytest.mark.django_db
SHA = "b" * 64


def _stored():
    return (
        LineageEvent.objects.count(),
        Edge.objects.count(),
        Run.objects.count(),
        Dataset.objects.count(),
        Job.objects.count(),
        AuditEvent.objects.count(),
    )


def test_run_event_is_accepted_with_201_and_an_empty_body(post):
    response = post(run_event(inputs=[("s3://raw", "events")], outputs=[("s3://clean", "x")]))
    assert response.status_code == 201
    assert response.content == b""


def test_the_path_is_served_without_a_trailing_slash_redirect(post):
    response = post(run_event(), QUERY_STRING="unknown=1")
    assert response.status_code == 201


def test_run_event_maps_job_run_datasets_versions_and_edges(post):
    run_id = uuid.uuid4()
    post(
        run_event(
            run_id=run_id, inputs=[("s3://raw", "events")], outputs=[("s3://clean", "sessions")]
        )
    )
    run = Run.objects.get(run_id=run_id)
    assert run.job.namespace == "airflow" and run.state == "COMPLETE"
    out = DatasetVersion.objects.get(dataset__name="sessions")
    assert out.produced_by == run and out.version == f"run:{run_id}"
    assert DatasetVersion.objects.get(dataset__name="events").version == "external"
    edges = set(Edge.objects.values_list("source", "target", "relation"))
    assert edges == {
        ("dataset:s3://raw:events#external", f"run:{run_id}", "input"),
        (f"run:{run_id}", f"dataset:s3://clean:sessions#run:{run_id}", "output"),
    }


def test_the_same_event_twice_is_stored_once_and_both_answers_succeed(post):
    event = run_event(inputs=[("s3://raw", "events")])
    assert post(event).status_code == 201
    before = _stored()
    assert post(event).status_code == 201
    assert _stored() == before


def test_reordered_keys_and_ascii_escaping_are_the_same_event(pipeline_client):
    event = run_event(job="tâche")
    first = json.dumps(event, sort_keys=True, ensure_ascii=True)
    second = json.dumps(event, sort_keys=False, ensure_ascii=False).encode()
    assert (
        pipeline_client.post("/api/v1/lineage", first, content_type="application/json").status_code
        == 201
    )
    assert (
        pipeline_client.post(
            "/api/v1/lineage", second, content_type="application/json; charset=UTF-8"
        ).status_code
        == 201
    )
    assert LineageEvent.objects.count() == 1
    assert Job.objects.get().name == "tâche"


def test_gzip_body_is_accepted(pipeline_client):
    body = gzip.compress(json.dumps(run_event()).encode(), compresslevel=3)
    response = pipeline_client.post(
        "/api/v1/lineage", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 201
    assert LineageEvent.objects.count() == 1


def test_schema_facet_becomes_features_with_nested_names(post):
    facet = schema_facet(
        {"name": "id", "type": "BIGINT", "description": "key"},
        {"name": "address", "type": "STRUCT", "fields": [{"name": "city", "type": "STRING"}]},
    )
    post(run_event(outputs=[dataset("s3://clean", "users", schema=facet)]))
    features = dict(Feature.objects.values_list("name", "dtype"))
    assert features == {"id": "BIGINT", "address": "STRUCT", "address.city": "STRING"}


def test_column_lineage_facet_becomes_field_edges(post):
    facet = {
        "_producer": "x",
        "_schemaURL": "y",
        "fields": {
            "total": {
                "inputFields": [
                    {
                        "namespace": "s3://raw",
                        "name": "orders",
                        "field": "amount",
                        "transformations": [{"type": "DIRECT"}],
                    }
                ]
            }
        },
    }
    post(
        run_event(
            inputs=[("s3://raw", "orders")],
            outputs=[dataset("s3://clean", "totals", columnLineage=facet)],
        )
    )
    assert Edge.objects.filter(relation="column").get().source == (
        "datasetField:s3://raw:orders:amount"
    )


def test_parent_run_facet_links_the_runs(post):
    parent_id, child_id = uuid.uuid4(), uuid.uuid4()
    parent = {"run": {"runId": str(parent_id)}, "job": {"namespace": "airflow", "name": "dag"}}
    post(run_event(run_id=child_id, run_facets={"parent": parent}))
    assert Run.objects.get(run_id=child_id).parent.run_id == parent_id
    assert Edge.objects.filter(
        relation="parent", source=f"run:{parent_id}", target=f"run:{child_id}"
    ).exists()


def test_events_out_of_order_converge_to_the_same_final_state(post):
    run_id = uuid.uuid4()
    post(run_event("COMPLETE", run_id=run_id, time="2026-11-01T10:05:00Z"))
    post(run_event("RUNNING", run_id=run_id, time="2026-11-01T10:01:00Z"))
    post(run_event("START", run_id=run_id, time="2026-11-01T10:00:00Z"))
    run = Run.objects.get(run_id=run_id)
    assert run.state == "COMPLETE"
    assert run.started_at.isoformat() == "2026-11-01T10:00:00+00:00"
    assert run.ended_at.isoformat() == "2026-11-01T10:05:00+00:00"


def test_reading_and_writing_the_same_dataset_in_one_run_is_not_a_cycle(post):
    run_id = uuid.uuid4()
    post(
        run_event("START", run_id=run_id, inputs=[("s3://lake", "t")], outputs=[("s3://lake", "t")])
    )
    response = post(
        run_event(
            "COMPLETE", run_id=run_id, inputs=[("s3://lake", "t")], outputs=[("s3://lake", "t")]
        )
    )
    assert response.status_code == 201
    second = uuid.uuid4()
    assert (
        post(
            run_event(run_id=second, inputs=[("s3://lake", "t")], outputs=[("s3://lake", "t")])
        ).status_code
        == 201
    )
    # the second run read the first run's output version and wrote its own
    assert Edge.objects.filter(
        source=f"dataset:s3://lake:t#run:{run_id}", target=f"run:{second}"
    ).exists()


def test_a_true_cycle_over_versions_is_refused_whole(post):
    v = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "7"}}
    w = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "3"}}
    assert (
        post(
            run_event(inputs=[dataset("s3://a", "x", **v)], outputs=[dataset("s3://a", "y", **w)])
        ).status_code
        == 201
    )
    edges = set(Edge.objects.values_list("source", "target", "relation"))
    response = post(
        run_event(inputs=[dataset("s3://a", "y", **w)], outputs=[dataset("s3://a", "x", **v)])
    )
    # Accepted (the event alone is valid), then rejected by the graph: recorded and audited.
    assert response.status_code == 201
    event = LineageEvent.objects.latest("id")
    assert event.state == "rejected"
    assert "cycle" in event.reason and "dataset:s3://a:y#3" in event.reason
    assert set(Edge.objects.values_list("source", "target", "relation")) == edges
    audited = AuditEvent.objects.get(action="lineage.event.rejected")
    assert audited.object_id == str(event.pk) and "cycle" in audited.changes["reason"]


def test_model_facet_registers_a_version_trained_on_the_run_inputs(post, pipeline):
    run_id = uuid.uuid4()
    facet = {
        "_producer": "x",
        "_schemaURL": "y",
        "name": "churn",
        "artifactUri": "s3://m/1",
        "sha256": SHA,
        "framework": "sklearn",
        "metrics": {"auc": 0.91},
    }
    post(
        run_event(
            run_id=run_id,
            inputs=[("s3://f", "features")],
            outputs=[dataset("s3://m", "churn-model", modelgov_model=facet)],
        )
    )
    version = ModelVersion.objects.get()
    assert (version.model.name, version.version, version.metrics) == ("churn", 1, {"auc": 0.91})
    assert version.training_run.run_id == run_id
    assert Edge.objects.filter(
        source="dataset:s3://f:features#external", target="model:churn:1", relation="trained_on"
    ).exists()
    # the same facet on a later event of the same run registers nothing new
    post(
        run_event(
            run_id=run_id,
            time="2026-11-01T11:00:00Z",
            outputs=[dataset("s3://m", "churn-model", modelgov_model=facet)],
        )
    )
    assert ModelVersion.objects.count() == 1


def test_version_registered_through_the_api_with_a_run_is_linked(post, api, owner, pipeline):
    from registry.services import registered_model_create

    run_id = uuid.uuid4()
    post(run_event(run_id=run_id, inputs=[("s3://f", "features")]))
    registered_model_create(actor=owner, name="pd")
    response = api(owner).post(
        "/api/v1/models/pd/versions/", {"training_run": str(run_id)}, format="json"
    )
    assert response.status_code == 201
    assert Edge.objects.filter(source=f"run:{run_id}", target="model:pd:1").exists()
    assert Edge.objects.filter(
        source="dataset:s3://f:features#external", target="model:pd:1", relation="trained_on"
    ).exists()


def test_ingestion_is_audited_once_per_change_of_the_event(post):
    post(run_event())
    event = LineageEvent.objects.get()
    assert (
        not AuditEvent.objects.filter(action__startswith="lineage.")
        .exclude(action="lineage.events.mapped")
        .exists()
    )  # accepting is the stored row itself
    mapped = AuditEvent.objects.get(action="lineage.events.mapped")
    assert mapped.object_id == str(event.pk)
    assert mapped.actor == event.submitted_by
    assert mapped.changes["events"] == [event.pk]
    assert mapped.changes["runs_created"] == [str(event.run_id)]


def test_dataset_event_updates_schema_features(post):
    event = {
        "eventTime": "2026-11-01T10:00:00Z",
        "producer": "p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset("s3://d", "table", schema=schema_facet({"name": "a"})),
    }
    assert post(event).status_code == 201
    assert Feature.objects.get().name == "a"


def test_job_event_catalogues_job_and_declared_datasets(post):
    event = {
        "eventTime": "2026-11-01T10:00:00Z",
        "producer": "p",
        "job": {"namespace": "ci", "name": "build"},
        "inputs": [dataset("s3://d", "in")],
        "outputs": [dataset("s3://d", "out")],
    }
    assert post(event).status_code == 201
    assert Job.objects.filter(name="build").exists()
    assert Dataset.objects.count() == 2
    assert not Run.objects.exists()


def test_batch_reports_success_and_partial_success(pipeline_client):
    good = run_event()
    bad = run_event()
    del bad["producer"]
    response = pipeline_client.post("/api/v1/lineage/batch", [good, bad, good], format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "partial_success"
    assert body["summary"] == {
        "received": 3,
        "successful": 2,
        "failed": 1,
        "retriable": 0,
        "non_retriable": 1,
    }
    failed = body["failed_events"][0]
    assert failed["index"] == 1 and failed["status"] == 422
    assert failed["reason"] == "producer: is required"  # plain text, not a Python repr
    assert failed["errors"] == [{"field": "producer", "message": "is required", "code": "invalid"}]
    assert LineageEvent.objects.count() == 1


def test_raw_events_are_listed_like_marquez(post, api, auditor):
    post(run_event(time="2026-11-01T10:00:00Z", job="a"))
    post(run_event(time="2026-11-02T10:00:00Z", job="b"))
    body = api(auditor).get("/api/v1/events/lineage?limit=1").json()
    assert body["totalCount"] == 2
    assert body["events"][0]["job"]["name"] == "b"
    body = (
        api(auditor)
        .get("/api/v1/events/lineage?sortDirection=asc&after=2026-11-01T12:00:00Z")
        .json()
    )
    assert [e["job"]["name"] for e in body["events"]] == ["b"]
    assert api(auditor).get("/api/v1/events/lineage?sortDirection=up").status_code == 400


def test_a_raw_event_is_listed_with_its_keys_in_the_order_they_were_posted(post, api, auditor):
    """Stored as written (PostgreSQL `json`, not `jsonb`, which orders keys by length)."""
    event = run_event(time="2026-11-01T10:00:00Z", job="a")
    event["run"]["facets"] = {"zz_custom": {"b": 1, "a": [2, {"yy": 3, "x": 4}]}, "a": {}}
    post(event)
    listed = api(auditor).get("/api/v1/events/lineage").json()["events"][0]
    assert list(listed["run"]["facets"]) == ["zz_custom", "a"]
    assert json.dumps(listed["run"]["facets"]) == json.dumps(event["run"]["facets"])
    assert list(listed) == list(event)


# Accepting: the token with its user and the token's last use, the caller's permissions (one
# statement: their own and their groups'), the one INSERT. Mapping is counted on its own
# (tests/lineage/test_mapping.py).
QUERIES_PER_ACCEPT = 4
REALISTIC_FIELDS = [
    {"name": f"c{i}", "type": "DOUBLE", "description": f"column {i}"} for i in range(20)
]


def _realistic(event_type, run_id, time="2026-11-01T10:00:00Z"):
    """bench/lineage.py's event: 3 inputs and 2 outputs with 20-field schemas."""
    facet = schema_facet(*REALISTIC_FIELDS)
    return run_event(
        event_type,
        run_id=run_id,
        time=time,
        inputs=[dataset("postgres://wh:5432", f"raw.t{k}", schema=facet) for k in range(3)],
        outputs=[dataset("s3://lake", f"curated/o{k}", schema=facet) for k in range(2)],
    )


def _actions(before):
    return sorted(AuditEvent.objects.order_by("id")[before:].values_list("action", flat=True))


def test_each_created_or_changed_entity_is_audited_exactly_once(post):
    run_id = uuid.uuid4()
    before = AuditEvent.objects.count()
    assert post(_realistic("START", run_id)).status_code == 201
    counts = {}
    for action in _actions(before):
        counts[action] = counts.get(action, 0) + 1
    # catalogue entities one event each; the run and the versions in the batch's event
    assert counts == {
        "lineage.events.mapped": 1,
        "registry.job.created": 1,
        "registry.dataset.created": 5,
        "registry.feature.created": 100,
    }
    assert Feature.objects.count() == 100 and DatasetVersion.objects.count() == 5
    mapped = AuditEvent.objects.get(action="lineage.events.mapped").changes
    assert mapped["runs_created"] == [str(run_id)]
    assert sorted(mapped["dataset_versions_created"]) == sorted(
        f"{v.dataset.namespace}:{v.dataset.name}#{v.version}"
        for v in DatasetVersion.objects.select_related("dataset")
    )  # 3 external inputs, 2 outputs
    created = AuditEvent.objects.filter(action="registry.feature.created").order_by("id").first()
    feature = Feature.objects.get(pk=created.object_id)
    assert created.object_type == "registry.feature"
    assert created.object_repr == str(feature)
    assert created.changes == {
        "dataset": [None, str(feature.dataset_id)],
        "name": [None, feature.name],
        "dtype": [None, "DOUBLE"],
        "description": [None, feature.description],
        "pii": [None, False],
    }
    before = AuditEvent.objects.count()
    assert post(_realistic("COMPLETE", run_id, "2026-11-01T10:05:00Z")).status_code == 201
    assert _actions(before) == ["lineage.events.mapped"]
    mapped = AuditEvent.objects.filter(action="lineage.events.mapped").latest("id").changes
    assert "runs_created" not in mapped and "dataset_versions_created" not in mapped
    assert mapped["runs_updated"][str(run_id)]["state"] == ["START", "COMPLETE"]


def test_a_changed_schema_updates_only_the_changed_features(post):
    post(_realistic("COMPLETE", uuid.uuid4()))
    fields = [dict(f) for f in REALISTIC_FIELDS]
    fields[3]["type"] = "BIGINT"
    fields.append({"name": "extra", "type": "STRING"})
    before = AuditEvent.objects.count()
    post(run_event(inputs=[dataset("s3://lake", "curated/o0", schema=schema_facet(*fields))]))
    assert _actions(before) == [
        "lineage.events.mapped",
        "registry.feature.created",
        "registry.feature.updated",
    ]
    assert Feature.objects.get(dataset__name="curated/o0", name="c3").dtype == "BIGINT"


def test_a_dataset_read_and_written_with_two_schemas_gets_each_feature_once(post):
    first = schema_facet({"name": "a", "type": "INT", "description": "old"})
    second = schema_facet({"name": "a", "type": "", "description": "new"}, {"name": "b"})
    response = post(
        run_event(
            inputs=[dataset("s3://lake", "t", schema=first)],
            outputs=[dataset("s3://lake", "t", schema=second)],
        )
    )
    assert response.status_code == 201
    assert sorted(Feature.objects.values_list("name", "dtype", "description")) == [
        ("a", "INT", "new"),
        ("b", "", ""),
    ]
    assert AuditEvent.objects.filter(action="registry.feature.created").count() == 2


def _graph():
    return (
        sorted(Edge.objects.values_list("source", "target", "relation")),
        sorted(DatasetVersion.objects.values_list("dataset__name", "version")),
        sorted(Feature.objects.values_list("dataset__name", "name")),
        sorted(Run.objects.values_list("run_id", "state")),
    )


def test_an_archived_dataset_rejects_events_adding_features_or_versions(post, pipeline):
    from registry import services

    post(run_event(outputs=[dataset("s3://lake", "old", schema=schema_facet({"name": "a"}))]))
    services.dataset_archive(actor=pipeline, dataset=Dataset.objects.get(name="old"))
    before = _graph()
    assert post(run_event(outputs=[("s3://lake", "old")])).status_code == 201
    event = LineageEvent.objects.latest("id")
    assert event.state == "rejected" and "archived" in event.reason
    post(run_event(inputs=[dataset("s3://lake", "old", schema=schema_facet({"name": "new"}))]))
    assert LineageEvent.objects.latest("id").state == "rejected"
    assert _graph() == before
    # what exists is still readable: reading the archived dataset's latest version is fine
    assert post(run_event(inputs=[("s3://lake", "old")])).status_code == 201
    assert LineageEvent.objects.latest("id").state == "mapped"


def test_an_archived_job_rejects_events_of_new_runs(post, pipeline):
    from registry import services

    post(run_event(job="retired"))
    services.job_archive(actor=pipeline, job=Job.objects.get(name="retired"))
    assert post(run_event(job="retired")).status_code == 201
    assert LineageEvent.objects.latest("id").state == "rejected"
    assert Run.objects.count() == 1


def test_accepting_a_realistic_event_takes_a_fixed_number_of_queries(
    post, settings, django_assert_max_num_queries
):
    """bench/lineage.py's event (3 inputs, 2 outputs, 20-field schemas): accepting it is a
    fixed number of statements (the request's token and permission reads included)."""
    settings.LINEAGE_MAP_INLINE = False
    with django_assert_max_num_queries(QUERIES_PER_ACCEPT):
        assert post(_realistic("START", uuid.uuid4())).status_code == 201


def test_accepting_a_batch_takes_as_many_queries_as_one_event(
    pipeline_client, settings, django_assert_max_num_queries
):
    settings.LINEAGE_MAP_INLINE = False
    events = [_realistic("START", uuid.uuid4()) for _ in range(100)]
    with django_assert_max_num_queries(QUERIES_PER_ACCEPT):
        response = pipeline_client.post("/api/v1/lineage/batch", events, format="json")
    assert response.json()["summary"]["successful"] == 100
    assert LineageEvent.objects.filter(state="pending").count() == 100


def test_datasets_with_and_without_schemas_in_one_event(post):
    post(run_event(outputs=[dataset("s3://lake", "known", schema=schema_facet({"name": "k"}))]))
    response = post(
        run_event(
            inputs=[("s3://lake", "known"), ("s3://lake", "bare")],
            outputs=[dataset("s3://lake", "fresh", schema=schema_facet({"name": "f"}))],
        )
    )
    assert response.status_code == 201
    assert sorted(Feature.objects.values_list("dataset__name", "name")) == [
        ("fresh", "f"),
        ("known", "k"),
    ]
    assert sorted(Dataset.objects.values_list("name", flat=True)) == ["bare", "fresh", "known"]
