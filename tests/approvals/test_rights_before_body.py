"""Visible but not allowed is a 403 decided before the body is read: a caller who may see a
model but not act on it learns nothing from how their body is judged (a malformed or wrong
body still answers 403), and nothing is written."""

import pytest

from approvals.models import PromotionDecision, PromotionRequest
from audit.models import AuditEvent
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

BODIES = [b'{"bogus": 1}', b"{", b'"text"', b"[]"]


@pytest.fixture
def pending(file, version):
    return file(version, "staging")


def _snapshot():
    return (
        AuditEvent.objects.count(),
        list(RegisteredModel.objects.values()),
        list(ModelVersion.objects.values()),
        list(PromotionRequest.objects.values()),
        PromotionDecision.objects.count(),
    )


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/promotions/{pending}/approve"),
        ("post", "/api/v1/promotions/{pending}/reject"),
        ("post", "/api/v1/promotions/{pending}/cancel"),
        ("post", "/api/v1/models/credit-scoring/versions/1/promotions"),
        ("post", "/api/v1/models/credit-scoring/versions/"),
        ("patch", "/api/v1/models/credit-scoring/versions/1/"),
        ("patch", "/api/v1/models/credit-scoring/"),
    ],
)
def test_a_viewer_who_may_not_act_gets_403_whatever_the_body(
    api, auditor, pending, method, path, body
):
    client = api(auditor)
    assert client.get("/api/v1/models/credit-scoring/").status_code == 200  # visible
    before = _snapshot()

    response = getattr(client, method)(
        path.format(pending=pending.pk), body, content_type="application/json"
    )

    assert response.status_code == 403, response.content
    assert _snapshot() == before
