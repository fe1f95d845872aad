from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only")]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["txid", "id"], name="audit_txid_id_idx"),
        ),
    ]
