"""Sealing speed on PostgreSQL: no pattern-ops copies of the hash indexes, and no foreign-key
check from seal to event (that check row-locks, and so rewrites, every sealed event's tuple).

Integrity does not depend on either: events cannot be deleted (migration 0003), the sealer
links only events it has just read, and verification reports a seal whose event is missing.
State and database are changed separately so that SQLite does not rebuild the table (which
would drop its append-only triggers); SQLite keeps its foreign key.
"""

import django.db.models.deletion
from django.db import migrations, models


def lighten(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_auditseal'::regclass "
            "AND contype = 'f'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE audit_auditseal DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_auditseal' "
            "AND indexname LIKE '%%\\_like'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_drop_single_txid_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditseal",
                    name="event",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="seal",
                        to="audit.auditevent",
                    ),
                )
            ],
            database_operations=[migrations.RunPython(lighten, migrations.RunPython.noop)],
        )
    ]
