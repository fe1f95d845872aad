"""manage.py audit_db_role ROLE: the SQL that creates the role the application should run as.

Run migrations as the role that owns the tables (the "owner"); run the application as ROLE,
which owns nothing: it may read and write the catalogue but only SELECT and INSERT the audit
tables, and — not being their owner or a superuser — cannot ALTER TABLE … DISABLE TRIGGER,
TRUNCATE them or drop the triggers. Prints the SQL; pipe it to psql as the owner.
"""

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

AUDIT_TABLES = ("audit_auditevent", "audit_auditseal", "audit_auditcheckpoint")


class Command(BaseCommand):
    help = "Print the SQL creating a PostgreSQL role for the application that cannot rewrite "
    "the audit log."

    def add_arguments(self, parser):
        parser.add_argument("role", help="e.g. modelgov_app")
        parser.add_argument(
            "--password", default=None, help="Set a password (otherwise add one yourself)."
        )

    def handle(self, *args, role, password, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "Database roles are PostgreSQL's: set DATABASE_URL to the PostgreSQL database "
                f"the application runs on (this one is {connection.vendor})."
            )
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
            raise CommandError("Role names are lowercase letters, digits and '_'.")
        database = connection.settings_dict["NAME"].replace('"', '""')
        quoted = (password or "").replace("'", "''")  # a literal: quotes doubled
        login = f" LOGIN PASSWORD '{quoted}'" if password else " LOGIN"
        audit = ", ".join(AUDIT_TABLES)
        statements = [
            f"CREATE ROLE {role}{login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;",
            f'GRANT CONNECT ON DATABASE "{database}" TO {role};',
            f"GRANT USAGE ON SCHEMA public TO {role};",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {audit} FROM {role};",
            f"GRANT SELECT, INSERT ON {audit} TO {role};",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};",
            "-- After each migration, run this again (new tables need grants), and keep the",
            "-- owner's credentials away from the application's servers.",
        ]
        self.stdout.write("\n".join(statements))
