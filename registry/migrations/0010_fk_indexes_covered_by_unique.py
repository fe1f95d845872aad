"""The dataset foreign keys of versions and features lose their own index: each table's unique
constraint (dataset, version) and (dataset, name) leads with the dataset and serves the same
look-ups, and one index fewer is written for each of the thousands of rows a lineage batch
inserts."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0009_version_schema_json"),
    ]

    operations = [
        migrations.AlterField(
            model_name="datasetversion",
            name="dataset",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="versions",
                to="registry.dataset",
            ),
        ),
        migrations.AlterField(
            model_name="feature",
            name="dataset",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="features",
                to="registry.dataset",
            ),
        ),
    ]
