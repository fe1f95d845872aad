"""`flush` (used by test runners to empty databases) — past the audit triggers.

On PostgreSQL the switch works only for a database superuser; the application's role, which
should not be one, cannot empty the audit log this way either.
"""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections

from audit.maintenance import audit_maintenance


class Command(FlushCommand):
    def handle(self, **options):
        with audit_maintenance(connections[options["database"]]):
            return super().handle(**options)
