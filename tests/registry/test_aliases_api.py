"""Model aliases through the native API: the same service as the MLflow door."""

import pytest

from audit.models import AuditEvent
from registry.models import ModelAlias

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit-scoring/aliases/"


def test_owners_set_list_and_delete_aliases(api, owner, credit_version):
    response = api(owner).post(URL, {"alias": "challenger", "version": 1}, format="json")
    assert response.status_code == 200
    assert response.json() == [{"alias": "challenger", "version": 1, "governed": False}]
    assert AuditEvent.objects.get(action="registry.model_alias.set").channel == "api"
    response = api(owner).delete(f"{URL}challenger/")
    assert (response.status_code, response.json()) == (200, [])
    assert not ModelAlias.objects.exists()


def test_a_governed_alias_is_403_and_nothing_is_written(api, owner, credit_version):
    response = api(owner).post(URL, {"alias": "champion", "version": 1}, format="json")
    assert response.status_code == 403
    assert "governed" in response.json()["errors"][0]["message"]
    assert api(owner).delete(f"{URL}production/").status_code == 403
    assert not ModelAlias.objects.exists()


def test_hidden_models_are_404_and_viewers_are_403(api, outsider, validator, credit_version):
    assert api(outsider).get(URL).status_code == 404
    assert api(outsider).post(URL, {"alias": "a", "version": 1}, format="json").status_code == 404
    assert api(validator).get(URL).status_code == 200
    assert api(validator).post(URL, {"alias": "a", "version": 1}, format="json").status_code == 403
    assert not ModelAlias.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"alias": "a", "version": 9},
        {"alias": "latest", "version": 1},
        {"alias": "Latest", "version": 1},
        {"alias": "Champion", "version": 1},
        {"alias": "PRODUCTION", "version": 1},
        {"alias": "a b", "version": 1},
        {"alias": "a", "version": "one"},
        {"alias": "a"},
        {"alias": "a", "version": 1, "extra": True},
    ],
)
def test_bad_aliases_are_refused_and_nothing_is_written(api, owner, credit_version, body):
    response = api(owner).post(URL, body, format="json")
    assert response.status_code in (400, 404)
    assert not ModelAlias.objects.exists()
