"""Trigram indexes for the catalog's substring search, on PostgreSQL only.

``icontains`` becomes ``UPPER(col) LIKE UPPER('%text%')``; a GIN trigram index on
the same expression lets PostgreSQL answer it without scanning every row. SQLite
has no equivalent and does not need one at the embedded default's size.
"""

from django.db import migrations

INDEXES = [
    ("catalog_interface_code_trgm", "catalog_interface", "code"),
    ("catalog_interface_name_trgm", "catalog_interface", "name"),
    ("catalog_interface_process_trgm", "catalog_interface", "business_process"),
    ("catalog_system_name_trgm", "catalog_system", "name"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER({column}) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
