"""`flush` (used by test runners to empty databases) — past the audit triggers.

On PostgreSQL the switch works only for a superuser or the tables' owner (who could disable
the triggers anyway); the application's role is neither, so it cannot empty the audit log
this way.
"""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections

from audit.maintenance import audit_maintenance


class Command(FlushCommand):
    def handle(self, **options):
        with audit_maintenance(connections[options["database"]]):
            return super().handle(**options)
