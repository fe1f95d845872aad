"""A model's node ids carry its name (`model:{name}:{version}`). Renames made before they were
renamed with the model left the edges and raw-event mentions under the old name: the renamed
model's versions lost their lineage, and a model given the old name later inherited it. Each
is moved to the model that held its name when it was stored (the audit log's renames give who
held which name when), under that model's name now. An edge that then repeats one already
stored is the same edge, and is dropped."""

from django.db import migrations


def _holders(apps) -> dict[str, list[tuple[tuple, int]]]:
    """name → [((from, until), model pk)]: who held each name that a rename gave up, when."""
    AuditEvent = apps.get_model("audit", "AuditEvent")
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    renames: dict[int, list] = {}
    for object_id, at, changes in (
        AuditEvent.objects.filter(action="registry.registered_model.renamed")
        .order_by("occurred_at", "id")
        .values_list("object_id", "occurred_at", "changes")
    ):
        old, new = (changes or {}).get("name", (None, None))
        if old and new and object_id.isdigit():
            renames.setdefault(int(object_id), []).append((at, old, new))
    holders: dict[str, list[tuple[tuple, int]]] = {}
    for pk, created_at, name in RegisteredModel.objects.filter(pk__in=renames).values_list(
        "pk", "created_at", "name"
    ):
        start = created_at
        for at, old, _ in renames[pk]:
            holders.setdefault(old, []).append(((start, at), pk))
            start = at
        holders.setdefault(name, []).append(((start, None), pk))
    return holders


def _moved(node: str, old: str, new: str) -> str:
    prefix = f"model:{old}:"
    return f"model:{new}:{node[len(prefix) :]}" if node.startswith(prefix) else node


def forwards(apps, schema_editor):
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    Edge = apps.get_model("lineage", "Edge")
    ModelMention = apps.get_model("lineage", "ModelMention")
    holders = _holders(apps)
    if not holders:
        return
    names = dict(RegisteredModel.objects.values_list("pk", "name"))
    for old, spans in holders.items():
        for (start, until), pk in spans:
            new = names[pk]
            if new == old:
                continue
            window = {"created_at__gte": start}
            if until is not None:
                window["created_at__lt"] = until
            for edge in Edge.objects.filter(model_name=old, **window).order_by("pk"):
                edge.source, edge.target = (
                    _moved(edge.source, old, new),
                    _moved(edge.target, old, new),
                )
                edge.source_base = _moved(edge.source_base, old, new)
                edge.target_base = _moved(edge.target_base, old, new)
                edge.model_name = new
                if Edge.objects.filter(
                    source=edge.source, target=edge.target, relation=edge.relation
                ).exists():
                    edge.delete()
                else:
                    edge.save()
            received = {"event__received_at__gte": start}
            if until is not None:
                received["event__received_at__lt"] = until
            for mention in ModelMention.objects.filter(model_name=old, **received):
                if ModelMention.objects.filter(event_id=mention.event_id, model_name=new).exists():
                    mention.delete()
                else:
                    mention.model_name = new
                    mention.save(update_fields=["model_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("lineage", "0007_bases_of_names_holding_hash"),
        ("registry", "0012_dataset_version_schema_by_reader"),
        ("audit", "0009_merge_channel_and_txid"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
