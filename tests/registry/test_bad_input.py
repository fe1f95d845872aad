"""Every kind of bad input gets a 4xx JSON body naming the field, and nothing is written."""

import json

import pytest

from audit.models import AuditEvent
from registry.models import Dataset, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db
MODELS = "/api/v1/models/"
VERSIONS = "/api/v1/models/credit-scoring/versions/"


@pytest.fixture
def nothing_written(db):
    """Asserts after the test that no catalogue row and no audit event was added."""
    counts = lambda: (  # noqa: E731
        RegisteredModel.objects.count(),
        ModelVersion.objects.count(),
        Dataset.objects.count(),
        AuditEvent.objects.count(),
    )
    yield counts
    # Each test captures its own "before" through the fixture value.


def _errors(response):
    body = response.json()
    assert set(body) == {"errors"}, body
    assert body["errors"], body
    for error in body["errors"]:
        assert error["message"]
    return body["errors"]


def _fields(response):
    return {e["field"] for e in _errors(response)}


def _raw(client, url, body: bytes, content_type="application/json", method="post"):
    return getattr(client, method)(url, data=body, content_type=content_type)


def test_malformed_json_is_refused(api, owner, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), MODELS, b'{"name": "x",')
    assert response.status_code == 400
    assert "Malformed JSON" in _errors(response)[0]["message"]
    assert nothing_written() == before


def test_empty_body_is_refused(api, owner, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), MODELS, b"")
    assert response.status_code == 400
    assert nothing_written() == before


def test_invalid_utf8_is_refused(api, owner, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), MODELS, b'{"name": "\xff\xfe"}')
    assert response.status_code == 400
    assert nothing_written() == before


def test_json_array_instead_of_object_is_refused(api, owner, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), MODELS, b'[{"name": "x"}]')
    assert response.status_code == 400
    assert nothing_written() == before


def test_non_json_content_type_is_refused_with_415(api, owner, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), MODELS, b"name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    _errors(response)
    assert nothing_written() == before


def test_unknown_field_is_refused_not_ignored(api, owner, nothing_written):
    before = nothing_written()
    response = api(owner).post(MODELS, {"name": "ok", "colour": "red"}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"colour"}
    assert nothing_written() == before


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"name": 12}, "name"),
        ({"name": "ok", "risk_tier": 3}, "risk_tier"),
        ({"name": "ok", "risk_tier": "extreme"}, "risk_tier"),
        ({"name": "ok", "tags": "credit"}, "tags"),
        ({"name": "ok", "tags": [1, 2]}, "tags.0"),
        ({"name": "ok", "description": ["a"]}, "description"),
        ({"name": "ok", "owner": "no-such-user"}, "owner"),
    ],
)
def test_wrong_types_are_refused(api, owner, nothing_written, payload, field):
    before = nothing_written()
    response = api(owner).post(MODELS, payload, format="json")
    assert response.status_code == 400
    assert field in _fields(response)
    assert nothing_written() == before


@pytest.mark.parametrize(
    "name", ["", "Credit", "credit scoring", "-credit", "credit-", "crédit", "a" * 101, "a/b"]
)
def test_invalid_model_names_are_refused(api, owner, nothing_written, name):
    before = nothing_written()
    response = api(owner).post(MODELS, {"name": name}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"name"}
    assert nothing_written() == before


@pytest.mark.parametrize("tags", [["Bad Tag"], ["a"] * 2, [f"t{i}" for i in range(21)]])
def test_invalid_tags_are_refused(api, owner, nothing_written, tags):
    before = nothing_written()
    response = api(owner).post(MODELS, {"name": "ok", "tags": tags}, format="json")
    assert response.status_code == 400
    assert any(f.startswith("tags") for f in _fields(response))
    assert nothing_written() == before


def test_duplicate_model_name_answers_409(api, owner, credit_model, nothing_written):
    before = nothing_written()
    response = api(owner).post(MODELS, {"name": "credit-scoring"}, format="json")
    assert response.status_code == 409
    assert _fields(response) == {"name"}
    assert nothing_written() == before


def test_duplicate_dataset_answers_409(api, pipeline, nothing_written):
    client = api(pipeline)
    payload = {"namespace": "s3://bucket", "name": "events"}
    assert client.post("/api/v1/datasets/", payload, format="json").status_code == 201
    before = nothing_written()
    response = client.post("/api/v1/datasets/", payload, format="json")
    assert response.status_code == 409
    assert nothing_written() == before


