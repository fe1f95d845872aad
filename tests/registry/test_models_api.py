"""Registered models through the API: create, list, filter, archive, who sees what."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from registry import services
from registry.models import RegisteredModel
from registry.services import model_permission_grant

pytestmark = pytest.mark.django_db


def test_scientist_registers_a_model_and_owns_it(api, owner):
    response = api(owner).post(
        "/api/v1/models/",
        {"name": "churn", "risk_tier": "low", "tags": ["marketing"], "description": "x"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == owner.username
    assert body["risk_tier"] == "low"
    assert RegisteredModel.objects.get(name="churn").owner == owner


def test_creating_a_model_records_one_audit_event_with_actor_and_channel(api, owner):
    before = AuditEvent.objects.count()
    api(owner).post("/api/v1/models/", {"name": "churn"}, format="json")
    events = list(AuditEvent.objects.all()[before:])
    assert [(e.action, e.actor_id, e.channel) for e in events] == [
        ("registry.registered_model.created", owner.pk, "api")
    ]


def test_outsider_without_add_permission_cannot_register_a_model(api, outsider):
    response = api(outsider).post("/api/v1/models/", {"name": "churn"}, format="json")
    assert response.status_code == 403
    assert not RegisteredModel.objects.exists()


def test_anonymous_request_is_refused_with_401(api, db):
    assert api().get("/api/v1/models/").status_code == 401


def test_list_shows_only_models_the_caller_may_see(api, owner, other_scientist, credit_model):
    services.registered_model_create(actor=other_scientist, name="theirs")
    names = [m["name"] for m in api(owner).get("/api/v1/models/").json()["results"]]
    assert names == ["credit-scoring"]


def test_reviewers_with_global_view_see_every_model(api, validator, credit_model, other_scientist):
    services.registered_model_create(actor=other_scientist, name="theirs")
    names = [m["name"] for m in api(validator).get("/api/v1/models/").json()["results"]]
    assert names == ["credit-scoring", "theirs"]


def test_object_grant_makes_a_model_visible(api, owner, other_scientist, credit_model):
    model_permission_grant(
        actor=owner,
        model=credit_model,
        grantee=other_scientist,
        permission="view_registeredmodel",
    )
    assert api(other_scientist).get("/api/v1/models/credit-scoring/").status_code == 200


def test_invisible_model_answers_404_as_if_it_did_not_exist(api, other_scientist, credit_model):
    assert api(other_scientist).get("/api/v1/models/credit-scoring/").status_code == 404
    assert api(other_scientist).get("/api/v1/models/nope/").status_code == 404


def test_filter_by_tag_matches_whole_tags_only(api, owner):
    services.registered_model_create(actor=owner, name="a", tags=["credit"])
    services.registered_model_create(actor=owner, name="b", tags=["credit-card"])
    names = [m["name"] for m in api(owner).get("/api/v1/models/?tag=credit").json()["results"]]
    assert names == ["a"]


def test_filter_by_risk_tier_and_owner(api, validator, owner, other_scientist):
    services.registered_model_create(actor=owner, name="a", risk_tier="high")
    services.registered_model_create(actor=other_scientist, name="b", risk_tier="high")
    services.registered_model_create(actor=owner, name="c", risk_tier="low")
    response = api(validator).get(f"/api/v1/models/?risk_tier=high&owner={owner.username}")
    assert [m["name"] for m in response.json()["results"]] == ["a"]


def test_filter_by_stage_lists_models_with_a_version_in_that_stage(api, owner, credit_version):
    services.registered_model_create(actor=owner, name="empty")
    response = api(owner).get("/api/v1/models/?stage=development")
    assert [m["name"] for m in response.json()["results"]] == ["credit-scoring"]


def test_ordering_by_created_at_descending(api, owner):
    for name in ("a", "b", "c"):
        services.registered_model_create(actor=owner, name=name)
    response = api(owner).get("/api/v1/models/?ordering=-created_at")
    assert [m["name"] for m in response.json()["results"]] == ["c", "b", "a"]


def test_page_size_can_be_asked_for(api, owner):
    for index in range(3):
        services.registered_model_create(actor=owner, name=f"m{index}")
    response = api(owner).get("/api/v1/models/?page_size=2")
    assert len(response.json()["results"]) == 2
    assert response.json()["count"] == 3
    assert response.json()["next"] is not None


def test_page_size_is_capped(api, owner, settings, monkeypatch):
    from core.api import Pagination

    monkeypatch.setattr(Pagination, "max_page_size", 2)
    for index in range(3):
        services.registered_model_create(actor=owner, name=f"m{index}")
    response = api(owner).get("/api/v1/models/?page_size=100000")
    assert len(response.json()["results"]) == 2


def test_delete_archives_instead_of_deleting(api, owner, credit_model):
    response = api(owner).delete("/api/v1/models/credit-scoring/")
    assert response.status_code == 200
    credit_model.refresh_from_db()
    assert credit_model.archived is True


def test_a_changed_or_archived_model_is_answered_with_its_latest_version(
    api, owner, credit_model, credit_version
):
    client = api(owner)
    path = "/api/v1/models/credit-scoring/"
    assert client.get(path).json()["latest_version"] == credit_version.version
    changed = client.patch(path, {"description": "PD model, v2."}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["latest_version"] == credit_version.version
    archived = client.delete(path)
    assert archived.status_code == 200
    assert archived.json()["latest_version"] == credit_version.version


def test_archived_model_takes_no_new_version(api, owner, credit_model):
    services.registered_model_archive(actor=owner, model=credit_model)
    response = api(owner).post("/api/v1/models/credit-scoring/versions/", {}, format="json")
    assert response.status_code == 409
    assert not credit_model.versions.exists()


def test_owner_updates_description_and_the_change_is_audited(api, owner, credit_model):
    response = api(owner).patch(
        "/api/v1/models/credit-scoring/", {"description": "new"}, format="json"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.filter(action="registry.registered_model.updated").get()
    assert event.changes == {"description": ["PD model.", "new"]}


def test_model_name_cannot_be_changed(api, owner, credit_model):
    response = api(owner).patch("/api/v1/models/credit-scoring/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"


def test_list_query_count_does_not_grow_with_rows(api, owner, django_assert_num_queries):
    services.registered_model_create(actor=owner, name="first")
    client = api(owner)
    with CaptureQueriesContext(connection) as first:
        client.get("/api/v1/models/")
    for index in range(10):
        services.registered_model_create(actor=owner, name=f"more-{index}")
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get("/api/v1/models/")
    assert response.json()["count"] == 11
