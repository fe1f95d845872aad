"""A moment that is well-formed but outside years 1 to 9999 once in UTC (a date on the
calendar's edge with an offset) is a 400 naming the field wherever one is taken, never a 500,
and nothing is written."""

from urllib.parse import quote

import pytest

from audit.models import AuditEvent
from oversight.models import MonitoringPoint

pytestmark = pytest.mark.django_db

BEYOND = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]
EDGES = ["9999-12-31T23:59:59+00:00", "0001-01-01T05:00:00+05:00"]  # just inside


def _errors(response) -> list[dict]:
    return response.json()["errors"]


@pytest.mark.parametrize("moment", BEYOND)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/models/credit-scoring/stages?as_of={}", "as_of"),
        ("/api/v1/audit/events?since={}", "since"),
        ("/api/v1/audit/events?until={}", "until"),
        ("/api/v1/audit/events/export?format=jsonl&since={}", "since"),
        ("/api/v1/events/lineage?before={}", "before"),
        ("/api/v1/events/lineage?after={}", "after"),
        ("/api/v1/models/credit-scoring/versions/1/monitoring?since={}", "since"),
        ("/api/v1/models/credit-scoring/versions/1/monitoring?until={}", "until"),
    ],
)
def test_a_query_moment_beyond_the_calendar_is_400(
    api, superuser, credit_version, path, field, moment
):
    response = api(superuser).get(path.format(quote(moment)))

    assert response.status_code == 400, response.content
    assert [error["field"] for error in _errors(response)] == [field]


@pytest.mark.parametrize("moment", EDGES)
def test_a_moment_on_the_calendar_edge_is_taken(api, superuser, credit_version, moment):
    for path in (
        "/api/v1/models/credit-scoring/stages?as_of={}",
        "/api/v1/audit/events?since={}",
        "/api/v1/events/lineage?before={}",
        "/api/v1/models/credit-scoring/versions/1/monitoring?until={}",
    ):
        response = api(superuser).get(path.format(quote(moment)))
        assert response.status_code == 200, (path, response.content)


@pytest.mark.parametrize("moment", BEYOND)
@pytest.mark.parametrize("end", ["window_start", "window_end"])
def test_a_monitoring_window_beyond_the_calendar_is_400_and_nothing_is_recorded(
    api, owner, credit_version, end, moment
):
    point = {
        "metric": "auc",
        "value": 0.5,
        "window_start": "2026-11-23T00:00:00Z",
        "window_end": "2026-11-24T00:00:00Z",
    }
    point[end] = moment
    audited = AuditEvent.objects.count()

    response = api(owner).post(
        "/api/v1/models/credit-scoring/versions/1/monitoring", {"points": [point]}, format="json"
    )

    assert response.status_code == 400, response.content
    assert [error["field"] for error in _errors(response)] == [f"points.0.{end}"]
    assert MonitoringPoint.objects.count() == 0
    assert AuditEvent.objects.count() == audited
