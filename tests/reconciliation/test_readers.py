"""The reading side's rules that need no server: the query checker, DSNs, table names and
the registry. The readers themselves are tested against real servers and files in
test_readers_sql.py, test_readers_http.py and test_readers_files.py."""

import pytest

from apps.reconciliation.models import DataSource
from apps.reconciliation.readers import (
    READERS,
    ReadError,
    check_query,
    dataset_problems,
    dsn_problems,
    open_dataset,
    test_connection,
)
from apps.reconciliation.readers.base import resolve_columns, scrub
from apps.reconciliation.readers.sql import parse_table_name


@pytest.mark.parametrize(
    "sql, message",
    [
        ("select 1; drop table x", "one statement only"),
        ("select * from t; select * from u;", "one statement only"),
        ("insert into t values (1)", "only a SELECT (or WITH … SELECT) may be run, not INSERT"),
        ("update t set a = 1", "only a SELECT (or WITH … SELECT) may be run, not UPDATE"),
        ("delete from t", "only a SELECT (or WITH … SELECT) may be run, not DELETE"),
        ("drop table t", "only a SELECT (or WITH … SELECT) may be run, not DROP"),
        ("copy t to stdout", "only a SELECT (or WITH … SELECT) may be run, not COPY"),
        ("call refresh_orders()", "only a SELECT (or WITH … SELECT) may be run, not CALL"),
        (
            "with x as (delete from t returning *) select * from x",
            'only reads are allowed: the query contains DELETE (a column named "delete" must be quoted)',
        ),
        (
            "WITH moved AS (INSERT INTO archive SELECT * FROM t RETURNING id) SELECT id FROM moved",
            "only reads are allowed: the query contains INSERT",
        ),
        ("select * into copy_of_t from t", "SELECT … INTO writes its result"),
        ("select a from t into outfile '/tmp/t.csv'", "SELECT … INTO writes its result"),
        ("select * from t for update", "SELECT … FOR UPDATE/SHARE locks rows"),
        ("select * from t for no key update skip locked", "SELECT … FOR UPDATE/SHARE locks rows"),
        ("select * from t for share", "SELECT … FOR UPDATE/SHARE locks rows"),
        ("select * from t lock in share mode", "SELECT … LOCK IN SHARE MODE locks rows"),
        ("select 1 /*! ; drop table t */", "executable comments (/*! … */) are not allowed"),
        ("", "the query is empty"),
        ("  -- just a comment\n", "the query is empty"),
        ("select 'a\x00'", "the query contains a NUL character"),
    ],
)
def test_the_checker_refuses_anything_but_one_read(sql, message):
    with pytest.raises(ReadError) as caught:
        check_query(sql)
    assert caught.value.message.startswith(message), caught.value.message


@pytest.mark.parametrize(
    "sql, normalised",
    [
        ("select 1", "select 1"),
        ("SELECT id FROM orders;  ", "SELECT id FROM orders"),
        ("select id from orders -- the open ones\n", "select id from orders"),
        (
            "/* header */ select id, 'a;b -- not a comment' as t from orders /* tail */ ;",
            "select id, 'a;b -- not a comment' as t from orders",
        ),
        (
            "with open as (select * from orders where status = 'open') select id from open",
            "with open as (select * from orders where status = 'open') select id from open",
        ),
        (
            "select substring(name from 1 for 3), \"delete\" from t where note like 'for update%'",
            "select substring(name from 1 for 3), \"delete\" from t where note like 'for update%'",
        ),
        ("select id -- trailing\nfrom orders", "select id \nfrom orders"),
    ],
)
def test_the_checker_returns_the_single_select_without_comments(sql, normalised):
    assert check_query(sql) == normalised


def test_a_trailing_line_comment_cannot_swallow_the_wrapper(tmp_path, settings):
    """The query is wrapped in "(…) AS q"; a trailing "-- …" must not comment that out."""
    import sqlite3

    settings.PONTIS_RECON_SQLITE_DIR = str(tmp_path)
    sqlite3.connect(tmp_path / "t.db").executescript(
        "create table t (a int); insert into t values (1);"
    )
    source = DataSource(kind="sqlite", dsn=f"sqlite:///{tmp_path}/t.db")
    with open_dataset(source, "select a from t -- all of them", {}, ["a"]) as dataset:
        assert list(dataset.batches()) == [[(1,)]]


@pytest.mark.parametrize(
    "text, fold, parts",
    [
        ("orders", True, ["orders"]),
        ("Sales.Orders", True, ["sales", "orders"]),
        ("Sales.Orders", False, ["Sales", "Orders"]),
        ('"Order Lines"', True, ["Order Lines"]),
        ('sales."Order ""Lines"""', True, ["sales", 'Order "Lines"']),
        ("`crm`.`order lines`", False, ["crm", "order lines"]),
    ],
)
def test_table_names_are_identifiers_quoted_per_dialect(text, fold, parts):
    assert parse_table_name(text, fold_case=fold) == parts


@pytest.mark.parametrize("text", ["orders; drop table x", "a.b.c", "orders--", "'orders'", "1abc"])
def test_anything_but_an_identifier_is_not_a_table_name(text):
    with pytest.raises(ReadError, match="neither a table name"):
        parse_table_name(text, fold_case=True)