@pytest.mark.parametrize(
    "metrics,needle",
    [
        ({"auc": "high"}, "must be a number"),
        ({"auc": True}, "must be a number"),
        ({"auc": None}, "must be a number"),
        ({"auc": [0.5]}, "must be a number"),
        ([0.5], "JSON object"),
        ("auc", "JSON object"),
    ],
)
def test_non_numeric_metrics_are_refused(
    api, owner, credit_model, nothing_written, metrics, needle
):
    before = nothing_written()
    response = api(owner).post(VERSIONS, {"metrics": metrics}, format="json")
    assert response.status_code == 400
    errors = _errors(response)
    assert errors[0]["field"] == "metrics"
    assert needle in errors[0]["message"]
    assert nothing_written() == before


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(api, owner, credit_model, nothing_written, constant):
    before = nothing_written()
    response = _raw(api(owner), VERSIONS, b'{"metrics": {"auc": ' + constant + b"}}")
    assert response.status_code == 400
    assert "finite" in _errors(response)[0]["message"]
    assert nothing_written() == before


def test_overflowing_number_is_refused(api, owner, credit_model, nothing_written):
    before = nothing_written()
    response = _raw(api(owner), VERSIONS, b'{"metrics": {"auc": 1e999}}')
    assert response.status_code == 400
    assert _fields(response) == {"metrics"}
    assert nothing_written() == before


@pytest.mark.parametrize("sha", ["abc", "A" * 64, "g" * 64, "a" * 65, 123])
def test_invalid_sha256_is_refused(api, owner, credit_model, nothing_written, sha):
    before = nothing_written()
    response = api(owner).post(VERSIONS, {"artifact_sha256": sha}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"artifact_sha256"}
    assert nothing_written() == before


@pytest.mark.parametrize(
    "url,field,limit",
    [
        (MODELS, "description", 10_000),
        (MODELS, "business_unit", 100),
        (VERSIONS, "intended_use", 20_000),
        (VERSIONS, "artifact_uri", 1000),
        (VERSIONS, "framework", 100),
    ],
)
def test_over_long_strings_are_refused(
    api, owner, credit_model, nothing_written, url, field, limit
):
    before = nothing_written()
    payload = {field: "x" * (limit + 1)}
    if url == MODELS:
        payload["name"] = "new-model"
    response = api(owner).post(url, payload, format="json")
    assert response.status_code == 400
    assert _fields(response) == {field}
    assert nothing_written() == before


def test_deeply_nested_parameters_are_refused(api, owner, credit_model, nothing_written):
    before = nothing_written()
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["a"] = {}
        node = node["a"]
    response = api(owner).post(VERSIONS, {"parameters": deep}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"parameters"}
    assert "too deeply" in _errors(response)[0]["message"]
    assert nothing_written() == before


def _nested(levels: int, leaf) -> dict:
    """`levels` objects, one inside the other, the innermost holding `leaf`."""
    value = {"a": leaf}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("leaf", [1, "x", None, []])
