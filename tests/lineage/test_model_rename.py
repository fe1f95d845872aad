"""A model's node ids carry its name (`model:{name}:{version}`): a rename renames them, in the
rename's transaction, so the versions keep their lineage and a model given the old name later
inherits none of it, nor the events naming the old model."""

import json
import threading
import time
import uuid

import pytest
from django.db import DatabaseError
from rest_framework.test import APIClient

from approvals import gates
from audit.models import AuditEvent
from lineage import nodes
from lineage.models import Edge, LineageEvent, ModelMention, Relation
from lineage.services import add_edges
from modelcards.selectors import training_data
from registry import hooks, services
from registry.models import RegisteredModel
from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db

SECRET = {"name": "secret-model", "artifactUri": "s3://vault/secret.pkl", "sha256": "b" * 64}


@pytest.fixture
def trained(owner, pipeline):
    """Model `pd`, version 1 trained by a run on `s3://f/features@v1`."""
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job)
    features = services.dataset_create(actor=pipeline, namespace="s3://f", name="features")
    services.dataset_version_create(actor=pipeline, dataset=features, version="v1")
    add_edges(
        {(nodes.dataset_id("s3://f", "features", "v1"), nodes.run_id(run.run_id), Relation.INPUT)}
    )
    model = services.registered_model_create(actor=owner, name="pd")
    version = services.model_version_create(actor=owner, model=model, training_run=run)
    return {"model": model, "version": version, "run": run}


def _edges(name: str) -> set[tuple[str, str, str]]:
    prefix = nodes.model_prefix(name)
    return set(
        Edge.objects.filter(target__startswith=prefix).values_list("source", "target", "relation")
    )


def _mlflow_rename(user, name, new_name):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        "/api/2.0/mlflow/registered-models/rename",
        {"name": name, "new_name": new_name},
        format="json",
    )


def test_a_rename_renames_the_versions_nodes_and_audits_it(owner, trained):
    before = _edges("pd")
    assert len(before) == 2  # output of the run, trained on the features
    events = AuditEvent.objects.count()
    response = _mlflow_rename(owner, "pd", "credit-pd")
    assert response.status_code == 200, response.content
    assert _edges("pd") == set()
    expected = {(s, t.replace("model:pd:", "model:credit-pd:"), r) for s, t, r in before}
    assert _edges("credit-pd") == expected
    assert set(
        Edge.objects.filter(target__startswith="model:credit-pd:").values_list(
            "target_base", "model_name"
        )
    ) == {("model:credit-pd:1", "credit-pd")}
    added = list(AuditEvent.objects.order_by("id")[events:])
    assert [e.action for e in added] == [
        "registry.registered_model.renamed",
        "lineage.model.renamed",
    ]
    assert added[1].object_id == str(trained["model"].pk)
    assert added[1].changes == {
        "nodes": ["model:pd:*", "model:credit-pd:*"],
        "edges": 2,
        "events": 0,
    }
    assert added[1].actor_id == owner.pk


def test_the_renamed_version_keeps_its_training_data_and_lineage_gate(owner, trained):
    services.registered_model_rename(actor=owner, model=trained["model"], new_name="credit-pd")
    version = RegisteredModel.objects.get(name="credit-pd").versions.get()
    assert [row["version"] for row in training_data(version)] == ["v1"]
    version.training_run = None  # the gate reads the graph for a version naming no run
    assert gates._training_lineage(version) is None


def test_a_model_given_the_old_name_inherits_no_lineage(owner, other_scientist, trained):
    services.registered_model_rename(actor=owner, model=trained["model"], new_name="credit-pd")
    newcomer = services.registered_model_create(actor=other_scientist, name="pd")
    version = services.model_version_create(actor=other_scientist, model=newcomer)
    assert _edges("pd") == set()
    assert training_data(version) == []
    assert gates._training_lineage(version) is not None


def test_inputs_arriving_after_the_rename_are_linked_to_the_renamed_version(
    owner, pipeline, trained
):
    from lineage.services import _link_models

    services.registered_model_rename(actor=owner, model=trained["model"], new_name="credit-pd")
    late = nodes.dataset_id("s3://f", "labels", "v3")
    run_node = nodes.run_id(trained["run"].run_id)
    add_edges({(late, run_node, Relation.INPUT)})
    assert _link_models(owner, {run_node}) == 1
    assert (late, "model:credit-pd:1", Relation.TRAINED_ON) in _edges("credit-pd")
    assert _edges("pd") == set()


def test_only_the_renamed_models_nodes_change(owner, trained):
    """A name holding `_` (a LIKE wildcard) renames only its own nodes."""
    for name in ("a_b", "axb"):
        version = services.model_version_create(
            actor=owner, model=services.registered_model_create(actor=owner, name=name)
        )
        add_edges({("dataset:s3://f:features#v1", nodes.model_id(name, 1), Relation.TRAINED_ON)})
        assert version.version == 1
    untouched = _edges("axb") | _edges("pd")
    services.registered_model_rename(
        actor=owner, model=RegisteredModel.objects.get(name="a_b"), new_name="ab"
    )
    assert _edges("axb") | _edges("pd") == untouched
    assert _edges("a_b") == set()
    assert _edges("ab") == {("dataset:s3://f:features#v1", "model:ab:1", "trained_on")}


