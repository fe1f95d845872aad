"""System checks: what the embedded database must support; what a deployment must share."""

from __future__ import annotations

import sqlite3

from django.core.checks import Error, Tags, Warning, register

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


# Caches that live in one process's memory (or keep nothing).
_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches, deploy=True)
def check_rate_limits_are_shared(app_configs=None, **kwargs) -> list[Warning]:
    from django.conf import settings

    limited = sorted(
        scope
        for scope, rate in settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).items()
        if rate is not None
    )
    if not limited or settings.CACHES["default"]["BACKEND"] not in _PROCESS_CACHES:
        return []
    return [
        Warning(
            f"Rate limits ({', '.join(limited)}) are counted in each process's own memory: "
            "every web process allows a caller the full rate.",
            hint="Set CACHE_URL=redis://host:6379/N?socket_connect_timeout=1&socket_timeout=1.",
            id="core.W001",
        )
    ]
