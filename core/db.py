"""What the ORM leaves to the project: one statement it cannot express, how lists are sent to
PostgreSQL, and how a transaction that passes them has its statements planned.

`insert_new`: INSERT … ON CONFLICT DO NOTHING RETURNING. `bulk_create(ignore_conflicts=True)`
skips clashing rows but cannot say which rows it inserted; ingestion needs exactly that (to
audit only what it created, and to tell a new lineage event from a duplicate) without a
savepoint around an IntegrityError.

`send_lists_binary`: on PostgreSQL, Django's bulk inserts send each column as one array
(`INSERT … SELECT * FROM UNNEST(%s::…[], …)`). psycopg writes an array parameter in
PostgreSQL's text format by escaping every element in Python, or in its binary format with no
escaping at all; for the thousands of values a lineage batch inserts, binary is about nine
times faster on the client and the statement is the same.

`plan_each_statement`: prepared statements (DB_PREPARE_THRESHOLD) keep their plan; for a
statement given a list of any length, that plan was made for other lengths (see below).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, connections, models, router
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

# Values per statement where each is a parameter (SQLite; PostgreSQL without UNNEST): under
# PostgreSQL's 65,535 and SQLite's 32,766 (Django assumes SQLite's old limit of 999).
INSERT_PARAMETERS = 30_000


def insert_new(
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str],
    unique_fields: Sequence[str],
    returning: Sequence[str] = ("id",),
) -> list[tuple]:
    """INSERT the objects, skipping any whose `unique_fields` clash with a stored row (ON
    CONFLICT DO NOTHING: no error), and return the `returning` fields of the rows this
    statement inserted — only those, as Python values. A clash with a row another transaction
    has not committed yet waits for it, as a plain INSERT would.

    It is Django's own INSERT (the compiler `bulk_create` and `save` use): values prepared as
    for any insert (`pre_save`, so auto_now_add fields are stamped on the objects), UNNEST on
    PostgreSQL, returned values converted as a query's. What `bulk_create` does not do is ask
    for the returned rows when conflicts are ignored (and Django's own fetch of one object's
    returned values expects a row). Like bulk_create, no signals are sent."""
    if not objs:
        return []
    meta = type(objs[0])._meta
    concrete = [meta.get_field(name) for name in fields]
    returned = [meta.get_field(name) for name in returning]
    unique = [meta.get_field(name) for name in unique_fields]
    size = max(1, INSERT_PARAMETERS // len(concrete))
    # The connection itself, as a queryset's insert takes it: the compiler asks it for every
    # value it prepares, and `django.db.connection` would look it up again each time.
    using = router.db_for_write(meta.model)
    out: list[tuple] = []
    for start in range(0, len(objs), size):
        query = InsertQuery(meta.model, on_conflict=OnConflict.IGNORE, unique_fields=unique)
        query.insert_values(concrete, objs[start : start + size])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = returned
        with connections[using].cursor() as cursor:
            for sql, params in compiler.as_sql():
                cursor.execute(sql, params)
            rows = cursor.fetchall()
        converters = compiler.get_converters([f.get_col(meta.db_table) for f in returned])
        out += map(tuple, compiler.apply_converters(rows, converters) if converters else rows)
    return out


def send_lists_binary(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: on PostgreSQL, Python lists passed as parameters (`%s`)
    are sent as binary arrays. Client-side binding (DB_SERVER_SIDE_BINDING off) writes
    parameters as text literals and is unaffected."""
    if connection.vendor != "postgresql":
        return
    from psycopg.types.array import ListBinaryDumper

    connection.connection.adapters.register_dumper(list, ListBinaryDumper)


def plan_each_statement() -> None:
    """For the rest of the current transaction, PostgreSQL plans each statement for the values
    it is given (`SET LOCAL plan_cache_mode = force_custom_plan`), prepared or not.

    A prepared statement is planned for its values five times; then PostgreSQL may keep one
    generic plan, made without them. For a statement given a list (`= ANY(%s)`, UNNEST), that
    plan assumes some length of list, and the tables' sizes when it was made: nothing makes
    PostgreSQL plan it again as they grow. A lineage mapper's connection lives long, passes
    lists of a few to thousands of nodes, and grows the tables it reads: a batch's cycle check
    took 14 ms under a plan kept from early on, and 4 ms planned for its values. Planning each
    of a mapping batch's statements costs a few milliseconds in all; the accept path and
    other requests keep their plans. Other databases: nothing. Outside a transaction, where
    SET LOCAL would do nothing at all: RuntimeError."""
    if not connection.in_atomic_block:
        raise RuntimeError("plan_each_statement() applies to a transaction: call it inside one")
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
