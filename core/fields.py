"""Model fields the project shares."""

from __future__ import annotations

from django.db import models


class StoredJSONField(models.JSONField):
    """JSON kept as written: PostgreSQL's `json` type (the text, checked to be JSON) instead of
    JSONField's `jsonb`, which parses it into a binary form (keys re-ordered, duplicates
    dropped) and writes the text anew on every read. For documents stored and read whole and
    never searched inside: raw lineage events (reading a thousand events of 8 KB takes about a
    third of the time) and dataset versions' schemas (a lineage batch writes thousands, and
    PostgreSQL need not parse each into jsonb). jsonb's operators (containment, key existence)
    do not apply to it. Other databases store it as they store any JSONField."""

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Json, Jsonb

            if isinstance(value, Jsonb):  # sent as `json`, not re-parsed by a cast from jsonb
                return Json(value.obj, dumps=value.dumps)
        return value

    def from_db_value(self, value, expression, connection):
        if value is not None and not isinstance(value, str):
            return value  # psycopg decodes `json` itself (Django leaves only jsonb to the field)
        return super().from_db_value(value, expression, connection)
