"""MLflow's registry REST API over modelgov's services: shapes, permissions, errors, audit."""

import pytest

from audit.models import AuditEvent
from registry import services
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

BASE = "/api/2.0/mlflow"


@pytest.fixture
def mlflow(token_client):
    """mlflow(user).call(method, path, params) → (status, JSON), as the MLflow client sends:
    GET parameters in the query string, other methods' in a JSON body."""

    class Door:
        def __init__(self, user):
            self.client = token_client(user)

        def call(self, method, path, params=None):
            send = getattr(self.client, method.lower())
            if method == "GET":
                response = send(f"{BASE}/{path}", params or {})
            else:
                response = send(f"{BASE}/{path}", params or {}, format="json")
            return response.status_code, response.json()

    return Door


def _events(action):
    return AuditEvent.objects.filter(action=action)


# --- registered models ------------------------------------------------------------------------


def test_creating_a_model_answers_mlflows_message_and_is_audited_as_mlflow(mlflow, owner):
    status, body = mlflow(owner).call(
        "POST",
        "registered-models/create",
        {"name": "churn", "description": "Churn.", "tags": [{"key": "team", "value": "crm"}]},
    )
    assert status == 200
    model = body["registered_model"]
    assert model["name"] == "churn" and model["description"] == "Churn."
    assert model["tags"] == [{"key": "team", "value": "crm"}]
    assert model["user_id"] == "owner-scientist" and model["latest_versions"] == []
    assert isinstance(model["creation_timestamp"], int)
    event = _events("registry.registered_model.created").get()
    assert event.channel == "mlflow" and event.actor_username == "owner-scientist"
    assert event.changes["labels"] == [None, {"team": "crm"}]


def test_a_duplicate_name_is_resource_already_exists(mlflow, owner, credit_model):
    status, body = mlflow(owner).call(
        "POST", "registered-models/create", {"name": credit_model.name}
    )
    assert status == 400
    assert body["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_an_invalid_name_is_invalid_parameter_value_and_nothing_is_written(mlflow, owner):
    status, body = mlflow(owner).call("POST", "registered-models/create", {"name": "Churn Model"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "lowercase" in body["message"]
    assert not RegisteredModel.objects.exists()
    assert not AuditEvent.objects.filter(channel="mlflow").exists()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"name": 12},
        {"name": "ok", "tags": "team=crm"},
        {"name": "ok", "tags": [{"key": "team", "value": 3}]},
        {"name": "ok", "tags": [{"key": "", "value": "x"}]},
    ],
)
def test_bad_create_parameters_are_refused_and_nothing_is_written(mlflow, owner, params):
    status, body = mlflow(owner).call("POST", "registered-models/create", params)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not RegisteredModel.objects.exists()


