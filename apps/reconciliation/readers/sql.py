"""SQL sources: PostgreSQL (psycopg 3), MySQL and MariaDB (PyMySQL) and SQLite files.

The dataset is a table name (``orders``, ``sales.orders``, ``"Order Lines"``) or one read-only
SELECT (:func:`check_query`). Either way the reader runs::

    SELECT q."col1", q."col2" FROM <table or (query)> AS q [WHERE <window>]

after a probe (``SELECT * … LIMIT 0``) has shown that every column exists. Every read runs in
a read-only transaction with a statement timeout (PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS):

- PostgreSQL: ``BEGIN READ ONLY``, ``SET LOCAL statement_timeout``, ``SET TimeZone
  = 'UTC'``; rows stream through a server-side (named) cursor, one FETCH per batch, each
  FETCH a statement under the timeout. Named cursors use the extended protocol, which
  refuses a second statement whatever the checker thought.
- MySQL / MariaDB: ``SET SESSION max_execution_time`` (MySQL) or ``max_statement_time``
  (MariaDB), ``time_zone = '+00:00'``, ``START TRANSACTION READ ONLY``; rows stream through
  an unbuffered cursor (SSCursor); multi-statements are off.
- SQLite: the file opened read-only (``mode=ro``) with ``PRAGMA query_only``; a progress
  handler interrupts a statement (or one batch's fetch) that runs past the timeout. Only
  files below PONTIS_RECON_SQLITE_DIR are opened: the file is read on the server.

Connection errors, wrong credentials, unknown tables, syntax errors and timeouts become a
ReadError with a plain message that never contains the password.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import sqlparse
from django.conf import settings
from sqlparse import tokens as T

from apps.reconciliation.readers.base import (
    CONNECT_TIMEOUT_SECONDS,
    Reader,
    ReadError,
    resolve_columns,
    scrub,
    seconds_text,
    statement_timeout,
)

APPLICATION_NAME = "pontis-reconciliation"
CURSOR_NAME = "pontis_reconciliation"
MAX_QUERY_CHARS = 100_000
SQLITE_PROGRESS_STEPS = 1_000  # SQLite VM instructions between deadline checks

SCHEMES = {
    "postgresql": ("postgresql", "postgres"),
    "mysql": ("mysql", "mariadb"),
    "sqlite": ("sqlite",),
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
PG_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Keywords that make a statement something other than a read, wherever they stand.
_WRITE_KEYWORDS = frozenset({"INTO", "OUTFILE", "DUMPFILE"})
_LOCK_AFTER_FOR = frozenset({"UPDATE", "SHARE", "NO", "KEY"})
_IDENTIFIER_PART = re.compile(r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\x00]|"")+"|`(?:[^`\x00]|``)+`)')
_TABLE_NAME = re.compile(rf"{_IDENTIFIER_PART.pattern}(?:\s*\.\s*{_IDENTIFIER_PART.pattern})?")


# --------------------------------------------------------------------------------------
# The query checker
# --------------------------------------------------------------------------------------


def check_query(sql: str) -> str:
    """The query as one read-only SELECT (``SELECT …`` or ``WITH … SELECT``), comments and
    the trailing semicolon removed; ReadError for anything else: more than one statement,
    a write anywhere (``INSERT``/``UPDATE``/``DELETE``/``MERGE``, also inside a ``WITH``),
    DDL, ``SELECT … INTO``, row locks (``FOR UPDATE``/``FOR SHARE``, ``LOCK IN SHARE
    MODE``), MySQL executable comments (``/*! … */``), ``COPY``, ``CALL`` and the like.

    Defence in depth: the reader also runs the query in a read-only transaction, one
    statement per call.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ReadError("the query is empty")
    if len(sql) > MAX_QUERY_CHARS:
        raise ReadError(f"the query is longer than {MAX_QUERY_CHARS:,} characters")
    if "\x00" in sql:
        raise ReadError("the query contains a NUL character")
    statements = [
        statement for statement in sqlparse.parse(sql) if _significant(list(statement.flatten()))
    ]
    if not statements:
        raise ReadError("the query is empty")
    if len(statements) > 1:
        raise ReadError("one statement only: the query holds more than one (a ';' between them)")
    statement = statements[0]
    flat = list(statement.flatten())
    for token in flat:
        if token.ttype in T.Comment and token.value.startswith(("/*!", "/*M!")):
            raise ReadError("executable comments (/*! … */) are not allowed")
    significant = _significant(flat)
    first = significant[0]
    if not (
        (first.ttype in T.Keyword.DML and first.normalized == "SELECT")
        or (first.ttype in T.Keyword.CTE and first.normalized == "WITH")
    ):
        raise ReadError(f"only a SELECT (or WITH … SELECT) may be run, not {_shown_token(first)}")
    for index, token in enumerate(significant):
        word = token.normalized.upper() if token.is_keyword else ""
        if token.ttype in T.Keyword.DML and word != "SELECT":
            raise ReadError(
                f"only reads are allowed: the query contains {word} "
                f'(a column named "{word.lower()}" must be quoted)'
            )
        if token.ttype in T.Keyword.DDL:
            raise ReadError(f"only reads are allowed: the query contains {word}")
        if word in _WRITE_KEYWORDS:
            raise ReadError(f"SELECT … {word} writes its result; only reads are allowed")
        following = significant[index + 1] if index + 1 < len(significant) else None
        next_word = following.normalized.upper() if following is not None else ""
        if word == "FOR" and following is not None and next_word in _LOCK_AFTER_FOR:
            raise ReadError("SELECT … FOR UPDATE/SHARE locks rows; only plain reads are allowed")
        if word == "LOCK" and next_word == "IN":
            raise ReadError("SELECT … LOCK IN SHARE MODE locks rows; only plain reads are allowed")
    # Comments go (a trailing "-- …" would swallow the closing parenthesis of the wrapper),
    # as does the semicolon.
    parts = []
    for token in flat:
        if token.ttype in T.Comment:
            parts.append("\n" if token.ttype in T.Comment.Single else " ")
        else:
            parts.append(token.value)
    text = "".join(parts).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _significant(flat: list) -> list:
    return [
        token
        for token in flat
        if not token.is_whitespace
        and token.ttype not in T.Comment
        and not (token.ttype in T.Punctuation and token.value == ";")
    ]


