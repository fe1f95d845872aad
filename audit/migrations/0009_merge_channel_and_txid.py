from django.db import migrations


class Migration(migrations.Migration):
    """Joins two independent changes made from 0007: the MLflow channel, and the
    transaction id set by the database."""

    dependencies = [
        ("audit", "0008_channel_mlflow"),
        ("audit", "0008_txid_from_the_database"),
    ]

    operations = []
