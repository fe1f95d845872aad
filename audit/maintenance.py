"""The one door past the audit triggers: emptying a whole database (tests, `flush`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def audit_maintenance(connection) -> Iterator[None]:
    """Let this session empty the audit tables. On PostgreSQL it lets only TRUNCATE through,
    and only for a superuser or the tables' owner (migration 0005)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET modelgov.audit_maintenance = 'on'")
        elif connection.vendor == "sqlite":
            cursor.execute("INSERT INTO audit_maintenance (enabled) VALUES (1)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("RESET modelgov.audit_maintenance")
            elif connection.vendor == "sqlite":
                cursor.execute("DELETE FROM audit_maintenance")
