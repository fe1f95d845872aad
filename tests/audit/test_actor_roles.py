"""The caller's roles are read once per request and shared by every role check and every
audit event of it; a role granted or withdrawn counts from the next request."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _role_reads(call):
    with CaptureQueriesContext(connection) as captured:
        response = call()
    reads = [q["sql"] for q in captured.captured_queries if "auth_user_groups" in q["sql"]]
    return response, reads


def test_an_audited_request_reads_the_callers_roles_once(token_client, auditor):
    client = token_client(auditor)
    assert client.get("/api/v1/audit/events").status_code == 200  # the token's first use
    # The export asks "is this an auditor?" twice (the door, then the listing) and records
    # who exported: one read of the caller's roles serves all three.
    response, reads = _role_reads(lambda: client.get("/api/v1/audit/events/export?format=csv"))
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert len(reads) == 1, reads
    event = AuditEvent.objects.filter(action="audit.export.created").get()
    assert event.actor_kind == "user"


def test_a_withdrawn_role_counts_from_the_next_request(token_client, auditor):
    client = token_client(auditor)
    assert client.get("/api/v1/audit/events").status_code == 200
    auditor.groups.remove(Group.objects.get(name="auditor"))
    assert client.get("/api/v1/audit/events").status_code == 403
    auditor.groups.add(Group.objects.get(name="auditor"))
    assert client.get("/api/v1/audit/events").status_code == 200


def test_a_pipeline_leaving_its_role_records_as_a_user_from_the_next_request(
    token_client, pipeline
):
    client = token_client(pipeline)
    body = {"namespace": "airflow", "name": "train"}
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 201
    pipeline.groups.set([Group.objects.get(name="data-scientist")])
    body = {"namespace": "airflow", "name": "score"}
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 201
    kinds = AuditEvent.objects.filter(action="registry.job.created").order_by("id")
    assert list(kinds.values_list("actor_kind", flat=True)) == ["service", "user"]


def test_roles_changed_through_the_same_user_object_count_at_once(auditor, pipeline):
    from audit.selectors import is_auditor, role_names

    assert is_auditor(auditor) and role_names(pipeline) == {"pipeline"}
    auditor.groups.remove(Group.objects.get(name="auditor"))
    pipeline.groups.add(Group.objects.get(name="data-scientist"))
    assert not is_auditor(auditor)
    assert role_names(pipeline) == {"pipeline", "data-scientist"}
    pipeline.groups.clear()
    assert role_names(pipeline) == frozenset()
