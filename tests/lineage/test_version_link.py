"""A version written with a training run is linked to the run, and to the data the run read,
in the transaction that writes the version, whichever door it came through. When the link
cannot be written, nothing is: no version, no audit event."""

import pytest
from django.db import DatabaseError
from rest_framework.test import APIClient

from audit.models import AuditEvent
from lineage import nodes
from lineage.models import Edge, Relation
from lineage.services import add_edges
from registry import services
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

MODEL_NODE = "model:pd:1"


@pytest.fixture
def trained(owner, pipeline):
    """A model `pd` and a run whose input (a dataset version) is in the graph."""
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job)
    dataset = services.dataset_create(actor=pipeline, namespace="s3://f", name="features")
    services.dataset_version_create(actor=pipeline, dataset=dataset, version="v1")
    data_node = nodes.dataset_id("s3://f", "features", "v1")
    add_edges({(data_node, nodes.run_id(run.run_id), Relation.INPUT)})
    services.registered_model_create(actor=owner, name="pd")
    return {
        "run": run,
        "edges": {
            (nodes.run_id(run.run_id), MODEL_NODE, "output"),
            (data_node, MODEL_NODE, "trained_on"),
        },
    }


def _model_edges():
    return set(Edge.objects.filter(target=MODEL_NODE).values_list("source", "target", "relation"))


def _api_create(user, run, client=None):
    client = client or APIClient()
    client.force_authenticate(user)
    return client.post(
        "/api/v1/models/pd/versions/", {"training_run": str(run.run_id)}, format="json"
    )


def _mlflow_create(user, run, client=None):
    client = client or APIClient()
    client.force_authenticate(user)
    return client.post(
        "/api/2.0/mlflow/model-versions/create",
        {"name": "pd", "source": "s3://models/pd/1", "run_id": str(run.run_id)},
        format="json",
    )


DOORS = {"api": _api_create, "mlflow": _mlflow_create}


@pytest.mark.parametrize("door", DOORS)
def test_a_version_with_a_training_run_is_linked_and_audited(door, owner, trained):
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    response = DOORS[door](owner, trained["run"])
    assert response.status_code in (200, 201), response.content
    assert _model_edges() == trained["edges"]
    events = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))
    assert [e.action for e in events] == [
        "registry.model_version.created",
        "lineage.model_version.linked",
    ]
    version = ModelVersion.objects.get(model__name="pd")
    assert {e.object_id for e in events} == {str(version.pk)}
    # one transaction: both events are chained in the order written, by the same actor
    assert {e.actor_id for e in events} == {owner.pk}
    linked = events[1].changes["edges"][1]
    assert {tuple(edge) for edge in linked} == {(s, r, t) for s, t, r in trained["edges"]}


def test_the_admin_links_a_version_it_registers(client, owner, trained):
    client.force_login(owner)
    model = RegisteredModel.objects.get(name="pd")
    response = client.post(
        "/admin/registry/modelversion/add/",
        {
            "model": model.pk,
            "artifact_uri": "s3://models/pd/1",
            "artifact_sha256": "",
            "framework": "",
            "parameters": "{}",
            "metrics": "{}",
            "training_run": trained["run"].pk,
        },
    )
    assert response.status_code == 302, response.content
    assert _model_edges() == trained["edges"]
    assert AuditEvent.objects.filter(action="lineage.model_version.linked").count() == 1


def test_a_second_link_of_the_same_version_writes_and_audits_nothing(owner, trained):
    from lineage.services import model_version_link_run

    version = services.model_version_create(
        actor=owner, model=RegisteredModel.objects.get(name="pd"), training_run=trained["run"]
    )
    events = AuditEvent.objects.count()
    assert model_version_link_run(actor=owner, version=version) == 0
    assert AuditEvent.objects.count() == events
    assert _model_edges() == trained["edges"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("door", DOORS)
def test_when_the_edges_cannot_be_written_nothing_is_committed(door, owner, trained, monkeypatch):
    versions, events = ModelVersion.objects.count(), AuditEvent.objects.count()
    tried = []

    def failing_insert(*args, **kwargs):
        tried.append(args)
        raise DatabaseError("edge insert failed")

    monkeypatch.setattr(Edge.objects, "bulk_create", failing_insert)
    client = APIClient()
    client.raise_request_exception = False
    response = DOORS[door](owner, trained["run"], client)
    assert tried, "the link was never attempted"
    assert response.status_code == 500
    assert ModelVersion.objects.count() == versions
    assert AuditEvent.objects.count() == events
    assert _model_edges() == set()
