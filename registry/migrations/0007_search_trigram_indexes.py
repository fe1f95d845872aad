"""Trigram indexes for searching models by part of a name or by tag, on PostgreSQL only.

`?name=` (icontains: UPPER(name) LIKE '%…%'), the MLflow door's `name LIKE '%…%'` and `?tag=`
(tags_index LIKE '%,tag,%') cannot use a b-tree index: without these every search reads every
model. Elsewhere (SQLite) nothing changes. Where the database role may not create the pg_trgm
extension, the indexes are left out and searches stay correct, only slower.
"""

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)

INDEXES = {
    "registry_model_name_upper_trgm": "UPPER(name::text) gin_trgm_ops",
    "registry_model_name_trgm": "name gin_trgm_ops",
    "registry_model_tags_index_trgm": "tags_index gin_trgm_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - lacking the privilege is not an error here
        logger.warning("pg_trgm unavailable (%s): model searches stay unindexed", exc)
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON registry_registeredmodel "
            f"USING gin ({expression})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0006_merge_version_fields_and_run_facets"),
    ]

    operations = [migrations.RunPython(create, drop)]
