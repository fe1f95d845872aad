"""A name held by a model the caller cannot see is refused without confirming that model."""

import logging

import pytest

from audit.models import AuditEvent
from registry import services
from registry.models import RegisteredModel
from registry.services import model_permission_grant
from registry.services import models as version_services

pytestmark = pytest.mark.django_db
MODELS = "/api/v1/models/"
UNAVAILABLE = [{"field": "name", "message": services.MODEL_NAME_UNAVAILABLE, "code": "unavailable"}]


def _counts():
    return RegisteredModel.objects.count(), AuditEvent.objects.count()


def test_hidden_model_name_is_refused_like_a_reserved_name(api, other_scientist, credit_model):
    before = _counts()
    hidden = api(other_scientist).post(MODELS, {"name": "credit-scoring"}, format="json")
    reserved = api(other_scientist).post(MODELS, {"name": "admin"}, format="json")
    assert hidden.status_code == reserved.status_code == 400
    assert hidden.json() == reserved.json() == {"errors": UNAVAILABLE}
    assert _counts() == before


def test_hidden_model_name_refusal_names_neither_model_nor_owner(
    api, other_scientist, credit_model
):
    response = api(other_scientist).post(MODELS, {"name": "credit-scoring"}, format="json")
    text = response.content.decode()
    assert "credit-scoring" not in text
    assert "owner-scientist" not in text
    assert "exists" not in text


def test_visible_model_name_is_a_plain_conflict(api, owner, credit_model):
    """The owner sees the model, so the answer may say so."""
    response = api(owner).post(MODELS, {"name": "credit-scoring"}, format="json")
    assert response.status_code == 409
    assert "exists" in response.json()["errors"][0]["message"]


def test_user_granted_view_gets_the_plain_conflict(api, owner, other_scientist, credit_model):
    model_permission_grant(
        actor=owner, model=credit_model, grantee=other_scientist, permission="view_registeredmodel"
    )
    response = api(other_scientist).post(MODELS, {"name": "credit-scoring"}, format="json")
    assert response.status_code == 409


def test_outsider_gets_the_same_403_for_taken_and_free_names(api, outsider, credit_model):
    taken = api(outsider).post(MODELS, {"name": "credit-scoring"}, format="json")
    free = api(outsider).post(MODELS, {"name": "never-registered"}, format="json")
    assert taken.status_code == free.status_code == 403
    assert taken.json() == free.json()


def test_refusal_of_a_hidden_name_is_logged(api, other_scientist, credit_model, caplog):
    with caplog.at_level(logging.WARNING, logger="modelgov.security"):
        api(other_scientist).post(MODELS, {"name": "credit-scoring"}, format="json")
    assert any(
        "other-scientist" in r.getMessage() and "credit-scoring" in r.getMessage()
        for r in caplog.records
    )


def test_name_taken_between_check_and_insert_is_refused_the_same_way(
    api, owner, other_scientist, monkeypatch
):
    """A model registered by someone else after the check but before the insert: the unique
    constraint refuses the insert, and the answer still does not confirm it."""
    real = version_services._refuse_taken_model_name
    calls = []

    def first_check_misses(actor, name):
        if actor == owner:
            return real(actor, name)
        calls.append(name)
        if len(calls) == 1:
            services.registered_model_create(actor=owner, name=name)  # the racing writer
            return None
        return real(actor, name)

    monkeypatch.setattr(version_services, "_refuse_taken_model_name", first_check_misses)
    response = api(other_scientist).post(MODELS, {"name": "racy"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": UNAVAILABLE}
    assert len(calls) == 2


def test_admin_add_form_does_not_confirm_a_hidden_model(client, other_scientist, credit_model):
    client.force_login(other_scientist)
    before = _counts()
    response = client.post(
        "/admin/registry/registeredmodel/add/",
        {
            "name": "credit-scoring",
            "risk_tier": "high",
            "tags": "[]",
            "owner": other_scientist.pk,
            "business_unit": "Retail",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    text = response.content.decode()
    assert services.MODEL_NAME_UNAVAILABLE in text
    assert "already exists" not in text
    assert _counts() == before
