"""Model fields shared by the apps."""

import json

from django.db import models


class OrderedJSONField(models.JSONField):
    """A JSONField that keeps the order of object keys on PostgreSQL too.

    PostgreSQL's ``jsonb`` (Django's JSONField) sorts object keys; a JSON Schema's
    properties are in the order people wrote them, and mapping sheets, suggestions and
    coverage follow that order. On PostgreSQL this is a ``json`` column (stored as text,
    key order kept); elsewhere it is the usual JSONField. Key lookups in queries are not
    meant for it.
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        from psycopg.types.json import Json

        if not prepared:
            value = self.get_prep_value(value)
        return Json(value, dumps=lambda data: json.dumps(data, cls=self.encoder))

    def from_db_value(self, value, expression, connection):
        # psycopg reads a json column into Python objects itself (jsonb comes as text).
        if value is not None and not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)
