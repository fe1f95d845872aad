"""Raw events and edges that name a model are shown only to those who may see that model;
hostile inputs to the lineage endpoints answer 4xx, never 500, and write nothing."""

import gzip
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from lineage.models import Edge, LineageEvent
from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db

SECRET = {"name": "secret-model", "artifactUri": "s3://vault/secret.pkl", "sha256": "b" * 64}


@pytest.fixture
def secret_event(post):
    """The pipeline registers a model only it (and global viewers) may see, through lineage."""
    event = run_event(
        run_id=uuid.uuid4(),
        inputs=[("s3://lake", "applicants")],
        outputs=[dataset("s3://models", "secret", modelgov_model=SECRET)],
    )
    assert post(event).status_code == 201
    post(run_event(run_id=uuid.uuid4(), job="plain", inputs=[("s3://lake", "applicants")]))
    return event


def test_the_events_list_leaves_out_events_naming_a_model_the_caller_cannot_see(
    api, secret_event, other_scientist
):
    body = api(other_scientist).get("/api/v1/events/lineage").json()
    assert body["totalCount"] == 1
    assert "secret-model" not in json.dumps(body)


def test_the_events_list_shows_them_to_whoever_may_see_the_model(api, secret_event, pipeline):
    body = api(pipeline).get("/api/v1/events/lineage").json()
    assert body["totalCount"] == 2
    assert "secret-model" in json.dumps(body)


def test_the_events_list_shows_them_once_the_model_is_shared(api, secret_event, other_scientist):
    from registry.models import RegisteredModel
    from registry.services import model_permission_grant

    model = RegisteredModel.objects.get(name="secret-model")
    model_permission_grant(
        actor=model.owner, model=model, grantee=other_scientist, permission="view_registeredmodel"
    )
    assert api(other_scientist).get("/api/v1/events/lineage").json()["totalCount"] == 2


def test_the_admin_edge_search_leaves_out_edges_of_hidden_models(
    client, secret_event, other_scientist
):
    assert Edge.objects.filter(target__startswith="model:secret-model:").exists()
    client.force_login(other_scientist)
    response = client.get("/admin/lineage/edge/?q=model:")
    assert response.status_code == 200
    assert "secret-model" not in response.content.decode()


def test_the_admin_edge_search_shows_them_to_the_owner(client, secret_event, pipeline, superuser):
    client.force_login(superuser)
    assert "model:secret-model:1" in client.get("/admin/lineage/edge/?q=model:").content.decode()


def test_the_admin_event_list_and_page_hide_an_event_naming_a_hidden_model(
    client, secret_event, other_scientist
):
    hidden = LineageEvent.objects.get(mentions__model_name="secret-model")
    client.force_login(other_scientist)
    listing = client.get("/admin/lineage/lineageevent/")
    assert listing.status_code == 200
    assert f"/admin/lineage/lineageevent/{hidden.pk}/change/" not in listing.content.decode()
    page = client.get(f"/admin/lineage/lineageevent/{hidden.pk}/change/", follow=True)
    assert "vault/secret.pkl" not in page.content.decode()
    assert "secret-model" not in page.content.decode()


def test_the_dataset_drawing_leaves_out_hidden_model_nodes(client, secret_event, other_scientist):
    from registry.models import Dataset

    applicants = Dataset.objects.get(name="applicants")
    client.force_login(other_scientist)
    html = client.get(f"/admin/registry/dataset/{applicants.pk}/change/").content.decode()
    assert "<svg" in html
    assert "secret-model" not in html


def test_the_dataset_drawing_shows_them_to_the_owner(client, secret_event, superuser):
    from registry.models import Dataset

    applicants = Dataset.objects.get(name="applicants")
    client.force_login(superuser)
    html = client.get(f"/admin/registry/dataset/{applicants.pk}/change/").content.decode()
    assert "secret-model" in html


def _poster_without_model_rights():
    """A service account that may post lineage but not register models."""
    user = get_user_model().objects.create_user(username="narrow-bot", password="x")
    user.user_permissions.add(
        Permission.objects.get(codename="add_lineageevent"),
        Permission.objects.get(codename="view_edge"),
    )
    return user


def _model_event(name):
    facet = {**SECRET, "name": name}
    return run_event(outputs=[dataset("s3://models", name, modelgov_model=facet)])


