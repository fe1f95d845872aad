"""The version page is the registry's admin, with the sections the apps above it register as
panels: lineage, promotions, model cards. No app re-registers a registry model's admin."""

import pytest
from django.contrib import admin
from django.test import Client

from registry.admin import DatasetAdmin, ModelVersionAdmin
from registry.models import Dataset, ModelVersion

pytestmark = pytest.mark.django_db


def _page(user, version) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_registry_admins_are_the_registered_ones():
    assert type(admin.site.get_model_admin(ModelVersion)) is ModelVersionAdmin
    assert type(admin.site.get_model_admin(Dataset)) is DatasetAdmin
    assert [p.name for p in ModelVersionAdmin.panels] == ["lineage", "promotions", "model_cards"]
    assert [p.name for p in DatasetAdmin.panels] == ["lineage"]


def test_the_panels_follow_the_registry_sections_in_order(superuser, version):
    html = _page(superuser, version)
    positions = [
        html.index(f'class="form-row field-{name}')
        for name in ("audit_history", "lineage", "promotions", "model_cards")
    ]
    assert positions == sorted(positions)
    for title in ("Lineage", "Promotions", "Model cards"):
        assert f'class="fieldset-heading">{title}</h2>' in html, title
    assert 'href="/static/lineage/drawing.css"' in html


def test_the_promotions_panel_lists_the_versions_requests_with_their_evidence_page(
    superuser, file, version, approvers
):
    assert "None filed." in _page(superuser, version)
    request = file(version, "staging")
    html = _page(approvers["validator"], version)
    section = html[html.index("field-promotions") : html.index("field-model_cards")]
    assert (
        f'href="/admin/approvals/promotionrequest/{request.pk}/change/">#{request.pk}<' in section
    )
    assert "development → staging" in section and "owner-scientist" in section


def test_a_panel_action_is_offered_on_the_version_list(superuser, version):
    client = Client()
    client.force_login(superuser)
    html = client.get("/admin/registry/modelversion/").content.decode()
    assert 'value="generate_model_card"' in html
    popup = client.get("/admin/registry/modelversion/", {"_popup": "1"}).content.decode()
    assert 'value="generate_model_card"' not in popup
