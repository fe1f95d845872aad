"""The one statement the ORM cannot express: INSERT … ON CONFLICT DO NOTHING RETURNING.

`bulk_create(ignore_conflicts=True)` skips clashing rows but cannot say which rows it
inserted; ingestion needs exactly that (to audit only what it created, and to tell a new
lineage event from a duplicate) without a savepoint around an IntegrityError.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

INSERT_PARAMETERS = 30_000  # per statement: under PostgreSQL's 65,535 and SQLite's 32,766


def insert_new(
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str],
    unique_fields: Sequence[str],
    returning: Sequence[str] = ("id",),
) -> list[tuple]:
    """INSERT the objects, skipping any whose `unique_fields` clash with a stored row (ON
    CONFLICT DO NOTHING: no error), and return the `returning` columns of the rows this
    statement inserted — only those, as the database sends them. A clash with a row another
    transaction has not committed yet waits for it, as a plain INSERT would. Values are
    prepared as Django's own INSERT prepares them (`pre_save`, so auto_now_add fields are
    stamped on the objects); like bulk_create, no signals are sent."""
    if not objs:
        return []
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    concrete = [meta.get_field(name) for name in fields]
    columns = ", ".join(quote(field.column) for field in concrete)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique_fields)
    returned = ", ".join(quote(meta.get_field(name).column) for name in returning)
    tail = f" ON CONFLICT ({conflict}) DO NOTHING" + (f" RETURNING {returned}" if returning else "")
    row = "(" + ", ".join(["%s"] * len(concrete)) + ")"
    per_statement = max(1, INSERT_PARAMETERS // len(concrete))
    out: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start : start + per_statement]
            params = [
                field.get_db_prep_save(field.pre_save(obj, True), connection)
                for obj in chunk
                for field in concrete
            ]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "
                + ", ".join([row] * len(chunk))
                + tail,
                params,
            )
            if returning:
                out.extend(tuple(r) for r in cursor.fetchall())
    return out