def test_a_model_facet_naming_a_hidden_model_answers_as_for_a_model_that_does_not_exist(
    api, secret_event
):
    poster = _poster_without_model_rights()
    before = LineageEvent.objects.count()
    hidden = api(poster).post("/api/v1/lineage", _model_event("secret-model"), format="json")
    missing = api(poster).post("/api/v1/lineage", _model_event("no-such-model"), format="json")
    assert hidden.status_code == missing.status_code == 403
    assert json.dumps(hidden.json()).replace("secret-model", "X") == json.dumps(
        missing.json()
    ).replace("no-such-model", "X")
    assert "exist" not in json.dumps(hidden.json())
    assert hidden.json()["errors"][0]["field"] == "outputs.0.facets.modelgov_model.name"
    assert LineageEvent.objects.count() == before


def test_a_model_facet_naming_a_hidden_model_refuses_a_scientist_without_confirming_it(
    api, secret_event, other_scientist
):
    hidden = api(other_scientist).post(
        "/api/v1/lineage", _model_event("secret-model"), format="json"
    )
    assert hidden.status_code == 403
    assert "secret-model" in hidden.json()["errors"][0]["message"]
    assert "exist" not in hidden.json()["errors"][0]["message"]
    assert not LineageEvent.objects.filter(submitted_by=other_scientist).exists()


def test_a_model_facet_naming_a_reserved_name_answers_as_for_a_hidden_model(
    api, secret_event, other_scientist
):
    """A scientist may register new models, but not under a reserved name: refused when the
    event is posted, in the very words a hidden model's name gets, so a poster cannot tell
    the two apart (the native API answers both with the same 400)."""
    before = LineageEvent.objects.count()
    hidden = api(other_scientist).post(
        "/api/v1/lineage", _model_event("secret-model"), format="json"
    )
    reserved = api(other_scientist).post("/api/v1/lineage", _model_event("admin"), format="json")
    assert hidden.status_code == reserved.status_code == 403
    assert json.dumps(hidden.json()).replace("secret-model", "X") == json.dumps(
        reserved.json()
    ).replace("admin", "X")
    assert LineageEvent.objects.count() == before


@pytest.mark.parametrize(
    "moment", ["2026-02-30T00:00:00Z", "2026-11-01T25:00:00Z", "2026-13-01T00:00:00Z"]
)
@pytest.mark.parametrize("key", ["after", "before"])
def test_an_impossible_date_on_the_events_list_is_a_400(api, auditor, key, moment):
    response = api(auditor).get("/api/v1/events/lineage", {key: moment})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == key


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("offset", "-5"),
        ("offset", "x"),
        ("offset", str(10**9 + 1)),
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
    ],
)
def test_bad_paging_on_the_events_list_is_a_400_naming_the_parameter(api, auditor, key, value):
    response = api(auditor).get("/api/v1/events/lineage", {key: value})
    assert response.status_code == 400, response.content
    assert [error["field"] for error in response.json()["errors"]] == [key]


def test_paging_bounds_on_the_events_list_are_taken(api, auditor):
    for params in ({"limit": "1000", "offset": str(10**9)}, {"limit": "1", "offset": "0"}):
        assert api(auditor).get("/api/v1/events/lineage", params).status_code == 200


def _raw_post(client, body: bytes, **headers):
    return client.post("/api/v1/lineage", body, content_type="application/json", **headers)


def test_a_lone_surrogate_in_an_event_is_a_400_and_nothing_is_stored(pipeline_client):
    event = json.dumps(run_event(job="JOB")).replace('"JOB"', '"a\\ud800b"')
    response = _raw_post(pipeline_client, event.encode())
    assert response.status_code == 400
    assert "surrogate" in response.json()["errors"][0]["message"]
    assert not LineageEvent.objects.exists()


def test_a_lone_surrogate_as_a_facet_key_is_a_400(pipeline_client):
    event = json.dumps(run_event(run_facets={"KEY": 1})).replace('"KEY"', '"\\udc00"')
    assert _raw_post(pipeline_client, event.encode()).status_code == 400
    assert not LineageEvent.objects.exists()


def test_a_paired_surrogate_escape_is_ordinary_text(pipeline_client):
    event = json.dumps(run_event(job="JOB")).replace('"JOB"', '"rocket \\ud83d\\ude80"')
    assert _raw_post(pipeline_client, event.encode()).status_code == 201
    assert LineageEvent.objects.get().job_name == "rocket \U0001f680"


