"""Every oversight endpoint by persona: hidden → 404, visible but not allowed → 403, allowed →
2xx. Anonymous callers get 401 everywhere."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oversight import services
from oversight.models import PeriodicReview
from oversight.monitoring import Point
from tests.oversight.conftest import point

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner, validator, risk_officer, production_version, rule, approvers):
    report = services.validation_report_create(
        actor=validator, version=production_version, scope="s", methods="m"
    )
    finding = services.finding_record(actor=validator, report=report, title="t", severity="high")
    rule("auc", "lt", 0.75)
    batch = services.monitoring_points_record(
        actor=owner,
        version=production_version,
        points=[Point("auc", 0.5, timezone.now() - timedelta(hours=1), timezone.now())],
    )
    (alert_id,) = services.monitoring_breaches_evaluate(
        version_id=production_version.pk, point_ids=batch.breaching
    )
    review = PeriodicReview.objects.create(version=production_version, due_at=timezone.now())
    return {"report": report.pk, "finding": finding.pk, "alert": alert_id, "review": review.pk}


V = "/api/v1/models/credit-scoring/versions/1"
# (method, url, body, who may, who sees but may not)
MATRIX = [
    ("get", f"{V}/validation-reports", None, "auditor", None),
    ("post", f"{V}/validation-reports", {"scope": "s", "methods": "m"}, "validator_2", "auditor"),
    ("get", "/api/v1/validation-reports/{report}", None, "auditor", None),
    (
        "post",
        "/api/v1/validation-reports/{report}/findings",
        {"title": "t", "severity": "low"},
        "validator_2",
        "risk_officer",
    ),
    ("get", "/api/v1/findings/{finding}", None, "auditor", None),
    (
        "post",
        "/api/v1/findings/{finding}/close",
        {"status": "accepted", "comment": "ok"},
        "risk_officer",
        "auditor",
    ),
    ("get", f"{V}/monitoring", None, "auditor", None),
    ("post", f"{V}/monitoring", {"points": [point()]}, "owner", "auditor"),
    ("get", "/api/v1/monitoring-alerts/{alert}", None, "auditor", None),
    (
        "post",
        "/api/v1/monitoring-alerts/{alert}/resolve",
        {"comment": "ok"},
        "validator",
        "auditor",
    ),
    ("get", "/api/v1/periodic-reviews/{review}", None, "auditor", None),
    (
        "post",
        "/api/v1/periodic-reviews/{review}/complete",
        {"comment": "ok"},
        "risk_officer",
        "owner",
    ),
]
IDS = [f"{m} {u}" for m, u, *_ in MATRIX]


def _call(client, method, url, body, world):
    url = url.format(**world)
    return (
        getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    )


@pytest.mark.parametrize("method,url,body,allowed,refused", MATRIX, ids=IDS)
def test_outsiders_get_404(api, outsider, world, method, url, body, allowed, refused):
    assert _call(api(outsider), method, url, body, world).status_code == 404


@pytest.mark.parametrize("method,url,body,allowed,refused", MATRIX, ids=IDS)
def test_anonymous_gets_401(api, world, method, url, body, allowed, refused):
    assert _call(api(), method, url, body, world).status_code == 401


@pytest.mark.parametrize("method,url,body,allowed,refused", MATRIX, ids=IDS)
def test_those_allowed_succeed(request, api, world, method, url, body, allowed, refused):
    user = request.getfixturevalue(allowed)
    response = _call(api(user), method, url, body, world)
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize(
    "method,url,body,allowed,refused",
    [m for m in MATRIX if m[4]],
    ids=[i for i, m in zip(IDS, MATRIX, strict=True) if m[4]],
)
def test_those_who_see_but_may_not_get_403(
    request, api, world, method, url, body, allowed, refused
):
    user = request.getfixturevalue(refused)
    response = _call(api(user), method, url, body, world)
    assert response.status_code == 403, response.content


ADMIN_PAGES = [
    "validationreport",
    "finding",
    "monitoringalert",
    "monitoredversion",
    "thresholdrule",
    "oversightpolicy",
    "periodicreview",
    "overduereview",
]


def test_every_admin_page_renders_for_a_superuser(client, superuser, world):
    from django.apps import apps

    client.force_login(superuser)
    for name in ADMIN_PAGES:
        listing = client.get(f"/admin/oversight/{name}/")
        assert listing.status_code == 200, name
        model = apps.get_model("oversight", name)
        obj = model.objects.first()
        if obj is not None:
            page = client.get(f"/admin/oversight/{name}/{obj.pk}/change/")
            assert page.status_code == 200, name


def test_admin_lists_hide_other_peoples_models(client, outsider, world):
    client.force_login(outsider)
    for name in ("validationreport", "finding", "monitoringalert", "periodicreview"):
        page = client.get(f"/admin/oversight/{name}/").content.decode()
        assert "credit-scoring" not in page, name


@pytest.mark.parametrize(
    "url", ["/api/v1/findings", "/api/v1/monitoring-alerts", "/api/v1/periodic-reviews"]
)
def test_lists_take_a_fixed_number_of_queries(
    api, auditor, validator, world, production_version, url, django_assert_max_num_queries
):
    client = api(auditor)
    client.get(url)  # warm caches (permissions of the user object)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(url)
    report = services.validation_report_create(
        actor=validator, version=production_version, scope="s", methods="m"
    )
    for index in range(3):
        services.finding_record(actor=validator, report=report, title=f"f{index}", severity="low")
        PeriodicReview.objects.create(
            version=production_version, due_at=timezone.now(), status="completed"
        )
    with django_assert_max_num_queries(len(one)):
        assert client.get(url).status_code == 200
