"""Bad lineage input is refused with the right status and nothing stored; what Marquez
accepts is accepted."""

import gzip
import json
import string
import uuid

import pytest
from rest_framework.test import APIClient

from lineage import openlineage
from lineage.models import Edge, LineageEvent
from registry.models import Dataset, Job, Run
from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db


def _nothing_stored():
    assert not LineageEvent.objects.exists()
    assert not Edge.objects.exists()
    assert not Run.objects.exists()
    assert not Job.objects.exists()
    assert not Dataset.objects.exists()


def _fields(response):
    return {e["field"] for e in response.json()["errors"]}


def _without(event, *path):
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


@pytest.mark.parametrize(
    "path,field",
    [
        (("job",), "job"),
        (("run",), "run"),
        (("run", "runId"), "run.runId"),
        (("producer",), "producer"),
        (("eventTime",), "eventTime"),
        (("job", "namespace"), "job.namespace"),
        (("job", "name"), "job.name"),
    ],
)
def test_missing_required_parts_are_refused_with_422(post, path, field):
    response = post(_without(run_event(), *path))
    assert response.status_code == 422
    assert field in _fields(response)
    _nothing_stored()


def test_dataset_without_name_is_refused(post):
    response = post(run_event(inputs=[{"namespace": "s3://a"}]))
    assert response.status_code == 422
    assert _fields(response) == {"inputs.0.name"}
    _nothing_stored()


def test_event_time_that_is_not_a_date_is_refused(post):
    response = post(run_event(time="yesterday"))
    assert response.status_code == 422
    assert _fields(response) == {"eventTime"}
    _nothing_stored()


@pytest.mark.parametrize(
    ("time", "moment"),
    [
        ("2026-11-01T10:00Z[UTC]", "2026-11-01T10:00:00+00:00"),
        ("2026-11-01T10:00:00+00:00[UTC]", "2026-11-01T10:00:00+00:00"),
        ("2026-11-01T11:00:00.123456789+01:00[Europe/Paris]", "2026-11-01T10:00:00.123456+00:00"),
        ("2026-11-01T11:00+01:00[GMT+01:00]", "2026-11-01T10:00:00+00:00"),
    ],
)
def test_an_event_time_with_a_region_after_its_offset_is_read_at_its_offset(post, time, moment):
    """Java's ZonedDateTime writes `…Z[UTC]`; Marquez reads it."""
    response = post(run_event(time=time))
    assert response.status_code == 201, response.content
    assert LineageEvent.objects.get().event_time.isoformat() == moment


@pytest.mark.parametrize(
    "time", ["2026-11-01T10:00:00[UTC]", "2026-11-01T10:00:00Z[UTC", "2026-11-01T10:00:00Z[]"]
)
def test_an_event_time_with_a_region_but_no_offset_or_a_broken_one_is_refused(post, time):
    response = post(run_event(time=time))
    assert response.status_code == 422, response.content
    assert _fields(response) == {"eventTime"}
    _nothing_stored()


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_event_time_beyond_the_calendar_in_utc_is_refused_with_422(post, time):
    """Year 1 at +01:00 is before the first moment a date-time holds in UTC (and year 9999
    at -01:00 after the last): a 422 naming the field, not a server error."""
    response = post(run_event(time=time))
    assert response.status_code == 422, response.content
    assert _fields(response) == {"eventTime"}
    assert "years 1 to 9999 in UTC" in response.json()["errors"][0]["message"]
    _nothing_stored()