def test_parameters_eight_levels_deep_are_taken_nine_are_refused(
    api, owner, credit_model, nothing_written, leaf
):
    """Eight objects deep is the limit (a list counts as a level): the eighth holding a value
    is taken, and a ninth level refused."""
    if leaf == []:
        taken, refused = _nested(7, []), _nested(8, [])
    else:
        taken, refused = _nested(8, leaf), _nested(9, leaf)
    before = nothing_written()
    response = api(owner).post(VERSIONS, {"parameters": refused}, format="json")
    assert response.status_code == 400, response.content
    assert _errors(response)[0]["message"] == "Nested too deeply: at most 8 levels."
    assert nothing_written() == before

    response = api(owner).post(
        VERSIONS, {"artifact_uri": "s3://m/1", "parameters": taken}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["parameters"] == taken


def test_pathologically_nested_json_is_refused_not_a_500(api, owner, credit_model, nothing_written):
    before = nothing_written()
    body = b'{"parameters": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = _raw(api(owner), VERSIONS, body)
    assert response.status_code == 400
    assert nothing_written() == before


def test_huge_parameters_are_refused(api, owner, credit_model, nothing_written):
    before = nothing_written()
    params = {f"p{i}": "x" * 100 for i in range(1000)}  # ~100 KiB > 64 KiB
    response = api(owner).post(VERSIONS, {"parameters": params}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"parameters"}
    assert nothing_written() == before


def test_parameters_must_be_an_object(api, owner, credit_model, nothing_written):
    before = nothing_written()
    response = api(owner).post(VERSIONS, {"parameters": [1, 2]}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"parameters"}
    assert nothing_written() == before


def test_body_over_max_request_bytes_answers_413(api, owner, settings, nothing_written):
    settings.MAX_REQUEST_BYTES = 1000
    before = nothing_written()
    body = json.dumps({"name": "big", "description": "x" * 2000}).encode()
    response = _raw(api(owner), MODELS, body)
    assert response.status_code == 413
    assert "limit" in _errors(response)[0]["message"]
    assert nothing_written() == before


def test_run_end_before_start_is_refused(api, pipeline, nothing_written):
    client = api(pipeline)
    job = client.post("/api/v1/jobs/", {"namespace": "a", "name": "b"}, format="json").json()
    before = nothing_written()
    response = client.post(
        "/api/v1/runs/",
        {
            "job": job["id"],
            "started_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400
    assert _fields(response) == {"ended_at"}
    assert nothing_written() == before


def test_finished_run_cannot_be_reopened(api, pipeline):
    client = api(pipeline)
    job = client.post("/api/v1/jobs/", {"namespace": "a", "name": "b"}, format="json").json()
    run = client.post(
        "/api/v1/runs/", {"job": job["id"], "state": "COMPLETE"}, format="json"
    ).json()
    response = client.patch(f"/api/v1/runs/{run['id']}/", {"state": "RUNNING"}, format="json")
    assert response.status_code == 409
    assert _fields(response) == {"state"}


def test_non_integer_version_in_path_is_404(api, owner, credit_version):
    assert api(owner).get(VERSIONS + "one/").status_code == 404


def test_a_model_one_may_not_see_is_404_with_the_not_found_code(api, outsider, credit_version):
    response = api(outsider).get(f"/api/v1/models/{credit_version.model.name}/")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"field": None, "message": "Not found.", "code": "not_found"}]
    }


def test_nul_characters_in_the_query_are_refused(api, owner):
    response = api(owner).get("/api/v1/models/?name=a%00b")
    assert response.status_code == 400
    assert "NUL" in _errors(response)[0]["message"]


def test_an_integer_beyond_the_database_range_is_a_400_not_a_500(api, pipeline):
    response = api(pipeline).get("/api/v1/features/?dataset=99999999999999999999999")
    assert response.status_code == 400


