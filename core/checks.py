"""System checks: what the embedded database must support."""

from __future__ import annotations

import sqlite3

from django.core.checks import Error, register

# INSERT … ON CONFLICT … RETURNING (core.db.insert_new) needs SQLite 3.35.
MIN_SQLITE = (3, 35, 0)


def sqlite_version_errors(version: str) -> list[Error]:
    found = tuple(int(part) for part in version.split(".")[:3])
    if found >= MIN_SQLITE:
        return []
    needed = ".".join(map(str, MIN_SQLITE))
    return [
        Error(
            f"SQLite {version} is too old: modelgov needs {needed} or later (INSERT … RETURNING).",
            hint="Use a Python built against a newer SQLite, or PostgreSQL (DATABASE_URL).",
            id="core.E001",
        )
    ]


@register("database")
def check_sqlite_version(app_configs=None, databases=None, **kwargs) -> list[Error]:
    from django.db import connections

    if not databases or not any(connections[a].vendor == "sqlite" for a in databases):
        return []
    return sqlite_version_errors(sqlite3.sqlite_version)
