"""PostgreSQL databases of the tests' own on the local server (127.0.0.1:5432, user
postgres), made for a module or a session and dropped after it."""

import contextlib
import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql

SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "connect_timeout": 10}


@contextlib.contextmanager
def scratch_database(prefix: str, schema: str | None = None) -> Iterator[str]:
    """Creates a database named ``prefix`` and a random suffix, runs ``schema`` in it, and
    yields its name; drops it (whoever is still connected) at the end."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(**SERVER, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if schema:
            with psycopg.connect(**SERVER, dbname=name, autocommit=True) as conn:
                conn.execute(schema)
        yield name
    finally:
        with psycopg.connect(**SERVER, dbname="postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