def test_unknown_api_path_answers_json_404(api, owner):
    response = api(owner).get("/api/v1/datasets/abc/versions/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_errors_answered_outside_drf_have_the_common_shape_and_rendering(api, owner, settings):
    """The middleware's and the error pages' refusals read exactly as DRF's: every key of the
    common shape, a code, and the same compact rendering (the same bytes for the same body)."""
    import json

    from django.test import Client

    settings.MAX_REQUEST_BYTES = 64
    client = api(owner)
    drf = client.get("/api/v1/models/?page=zero")  # refused by DRF itself
    answers = {
        "nul": client.get("/api/v1/models/?name=a%00b"),
        "length": Client().generic(
            "POST", "/api/v1/models/", b"{}", "application/json", CONTENT_LENGTH="twelve"
        ),
        "too_large": client.post("/api/v1/models/", {"name": "x" * 100}, format="json"),
        "not_found": client.get("/api/v1/datasets/abc/versions/"),
    }
    for response in (drf, *answers.values()):
        body = response.json()
        assert set(body) == {"errors"} and body["errors"]
        for error in body["errors"]:
            assert set(error) == {"field", "message", "code"} and error["code"], body
        assert (
            response.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        )
    codes = {name: response.json()["errors"][0]["code"] for name, response in answers.items()}
    assert codes == {
        "nul": "invalid",
        "length": "invalid",
        "too_large": "too_large",
        "not_found": "not_found",
    }
    assert [r.status_code for r in answers.values()] == [400, 400, 413, 404]


# --- values Python's json accepts but nothing can store or hash --------------------------------

LONE_SURROGATE_BODIES = [
    # a metric name (goes into the content digest)
    (VERSIONS, b'{"artifact_uri": "s3://m/1", "metrics": {"a\\ud800b": 0.5}}', "metrics"),
    # a parameter value and key
    (VERSIONS, b'{"artifact_uri": "s3://m/1", "parameters": {"k": "a\\udfffb"}}', "parameters.k"),
    (VERSIONS, b'{"artifact_uri": "s3://m/1", "parameters": {"\\ud800": 1}}', "parameters"),
    # plain text fields
    (MODELS, b'{"name": "fresh", "description": "x\\ud800"}', "description"),
    (VERSIONS, b'{"artifact_uri": "s3://m/1", "intended_use": "\\udc00 only"}', "intended_use"),
    (MODELS, b'{"name": "fresh", "tags": ["ok", "\\udbff"]}', "tags.1"),
]


@pytest.mark.parametrize(("url", "body", "field"), LONE_SURROGATE_BODIES)
def test_lone_surrogate_is_refused(api, owner, credit_model, nothing_written, url, body, field):
    before = nothing_written()
    response = _raw(api(owner), url, body)
    assert response.status_code == 400, response.content
    assert _errors(response) == [
        {"field": field, "message": _errors(response)[0]["message"], "code": "invalid_text"}
    ]
    assert "surrogate" in _errors(response)[0]["message"]
    assert nothing_written() == before


def test_paired_surrogates_are_one_character_and_accepted(api, owner, credit_model):
    body = b'{"artifact_uri": "s3://m/1", "metrics": {"\\ud83d\\ude00": 0.5}}'
    response = _raw(api(owner), VERSIONS, body)
    assert response.status_code == 201, response.content
    assert response.json()["metrics"] == {"\U0001f600": 0.5}


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1e999"])
def test_number_overflowing_a_float_is_refused(api, owner, credit_model, nothing_written, number):
    before = nothing_written()
    body = b'{"artifact_uri": "s3://m/1", "metrics": {"auc": ' + number + b"}}"
    response = _raw(api(owner), VERSIONS, body)
    assert response.status_code == 400
    assert _fields(response) == {"metrics"}
    body = b'{"artifact_uri": "s3://m/1", "parameters": {"deep": [' + number + b"]}}"
    response = _raw(api(owner), VERSIONS, body)
    assert response.status_code == 400
    assert _fields(response) == {"parameters"}
    assert nothing_written() == before


@pytest.mark.parametrize("number", [b"1" + b"0" * 400, b"-" + b"9" * 309])
def test_a_whole_number_overflowing_a_float_is_refused_as_a_metric(
    api, owner, credit_model, nothing_written, number
):
    """Metrics are compared with thresholds and charted as floats: a whole number beyond
    one is refused as 1e400 is. (A parameter keeps it exactly: any JSON is a parameter.)"""
    before = nothing_written()
    body = b'{"artifact_uri": "s3://m/1", "metrics": {"auc": ' + number + b"}}"
    response = _raw(api(owner), VERSIONS, body)
    assert response.status_code == 400, response.content
    assert _fields(response) == {"metrics"}
    assert "must be finite" in _errors(response)[0]["message"]
    assert nothing_written() == before


def test_metric_name_with_lone_surrogate_is_refused_by_the_service(owner, credit_model):
    """Every door, not only the API's parser: the validator refuses it before any digest."""
    from django.core.exceptions import ValidationError

    from registry import services

    with pytest.raises(ValidationError, match="surrogate"):
        services.model_version_create(
            actor=owner, model=credit_model, artifact_uri="s3://m/1", metrics={"a\ud800b": 0.5}
        )
    assert not ModelVersion.objects.exists()


def _four_byte_text(count, seed):
    """Ideographs outside the Basic Multilingual Plane (4 bytes of UTF-8 each), in no repeating
    order, which PostgreSQL's compression of index entries would shrink."""
    return "".join(chr(0x20000 + (seed + i * 7919) % 40000) for i in range(count))


@pytest.mark.parametrize("path", ["/api/v1/datasets/", "/api/v1/jobs/"])
def test_a_namespace_and_name_too_long_in_utf8_are_refused_with_400(api, owner, path):
    """Within their lengths in characters, they would make a unique-index entry of 3,020
    bytes, which PostgreSQL refuses (the API answered 503, "retry later")."""
    from registry.models import Job

    before = (Dataset.objects.count(), Job.objects.count(), AuditEvent.objects.count())
    body = {"namespace": _four_byte_text(255, 1), "name": _four_byte_text(500, 2)}
    response = api(owner).post(path, body, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"namespace", "name"}
    assert "bytes of UTF-8" in _errors(response)[0]["message"]
    assert (Dataset.objects.count(), Job.objects.count(), AuditEvent.objects.count()) == before


def test_a_namespace_and_name_at_their_byte_limits_are_stored(api, owner):
    body = {"namespace": _four_byte_text(191, 1) + "a", "name": _four_byte_text(375, 2)}
    assert [len(v.encode()) for v in body.values()] == [765, 1500]
    response = api(owner).post("/api/v1/datasets/", body, format="json")
    assert response.status_code == 201, response.content
    assert Dataset.objects.get(pk=response.json()["id"]).name == body["name"]