def test_a_dataset_that_is_neither_a_table_nor_a_select_is_refused_before_connecting():
    source = DataSource(kind="postgresql", dsn="postgresql://reader@127.0.0.1:1/erp")
    with pytest.raises(ReadError) as caught:
        open_dataset(source, "orders where 1=1", {}, ["id"])
    assert caught.value.message == "only a SELECT (or WITH … SELECT) may be run, not 'orders'"
    assert (
        dataset_problems(source, "select 1; drop table orders", {})
        == "one statement only: the query holds more than one (a ';' between them)"
    )
    assert dataset_problems(source, "sales.orders", {}) is None


@pytest.mark.parametrize(
    "kind, dsn",
    [
        ("postgresql", "postgresql://reader@db.example:5432/erp"),
        ("postgresql", "postgres://reader@db.example/erp?sslmode=require"),
        ("postgresql", "postgresql://reader@[2001:db8::1]:5433/erp"),
        ("mysql", "mysql://reader@db.example:3306/crm"),
        ("mysql", "mariadb://reader@db.example/crm"),
        ("http", ""),
        ("file", ""),
    ],
)
def test_good_dsns_have_no_problems(kind, dsn):
    assert dsn_problems(kind, dsn) is None


@pytest.mark.parametrize(
    "kind, dsn, problem",
    [
        (
            "postgresql",
            "postgresql://reader:s3cret@db.example:5432/erp",
            "the DSN holds a password; remove it from the DSN and store it in the credentials",
        ),
        (
            "mysql",
            "mysql://reader:@db.example/crm",
            "the DSN holds a password; remove it from the DSN and store it in the credentials",
        ),
        (
            "postgresql",
            "postgresql://reader@db.example/erp?password=s3cret",
            "the DSN holds a password; remove it from the DSN and store it in the credentials",
        ),
        (
            "postgresql",
            "mysql://reader@db.example/erp",
            "a postgresql DSN starts with postgresql://, for example postgresql://reader@db.example:5432/erp",
        ),
        (
            "postgresql",
            "postgresql://db.example/erp",
            "the DSN names no user; for example postgresql://reader@db.example:5432/erp",
        ),
        (
            "mysql",
            "mysql://reader@db.example",
            "the DSN names no database (…/name at the end); for example mysql://reader@db.example:3306/crm",
        ),
        ("postgresql", "postgresql://reader@db.example:99999/erp", "the DSN cannot be read"),
        (
            "postgresql",
            "postgresql://reader@db/erp?host=/tmp",
            "the DSN option 'host' is not supported",
        ),
        ("postgresql", "", "the DSN is empty"),
        ("http", "postgresql://reader@db/erp", "only SQL sources have a DSN"),
        ("sqlite", "sqlite://host/x.db", "a SQLite DSN has no host"),
    ],
)
def test_bad_dsns_are_refused_with_a_reason_and_without_echoing_them(kind, dsn, problem):
    found = dsn_problems(kind, dsn)
    assert found is not None and found.startswith(problem), found
    assert "s3cret" not in found


def test_sqlite_files_are_read_only_below_the_configured_directory(tmp_path, settings):
    allowed = tmp_path / "datasets"
    allowed.mkdir()
    (tmp_path / "secret.db").write_bytes(b"")
    (allowed / "link.db").symlink_to(tmp_path / "secret.db")
    settings.PONTIS_RECON_SQLITE_DIR = str(allowed)

    assert dsn_problems("sqlite", f"sqlite:///{allowed}/orders.db") is None
    assert dsn_problems("sqlite", f"sqlite:///{tmp_path}/secret.db") == (
        f"SQLite files are read only from {allowed}; {tmp_path}/secret.db is not below it"
    )
    # Neither a climb nor a symbolic link leads out.
    assert "is not below it" in dsn_problems("sqlite", f"sqlite:///{allowed}/../secret.db")
    assert "is not below it" in dsn_problems("sqlite", f"sqlite:///{allowed}/link.db")
    assert "is not below it" in dsn_problems("sqlite", "sqlite:////etc/passwd")
    assert dsn_problems("sqlite", "sqlite:relative.db").startswith(
        "a SQLite DSN names an absolute path"
    )


def test_the_registry_has_a_reader_per_kind_and_refuses_others():
    assert set(READERS) == {"postgresql", "mysql", "sqlite", "http", "file"}
    source = DataSource(kind="ftp")
    with pytest.raises(ReadError, match="no reader for sources of kind 'ftp'"):
        open_dataset(source, "", {}, ["id"])
    with pytest.raises(ReadError, match="no reader"):
        test_connection(source)


def test_columns_resolve_exactly_then_by_case_and_say_what_exists():
    assert resolve_columns(["id", "Name"], ["id", "name", "NAME2"], "t") == [0, 1]
    with pytest.raises(ReadError) as caught:
        resolve_columns(["amount"], ["id", "name"], "table orders")
    assert caught.value.message == (
        "column 'amount' is not in table orders; its columns are: id, name"
    )
    with pytest.raises(ReadError, match="column 'id' appears 2 times in t"):
        resolve_columns(["id"], ["id", "id"], "t")
    with pytest.raises(ReadError, match="ambiguous"):
        resolve_columns(["ID"], ["id", "Id"], "t")


def test_scrub_removes_every_secret_value():
    assert scrub("user x with pw hunter2 failed", ["hunter2", "", None]) == (
        "user x with pw *** failed"
    )
