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


def test_every_top_level_collection_is_in_the_api_root():
    """Each collection routed at the top of /api/v1/ (a `…-list` route whose path takes no
    argument) is listed, so that the root does not fall behind a new app."""
    from django.urls import URLResolver, get_resolver

    def names(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            here = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from names(pattern, here)
            elif pattern.name and pattern.name.endswith("-list") and "(?P<" not in here:
                yield here, pattern.name

    routed = {name for path, name in names(get_resolver()) if path.startswith("api/v1/")}
    assert routed, "no collection found: the walk over the routes is broken"
    assert routed <= set(API_ROOT.values()), routed - set(API_ROOT.values())


def test_the_api_root_links_lead_somewhere(api, owner):
    client = api(owner)
    listed = client.get("/api/v1/").json()
    answers = {
        name: client.get(listed[name].removeprefix("http://testserver")).status_code
        for name in API_ROOT
    }
    # a collection or a read answers; the others are there but want a node id (400) or a
    # POST (405), or a role this user does not hold (403)
    wanting = {"lineage": 400, "lineage/upstream": 400, "lineage/downstream": 400}
    wanting |= {"lineage/impact": 400, "lineage/batch": 405, "webhooks": 403}
    wanting |= {"audit/events": 403, "audit/verify": 403}
    assert answers == {name: wanting.get(name, 200) for name in API_ROOT}


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/schema/"])
def test_the_api_root_and_schema_ask_api_clients_for_credentials(api, path):
    response = api().get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/docs/", "/api/v1/schema/"])
def test_a_signed_out_browser_is_sent_to_sign_in_and_back(client, path):
    response = client.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_the_schema_opens_in_a_browser_once_signed_in(client, owner):
    client.force_login(owner)
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: ")


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