def test_without_a_token_the_door_answers_unauthenticated(client):
    response = client.get(f"{BASE}/registered-models/get", {"name": "x"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_an_unknown_model_is_resource_does_not_exist(mlflow, owner):
    status, body = mlflow(owner).call("GET", "registered-models/get", {"name": "nope"})
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert body["message"] == "Registered Model with name=nope not found"


def test_a_hidden_model_is_resource_does_not_exist_as_if_absent(mlflow, outsider, credit_model):
    status, body = mlflow(outsider).call("GET", "registered-models/get", {"name": "credit-scoring"})
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    status, body = mlflow(outsider).call("GET", "registered-models/search", {})
    assert body["registered_models"] == []


def test_seeing_without_change_rights_is_permission_denied(mlflow, validator, credit_model):
    status, body = mlflow(validator).call(
        "POST", "registered-models/set-tag", {"name": "credit-scoring", "key": "k", "value": "v"}
    )
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    credit_model.refresh_from_db()
    assert credit_model.labels == {}


def test_rename_update_and_tags_are_audited_service_calls(mlflow, owner, credit_model):
    door = mlflow(owner)
    assert (
        door.call("POST", "registered-models/rename", {"name": "credit-scoring", "new_name": "pd"})[
            0
        ]
        == 200
    )
    assert (
        door.call("PATCH", "registered-models/update", {"name": "pd", "description": "New."})[0]
        == 200
    )
    assert (
        door.call("POST", "registered-models/set-tag", {"name": "pd", "key": "k", "value": "v"})[0]
        == 200
    )
    status, body = door.call("GET", "registered-models/get", {"name": "pd"})
    assert body["registered_model"]["description"] == "New."
    assert body["registered_model"]["tags"] == [{"key": "k", "value": "v"}]
    assert door.call("DELETE", "registered-models/delete-tag", {"name": "pd", "key": "k"})[0] == 200
    credit_model.refresh_from_db()
    assert (credit_model.name, credit_model.labels) == ("pd", {})
    actions = list(
        AuditEvent.objects.filter(channel="mlflow").order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "registry.registered_model.renamed",
        "registry.registered_model.updated",
        "registry.registered_model.tagged",
        "registry.registered_model.tagged",
    ]


def test_renaming_onto_an_existing_name_is_resource_already_exists(mlflow, owner, credit_model):
    services.registered_model_create(actor=owner, name="other")
    status, body = mlflow(owner).call(
        "POST", "registered-models/rename", {"name": "credit-scoring", "new_name": "other"}
    )
    assert body["error_code"] == "RESOURCE_ALREADY_EXISTS"
    credit_model.refresh_from_db()
    assert credit_model.name == "credit-scoring"


def test_delete_archives_the_model_and_search_leaves_it_out(mlflow, owner, credit_model):
    assert (
        mlflow(owner).call("DELETE", "registered-models/delete", {"name": "credit-scoring"})[0]
        == 200
    )
    credit_model.refresh_from_db()
    assert credit_model.archived
    _, body = mlflow(owner).call("GET", "registered-models/search", {})
    assert body["registered_models"] == []


def test_search_filters_by_name_like_and_tag_and_pages(mlflow, owner):
    for name in ("churn-a", "churn-b", "churn-c", "fraud"):
        services.registered_model_create(actor=owner, name=name, labels={"team": name[:5]})
    door = mlflow(owner)
    _, body = door.call(
        "GET", "registered-models/search", {"filter": "name LIKE 'churn%'", "max_results": 2}
    )
    assert [m["name"] for m in body["registered_models"]] == ["churn-a", "churn-b"]
    _, body = door.call(
        "GET",
        "registered-models/search",
        {"filter": "name LIKE 'churn%'", "max_results": 2, "page_token": body["next_page_token"]},
    )
    assert [m["name"] for m in body["registered_models"]] == ["churn-c"]
    assert "next_page_token" not in body
    _, body = door.call("GET", "registered-models/search", {"filter": "tags.team = 'fraud'"})
    assert [m["name"] for m in body["registered_models"]] == ["fraud"]
    _, body = door.call(
        "GET", "registered-models/search", {"order_by": ["name DESC"], "max_results": 1}
    )
    assert [m["name"] for m in body["registered_models"]] == ["fraud"]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "owner = 'x'"},
        {"filter": "name = 'a' OR name = 'b'"},
        {"max_results": 0},
        {"max_results": 5000},
        {"order_by": ["risk DESC"]},
        {"page_token": "forged"},
    ],
)
def test_bad_searches_are_invalid_parameter_value(mlflow, owner, params):
    status, body = mlflow(owner).call("GET", "registered-models/search", params)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "token",
    [
        "eyJvZmZzZXQiOiA5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OX0=",  # offset 99999999999999999999999
        "eyJvZmZzZXQiOiA5MjIzMzcyMDM2ODU0Nzc1ODA3fQ==",  # offset 2**63 - 1
    ],
)
@pytest.mark.parametrize("endpoint", ["registered-models/search", "model-versions/search"])
def test_a_page_token_beyond_any_page_is_invalid_parameter_value(mlflow, owner, token, endpoint):
    status, body = mlflow(owner).call("GET", endpoint, {"page_token": token})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Invalid page_token."


# --- model versions ---------------------------------------------------------------------------


def _create_version(door, name="credit-scoring", **extra):
    return door.call(
        "POST",
        "model-versions/create",
        {
            "name": name,
            "source": "mlflow-artifacts:/1/abc/artifacts/model",
            "run_id": "0123456789abcdef0123456789abcdef",
            "tags": [{"key": "data", "value": "2026-q3"}],
            "description": "Retrained.",
            **extra,
        },
    )


def test_creating_a_version_registers_the_next_number_with_its_source(mlflow, owner, credit_model):
    status, body = _create_version(mlflow(owner), model_id="m-42")
    assert status == 200
    version = body["model_version"]
    assert version["version"] == "1" and version["current_stage"] == "None"
    assert version["source"] == "mlflow-artifacts:/1/abc/artifacts/model"
    assert version["run_id"] == "0123456789abcdef0123456789abcdef"
    assert version["status"] == "READY" and version["model_id"] == "m-42"
    assert version["tags"] == [{"key": "data", "value": "2026-q3"}]
    stored = ModelVersion.objects.get()
    assert (stored.artifact_uri, stored.description) == (version["source"], "Retrained.")
    assert _events("registry.model_version.created").get().channel == "mlflow"


