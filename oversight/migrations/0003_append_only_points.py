"""PostgreSQL: monitoring points are append-only (UPDATE and DELETE refused; TRUNCATE, used by
`flush` on test databases, is not a row change). On SQLite the services are the only guard."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION oversight_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""
TABLE = "oversight_monitoringpoint"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FUNCTION)
        cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        cursor.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION oversight_append_only()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        cursor.execute("DROP FUNCTION IF EXISTS oversight_append_only()")


class Migration(migrations.Migration):
    dependencies = [("oversight", "0002_roles")]
    operations = [migrations.RunPython(forwards, backwards)]
