"""A model mention keeps the name its event gives (`named`) beside the model's name now
(`model_name`, which renames change): an event mapped after its model was renamed (still
pending, or rejected and mapped again) registers its version with that model, not with a new
model under the old name. One mention per name the event gives.

Stored mentions: each name an event gives is matched to the model that held it when the event
was received (or, if none did, the first to take it afterwards), from the audit log's renames
as in 0008; a mention is the one whose model name is that model's name now. A name whose
mention an earlier rename merged away gets its mention back."""

from importlib import import_module

from django.db import migrations, models

# who held which name when (0008's reading of the audit log's renames)
_holders = import_module("lineage.migrations.0008_model_nodes_follow_renames")._holders


def _names_given(payload) -> list[str]:
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    names = set()
    for output in outputs if isinstance(outputs, list) else ():
        facets = output.get("facets") if isinstance(output, dict) else None
        facet = facets.get("modelgov_model") if isinstance(facets, dict) else None
        name = facet.get("name") if isinstance(facet, dict) else None
        if isinstance(name, str) and name:
            names.add(name)
    return sorted(names)


def forwards(apps, schema_editor):
    ModelMention = apps.get_model("lineage", "ModelMention")
    LineageEvent = apps.get_model("lineage", "LineageEvent")
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    ModelMention.objects.update(named=models.F("model_name"))
    holders = _holders(apps)
    current = dict(RegisteredModel.objects.values_list("pk", "name"))

    def name_now(given: str, at) -> str:
        spans = holders.get(given, ())
        held = [pk for (start, until), pk in spans if start <= at and (until is None or at < until)]
        later = sorted((start, pk) for (start, _), pk in spans if start > at)
        holder = held[0] if held else later[0][1] if later else None
        return current[holder] if holder is not None else given

    by_event: dict[int, list] = {}
    for mention in ModelMention.objects.order_by("pk"):
        by_event.setdefault(mention.event_id, []).append(mention)
    events = LineageEvent.objects.filter(pk__in=list(by_event)).values_list(
        "pk", "received_at", "payload"
    )
    for pk, received_at, payload in events.iterator(chunk_size=500):
        now = {given: name_now(given, received_at) for given in _names_given(payload)}
        open_names = set(now)
        for mention in by_event[pk]:
            matching = sorted(g for g in open_names if now[g] == mention.model_name)
            if not matching:
                continue  # a name the event does not give: it keeps its own
            named = mention.model_name if mention.model_name in matching else matching[0]
            open_names.discard(named)
            if named != mention.named:
                mention.named = named
                mention.save(update_fields=["named"])
        held = {mention.model_name for mention in by_event[pk]}
        ModelMention.objects.bulk_create(
            ModelMention(event_id=pk, named=given, model_name=now[given])
            for given in sorted(open_names)
            if now[given] in held  # merged away by a rename before this
        )


def backwards(apps, schema_editor):
    """One mention per model name again, as 0008 kept them."""
    ModelMention = apps.get_model("lineage", "ModelMention")
    seen = set()
    for pk, event, name in ModelMention.objects.order_by("pk").values_list(
        "pk", "event", "model_name"
    ):
        if (event, name) in seen:
            ModelMention.objects.filter(pk=pk).delete()
        seen.add((event, name))


class Migration(migrations.Migration):
    dependencies = [
        ("lineage", "0008_model_nodes_follow_renames"),
        ("registry", "0013_dataset_version_schema_at"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="modelmention", name="uniq_model_mention"),
        migrations.AddField(
            model_name="modelmention",
            name="named",
            field=models.CharField(default="", max_length=100),
            preserve_default=False,
        ),
        # the constraint on the names given follows in 0010: on PostgreSQL a table cannot be
        # altered in the transaction that updated its rows
        migrations.RunPython(forwards, backwards),
    ]