def test_a_run_id_known_to_lineage_links_the_training_run(
    mlflow, owner, credit_model, training_run
):
    _create_version(mlflow(owner), run_id=training_run.run_id.hex)
    assert ModelVersion.objects.get().training_run == training_run


def test_versions_of_a_model_others_may_only_see_are_permission_denied(
    mlflow, validator, credit_model
):
    status, body = _create_version(mlflow(validator))
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert not ModelVersion.objects.exists()


def test_a_version_without_source_is_refused(mlflow, owner, credit_model):
    status, body = mlflow(owner).call("POST", "model-versions/create", {"name": "credit-scoring"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not ModelVersion.objects.exists()


def test_get_update_download_uri_and_version_tags(mlflow, owner, credit_version):
    door = mlflow(owner)
    key = {"name": "credit-scoring", "version": "1"}
    status, body = door.call("GET", "model-versions/get", key)
    assert body["model_version"]["source"] == "s3://models/credit/1"
    assert door.call("GET", "model-versions/get-download-uri", key)[1] == {
        "artifact_uri": "s3://models/credit/1"
    }
    door.call("PATCH", "model-versions/update", {**key, "description": "Better."})
    door.call("POST", "model-versions/set-tag", {**key, "key": "qa", "value": "ok"})
    _, body = door.call("GET", "model-versions/get", key)
    assert body["model_version"]["description"] == "Better."
    assert body["model_version"]["tags"] == [{"key": "qa", "value": "ok"}]
    door.call("DELETE", "model-versions/delete-tag", {**key, "key": "qa"})
    credit_version.refresh_from_db()
    assert credit_version.labels == {}


@pytest.mark.parametrize("number", ["0", "x", "-1", "1.5", "9999999999"])
def test_a_malformed_version_number_is_invalid_parameter_value(
    mlflow, owner, credit_version, number
):
    status, body = mlflow(owner).call(
        "GET", "model-versions/get", {"name": "credit-scoring", "version": number}
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_an_unknown_version_is_resource_does_not_exist(mlflow, owner, credit_version):
    status, body = mlflow(owner).call(
        "GET", "model-versions/get", {"name": "credit-scoring", "version": "7"}
    )
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_search_versions_by_name_and_run_id(mlflow, owner, credit_model):
    door = mlflow(owner)
    _create_version(door, run_id="a" * 32)
    _create_version(door, run_id="b" * 32)
    _, body = door.call("GET", "model-versions/search", {"filter": "name = 'credit-scoring'"})
    assert [v["version"] for v in body["model_versions"]] == ["2", "1"]
    _, body = door.call("GET", "model-versions/search", {"filter": f"run_id = '{'b' * 32}'"})
    assert [v["version"] for v in body["model_versions"]] == ["2"]
    _, body = door.call(
        "GET", "model-versions/search", {"filter": "tags.data = '2026-q3' AND version_number <= 1"}
    )
    assert [v["version"] for v in body["model_versions"]] == ["1"]


def test_latest_versions_are_per_stage(mlflow, owner, credit_model):
    door = mlflow(owner)
    _create_version(door)
    _create_version(door)
    status, body = door.call(
        "POST",
        "registered-models/get-latest-versions",
        {"name": "credit-scoring", "stages": ["None"]},
    )
    assert [v["version"] for v in body["model_versions"]] == ["2"]
    _, body = door.call(
        "POST",
        "registered-models/get-latest-versions",
        {"name": "credit-scoring", "stages": ["Production"]},
    )
    assert body["model_versions"] == []
    status, body = door.call(
        "POST",
        "registered-models/get-latest-versions",
        {"name": "credit-scoring", "stages": ["Live"]},
    )
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_unknown_paths_under_the_prefix_are_endpoint_not_found(mlflow, owner):
    status, body = mlflow(owner).call("POST", "experiments/create", {"name": "x"})
    assert (status, body["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


def test_a_tag_inequality_keeps_models_without_the_tag(mlflow, owner):
    services.registered_model_create(actor=owner, name="plain")
    services.registered_model_create(actor=owner, name="prompt", labels={"is_prompt": "true"})
    _, body = mlflow(owner).call(
        "GET", "registered-models/search", {"filter": "tags.`is_prompt` != 'true'"}
    )
    assert [m["name"] for m in body["registered_models"]] == ["plain"]


def test_searches_take_a_fixed_number_of_queries(mlflow, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    door = mlflow(owner)

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            status, _ = door.call("GET", path, {})
        assert status == 200
        return len(captured)

    def add(start, count):
        for index in range(start, start + count):
            model = services.registered_model_create(actor=owner, name=f"m{index}")
            version = services.model_version_create(actor=owner, model=model)
            services.model_alias_set(actor=owner, model=model, alias="best", version=version)

    add(0, 2)
    queries("registered-models/search")  # the token's first use is recorded once
    few = (queries("registered-models/search"), queries("model-versions/search"))
    add(2, 6)
    assert (queries("registered-models/search"), queries("model-versions/search")) == few


# --- who may act is asked before what they sent -------------------------------------------------

ONLY_THE_NAME = [
    ("POST", "registered-models/rename"),
    ("PATCH", "registered-models/update"),
    ("DELETE", "registered-models/delete"),
    ("POST", "registered-models/set-tag"),
    ("DELETE", "registered-models/delete-tag"),
    ("POST", "registered-models/alias"),
    ("DELETE", "registered-models/alias"),
    ("POST", "model-versions/create"),
]
ONLY_NAME_AND_VERSION = [
    ("PATCH", "model-versions/update"),
    ("POST", "model-versions/set-tag"),
    ("DELETE", "model-versions/delete-tag"),
]


@pytest.mark.parametrize("method,path", ONLY_THE_NAME + ONLY_NAME_AND_VERSION)
def test_a_viewer_who_may_not_change_the_model_is_permission_denied_whatever_it_sent(
    mlflow, risk_officer, credit_version, method, path
):
    params = {"name": credit_version.model.name}
    if (method, path) in ONLY_NAME_AND_VERSION:
        params["version"] = str(credit_version.version)
    door = mlflow(risk_officer)  # its token is issued (and audited) here
    before = AuditEvent.objects.count()
    status, body = door.call(method, path, params)
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED"), body
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("path", ["model-versions/transition-stage", "model-versions/delete"])
def test_who_may_not_request_promotions_is_permission_denied_before_the_stage_is_read(
    mlflow, auditor, credit_version, path
):
    method = "DELETE" if path.endswith("delete") else "POST"
    params = {"name": credit_version.model.name, "version": str(credit_version.version)}
    status, body = mlflow(auditor).call(method, path, params)
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED"), body


def test_creating_a_model_without_the_permission_is_denied_even_with_an_empty_body(
    mlflow, outsider
):
    status, body = mlflow(outsider).call("POST", "registered-models/create", {})
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED"), body


def test_a_hidden_model_is_resource_does_not_exist_whatever_was_sent(
    mlflow, other_scientist, credit_version
):
    status, body = mlflow(other_scientist).call(
        "POST", "registered-models/set-tag", {"name": credit_version.model.name}
    )
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), body


# --- NUL characters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "registered-models/create", {"name": "nul", "description": "d\x00"}),
        (
            "POST",
            "registered-models/create",
            {"name": "nul", "tags": [{"key": "k", "value": "\x00"}]},
        ),
        ("PATCH", "registered-models/update", {"name": "credit-scoring", "description": "d\x00"}),
        (
            "POST",
            "registered-models/set-tag",
            {"name": "credit-scoring", "key": "k", "value": "v\x00"},
        ),
        (
            "POST",
            "registered-models/set-tag",
            {"name": "credit-scoring", "key": "k\x00", "value": "v"},
        ),
        ("POST", "model-versions/create", {"name": "credit-scoring", "source": "s3://a\x00b"}),
        (
            "PATCH",
            "model-versions/update",
            {"name": "credit-scoring", "version": "1", "description": "x\x00"},
        ),
        (
            "POST",
            "model-versions/set-tag",
            {"name": "credit-scoring", "version": "1", "key": "k", "value": "\x00"},
        ),
    ],
)
def test_text_holding_nul_is_refused_and_nothing_is_written(
    mlflow, owner, credit_version, method, path, params
):
    door = mlflow(owner)  # its token issued (and audited) first
    audited = AuditEvent.objects.count()
    models = list(RegisteredModel.objects.values())
    versions = list(ModelVersion.objects.values())

    status, body = door.call(method, path, params)

    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), body
    assert "NUL" in body["message"]
    assert AuditEvent.objects.count() == audited
    assert list(RegisteredModel.objects.values()) == models
    assert list(ModelVersion.objects.values()) == versions
