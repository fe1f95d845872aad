from django.db import migrations, models
from django.db.models import Func, IntegerField


def mark_readers_schemas(apps, schema_editor):
    """A version stored without a producer but with a schema got it from a reader's event
    (what the mapper assumed before this column existed): the writer's may replace it."""
    DatasetVersion = apps.get_model("registry", "DatasetVersion")
    DatasetVersion.objects.filter(produced_by__isnull=True).annotate(
        fields=Func("schema", function="json_array_length", output_field=IntegerField())
    ).filter(fields__gt=0).update(schema_by_reader=True)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0011_run_facet_times"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="schema_by_reader",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunPython(mark_readers_schemas, migrations.RunPython.noop, elidable=True),
    ]