def test_an_event_time_beyond_the_calendar_refuses_its_event_not_the_batch(pipeline_client):
    events = [run_event(time="0001-01-01T00:00:00+01:00"), run_event(job="fine")]
    response = pipeline_client.post("/api/v1/lineage/batch", events, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "partial_success"
    assert [(f["index"], f["status"]) for f in body["failed_events"]] == [(0, 422)]
    assert list(LineageEvent.objects.values_list("job_name", flat=True)) == ["fine"]


def test_unknown_event_type_is_refused(post):
    response = post(run_event("FINISHED"))
    assert response.status_code == 422
    assert _fields(response) == {"eventType"}
    _nothing_stored()


def test_parent_facet_without_run_id_is_refused(post):
    response = post(
        run_event(run_facets={"parent": {"run": {}, "job": {"namespace": "a", "name": "b"}}})
    )
    assert response.status_code == 422
    assert _fields(response) == {"run.facets.parent.run.runId"}
    _nothing_stored()


def test_schema_field_without_a_name_is_refused(post):
    response = post(run_event(outputs=[dataset("s3://a", "b", schema={"fields": [{"type": "x"}]})]))
    assert response.status_code == 422
    assert _fields(response) == {"outputs.0.facets.schema.fields.0.name"}
    _nothing_stored()


def test_duplicate_field_names_in_a_schema_facet_are_refused(post):
    facet = {"fields": [{"name": "a"}, {"name": "a"}]}
    response = post(run_event(outputs=[dataset("s3://a", "b", schema=facet)]))
    assert response.status_code == 422
    assert "duplicates" in response.json()["errors"][0]["message"]
    _nothing_stored()


@pytest.mark.parametrize(
    "facet,field",
    [
        ({"name": "Churn Model"}, "outputs.0.facets.modelgov_model.name"),
        ({"name": "churn", "sha256": "xyz"}, "outputs.0.facets.modelgov_model.sha256"),
        (
            {"name": "churn", "metrics": {"auc": "good"}},
            "outputs.0.facets.modelgov_model.metrics.auc",
        ),
    ],
)
def test_invalid_model_facet_is_refused(post, facet, field):
    response = post(run_event(outputs=[dataset("s3://a", "b", modelgov_model=facet)]))
    assert response.status_code == 422
    assert _fields(response) == {field}
    _nothing_stored()


def test_too_many_inputs_are_refused(post, settings):
    settings.LINEAGE_MAX_DATASETS = 3
    response = post(run_event(inputs=[("s3://a", f"t{i}") for i in range(4)]))
    assert response.status_code == 422
    assert _fields(response) == {"inputs"}
    _nothing_stored()


def test_facets_nested_too_deeply_are_refused(post, settings):
    settings.LINEAGE_MAX_FACET_DEPTH = 5
    deep = {}
    node = deep
    for _ in range(10):
        node["x"] = {}
        node = node["x"]
    response = post(run_event(run_facets={"custom": deep}))
    assert response.status_code == 422
    assert _fields(response) == {"run.facets"}
    _nothing_stored()


def test_body_over_the_limit_is_refused_with_413(pipeline_client, settings):
    settings.MAX_REQUEST_BYTES = 2000
    body = json.dumps(run_event(run_facets={"pad": {"x": "y" * 3000}}))
    response = pipeline_client.post("/api/v1/lineage", body, content_type="application/json")
    assert response.status_code == 413
    _nothing_stored()


def test_gzip_bomb_is_refused_with_413(pipeline_client, settings):
    settings.MAX_INFLATED_BYTES = 100_000
    bomb = gzip.compress(b'{"a": "' + b"0" * 5_000_000 + b'"}')
    assert len(bomb) < 10_000
    response = pipeline_client.post(
        "/api/v1/lineage", bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    _nothing_stored()


def test_malformed_gzip_is_refused_with_400(pipeline_client):
    response = pipeline_client.post(
        "/api/v1/lineage",
        b"\x1f\x8bnot gzip",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 400
    _nothing_stored()


def test_unsupported_encoding_is_refused_with_415(pipeline_client):
    response = pipeline_client.post(
        "/api/v1/lineage", b"{}", content_type="application/json", HTTP_CONTENT_ENCODING="br"
    )
    assert response.status_code == 415
    _nothing_stored()


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/batch"])
def test_an_empty_body_is_refused_with_400_not_a_list_of_missing_fields(pipeline_client, path):
    response = pipeline_client.post(path, b"", content_type="application/json")
    assert response.status_code == 400
    assert "body is empty" in response.json()["errors"][0]["message"]
    _nothing_stored()


def test_non_json_is_refused_with_400(pipeline_client):
    response = pipeline_client.post("/api/v1/lineage", b"<event/>", content_type="application/json")
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["errors"][0]["message"]
    _nothing_stored()


def test_a_json_array_to_the_single_endpoint_is_refused(post):
    response = post([run_event()])
    assert response.status_code == 400
    assert "batch" in response.json()["errors"][0]["message"]
    _nothing_stored()


def test_token_without_the_pipeline_role_is_refused_with_403(validator):
    from registry.services import api_token_issue

    _, plain = api_token_issue(actor=None, user=validator, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = client.post("/api/v1/lineage", run_event(), format="json")
    assert response.status_code == 403
    _nothing_stored()


def test_no_token_is_refused_with_401(db):
    response = APIClient().post("/api/v1/lineage", run_event(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    _nothing_stored()


# --- leniency ---------------------------------------------------------------------------------


def test_missing_schema_url_is_accepted(post):
    event = run_event()
    del event["schemaURL"]
    assert post(event).status_code == 201


def test_missing_event_type_is_accepted(post):
    event = run_event()
    del event["eventType"]
    assert post(event).status_code == 201
    assert Run.objects.get().state == "OTHER"


def test_event_time_without_offset_is_read_as_utc(post):
    assert post(run_event(time="2026-11-01T10:00:00.123456789")).status_code == 201
    assert Run.objects.get().started_at.isoformat() == "2026-11-01T10:00:00.123456+00:00"


def test_non_uuid_run_id_is_mapped_deterministically_and_kept(post):
    assert post(run_event(run_id="spark-app-42")).status_code == 201
    assert post(run_event(run_id="spark-app-42", time="2026-11-01T11:00:00Z")).status_code == 201
    run = Run.objects.get()
    assert run.external_id == "spark-app-42"
    assert run.run_id.version == 3


def test_any_spec_version_is_accepted(post):
    event = run_event(
        schemaURL="https://openlineage.io/spec/2-8-9/OpenLineage.json#/definitions/RunEvent"
    )
    assert post(event).status_code == 201


def test_unknown_and_malformed_custom_facets_are_stored_as_given(post):
    facets = {
        "spark_properties": "not-an-object",
        "acme_cost": {"dollars": [1, {"x": None}]},
        "ownership": {"owners": "nobody"},
    }
    assert post(run_event(run_facets=facets)).status_code == 201
    assert Run.objects.get().facets == facets


@pytest.mark.parametrize(
    "facets",
    [
        {"schema": None, "version": None, "columnLineage": None},
        {"schema": {"_deleted": True}, "version": {"_deleted": True}},
        {"columnLineage": {"_deleted": True}, "modelgov_model": None},
        {"schema": {"fields": None}, "columnLineage": {"fields": None}},
        {"columnLineage": {"fields": {"a": {"inputFields": None}}}},
    ],
)
def test_null_or_deleted_standard_facets_are_read_as_absent_and_stored_as_given(post, facets):
    """The spec deletes a facet with `_deleted: true`; a null facet or list says nothing
    either. Neither refuses the event: the output is written, unversioned and without a
    schema, and the facets are kept as sent."""
    run_id = uuid.uuid4()
    event = run_event(run_id=run_id, outputs=[dataset("s3://lake", "out", **facets)])
    response = post(event)
    assert response.status_code == 201, response.content
    stored = LineageEvent.objects.get()
    assert stored.state == "mapped", stored.reason
    assert stored.payload["outputs"][0]["facets"] == facets
    assert list(Edge.objects.filter(source=f"run:{run_id}").values_list("target", flat=True)) == [
        f"dataset:s3://lake:out#run:{run_id}"
    ]
    assert not Dataset.objects.get(name="out").features.exists()


@pytest.mark.parametrize(
    ("facets", "field"),
    [
        ({"schema": {"fields": ""}}, "outputs.0.facets.schema.fields"),
        ({"schema": {"fields": {}}}, "outputs.0.facets.schema.fields"),
        ({"columnLineage": {"fields": []}}, "outputs.0.facets.columnLineage"),
        ({"columnLineage": {"fields": 0}}, "outputs.0.facets.columnLineage"),
        (
            {"columnLineage": {"fields": {"a": {"inputFields": False}}}},
            "outputs.0.facets.columnLineage.fields.a",
        ),
    ],
)
def test_empty_values_of_the_wrong_type_in_standard_facets_are_still_refused(post, facets, field):
    """Only null reads as absent: an empty string, object or list of the wrong kind is a
    malformed facet."""
    response = post(run_event(outputs=[dataset("s3://lake", "out", **facets)]))
    assert response.status_code == 422, response.content
    assert _fields(response) == {field}
    _nothing_stored()


def test_a_null_or_deleted_parent_facet_names_no_parent(post):
    for parent in (None, {"_deleted": True}):
        response = post(run_event(run_facets={"parent": parent}))
        assert response.status_code == 201, response.content
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}
    assert not Run.objects.exclude(parent=None).exists()
    assert Run.objects.count() == 2


def test_uppercase_run_id_is_the_same_run(post):
    run_id = uuid.uuid4()
    post(run_event("START", run_id=str(run_id).upper()))
    post(run_event("COMPLETE", run_id=str(run_id), time="2026-11-01T11:00:00Z"))
    assert Run.objects.get().run_id == run_id


def test_a_pipeline_role_taken_away_refuses_the_next_post(post, pipeline):
    """Nothing about the token's user or its permissions outlives a request: leaving the
    group, losing the permission or being deactivated counts from the next post on."""
    from django.contrib.auth.models import Group, Permission

    pipeline_group = Group.objects.get(name="pipeline")
    assert post(run_event()).status_code == 201
    pipeline.groups.remove(pipeline_group)
    assert post(run_event()).status_code == 403
    pipeline.groups.add(pipeline_group)
    assert post(run_event()).status_code == 201
    pipeline_group.permissions.remove(Permission.objects.get(codename="add_lineageevent"))
    assert post(run_event()).status_code == 403
    pipeline.user_permissions.add(Permission.objects.get(codename="add_lineageevent"))
    assert post(run_event()).status_code == 201
    pipeline.is_active = False
    pipeline.save(update_fields=["is_active"])
    assert post(run_event()).status_code == 401
    assert LineageEvent.objects.count() == 3


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (run_event(outputs=[("s3://lake", "a\u0000b")]), "outputs.0.name"),
        (
            run_event(outputs=[dataset("s3://lake", "ok", custom={"note": "plan\u0000"})]),
            "outputs.0.facets.custom.note",
        ),
        (run_event(run_facets={"spark": {"k\u0000": 1}}), "run.facets.spark.k\u0000"),
    ],
)
def test_the_nul_character_is_refused_with_422_naming_the_field(post, event, field):
    """PostgreSQL cannot store NUL in text or jsonb: refused by field on every database, not
    left to fail the INSERT."""
    response = post(event)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert "NUL" in response.json()["errors"][0]["message"]
    _nothing_stored()


def test_a_nul_character_refuses_its_event_not_the_rest_of_the_batch(pipeline_client):
    good = run_event(outputs=[("s3://lake", "fine")])
    bad = run_event(outputs=[dataset("s3://lake", "ok", custom={"note": "plan\u0000"})])
    response = pipeline_client.post("/api/v1/lineage/batch", [good, bad], format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["summary"]["successful"] == 1 and body["summary"]["failed"] == 1
    failed = body["failed_events"][0]
    assert failed["index"] == 1 and failed["status"] == 422
    assert failed["errors"][0]["field"] == "outputs.0.facets.custom.note"
    assert LineageEvent.objects.count() == 1


def test_an_escaped_backslash_before_u0000_is_text_and_accepted(post):
    event = run_event(outputs=[dataset("s3://lake", "ok", custom={"regex": "\\u0000"})])
    assert post(event).status_code == 201
    stored = LineageEvent.objects.get().payload
    assert stored["outputs"][0]["facets"]["custom"]["regex"] == "\\u0000"


# A character of another script takes 2 to 4 bytes of UTF-8: within the lengths in characters,
# a name can still make a node id longer than an index entry can hold.
WIDE = "\u6f22" * 400  # 400 characters, 1,200 bytes


def _lineage(out_field, in_namespace, in_name, in_field):
    return {"fields": {out_field: {"inputFields": [
        {"namespace": in_namespace, "name": in_name, "field": in_field}
    ]}}}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (run_event(outputs=[("s3://lake", WIDE)]), "outputs.0.name"),
        (run_event(inputs=[("s3://lake", WIDE)]), "inputs.0.name"),
        (run_event(job=WIDE), "job.name"),
        (
            run_event(
                outputs=[
                    dataset("s3://lake", "out", columnLineage=_lineage("a", "s3://l", "in", WIDE))
                ]
            ),
            "outputs.0.facets.columnLineage.fields.a",
        ),
        (
            run_event(
                run_facets={
                    "parent": {
                        "run": {"runId": str(uuid.uuid4())},
                        "job": {"namespace": "airflow", "name": WIDE},
                    }
                }
            ),
            "run.facets.parent.job.name",
        ),
    ],
)
def test_a_name_making_a_node_id_too_long_in_utf8_is_refused_with_422(post, event, field):
    """Stored, such an event failed the mapping of every batch holding it on PostgreSQL (an
    index entry holds at most 2,704 bytes): refused at accept, by field, on every database."""
    response = post(event)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert "1200 bytes" in errors[0]["message"]
    _nothing_stored()


def _field_id_bytes(namespace, name, field):
    return len(f"datasetField:{namespace}:{name}:{field}".encode())


def test_node_ids_of_the_longest_size_are_accepted_and_mapped(post):
    """Two fields whose ids take exactly the 1,200 bytes stored, joined by column lineage: the
    edge between them (two such ids in one index entry) is stored. No repeating order in the
    names, which PostgreSQL's compression of index entries would shrink."""
    cyrillic = "".join(chr(0x0410 + i * 7 % 64) for i in range(460))  # 2 bytes each
    name_in, name_out = cyrillic + "a", cyrillic + "b"
    field = "".join((string.ascii_letters + string.digits)[i * 7 % 62] for i in range(255))
    assert _field_id_bytes("s3://lake", name_in, field) == 1200
    event = run_event(
        inputs=[("s3://lake", name_in)],
        outputs=[
            dataset(
                "s3://lake", name_out, columnLineage=_lineage(field, "s3://lake", name_in, field)
            )
        ],
    )
    assert post(event).status_code == 201
    assert LineageEvent.objects.get().state == "mapped"
    column = Edge.objects.get(relation="column")
    assert len(column.source.encode()) == len(column.target.encode()) == 1200
    # one byte more is refused
    longer = cyrillic + "\u0416"
    assert _field_id_bytes("s3://lake", longer, field) == 1201
    event = run_event(
        outputs=[
            dataset("s3://lake", "out", columnLineage=_lineage(field, "s3://lake", longer, field))
        ]
    )
    assert post(event).status_code == 422


def test_a_column_lineage_input_making_a_node_id_too_long_in_characters_is_refused(post):
    """Column lineage names its inputs' namespaces and names without the lengths a dataset's
    have: an ASCII id of 1,101 to 1,200 characters fits the bytes but not the edge's column."""
    source = ("s3://" + "n" * 600, "t" * 500, "f" * 50)
    assert len("datasetField:{}:{}:{}".format(*source)) == 1170
    event = run_event(outputs=[dataset("s3://lake", "out", columnLineage=_lineage("a", *source))])
    response = post(event)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["outputs.0.facets.columnLineage.fields.a"]
    assert "1100 characters" in errors[0]["message"]
    _nothing_stored()


def test_the_node_id_limit_in_characters_is_the_edge_columns_length():
    for name in ("source", "target", "source_base", "target_base"):
        assert Edge._meta.get_field(name).max_length == openlineage.MAX_NODE_ID_CHARS
