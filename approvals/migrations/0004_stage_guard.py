"""PostgreSQL guards: no back door to a stage.

- `registry_modelversion`: a new version starts in development, and an existing version's
  stage changes only when the transaction-local setting `modelgov.stage_change` is on — which
  only the approval service sets, around the statements applying an approved transition. So
  `ModelVersion.objects.filter(...).update(stage="production")` fails. A production version's
  content digest cannot change either (what was approved stays what runs).
- `approvals_stagetransition` and `approvals_promotiondecision` are append-only (UPDATE and
  DELETE refused; TRUNCATE, used by `flush` on test databases, is not a row change).

The setting is a guard against code paths that bypass the service, not against someone with
direct SQL access (who could set it too); the audit log is the record for that.
SQLite has no session settings; there the service layer is the only guard.
"""

from django.db import migrations

STAGE_GUARD = """
CREATE OR REPLACE FUNCTION approvals_stage_guard() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('modelgov.stage_change', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.stage <> 'development' THEN
            RAISE EXCEPTION 'a new model version starts in development; stages change only '
                'through an approved promotion request'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.stage IS DISTINCT FROM OLD.stage THEN
        RAISE EXCEPTION 'the stage of model version % changes only through an approved '
            'promotion request (approvals.services)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF OLD.stage = 'production' AND NEW.content_digest IS DISTINCT FROM OLD.content_digest THEN
        RAISE EXCEPTION 'model version % is in production; its approved content cannot change',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS approvals_stage_guard ON registry_modelversion;
CREATE TRIGGER approvals_stage_guard BEFORE INSERT OR UPDATE ON registry_modelversion
    FOR EACH ROW EXECUTE FUNCTION approvals_stage_guard();

CREATE OR REPLACE FUNCTION approvals_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""
APPEND_ONLY_TABLES = ("approvals_stagetransition", "approvals_promotiondecision")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(STAGE_GUARD)
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            cursor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION approvals_append_only()"
            )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        cursor.execute("DROP TRIGGER IF EXISTS approvals_stage_guard ON registry_modelversion")
        cursor.execute("DROP FUNCTION IF EXISTS approvals_stage_guard()")
        cursor.execute("DROP FUNCTION IF EXISTS approvals_append_only()")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0003_roles"), ("registry", "0003_run_event_time")]
    operations = [migrations.RunPython(forwards, backwards)]
