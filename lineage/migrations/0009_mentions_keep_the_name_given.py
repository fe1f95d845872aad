"""A model mention keeps the name its event gives (`named`) beside the model's name now
(`model_name`, which renames change): an event mapped after its model was renamed (still
pending, or rejected and mapped again) registers its version with that model, not with a new
model under the old name. One mention per name the event gives.

Stored mentions: a mention whose model name the event gives took that name; of an event whose
mentions were renamed, a single renamed mention is paired with the single name the event gives
that no mention holds. Where several were renamed, they keep the model's name now."""

from django.db import migrations, models


def _names_given(payload) -> set[str]:
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    names = set()
    for output in outputs if isinstance(outputs, list) else ():
        facets = output.get("facets") if isinstance(output, dict) else None
        facet = facets.get("modelgov_model") if isinstance(facets, dict) else None
        name = facet.get("name") if isinstance(facet, dict) else None
        if isinstance(name, str):
            names.add(name)
    return names


def forwards(apps, schema_editor):
    ModelMention = apps.get_model("lineage", "ModelMention")
    LineageEvent = apps.get_model("lineage", "LineageEvent")
    ModelMention.objects.update(named=models.F("model_name"))
    by_event: dict[int, list] = {}
    for mention in ModelMention.objects.order_by("pk"):
        by_event.setdefault(mention.event_id, []).append(mention)
    payloads = LineageEvent.objects.filter(pk__in=list(by_event)).values_list("pk", "payload")
    for pk, payload in payloads.iterator(chunk_size=500):
        given = _names_given(payload)
        renamed = [m for m in by_event[pk] if m.model_name not in given]
        unclaimed = given - {m.model_name for m in by_event[pk]}
        if len(renamed) == 1 and len(unclaimed) == 1:
            renamed[0].named = unclaimed.pop()
            renamed[0].save(update_fields=["named"])


class Migration(migrations.Migration):
    dependencies = [("lineage", "0008_model_nodes_follow_renames")]

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
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
