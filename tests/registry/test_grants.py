"""Sharing a model: object-permission grants through the API, audited."""

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
GRANTS = "/api/v1/models/credit-scoring/grants/"


def test_owner_grants_change_permission_to_a_user(api, owner, other_scientist, credit_model):
    response = api(owner).post(
        GRANTS,
        {"user": other_scientist.username, "permission": "change_registeredmodel"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == [
        {"user": other_scientist.username, "group": None, "permission": "change_registeredmodel"}
    ]
    assert (
        api(other_scientist)
        .patch("/api/v1/models/credit-scoring/", {"description": "y"}, format="json")
        .status_code
        == 200
    )
    event = AuditEvent.objects.get(action="registry.permission.granted")
    assert event.changes == {
        "permission": "change_registeredmodel",
        "user": other_scientist.username,
    }


def test_grant_to_a_group_reaches_its_members(api, owner, validator, credit_model):
    api(owner).post(
        GRANTS, {"group": "model-validator", "permission": "change_registeredmodel"}, format="json"
    )
    assert validator.groups.filter(name="model-validator").exists()
    response = api(validator).patch(
        "/api/v1/models/credit-scoring/", {"description": "z"}, format="json"
    )
    assert response.status_code == 200


def test_revoke_withdraws_the_grant(api, owner, other_scientist, credit_model):
    client = api(owner)
    payload = {"user": other_scientist.username, "permission": "view_registeredmodel"}
    client.post(GRANTS, payload, format="json")
    response = client.post(GRANTS + "revoke/", payload, format="json")
    assert response.status_code == 200
    assert response.json() == []
    assert api(other_scientist).get("/api/v1/models/credit-scoring/").status_code == 404


def test_revoking_a_grant_that_does_not_exist_is_a_conflict(
    api, owner, other_scientist, credit_model
):
    response = api(owner).post(
        GRANTS + "revoke/",
        {"user": other_scientist.username, "permission": "view_registeredmodel"},
        format="json",
    )
    assert response.status_code == 409
    assert not AuditEvent.objects.filter(action="registry.permission.revoked").exists()


def test_granting_twice_is_a_conflict(api, owner, other_scientist, credit_model):
    payload = {"user": other_scientist.username, "permission": "view_registeredmodel"}
    assert api(owner).post(GRANTS, payload, format="json").status_code == 200
    assert api(owner).post(GRANTS, payload, format="json").status_code == 409
    assert AuditEvent.objects.filter(action="registry.permission.granted").count() == 1


def test_reviewer_cannot_grant(api, validator, other_scientist, credit_model):
    response = api(validator).post(
        GRANTS,
        {"user": other_scientist.username, "permission": "change_registeredmodel"},
        format="json",
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="registry.permission.granted").exists()


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"permission": "change_registeredmodel"}, None),
        (
            {"user": "owner-scientist", "group": "auditor", "permission": "view_registeredmodel"},
            None,
        ),
        ({"user": "ghost", "permission": "view_registeredmodel"}, "user"),
        ({"user": "owner-scientist", "permission": "delete_registeredmodel"}, "permission"),
        ({"user": "owner-scientist", "permission": "view_registeredmodel", "x": 1}, "x"),
    ],
)
def test_bad_grants_are_refused(api, owner, credit_model, payload, field):
    Group.objects.get(name="auditor")
    response = api(owner).post(GRANTS, payload, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert not AuditEvent.objects.filter(action="registry.permission.granted").exists()


def test_grants_of_an_invisible_model_answer_404(api, other_scientist, credit_model):
    assert api(other_scientist).get(GRANTS).status_code == 404


def test_the_grants_list_matches_its_schema_with_an_appointed_approver(
    api, owner, validator, superuser, credit_model
):
    """The list shows every object permission held, also those another app grants, and the
    schema allows each value it shows."""
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    from approvals.services import decide_permission_grant

    decide_permission_grant(actor=superuser, model=credit_model, grantee=validator)
    body = api(owner).get(GRANTS).json()
    assert {"user": "validator", "group": None, "permission": "decide_promotion"} in body
    document = SchemaGenerator().get_schema(request=None, public=True)
    operation = document["paths"]["/api/v1/models/{name}/grants/"]["get"]
    response_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(
        body, _nullable_as_null({**response_schema, "components": document["components"]})
    )


def _nullable_as_null(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's `"type": [..., "null"]`."""
    if isinstance(node, dict):
        node = {key: _nullable_as_null(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable_as_null(item) for item in node]
    return node
