"""Database triggers that make the audit tables append-only, for every user of the database.

PostgreSQL: UPDATE and DELETE (row triggers) and TRUNCATE (a statement trigger: TRUNCATE skips
row triggers) raise an error — unless the session is a *superuser's* that switched on
`modelgov.audit_maintenance`, which only `manage.py flush` does (to empty test databases).
The application's own role should be neither superuser nor table owner (README, "Audit"), so
it can neither use that switch nor `ALTER TABLE … DISABLE TRIGGER`.

SQLite: UPDATE and DELETE triggers abort unless a row in `audit_maintenance` says otherwise
(again only `flush` writes it). SQLite has no roles: whoever can write the file can do
anything, so there the triggers guard against the application's mistakes, not against people.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditseal", "audit_auditcheckpoint")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
  IF current_setting('modelgov.audit_maintenance', true) = 'on'
     AND current_setting('is_superuser') = 'on' THEN
    IF TG_LEVEL = 'STATEMENT' THEN RETURN NULL; END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_FUNCTION)
            for table in TABLES:
                cursor.execute(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
                )
                cursor.execute(
                    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
                )
        elif connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS audit_maintenance (enabled INTEGER NOT NULL)"
            )
            for table in TABLES:
                for operation in ("UPDATE", "DELETE"):
                    cursor.execute(
                        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} "
                        f"ON {table} WHEN NOT EXISTS (SELECT 1 FROM audit_maintenance "
                        "WHERE enabled = 1) BEGIN SELECT RAISE(ABORT, 'the audit log is "
                        f"append-only: {operation} on {table} refused'); END"
                    )


def uninstall(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for table in TABLES:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            elif connection.vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_seals")]
    operations = [migrations.RunPython(install, uninstall)]
