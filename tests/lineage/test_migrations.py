"""Data migrations of the lineage graph: what they do to rows stored before them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.usefixtures("latest_schema")

BEFORE = [
    ("lineage", "0007_bases_of_names_holding_hash"),
    ("registry", "0012_dataset_version_schema_by_reader"),
    ("audit", "0009_merge_channel_and_txid"),
]
AFTER = [("lineage", "0008_model_nodes_follow_renames")]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def _renamed(apps, pk: int, old_name: str, new_name: str, hours: int) -> None:
    """The audit log's record of a model's rename, as the registry writes it."""
    apps.get_model("audit", "AuditEvent").objects.create(
        occurred_at=_at(hours),
        actor_kind="user",
        channel="api",
        action="registry.registered_model.renamed",
        object_type="registry.registeredmodel",
        object_id=str(pk),
        object_repr=new_name,
        changes={"name": [old_name, new_name]},
        context={},
    )


@pytest.mark.django_db(transaction=True)
def test_edges_and_mentions_left_under_a_renamed_models_old_name_follow_the_model(owner):
    """Model `a` is renamed `b` (before renames moved node ids), then a new model takes `a`:
    what was stored while `a` named the first model moves to `b`; what was stored after stays
    with the new `a`; an edge the move would repeat is dropped."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    models = old.get_model("registry", "RegisteredModel").objects
    edges = old.get_model("lineage", "Edge").objects
    events = old.get_model("lineage", "LineageEvent").objects
    mentions = old.get_model("lineage", "ModelMention").objects
    first = models.create(name="b", owner_id=owner.pk)
    models.filter(pk=first.pk).update(created_at=_at(0))

    def edge(source, model, hours, relation="trained_on"):
        made = edges.create(
            source=source,
            target=f"model:{model}:1",
            relation=relation,
            source_base=source.partition("#")[0],
            target_base=f"model:{model}:1",
            model_name=model,
        )
        edges.filter(pk=made.pk).update(created_at=_at(hours))

    def mention(model, hours, n):
        event = events.create(
            event_hash=str(n) * 64, kind="RunEvent", event_time=_at(hours), payload={}
        )
        events.filter(pk=event.pk).update(received_at=_at(hours))
        mentions.create(event=event, model_name=model)
        return event.pk

    edge("dataset:s3://f:features#v1", "a", 1)
    edge("run:11111111-1111-1111-1111-111111111111", "a", 1, relation="output")
    edge("dataset:s3://f:labels#v1", "a", 1)
    edge("dataset:s3://f:labels#v1", "b", 3)  # linked again after the rename, by its new name
    first_event = mention("a", 1, 1)
    _renamed(old, first.pk, "a", "b", 2)
    second = models.create(name="a", owner_id=owner.pk)
    models.filter(pk=second.pk).update(created_at=_at(4))
    edge("dataset:s3://g:other#v9", "a", 5)
    second_event = mention("a", 5, 2)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    stored = set(
        new.get_model("lineage", "Edge").objects.values_list(
            "source", "target", "relation", "target_base", "model_name"
        )
    )
    assert stored == {
        ("dataset:s3://f:features#v1", "model:b:1", "trained_on", "model:b:1", "b"),
        ("run:11111111-1111-1111-1111-111111111111", "model:b:1", "output", "model:b:1", "b"),
        ("dataset:s3://f:labels#v1", "model:b:1", "trained_on", "model:b:1", "b"),
        ("dataset:s3://g:other#v9", "model:a:1", "trained_on", "model:a:1", "a"),
    }
    named = dict(
        new.get_model("lineage", "ModelMention").objects.values_list("event_id", "model_name")
    )
    assert named == {first_event: "b", second_event: "a"}


@pytest.mark.django_db(transaction=True)
def test_without_renames_nothing_moves(owner):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("registry", "RegisteredModel").objects.create(name="a", owner_id=owner.pk)
    old.get_model("lineage", "Edge").objects.create(
        source="dataset:s3://f:x#1",
        target="model:a:1",
        relation="trained_on",
        source_base="dataset:s3://f:x",
        target_base="model:a:1",
        model_name="a",
    )
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    edge = executor.loader.project_state(AFTER).apps.get_model("lineage", "Edge").objects.get()
    assert (edge.target, edge.model_name) == ("model:a:1", "a")


def _given(*names: str) -> dict:
    return {
        "eventType": "COMPLETE",
        "outputs": [
            {"namespace": "s3://m", "name": name, "facets": {"modelgov_model": {"name": name}}}
            for name in names
        ],
    }


MENTIONS_BEFORE = [("lineage", "0008_model_nodes_follow_renames")]
MENTIONS_AFTER = [("lineage", "0010_mention_names_given_unique")]


@pytest.mark.django_db(transaction=True)
def test_mentions_learn_the_name_their_event_gave_from_the_renames(owner):
    """Each name an event gave is matched to the model that held it when the event came (or
    the first to take it after), by the audit log's renames: two models swapping names are
    told apart, and a mention an earlier rename merged away comes back. Migrating back keeps
    one mention per model name again."""
    executor = MigrationExecutor(connection)
    executor.migrate(MENTIONS_BEFORE)
    old = executor.loader.project_state(MENTIONS_BEFORE).apps
    models = old.get_model("registry", "RegisteredModel").objects
    events = old.get_model("lineage", "LineageEvent").objects
    mentions = old.get_model("lineage", "ModelMention").objects

    def model(name, hours):
        made = models.create(name=name, owner_id=owner.pk)
        models.filter(pk=made.pk).update(created_at=_at(hours))
        return made

    def rename(made, old_name, new_name, hours):
        models.filter(pk=made.pk).update(name=new_name)
        _renamed(old, made.pk, old_name, new_name, hours)

    def event(n, hours, given, held):
        made = events.create(
            event_hash=str(n) * 64, kind="RunEvent", event_time=_at(hours), payload=_given(*given)
        )
        events.filter(pk=made.pk).update(received_at=_at(hours))
        for name in held:
            mentions.create(event=made, model_name=name)
        return made.pk

    first, second, third = model("a", 0), model("b", 0), model("c", 0)
    # at hour 1 `a` is the first model, `b` the second and `c` the third; hour 2: `a` → `x`
    # and `c` → `d` (which merged the event's `c` mention into its `d`); hour 4: `b` → `a`
    rename(first, "a", "x", 2)
    rename(third, "c", "d", 2)
    rename(second, "b", "a", 4)
    swapped = event(1, 1, ("a", "b"), ("x", "a"))
    merged = event(2, 1, ("c", "d"), ("d",))
    plain = event(3, 1, ("f",), ("f",))
    lost = event(4, 3, ("b",), ("a",))  # `b` was the second model's until hour 4

    executor = MigrationExecutor(connection)
    executor.migrate(MENTIONS_AFTER)
    new = executor.loader.project_state(MENTIONS_AFTER).apps.get_model("lineage", "ModelMention")
    assert set(new.objects.values_list("event", "named", "model_name")) == {
        (swapped, "a", "x"),
        (swapped, "b", "a"),
        (merged, "c", "d"),
        (merged, "d", "d"),
        (plain, "f", "f"),
        (lost, "b", "a"),
    }

    executor = MigrationExecutor(connection)
    executor.migrate(MENTIONS_BEFORE)
    back = executor.loader.project_state(MENTIONS_BEFORE).apps.get_model("lineage", "ModelMention")
    assert sorted(back.objects.values_list("event", "model_name")) == sorted(
        [(swapped, "x"), (swapped, "a"), (merged, "d"), (plain, "f"), (lost, "a")]
    )
