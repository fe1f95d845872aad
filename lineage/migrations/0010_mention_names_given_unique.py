"""One mention per model name an event gives (see 0009)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lineage", "0009_mentions_keep_the_name_given")]

    operations = [
        migrations.AddConstraint(
            model_name="modelmention",
            constraint=models.UniqueConstraint(
                fields=("event", "named"), name="uniq_model_mention_named"
            ),
        ),
    ]
