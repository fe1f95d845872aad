"""PostgreSQL: every audit event carries its writer's transaction id, set by the database.

The sealer orders and gates events on `txid`; a row inserted without one (or with a made-up
one) would sit outside the sealer's order and never be chained. Now the column is NOT NULL,
defaults to the inserting transaction's id, and a BEFORE INSERT trigger overwrites whatever
the inserter sent with that id — so no writer, the application's role included, can choose
it. (`audit_verify` also reports any event left unsealed.) SQLite orders events by id and
keeps the column empty.
"""

from django.db import migrations

FORCE_TXID = """
CREATE OR REPLACE FUNCTION audit_event_txid() RETURNS trigger AS $$
BEGIN
    NEW.txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_auditevent_txid ON audit_auditevent;
CREATE TRIGGER audit_auditevent_txid BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_txid();
ALTER TABLE audit_auditevent
    ALTER COLUMN txid SET DEFAULT pg_current_xact_id()::text::bigint;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE txid IS NULL")
        (missing,) = cursor.fetchone()
        if missing:
            raise RuntimeError(
                f"{missing} audit events have no transaction id: they were inserted around "
                "audit_record and were never sealed. Investigate them (manage.py audit_verify "
                "names them) before migrating."
            )
        cursor.execute(FORCE_TXID)
        cursor.execute("ALTER TABLE audit_auditevent ALTER COLUMN txid SET NOT NULL")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS audit_auditevent_txid ON audit_auditevent")
        cursor.execute("DROP FUNCTION IF EXISTS audit_event_txid()")
        cursor.execute(
            "ALTER TABLE audit_auditevent ALTER COLUMN txid DROP NOT NULL, "
            "ALTER COLUMN txid DROP DEFAULT"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_lighter_seal_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