def test_a_number_beyond_a_float_inside_a_facet_is_a_422_naming_it(pipeline_client):
    event = json.dumps(run_event(run_facets={"stats": {"rows": 7}})).replace(
        '"rows": 7', '"rows": 1e400'
    )
    response = _raw_post(pipeline_client, event.encode())
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "run.facets.stats.rows" and "finite" in error["message"]
    assert not LineageEvent.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/batch"])
def test_bare_nan_and_infinity_in_a_facet_are_stored_as_strings(pipeline_client, path):
    event = run_event(run_facets={"stats": {"mean": float("nan"), "bounds": [1e999, -1e999]}})
    body = json.dumps([event] if path.endswith("batch") else event)  # NaN, Infinity bare
    assert "NaN" in body and "-Infinity" in body
    response = pipeline_client.post(path, body, content_type="application/json")
    assert response.status_code == (200 if path.endswith("batch") else 201), response.content
    stored = LineageEvent.objects.get().payload["run"]["facets"]["stats"]
    assert stored == {"mean": "NaN", "bounds": ["Infinity", "-Infinity"]}


@pytest.mark.parametrize(
    "where, field",
    [
        ("job", "job.name"),
        ("version", "outputs.0.facets.version.datasetVersion"),
        ("schema", "outputs.0.facets.schema.fields.0.name"),
    ],
)
def test_bare_nan_where_modelgov_reads_text_is_a_422_naming_it(pipeline_client, where, field):
    """Read as a string, it would name a job, a version or a column "NaN": refused instead."""
    output = dataset("s3://lake", "t")
    if where == "version":
        output["facets"]["version"] = {"datasetVersion": float("nan")}
    if where == "schema":
        output["facets"]["schema"] = {"fields": [{"name": float("inf")}]}
    event = run_event(outputs=[output])
    if where == "job":
        event["job"]["name"] = float("-inf")
    for body in (json.dumps(event), json.dumps([event])):
        path = "/api/v1/lineage/batch" if body.startswith("[") else "/api/v1/lineage"
        response = pipeline_client.post(path, body, content_type="application/json")
        errors = (
            response.json()["failed_events"][0]["errors"]
            if path.endswith("batch")
            else response.json()["errors"]
        )
        assert response.status_code == (200 if path.endswith("batch") else 422), response.content
        assert errors[0]["field"] == field and "NaN and Infinity" in errors[0]["message"]
    assert not LineageEvent.objects.exists()


def test_the_string_nan_is_text_like_any_other(pipeline_client):
    event = run_event(job="NaN", outputs=[("s3://lake", "Infinity")])
    response = pipeline_client.post("/api/v1/lineage", event, format="json")
    assert response.status_code == 201, response.content
    assert LineageEvent.objects.get().job_name == "NaN"


def test_nan_where_modelgov_reads_a_number_is_a_422_naming_it(pipeline_client):
    model = {**SECRET, "metrics": {"auc": float("nan")}}
    event = run_event(outputs=[dataset("s3://models", "m", modelgov_model=model)])
    response = _raw_post(pipeline_client, json.dumps(event).encode())
    assert response.status_code == 422, response.content
    error = response.json()["errors"][0]
    assert error["field"].startswith("outputs.0.facets.modelgov_model.metrics")
    assert not LineageEvent.objects.exists()


def test_a_gzip_body_with_trailing_garbage_is_a_400(pipeline_client):
    body = gzip.compress(json.dumps(run_event()).encode()) + b"garbage"
    response = _raw_post(pipeline_client, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "gzip" in response.json()["errors"][0]["message"]
    assert not LineageEvent.objects.exists()


def test_a_gzip_body_followed_by_a_second_member_is_a_400(pipeline_client):
    body = gzip.compress(json.dumps(run_event()).encode()) * 2
    assert _raw_post(pipeline_client, body, HTTP_CONTENT_ENCODING="gzip").status_code == 400
    assert not LineageEvent.objects.exists()


def test_the_rest_of_the_api_refuses_a_gzip_body_with_trailing_garbage(api, owner):
    body = gzip.compress(json.dumps({"name": "gz-model"}).encode()) + b"\x00junk"
    response = api(owner).post(
        "/api/v1/models/", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 400
    from registry.models import RegisteredModel

    assert not RegisteredModel.objects.filter(name="gz-model").exists()


def test_the_rest_of_the_api_reads_a_gzip_body(api, owner):
    body = gzip.compress(json.dumps({"name": "gz-model"}).encode())
    response = api(owner).post(
        "/api/v1/models/", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 201