def _shown_token(token) -> str:
    value = token.value if len(token.value) <= 30 else token.value[:27] + "..."
    return value.upper() if token.is_keyword else repr(value)


def parse_table_name(text: str, *, fold_case: bool) -> list[str]:
    """The parts of ``table`` or ``schema.table``: bare identifiers (folded to lower case
    where the database folds them) or quoted ones ("…" or `…`). ReadError otherwise."""
    text = text.strip()
    if not _TABLE_NAME.fullmatch(text):
        raise ReadError(
            f"{text[:60]!r} is neither a table name (table or schema.table) nor a SELECT"
        )
    parts = []
    for raw in _IDENTIFIER_PART.findall(text):
        if raw[0] == '"':
            parts.append(raw[1:-1].replace('""', '"'))
        elif raw[0] == "`":
            parts.append(raw[1:-1].replace("``", "`"))
        else:
            parts.append(raw.lower() if fold_case else raw)
    return parts


def _is_query(text: str) -> bool:
    """Whether the dataset is meant as a query rather than a table name."""
    return not _TABLE_NAME.fullmatch(text.strip())


# --------------------------------------------------------------------------------------
# DSNs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN (never with a password)."""

    kind: str
    user: str = ""
    host: str = ""
    port: int = 0
    database: str = ""
    path: str = ""  # SQLite
    params: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def sqlite_dir() -> Path:
    """PONTIS_RECON_SQLITE_DIR (default: the var dir's ``datasets``), symlinks resolved."""
    configured = getattr(settings, "PONTIS_RECON_SQLITE_DIR", "") or os.path.join(
        str(settings.VAR_DIR), "datasets"
    )
    return Path(os.path.realpath(configured))


