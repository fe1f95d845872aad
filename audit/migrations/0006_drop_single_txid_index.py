"""The (txid, id) index serves every txid lookup; the single-column one only slowed inserts.

State and database are changed separately so that SQLite does not rebuild the table (a
rebuild would drop the append-only triggers of migration 0003).
"""

from django.db import migrations, models

INDEX = "audit_auditevent_txid_c236bb17"  # the name Django gave txid's db_index


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_owner_maintenance")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="txid",
                    field=models.BigIntegerField(blank=True, null=True),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    f"CREATE INDEX IF NOT EXISTS {INDEX} ON audit_auditevent (txid)",
                )
            ],
        )
    ]