def test_a_model_without_lineage_is_renamed_without_a_lineage_event(owner):
    model = services.registered_model_create(actor=owner, name="plain")
    services.registered_model_rename(actor=owner, model=model, new_name="plain-2")
    assert not AuditEvent.objects.filter(action="lineage.model.renamed").exists()


@pytest.mark.django_db(transaction=True)
def test_when_the_nodes_cannot_be_renamed_the_rename_is_undone(owner, trained, monkeypatch):
    events = AuditEvent.objects.count()

    def failing(**kwargs):
        raise DatabaseError("edge update failed")

    monkeypatch.setitem(hooks._MODEL_RENAMED, "lineage.model_nodes", failing)
    with pytest.raises(DatabaseError):
        services.registered_model_rename(actor=owner, model=trained["model"], new_name="x-pd")
    assert RegisteredModel.objects.filter(name="pd").exists()
    assert AuditEvent.objects.count() == events
    assert len(_edges("pd")) == 2


def test_events_naming_the_old_model_stay_hidden_from_the_new_holder_of_its_name(
    api, post, pipeline, other_scientist
):
    event = run_event(
        run_id=uuid.uuid4(),
        inputs=[("s3://lake", "applicants")],
        outputs=[dataset("s3://models", "secret", modelgov_model=SECRET)],
    )
    assert post(event).status_code == 201
    model = RegisteredModel.objects.get(name="secret-model")
    services.registered_model_rename(actor=pipeline, model=model, new_name="vault-model")
    assert set(ModelMention.objects.values_list("model_name", flat=True)) == {"vault-model"}
    services.registered_model_create(actor=other_scientist, name="secret-model")
    body = api(other_scientist).get("/api/v1/events/lineage").json()
    assert body["totalCount"] == 0, body
    assert "s3://vault/secret.pkl" not in json.dumps(body)
    edges = api(other_scientist).get(
        "/api/v1/lineage", {"nodeId": nodes.dataset_id("s3://lake", "applicants"), "depth": 5}
    )
    assert "vault" not in edges.content.decode() and "secret-model" not in edges.content.decode()
    # and the pipeline, who may see the renamed model, still sees the event under its new name
    assert api(pipeline).get("/api/v1/events/lineage").json()["totalCount"] == 1


def test_an_event_naming_both_names_keeps_both_mentions(post, pipeline):
    """An event may name a model that does not exist (its mapping was rejected, say): when a
    model is renamed to that name, both mentions name it, each keeping the name given."""
    assert (
        post(
            run_event(outputs=[dataset("s3://models", "secret", modelgov_model=SECRET)])
        ).status_code
        == 201
    )
    event = LineageEvent.objects.get()
    ModelMention.objects.create(event=event, named="later-name", model_name="later-name")
    model = RegisteredModel.objects.get(name="secret-model")
    services.registered_model_rename(actor=pipeline, model=model, new_name="later-name")
    assert set(ModelMention.objects.values_list("event", "named", "model_name")) == {
        (event.pk, "secret-model", "later-name"),
        (event.pk, "later-name", "later-name"),
    }
    renamed = AuditEvent.objects.get(action="lineage.model.renamed")
    assert renamed.changes["events"] == 1


def test_an_event_mapped_after_its_model_was_renamed_registers_with_that_model(
    post, pipeline, settings
):
    """Accepted while the model had its old name and mapped after the rename: the version is
    the renamed model's, not a new model's under the old name."""
    trained = run_event(
        run_id=uuid.uuid4(), outputs=[dataset("s3://models", "v1", modelgov_model=SECRET)]
    )
    assert post(trained).status_code == 201
    model = RegisteredModel.objects.get(name="secret-model")
    settings.LINEAGE_MAP_INLINE = False
    run_id = uuid.uuid4()
    retrained = run_event(
        run_id=run_id,
        inputs=[("s3://lake", "applicants")],
        outputs=[dataset("s3://models", "v2", modelgov_model={**SECRET, "sha256": "c" * 64})],
    )
    assert post(retrained).status_code == 201
    services.registered_model_rename(actor=pipeline, model=model, new_name="vault-model")
    from lineage.services import lineage_events_map

    assert lineage_events_map().mapped == 1
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["vault-model"]
    version = model.versions.get(artifact_sha256="c" * 64)
    assert version.version == 2 and version.training_run.run_id == run_id
    assert _edges("vault-model") >= {
        (nodes.run_id(run_id), nodes.model_id("vault-model", 2), "output"),
        (
            nodes.dataset_id("s3://lake", "applicants", "external"),
            nodes.model_id("vault-model", 2),
            "trained_on",
        ),
    }
    assert not _edges("secret-model")
    assert set(ModelMention.objects.values_list("named", "model_name")) == {
        ("secret-model", "vault-model")
    }