def parse_dsn(kind: str, dsn: str) -> Dsn:
    """The parts of a DSN of a SQL source; ReadError says what is wrong. A DSN that holds
    a password is refused: the password belongs in the encrypted credentials."""
    example = {
        "postgresql": "postgresql://reader@db.example:5432/erp",
        "mysql": "mysql://reader@db.example:3306/crm",
        "sqlite": f"sqlite:///{sqlite_dir()}/orders.db",
    }[kind]
    text = (dsn or "").strip()
    if not text:
        raise ReadError(f"the DSN is empty; for example {example}")
    if any(ord(char) < 0x21 or char == "\\" for char in text):
        raise ReadError("the DSN contains spaces, backslashes or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ReadError(f"the DSN cannot be read; for example {example}") from None
    if parts.scheme.lower() not in SCHEMES[kind]:
        raise ReadError(f"a {kind} DSN starts with {SCHEMES[kind][0]}://, for example {example}")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    query = parse_qsl(parts.query, keep_blank_values=True)
    if ":" in userinfo or any(name.lower() == "password" for name, _ in query):
        raise ReadError(
            "the DSN holds a password; remove it from the DSN and store it in the credentials"
        )
    if parts.fragment:
        raise ReadError("the DSN has a #fragment, which means nothing here")
    if kind == "sqlite":
        if parts.netloc:
            raise ReadError(f"a SQLite DSN has no host: three slashes, as in {example}")
        if query:
            raise ReadError("a SQLite DSN takes no options")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ReadError(f"a SQLite DSN names an absolute path, as in {example}")
        path = "/" + path.lstrip("/")  # sqlite:////abs/x.db (SQLAlchemy's form) too
        _check_sqlite_path(path)
        return Dsn(kind=kind, path=path)
    if not parts.hostname:
        raise ReadError(f"the DSN names no host; for example {example}")
    user = unquote(parts.username or "")
    if not user:
        raise ReadError(f"the DSN names no user; for example {example}")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ReadError(f"the DSN names no database (…/name at the end); for example {example}")
    params: dict[str, str] = {}
    for name, value in query:
        if kind == "postgresql" and name == "sslmode":
            if value not in PG_SSLMODES:
                raise ReadError(f"sslmode must be one of {', '.join(PG_SSLMODES)}")
            params[name] = value
        else:
            raise ReadError(f"the DSN option {name!r} is not supported")
    return Dsn(
        kind=kind,
        user=user,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[kind],
        database=database,
        params=params,
    )


def _check_sqlite_path(path: str) -> Path:
    base = sqlite_dir()
    resolved = Path(os.path.realpath(path))
    if resolved != base and base in resolved.parents:
        return resolved
    raise ReadError(f"SQLite files are read only from {base}; {path} is not below it")


def dsn_problems(kind: str, dsn: str) -> str | None:
    """What is wrong with a data source's DSN for its kind, or None: for a form's or a
    model's ``clean()``. SQL kinds need a DSN without a password (SQLite: a file below
    PONTIS_RECON_SQLITE_DIR); the other kinds take none."""
    if kind not in SCHEMES:
        return "only SQL sources have a DSN" if (dsn or "").strip() else None
    try:
        parse_dsn(kind, dsn)
    except ReadError as exc:
        return exc.message
    return None


# --------------------------------------------------------------------------------------
# The readers
# --------------------------------------------------------------------------------------


class SqlReader(Reader):
    """The shared part of the SQL readers; a subclass supplies the driver calls."""

    fold_case: ClassVar[bool] = False
    quote_char: ClassVar[str] = '"'

    def check(self) -> None:
        if self.options:
            raise ReadError(
                f"SQL sources take no options (got {', '.join(sorted(map(str, self.options)))})"
            )
        self.dsn = parse_dsn(self.kind, self.source.dsn)
        if not self.dataset:
            raise ReadError("name a table or write a SELECT")
        if _is_query(self.dataset):
            self.relation = f"(\n{check_query(self.dataset)}\n)"
        else:
            parts = parse_table_name(self.dataset, fold_case=self.fold_case)
            self.relation = ".".join(self.quote(part) for part in parts)
        self.conn: Any = None
        self._cursor: Any = None
        self.select_sql = ""

    def quote(self, name: str) -> str:
        if "\x00" in name:
            raise ReadError("a name contains a NUL character")
        return (
            self.quote_char + name.replace(self.quote_char, self.quote_char * 2) + self.quote_char
        )

    def open(self) -> None:
        self.timeout = statement_timeout()
        self.conn = self.connect(self.source, self.dsn, self.timeout)
        names, _ = self._execute(f"SELECT * FROM {self.relation} AS q LIMIT 0")  # noqa: S608 - quoted names / checked query
        where = "the query's result" if self.relation.startswith("(") else f"table {self.dataset}"
        indexes = resolve_columns(self.columns, names, where)
        selected = ", ".join(f"q.{self.quote(names[i])}" for i in indexes)
        sql = f"SELECT {selected} FROM {self.relation} AS q"  # noqa: S608 - quoted names / checked query
        if self.window is not None:
            (index,) = resolve_columns([self.window.column], names, where)
            start, end = self.window.bounds()
            sql += " WHERE " + self.window_condition(f"q.{self.quote(names[index])}", start, end)
        self.select_sql = sql

    def read(self, size: int) -> Iterator[list[tuple]]:
        self._cursor = self.stream(self.select_sql, size)
        while True:
            rows = self._fetch(size)
            if not rows:
                return
            yield rows

    def close(self) -> None:
        conn, self.conn, self._cursor = self.conn, None, None
        if conn is not None:
            _close_quietly(conn)

    # -- what a dialect supplies ---------------------------------------------------------

    @classmethod
    def connect(cls, source: Any, dsn: Dsn, timeout: float) -> Any:
        """A connection inside a read-only transaction with the statement timeout set."""
        raise NotImplementedError

    def _execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Runs one statement in the open read-only transaction: (column names, rows)."""
        raise NotImplementedError

    def stream(self, sql: str, size: int) -> Any:
        """Starts the data query on a streaming cursor."""
        raise NotImplementedError

    def _fetch(self, size: int) -> list[tuple]:
        raise NotImplementedError

    def window_condition(self, column: str, start, end) -> str:
        raise NotImplementedError

    @classmethod
    def test_connection(cls, source: Any) -> str:
        dsn = parse_dsn(cls.kind, source.dsn)
        conn = cls.connect(source, dsn, statement_timeout())
        try:
            return cls.describe(conn, dsn)
        finally:
            _close_quietly(conn)

    @classmethod
    def describe(cls, conn: Any, dsn: Dsn) -> str:
        raise NotImplementedError


def _close_quietly(conn: Any) -> None:
    # Closing a broken connection may fail too; there is nothing more to do about it.
    with contextlib.suppress(Exception):
        conn.close()


def _password(source: Any) -> str:
    return (source.get_credentials() or {}).get("password") or ""


# -- PostgreSQL --------------------------------------------------------------------------


class PostgresReader(SqlReader):
    kind = "postgresql"
    label = "PostgreSQL"
    fold_case = True

    @classmethod
    def connect(cls, source: Any, dsn: Dsn, timeout: float) -> Any:
        import psycopg
        from psycopg.types.string import TextLoader

        password = _password(source)
        try:
            conn = psycopg.connect(
                host=dsn.host,
                port=dsn.port,
                dbname=dsn.database,
                user=dsn.user,
                password=password or None,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
                **dsn.params,
            )
        except psycopg.Error as exc:
            raise ReadError(scrub(_pg_connect_message(dsn, exc), [password])) from None
        # JSON as its text, as the other sources give it.
        conn.adapters.register_loader("json", TextLoader)
        conn.adapters.register_loader("jsonb", TextLoader)
        conn.read_only = True  # every transaction psycopg begins is BEGIN READ ONLY
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                cursor.execute("SET TimeZone = 'UTC'")  # the session's
        except psycopg.Error as exc:
            conn.close()
            raise ReadError(pg_message(exc, timeout)) from None
        return conn

    @classmethod
    def describe(cls, conn: Any, dsn: Dsn) -> str:
        import psycopg

        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('server_version'), current_user, current_database()"
                )
                version, user, database = cursor.fetchone()
        except psycopg.Error as exc:
            raise ReadError(pg_message(exc, statement_timeout())) from None
        return f"Connected to PostgreSQL {version.split()[0]} as {user} on {database}"

    def reads_stored_table(self) -> bool:
        """Whether the dataset is a table whose rows are stored (a table, a partitioned
        table or a materialised view): reading it again is a scan, not a view's or a
        query's work."""
        if self.relation.startswith("("):
            return False
        _names, rows = self._execute(
            f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{self.relation.replace(chr(39), chr(39) * 2)}')"  # noqa: S608 - quoted names
        )
        return bool(rows) and rows[0][0] in ("r", "p", "m")

    def _execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        import psycopg

        try:
            with self.conn.cursor() as cursor:
                # binary=True sends the extended protocol: one statement, no more.
                cursor.execute(sql, binary=True)
                names = [column.name for column in cursor.description or []]
                rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise ReadError(pg_message(exc, self.timeout)) from None
        return names, rows

    def stream(self, sql: str, size: int) -> Any:
        import psycopg

        cursor = self.conn.cursor(name=CURSOR_NAME)
        cursor.itersize = size
        try:
            cursor.execute(sql)
        except psycopg.Error as exc:
            raise ReadError(pg_message(exc, self.timeout)) from None
        return cursor

    def _fetch(self, size: int) -> list[tuple]:
        import psycopg

        try:
            return self._cursor.fetchmany(size)
        except psycopg.Error as exc:
            raise ReadError(pg_message(exc, self.timeout)) from None

    def window_condition(self, column: str, start, end) -> str:
        from psycopg import sql

        low = sql.Literal(start).as_string(self.conn)
        high = sql.Literal(end).as_string(self.conn)
        return f"{column} >= {low} AND {column} < {high}"


def _pg_connect_message(dsn: Dsn, exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if first.startswith("failed to resolve host"):
        reason = "unknown host"
    elif "timeout expired" in first:
        reason = f"no answer within {seconds_text(CONNECT_TIMEOUT_SECONDS)}"
    else:
        reason = first.rpartition(" failed: ")[2] if " failed: " in first else first
        reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason).strip()
        reason = reason[:1].lower() + reason[1:]
    return f"could not connect to {dsn.address}: {reason}"


def pg_message(exc: Exception, timeout: float) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        lines = str(exc).strip().splitlines()
        primary = lines[0] if lines else type(exc).__name__
    if sqlstate == "57014" and "statement timeout" in primary:
        return f"statement timeout after {seconds_text(timeout)}"
    if sqlstate is None:
        return f"the connection failed: {primary}"
    return f"the query failed: {primary}"


# -- MySQL and MariaDB -------------------------------------------------------------------


_MYSQL_TIMEOUT_CODES = frozenset(
    {1969, 3024}
)  # MariaDB max_statement_time, MySQL max_execution_time


class MySQLReader(SqlReader):
    kind = "mysql"
    label = "MySQL / MariaDB"
    quote_char = "`"

    @classmethod
    def connect(cls, source: Any, dsn: Dsn, timeout: float) -> Any:
        import pymysql

        password = _password(source)
        try:
            conn = pymysql.connect(
                host=dsn.host,
                port=dsn.port,
                user=dsn.user,
                password=password,
                database=dsn.database,
                charset="utf8mb4",
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                # A bound on each socket read, above the statement timeout.
                read_timeout=int(timeout) + 60,
                write_timeout=60,
                autocommit=False,
                local_infile=False,
                client_flag=0,  # no CLIENT.MULTI_STATEMENTS: one statement per call
                program_name=APPLICATION_NAME,
            )
        except pymysql.MySQLError as exc:
            raise ReadError(scrub(_mysql_connect_message(dsn, exc), [password])) from None
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                (version,) = cursor.fetchone()
                if "mariadb" in version.lower():
                    cursor.execute(f"SET SESSION max_statement_time = {float(timeout)}")
                else:
                    cursor.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
                cursor.execute("SET SESSION time_zone = '+00:00'")
                # The server waits this long for a streaming client busy between batches.
                cursor.execute(f"SET SESSION net_write_timeout = {max(60, int(timeout))}")
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                cursor.execute("START TRANSACTION READ ONLY")
        except pymysql.MySQLError as exc:
            conn.close()
            raise ReadError(_mysql_message(exc, timeout)) from None
        conn.server_version_text = version
        return conn

    @classmethod
    def describe(cls, conn: Any, dsn: Dsn) -> str:
        version = conn.server_version_text
        product = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        return f"Connected to {product} {version.split('-')[0]} as {dsn.user} on {dsn.database}"

    def _execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        import pymysql

        try:
            with self.conn.cursor() as cursor:
                cursor.execute(sql)
                names = [column[0] for column in cursor.description or []]
                rows = list(cursor.fetchall()) if cursor.description else []
        except pymysql.MySQLError as exc:
            raise ReadError(_mysql_message(exc, self.timeout)) from None
        return names, rows

    def stream(self, sql: str, size: int) -> Any:
        import pymysql
        from pymysql.cursors import SSCursor

        cursor = self.conn.cursor(SSCursor)
        try:
            cursor.execute(sql)
        except pymysql.MySQLError as exc:
            raise ReadError(_mysql_message(exc, self.timeout)) from None
        return cursor

    def _fetch(self, size: int) -> list[tuple]:
        import pymysql

        try:
            return list(self._cursor.fetchmany(size))
        except pymysql.MySQLError as exc:
            raise ReadError(_mysql_message(exc, self.timeout)) from None

    def close(self) -> None:
        # An unbuffered cursor's close() would read the rest of the rows: closing the
        # connection drops them instead.
        self._cursor = None
        super().close()

    def window_condition(self, column: str, start, end) -> str:
        # The session time zone is UTC: DATETIME and TIMESTAMP compare as UTC.
        low = self.conn.escape(start.replace(tzinfo=None))
        high = self.conn.escape(end.replace(tzinfo=None))
        return f"{column} >= {low} AND {column} < {high}"


def _mysql_connect_message(dsn: Dsn, exc: Exception) -> str:
    code, text = _mysql_error(exc)
    if code == 1045:
        reason = re.sub(r"\s*\(using password: \w+\)", "", text)
        reason = reason[:1].lower() + reason[1:] + " (wrong user name or password)"
    elif code in (2003, 2005, 2013):
        lowered = text.lower()
        if "refused" in lowered:
            reason = "connection refused"
        elif "timed out" in lowered or "timeout" in lowered:
            reason = f"no answer within {seconds_text(CONNECT_TIMEOUT_SECONDS)}"
        elif "name or service not known" in lowered or "nodename" in lowered or code == 2005:
            reason = "unknown host"
        else:
            reason = text
    else:
        reason = text[:1].lower() + text[1:] if text else type(exc).__name__
    return f"could not connect to {dsn.address}: {reason}"


def _mysql_error(exc: Exception) -> tuple[int | None, str]:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, str(exc)


def _mysql_message(exc: Exception, timeout: float) -> str:
    code, text = _mysql_error(exc)
    if code in _MYSQL_TIMEOUT_CODES:
        return f"statement timeout after {seconds_text(timeout)}"
    if code is not None and code >= 2000:  # client-side: the connection broke
        return f"the connection failed: {text}"
    return f"the query failed: {text}"


# -- SQLite ------------------------------------------------------------------------------


class _SQLiteConnection(sqlite3.Connection):
    """A connection that carries the deadline of the statement running on it."""

    deadline = float("inf")

    def past_deadline(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0


class SQLiteReader(SqlReader):
    kind = "sqlite"
    label = "SQLite"

    @classmethod
    def connect(cls, source: Any, dsn: Dsn, timeout: float) -> Any:
        path = _check_sqlite_path(dsn.path)
        if not path.is_file():
            raise ReadError(f"the SQLite file {dsn.path} does not exist")
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(path))}?mode=ro",
                uri=True,
                timeout=CONNECT_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                factory=_SQLiteConnection,
            )
        except sqlite3.Error as exc:
            raise ReadError(f"could not open {dsn.path}: {exc}") from None
        # A statement past its deadline is interrupted (sqlite3.OperationalError "interrupted").
        conn.set_progress_handler(conn.past_deadline, SQLITE_PROGRESS_STEPS)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")  # one read transaction: one snapshot for the whole read
        except sqlite3.Error as exc:
            conn.close()
            raise ReadError(f"could not open {dsn.path}: {exc}") from None
        return conn

    @classmethod
    def describe(cls, conn: Any, dsn: Dsn) -> str:
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise ReadError(f"{dsn.path} is not a readable SQLite database: {exc}") from None
        return f"Opened SQLite {sqlite3.sqlite_version} file {dsn.path} (read-only)"

    def _run(self, call):
        self.conn.deadline = time.monotonic() + self.timeout
        try:
            return call()
        except sqlite3.Error as exc:
            raise ReadError(self._message(exc)) from None
        finally:
            self.conn.deadline = float("inf")

    def _message(self, exc: Exception) -> str:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and text == "interrupted":
            return f"statement timeout after {seconds_text(self.timeout)}"
        if "file is not a database" in text:
            return f"{self.dsn.path} is not a SQLite database"
        return f"the query failed: {text}"

    def _execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        def run():
            cursor = self.conn.execute(sql)
            names = [column[0] for column in cursor.description or []]
            rows = cursor.fetchall() if cursor.description else []
            cursor.close()
            return names, rows

        return self._run(run)

    def stream(self, sql: str, size: int) -> Any:
        return self._run(lambda: self.conn.execute(sql))

    def _fetch(self, size: int) -> list[tuple]:
        return self._run(lambda: self._cursor.fetchmany(size))

    def window_condition(self, column: str, start, end) -> str:
        # Text timestamps (ISO 8601, "T" or space, an offset or none = UTC) and Unix epoch
        # numbers both compare as Julian days.
        def day(moment) -> str:
            return "julianday('" + moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "')"

        value = (
            f"(CASE WHEN typeof({column}) IN ('integer', 'real') "
            f"THEN julianday({column}, 'unixepoch') ELSE julianday({column}) END)"
        )
        return f"{value} >= {day(start)} AND {value} < {day(end)}"
