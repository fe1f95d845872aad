"""The entry points a newcomer opens first: the API root, the docs, the admin's "View site"."""

import pytest

from config.urls import API_ROOT

pytestmark = pytest.mark.django_db


def test_the_api_root_lists_every_resource_with_a_link(api, owner):
    response = api(owner).get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(API_ROOT)
    assert body["models"] == "http://testserver/api/v1/models/"
    assert body["audit/events"] == "http://testserver/api/v1/audit/events"
    assert body["docs"] == "http://testserver/api/v1/docs/"


def test_the_api_root_links_lead_somewhere(api, owner):
    client = api(owner)
    for name in ("models", "datasets", "jobs", "runs", "promotions", "model-cards", "health"):
        link = client.get("/api/v1/").json()[name].removeprefix("http://testserver")
        assert client.get(link).status_code == 200, name


def test_the_api_root_asks_api_clients_for_credentials(api):
    response = api().get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/docs/"])
def test_a_signed_out_browser_is_sent_to_sign_in_and_back(client, path):
    response = client.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_the_docs_open_once_signed_in(client, owner):
    client.force_login(owner)
    response = client.get("/api/v1/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content


def test_the_admin_is_called_modelgov_and_view_site_opens_the_docs(client, superuser):
    client.force_login(superuser)
    html = client.get("/admin/").content.decode()
    assert "<title>Site administration | modelgov</title>" in html or "| modelgov</title>" in html
    assert ">modelgov</a>" in html
    assert "Django administration" not in html
    assert 'href="/api/v1/docs/">View site' in html