def _held_after(monkeypatch, name):
    """Patch lineage.services.`name` to stop the mapper after its first call until released:
    (reached, release) events."""
    from lineage import services as lineage

    reached, release = threading.Event(), threading.Event()
    real = getattr(lineage, name)

    def then_hold(*args, **kwargs):
        result = real(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            release.wait(timeout=30)
        return result

    monkeypatch.setattr(lineage, name, then_hold)
    return reached, release


def _rename_while_held(pipeline, reached, release):
    """Map what is pending in one thread; once it is held, rename `churn` to `churn-2` in
    another, let the mapper go a second later and wait for both: the errors they raised."""
    from django.db import connection

    from lineage import services as lineage

    errors = []

    def in_thread(work):
        def run():
            try:
                work()
            except Exception as exc:  # reported to the caller
                errors.append(exc)
            finally:
                connection.close()

        return threading.Thread(target=run)

    mapper = in_thread(lineage.lineage_events_map_all)
    renamer = in_thread(
        lambda: services.registered_model_rename(
            actor=pipeline, model=RegisteredModel.objects.get(name="churn"), new_name="churn-2"
        )
    )
    mapper.start()
    assert reached.wait(timeout=30)
    renamer.start()
    time.sleep(1)  # the rename reaches the model's lock (or, unlocked, gets ahead)
    release.set()
    mapper.join(timeout=60)
    renamer.join(timeout=60)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rename_while_a_mapper_links_the_model_renames_what_the_mapper_wrote(
    pipeline, settings, monkeypatch
):
    """The mapper holds the model until its batch commits: a rename waits for it, then renames
    the nodes it wrote, instead of missing them (left under the old name)."""
    from lineage import services as lineage
    from tests.lineage.test_arrival_order import _map_each, model_training

    settings.LINEAGE_MAP_INLINE = False
    _, start, complete, _ = model_training()
    _map_each(pipeline, [complete])
    monkeypatch.setattr(lineage, "_enqueue_mapping", lambda: None)  # mapped below, held
    lineage.lineage_events_accept(actor=pipeline, payloads=[start])  # its inputs, late
    reached, release = _held_after(monkeypatch, "_link_models")
    assert _rename_while_held(pipeline, reached, release) == []
    assert _edges("churn") == set()
    trained = {s for s, _, r in _edges("churn-2") if r == Relation.TRAINED_ON}
    assert len(trained) == len(start["inputs"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rename_while_a_mapper_re_points_then_links_the_model_does_not_deadlock(
    pipeline, settings, monkeypatch
):
    """One batch first re-points the training run's input (its producer arrives late, which
    moves the model's trained-on edges), then, for another poster, links a new input of that
    run to the model. A rename in between waits for the mapper. Had the re-point moved the
    model's edges without holding the model, the rename would hold the model and wait for those
    edges while the mapper waited for the model: a deadlock, and one of them undone."""
    from lineage import services as lineage
    from tests.conftest import _user
    from tests.lineage.test_arrival_order import _event, _map_each, model_training

    settings.LINEAGE_MAP_INLINE = False
    produce, start, complete, _ = model_training()
    _map_each(pipeline, [start, complete])
    monkeypatch.setattr(lineage, "_enqueue_mapping", lambda: None)  # mapped below, held
    lineage.lineage_events_accept(actor=pipeline, payloads=[produce])  # 06:00, first
    extra = _event("train", "train_churn", "2026-11-01T11:00:00Z", ["extra"], (), "RUNNING")
    lineage.lineage_events_accept(actor=_user("pipeline-two", "pipeline"), payloads=[extra])
    reached, release = _held_after(monkeypatch, "_move_input")
    assert _rename_while_held(pipeline, reached, release) == []
    assert _edges("churn") == set()
    trained = {s for s, _, r in _edges("churn-2") if r == Relation.TRAINED_ON}
    assert {nodes.base_of(s).rpartition(":")[2] for s in trained} >= {"features", "extra"}
    assert not any(s.endswith("#external") for s in trained if "features" in s)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rename_committed_while_a_mapper_reads_the_names_is_followed(
    pipeline, settings, monkeypatch
):
    """The mapper reads the batch's renamed mentions, then a rename commits before it holds
    the model: it finds no model by the name it read, reads the event's mention again and
    registers with the renamed model, not with a new one under the old name."""
    from lineage import services as lineage
    from tests.lineage.test_arrival_order import _map_each, model_training

    settings.LINEAGE_MAP_INLINE = False
    _, _, complete, _ = model_training()
    _map_each(pipeline, [complete])  # `churn` v1
    again = json.loads(json.dumps(complete).replace("ab" * 32, "cd" * 32))
    again["run"]["runId"] = str(uuid.uuid4())
    monkeypatch.setattr(lineage, "_enqueue_mapping", lambda: None)  # mapped below, held
    lineage.lineage_events_accept(actor=pipeline, payloads=[again])
    reached, release = _held_after(monkeypatch, "_models_now")
    assert _rename_while_held(pipeline, reached, release) == []
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["churn-2"]
    assert RegisteredModel.objects.get().versions.filter(artifact_sha256="cd" * 32).exists()
    assert _edges("churn") == set()
