"""Set-based writes the ORM does not offer, and plain statements for hot paths (PostgreSQL and
SQLite alike).

Compiling a queryset costs more CPU than the database spends answering a keyed lookup (about
0.5–0.8 ms against 0.1–0.2 ms); lineage ingestion runs a dozen such statements per event, so
its lookups and writes go through these helpers. Like bulk_create and queryset.update, they send
no model signals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models

INSERT_PARAMETERS = 30_000  # per statement: under PostgreSQL's 65,535 and SQLite's 32,766


def _connection():
    """The default connection itself: every attribute read through django.db.connection goes
    through a thread-local proxy, and these helpers read dozens per call."""
    return connections[DEFAULT_DB_ALIAS]


_AS_GIVEN = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "TextField",
}


@functools.cache
def _stores_as_given(field: models.Field) -> bool:
    return field.get_internal_type() in _AS_GIVEN


def _prepared(field: models.Field, value: Any, conn) -> Any:
    """`field.get_db_prep_save(value)`, short-circuited for the plain strings and integers that
    text and integer fields store as given (most of an insert's values)."""
    if type(value) in (str, int) and _stores_as_given(field):
        return value
    return field.get_db_prep_save(value, conn)


@functools.cache
def _insert_sql(
    model: type[models.Model],
    fields: tuple[str, ...],
    unique_fields: tuple[str, ...],
    returning: tuple[str, ...],
    vendor: str,
) -> tuple[str, str, str]:
    """(INSERT … VALUES, one row's placeholders, ON CONFLICT … RETURNING …) for `insert_new`."""
    meta = model._meta
    quote = _connection().ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique_fields)
    returned = ", ".join(quote(meta.get_field(name).column) for name in returning)
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ",
        "(" + ", ".join(["%s"] * len(fields)) + ")",
        f" ON CONFLICT ({conflict}) DO NOTHING" + (f" RETURNING {returned}" if returning else ""),
    )


def insert_new(
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str],
    unique_fields: Sequence[str],
    returning: Sequence[str] = ("id",),
) -> list[tuple]:
    """INSERT the objects, skipping any whose `unique_fields` clash with a stored row
    (ON CONFLICT DO NOTHING: no error, so no savepoint is needed around it), and return the
    `returning` columns of the rows this statement inserted — only those, so the caller knows
    exactly what it created. A clash with a row another transaction has not yet committed waits
    for it, as a plain INSERT would. Field values are prepared as Django's own INSERT prepares
    them (`pre_save`, so auto_now_add fields are stamped on the objects).
    """
    if not objs:
        return []
    conn = _connection()
    model = type(objs[0])
    concrete = [model._meta.get_field(name) for name in fields]
    head, row, tail = _insert_sql(
        model, tuple(fields), tuple(unique_fields), tuple(returning), conn.vendor
    )
    per_statement = max(1, INSERT_PARAMETERS // len(concrete))
    out: list[tuple] = []
    with conn.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start : start + per_statement]
            params = [
                _prepared(field, field.pre_save(obj, True), conn)
                for obj in chunk
                for field in concrete
            ]
            cursor.execute(head + ", ".join([row] * len(chunk)) + tail, params)
            if returning:
                out.extend(tuple(r) for r in cursor.fetchall())
    return out


KEYS_PER_STATEMENT = 1000


def columns(model: type[models.Model], defer: Sequence[str] = ()) -> list[str]:
    """The concrete fields' names of a model, bar `defer`, for `select` and `load`."""
    return [field.name for field in model._meta.concrete_fields if field.name not in defer]


@functools.cache
def _select_list(model: type[models.Model], names: tuple[str, ...], alias: str, vendor: str) -> str:
    quote = _connection().ops.quote_name
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(model._meta.get_field(name).column) for name in names)


def select_list(model: type[models.Model], names: Sequence[str], alias: str = "") -> str:
    """The quoted columns of `names`, optionally qualified by a table alias."""
    return _select_list(model, tuple(names), alias, _connection().vendor)


_LOADERS: dict[tuple, tuple] = {}


def load(model: type[models.Model], names: Sequence[str], values: Sequence[Any]) -> models.Model:
    """A model instance from a row of the columns `names` (as `select_list` lists them), the
    database's values converted as the ORM converts them (other fields deferred)."""
    conn = _connection()
    key = (model, tuple(names), conn.vendor)
    loader = _LOADERS.get(key)
    if loader is None:
        meta = model._meta
        converters = []
        for index, name in enumerate(names):
            col = meta.get_field(name).get_col(meta.db_table)
            found = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
            if found:
                converters.append((index, col, found))
        attnames = [meta.get_field(name).attname for name in names]
        loader = _LOADERS[key] = (converters, attnames)
    converters, attnames = loader
    if converters:
        values = list(values)
        for index, col, functions in converters:
            value = values[index]
            for function in functions:
                value = function(value, col, conn)
            values[index] = value
    return model.from_db(conn.alias, attnames, values)


@functools.cache
def _find_sql(
    model: type[models.Model],
    key_fields: tuple[str, ...],
    names: tuple[str, ...],
    lock: bool,
    vendor: str,
) -> tuple[str, str, str]:
    """(SELECT … WHERE, one key's condition, FOR UPDATE or nothing) for `find`."""
    conn = _connection()
    quote = conn.ops.quote_name
    meta = model._meta
    one = " AND ".join(f"{quote(meta.get_field(name).column)} = %s" for name in key_fields)
    return (
        f"SELECT {select_list(model, names)} FROM {quote(meta.db_table)} WHERE ",
        f"({one})",
        " FOR UPDATE" if lock and conn.features.has_select_for_update else "",
    )


def find(
    model: type[models.Model],
    key_fields: Sequence[str],
    keys: Iterable[Sequence[Any]],
    *,
    for_update: bool = False,
    defer: Sequence[str] = (),
) -> list[models.Model]:
    """The rows whose `key_fields` equal one of `keys`, as model instances (fields in `defer`
    left unloaded), read with one plain statement per thousand keys; with `for_update`, under
    row locks where the database has them."""
    keys = list(keys)
    if not keys:
        return []
    conn = _connection()
    key_columns = [model._meta.get_field(name) for name in key_fields]
    names = tuple(columns(model, defer=defer))
    head, one, lock = _find_sql(model, tuple(key_fields), names, for_update, conn.vendor)
    out: list[models.Model] = []
    with conn.cursor() as cursor:
        for start in range(0, len(keys), KEYS_PER_STATEMENT):
            chunk = keys[start : start + KEYS_PER_STATEMENT]
            params = [
                field.get_db_prep_value(value, conn)
                for key in chunk
                for field, value in zip(key_columns, key, strict=True)
            ]
            cursor.execute(head + " OR ".join([one] * len(chunk)) + lock, params)
            out.extend(load(model, names, row) for row in cursor.fetchall())
    return out


def update_fields(obj: models.Model, fields: Sequence[str]) -> None:
    """`obj.save(update_fields=fields)` as one plain UPDATE of those columns."""
    if not fields:
        return
    conn = _connection()
    meta = obj._meta
    quote = conn.ops.quote_name
    concrete = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in concrete)
    params = [field.get_db_prep_save(field.pre_save(obj, False), conn) for field in concrete]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s",
            [*params, obj.pk],
        )
