"""The flush switch also works for the tables' owner, not only a superuser — and only for
TRUNCATE (flush's statement on PostgreSQL): UPDATE and DELETE are refused to everyone.

The owner can `ALTER TABLE … DISABLE TRIGGER` anyway, so this grants no new power; it lets a
CI role that owns the test database (CREATEDB, not superuser) empty it between tests. The
application's role owns nothing (README, "Audit"), so for it the triggers still always hold.
"""

from django.db import migrations

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
  -- Only TRUNCATE (what flush does on PostgreSQL), and only for superuser or owner.
  IF TG_OP = 'TRUNCATE'
     AND current_setting('modelgov.audit_maintenance', true) = 'on'
     AND (current_setting('is_superuser') = 'on'
          OR pg_has_role(current_user,
                         (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_sealer_index")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
