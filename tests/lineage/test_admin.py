"""Lineage drawings on the admin pages of model versions and datasets."""

import uuid

import pytest

from registry.models import Dataset, ModelVersion
from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db


def test_version_page_draws_its_lineage_with_escaped_labels(client, post, superuser):
    facet = {"name": "churn", "sha256": "f" * 64}
    post(
        run_event(
            run_id=uuid.uuid4(),
            inputs=[("s3://x", "<b>raw</b>")],
            outputs=[dataset("s3://m", "churn", modelgov_model=facet)],
        )
    )
    client.force_login(superuser)
    version = ModelVersion.objects.get()
    html = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "<svg" in html and "churn v1" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "<b>raw</b>" not in html


def test_dataset_page_draws_every_version(client, post, superuser):
    post(run_event(inputs=[("s3://x", "a")], outputs=[("s3://x", "b")]))
    client.force_login(superuser)
    target = Dataset.objects.get(name="b")
    html = client.get(f"/admin/registry/dataset/{target.pk}/change/").content.decode()
    assert "<svg" in html and "run " in html


def test_raw_events_are_read_only_in_the_admin(client, post, superuser):
    post(run_event())
    client.force_login(superuser)
    assert client.get("/admin/lineage/lineageevent/add/").status_code == 403
    from lineage.models import LineageEvent

    event = LineageEvent.objects.get()
    assert client.get(f"/admin/lineage/lineageevent/{event.pk}/delete/").status_code == 403


def test_raw_events_list_newest_first_and_drills_into_the_dates_received(client, post, superuser):
    from datetime import UTC, datetime

    from lineage.models import LineageEvent

    post(run_event(job="older"))
    post(run_event(job="newer"))
    older = LineageEvent.objects.get(job_name="older")
    # received long after it happened: the list goes by when it arrived
    LineageEvent.objects.filter(pk=older.pk).update(
        received_at=datetime(2025, 3, 1, tzinfo=UTC), event_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    client.force_login(superuser)
    html = client.get("/admin/lineage/lineageevent/").content.decode()
    assert html.index(">newer<") < html.index(">older<")
    assert "received_at__year=2025" in html and "event_time__year" not in html
    listed = client.get("/admin/lineage/lineageevent/?received_at__year=2025").content.decode()
    assert ">older<" in listed and ">newer<" not in listed
