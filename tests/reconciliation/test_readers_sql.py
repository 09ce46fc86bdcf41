# ruff: noqa: S608 - scratch tables and fixed test statements, no user input
"""SQL readers against real servers: the PostgreSQL at 127.0.0.1:5432 (a scratch database of
this module's own), the MariaDB at 127.0.0.1:3306 (scratch tables in ``test``) and SQLite
files. A server that is not reachable fails these tests; none is skipped."""

import secrets
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pymysql
import pytest

from apps.reconciliation.models import DataSource
from apps.reconciliation.readers import ReadError, Window, open_dataset, test_connection
from tests.reconciliation import postgres

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
CANARY = "canary-pw-7f3e9a"

PG_SCHEMA = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    id integer PRIMARY KEY,
    customer text,
    amount numeric(12, 2),
    placed date,
    updated_at timestamptz,
    paid boolean,
    note text,
    "Mixed Case" text,
    payload jsonb
);
INSERT INTO sales.orders VALUES
    (1, 'ACME', 10.10, '2024-05-01', '2024-05-01 10:00:00+02', true, 'first', 'm1', '{"b": 1, "a": [1, 2]}'),
    (2, 'Globex', 20.00, '2024-05-02', '2024-05-02 23:30:00+00', false, NULL, 'm2', NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 'Initech', 0.05, '2024-05-03', '2024-05-03 00:00:00+00', true, 'last', 'm4', '[]');
CREATE SEQUENCE sales.numbers;
CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS digest FROM generate_series(1, 25000) g;
"""


def pg_source(database, *, password="", **dsn_parts):
    parts = {**PG, "database": database, **dsn_parts}
    source = DataSource(
        kind="postgresql",
        dsn=f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['database']}",
    )
    source.set_credentials({"password": password})
    return source


def read_all(source, dataset, columns, *, options=None, window=None, size=10_000):
    with open_dataset(source, dataset, options or {}, columns, window=window) as rows:
        return [row for batch in rows.batches(size) for row in batch]


@pytest.fixture(scope="module")
def pg_database():
    with postgres.scratch_database("pontis_recon_readers", PG_SCHEMA) as name:
        yield name


def pg_count(database, table="sales.orders"):
    with psycopg.connect(**PG, dbname=database) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------


def test_postgres_connection_test_says_version_user_and_database(pg_database):
    message = test_connection(pg_source(pg_database))
    server = psycopg.connect(**PG, dbname="postgres").info.parameter_status("server_version")
    assert message == f"Connected to PostgreSQL {server.split()[0]} as postgres on {pg_database}"


def test_postgres_values_come_back_as_python_types_with_nulls(pg_database):
    rows = read_all(
        pg_source(pg_database),
        "sales.orders",
        ["id", "amount", "placed", "updated_at", "paid", "note", "payload"],
    )
    assert sorted(rows) == [
        (
            1,
            Decimal("10.10"),
            date(2024, 5, 1),
            datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
            True,
            "first",
            '{"a": [1, 2], "b": 1}',  # JSON as its text
        ),
        (
            2,
            Decimal("20.00"),
            date(2024, 5, 2),
            datetime(2024, 5, 2, 23, 30, tzinfo=UTC),
            False,
            None,
            None,
        ),
        (3, None, None, None, None, None, None),
        (
            4,
            Decimal("0.05"),
            date(2024, 5, 3),
            datetime(2024, 5, 3, tzinfo=UTC),
            True,
            "last",
            "[]",
        ),
    ]
    assert rows[0][3].utcoffset() == timedelta(0)  # the session's time zone is UTC


def test_postgres_columns_come_in_the_order_asked_and_names_fold_like_the_database(pg_database):
    rows = read_all(pg_source(pg_database), "Sales.Orders", ["Mixed Case", "ID", "customer"])
    assert sorted(rows, key=lambda row: row[1]) == [
        ("m1", 1, "ACME"),
        ("m2", 2, "Globex"),
        (None, 3, None),
        ("m4", 4, "Initech"),
    ]


def test_postgres_reads_a_select_with_comments_as_a_subquery(pg_database):
    rows = read_all(
        pg_source(pg_database),
        "/* paid ones */ SELECT id, amount * 2 AS doubled, customer || '%' AS tag\n"
        "FROM sales.orders WHERE paid -- only paid\n;",
        ["doubled", "id", "tag"],
    )
    assert sorted(rows, key=lambda row: row[1]) == [
        (Decimal("20.20"), 1, "ACME%"),
        (Decimal("0.10"), 4, "Initech%"),
    ]


def test_postgres_window_selects_records_changed_in_the_half_open_interval(pg_database):
    window = Window(
        "updated_at",
        datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        datetime(2024, 5, 3, tzinfo=UTC),  # excluded: order 4 changed exactly then
    )
    rows = read_all(pg_source(pg_database), "sales.orders", ["id"], window=window)
    assert sorted(rows) == [(1,), (2,)]
    # A bound with another offset, or none (UTC), means the same instant.
    window = Window(
        "updated_at",
        datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 2, 23, 30),
    )
    assert read_all(pg_source(pg_database), "sales.orders", ["id"], window=window) == [(1,)]


def test_postgres_missing_column_names_it_and_the_columns_there_are(pg_database):
    with pytest.raises(ReadError) as caught:
        read_all(pg_source(pg_database), "sales.orders", ["id", "total"])
    assert caught.value.message == (
        "column 'total' is not in table sales.orders; its columns are: id, customer, amount, "
        "placed, updated_at, paid, note, Mixed Case, payload"
    )
    with pytest.raises(ReadError) as caught:
        read_all(
            pg_source(pg_database),
            "select id from sales.orders",
            ["id"],
            window=Window("changed", datetime(2024, 1, 1), datetime(2025, 1, 1)),
        )
    assert caught.value.message == (
        "column 'changed' is not in the query's result; its columns are: id"
    )


def test_postgres_unknown_table_and_syntax_errors_are_plain(pg_database):
    with pytest.raises(ReadError) as caught:
        read_all(pg_source(pg_database), "sales.nope", ["id"])
    assert caught.value.message == 'the query failed: relation "sales.nope" does not exist'
    with pytest.raises(ReadError) as caught:
        read_all(pg_source(pg_database), "select id frm sales.orders", ["id"])
    assert caught.value.message == 'the query failed: syntax error at or near "sales"'


def test_postgres_unreachable_port_is_a_plain_connection_error(pg_database):
    source = pg_source(pg_database, port=5999, password=CANARY)
    with pytest.raises(ReadError) as caught, open_dataset(source, "sales.orders", {}, ["id"]):
        pass
    assert caught.value.message == "could not connect to 127.0.0.1:5999: connection refused"
    assert caught.value.__cause__ is None  # the driver's exception is not chained
    with pytest.raises(
        ReadError, match="^could not connect to 127.0.0.1:5999: connection refused$"
    ):
        test_connection(source)


def test_postgres_unknown_database_or_role_says_so_without_the_password(pg_database):
    # The server trusts local connections, so a wrong password cannot be shown; a role or
    # database that does not exist fails the same way, before any query.
    with pytest.raises(ReadError) as caught:
        test_connection(pg_source("pontis_no_such_db", password=CANARY))
    assert caught.value.message == (
        'could not connect to 127.0.0.1:5432: database "pontis_no_such_db" does not exist'
    )
    with pytest.raises(ReadError) as caught:
        read_all(
            pg_source(pg_database, user="pontis_nobody", password=CANARY), "sales.orders", ["id"]
        )
    assert caught.value.message == (
        'could not connect to 127.0.0.1:5432: role "pontis_nobody" does not exist'
    )
    assert CANARY not in caught.value.message


def test_postgres_several_statements_and_writes_are_refused_before_connecting(pg_database):
    source = pg_source(pg_database, port=5999)  # nothing listens: the checker decides
    with pytest.raises(ReadError, match="^one statement only"):
        open_dataset(source, "select 1; drop table sales.orders", {}, ["id"])
    with pytest.raises(ReadError, match="not INSERT$"):
        open_dataset(source, "insert into sales.orders (id) values (9)", {}, ["id"])
    with pytest.raises(ReadError, match="the query contains DELETE"):
        open_dataset(
            source, "with x as (delete from sales.orders returning *) select * from x", {}, ["id"]
        )
    assert pg_count(pg_database) == 4


def test_postgres_reads_in_a_read_only_transaction_with_timeout_and_utc(pg_database, settings):
    settings.PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS = 7
    with open_dataset(pg_source(pg_database), "sales.orders", {}, ["id"]) as dataset:
        assert dataset._execute("SHOW transaction_read_only")[1] == [("on",)]
        assert dataset._execute("SHOW statement_timeout")[1] == [("7s",)]
        assert dataset._execute("SHOW TimeZone")[1] == [("UTC",)]
        # Even a write that got past the checker fails in the read-only transaction.
        with pytest.raises(ReadError) as caught:
            dataset._execute("DELETE FROM sales.orders")
        assert caught.value.message == (
            "the query failed: cannot execute DELETE in a read-only transaction"
        )
    for statement, refused in [
        # (PostgreSQL names the outer command of a write inside WITH.)
        (
            "WITH x AS (INSERT INTO sales.orders (id) VALUES (99) RETURNING id) SELECT id FROM x",
            "cannot execute SELECT in a read-only transaction",
        ),
        (
            "CREATE TABLE public.sneaky (a int)",
            "cannot execute CREATE TABLE in a read-only transaction",
        ),
        ("SELECT nextval('sales.numbers')", "cannot execute nextval() in a read-only transaction"),
    ]:
        with open_dataset(pg_source(pg_database), "sales.orders", {}, ["id"]) as dataset:
            with pytest.raises(ReadError) as caught:
                dataset._execute(statement)
            assert caught.value.message == f"the query failed: {refused}"
    assert pg_count(pg_database) == 4


def test_postgres_one_statement_only_even_when_the_checker_misreads_a_string(pg_database):
    """sqlparse reads 'a\\' as an escaped quote, PostgreSQL as a string ending in a
    backslash: the checker sees one SELECT where the server would see a DELETE too. The
    extended protocol refuses the second statement, and the transaction is read-only."""
    query = "select 'a\\' as id; delete from sales.orders; --'"
    with pytest.raises(ReadError) as caught:
        read_all(pg_source(pg_database), query, ["id"])
    assert caught.value.message in (
        "the query failed: cannot insert multiple commands into a prepared statement",
        'the query failed: syntax error at or near ";"',
    )
    assert pg_count(pg_database) == 4


def test_postgres_statement_timeout_stops_a_long_query(pg_database, settings):
    settings.PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(ReadError) as caught:
        read_all(pg_source(pg_database), "select pg_sleep(600) as id", ["id"])
    assert caught.value.message == "statement timeout after 1 s"
    assert time.monotonic() - started < 10


def test_postgres_streams_through_a_server_side_cursor_in_batches(pg_database):
    with open_dataset(pg_source(pg_database), "big", {}, ["id", "digest"]) as dataset:
        sizes = []
        for batch in dataset.batches(10_000):
            sizes.append(len(batch))
            if len(sizes) == 1:
                cursors = dataset._execute("SELECT name FROM pg_cursors")[1]
                assert ("pontis_reconciliation",) in cursors
        assert dataset.count_hint() is None
    assert sizes == [10_000, 10_000, 5_000]
    assert dataset.conn is None  # closed on leaving


def test_postgres_stopping_early_closes_the_connection(pg_database):
    with open_dataset(pg_source(pg_database), "big", {}, ["id"]) as dataset:
        first = next(dataset.batches(100))
        conn = dataset.conn
    assert len(first) == 100 and conn.closed


# --------------------------------------------------------------------------------------
# MySQL / MariaDB
# --------------------------------------------------------------------------------------


def mysql_source(*, password="", **parts):
    parts = {**MYSQL, **parts}
    source = DataSource(
        kind="mysql",
        dsn=f"mysql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['database']}",
    )
    source.set_credentials({"password": password})
    return source


def mysql_connect():
    return pymysql.connect(**MYSQL, autocommit=True)


@pytest.fixture(scope="module")
def mysql_tables():
    """Scratch tables in the ``test`` database: ``orders`` and ``big``, uniquely named."""
    prefix = f"recon_{secrets.token_hex(4)}"
    orders, big = f"{prefix}_orders", f"{prefix}_big"
    conn = mysql_connect()  # an unreachable server fails here, loudly
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET time_zone = '+02:00'")
            cursor.execute(
                f"""CREATE TABLE `{orders}` (
                    id INT PRIMARY KEY,
                    customer VARCHAR(50),
                    amount DECIMAL(12, 2),
                    placed DATE,
                    changed_at DATETIME(6),
                    stamped TIMESTAMP NULL,
                    paid BOOLEAN,
                    ratio DOUBLE
                )"""
            )
            cursor.execute(
                f"""INSERT INTO `{orders}` VALUES
                (1, 'ACME', 10.10, '2024-05-01', '2024-05-01 08:00:00', '2024-05-01 10:00:00', TRUE, 0.5),
                (2, 'Globex', 20.00, '2024-05-02', '2024-05-02 23:30:00.250000', NULL, FALSE, NULL),
                (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""
            )
            cursor.execute(f"CREATE TABLE `{big}` (id INT PRIMARY KEY, digest CHAR(32))")
            cursor.execute(f"INSERT INTO `{big}` SELECT seq, MD5(seq) FROM seq_1_to_25000")
        yield {"orders": orders, "big": big}
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS `{orders}`, `{big}`")
        conn.close()


def mysql_count(table):
    conn = mysql_connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM `{table}`")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_mysql_connection_test_says_product_version_user_and_database(mysql_tables):
    conn = mysql_connect()
    with conn.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    conn.close()
    product = "MariaDB" if "MariaDB" in version else "MySQL"
    assert test_connection(mysql_source()) == (
        f"Connected to {product} {version.split('-')[0]} as root on test"
    )


def test_mysql_values_come_back_as_python_types_in_utc(mysql_tables):
    rows = read_all(
        mysql_source(),
        mysql_tables["orders"],
        ["id", "customer", "amount", "placed", "changed_at", "stamped", "paid", "ratio"],
    )
    assert sorted(rows, key=lambda row: row[0]) == [
        (
            1,
            "ACME",
            Decimal("10.10"),
            date(2024, 5, 1),
            datetime(2024, 5, 1, 8, 0),
            datetime(2024, 5, 1, 8, 0),  # TIMESTAMP written at +02:00, read in UTC
            1,
            0.5,
        ),
        (
            2,
            "Globex",
            Decimal("20.00"),
            date(2024, 5, 2),
            datetime(2024, 5, 2, 23, 30, 0, 250000),
            None,
            0,
            None,
        ),
        (3, None, None, None, None, None, None, None),
    ]


def test_mysql_reads_a_select_with_percent_signs_and_columns_in_order(mysql_tables):
    rows = read_all(
        mysql_source(),
        f"SELECT id, CONCAT(customer, '%') AS tag FROM `{mysql_tables['orders']}` "
        "WHERE customer LIKE '%lob%' -- Globex only\n",
        ["tag", "id"],
    )
    assert rows == [("Globex%", 2)]


def test_mysql_window_and_missing_column(mysql_tables):
    window = Window(
        "changed_at",
        datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),  # 08:00 UTC
        datetime(2024, 5, 2, 23, 30, 0, 250000, tzinfo=UTC),
    )
    assert read_all(mysql_source(), mysql_tables["orders"], ["id"], window=window) == [(1,)]
    with pytest.raises(ReadError) as caught:
        read_all(mysql_source(), mysql_tables["orders"], ["id", "total"])
    assert caught.value.message == (
        f"column 'total' is not in table {mysql_tables['orders']}; its columns are: id, "
        "customer, amount, placed, changed_at, stamped, paid, ratio"
    )


def test_mysql_wrong_password_is_refused_without_showing_it(mysql_tables):
    with pytest.raises(ReadError) as caught:
        test_connection(mysql_source(password=CANARY))
    assert caught.value.message == (
        "could not connect to 127.0.0.1:3306: access denied for user 'root'@'127.0.0.1' "
        "(wrong user name or password)"
    )
    assert CANARY not in caught.value.message


def test_mysql_unreachable_port_and_unknown_database(mysql_tables):
    with pytest.raises(ReadError) as caught:
        read_all(mysql_source(port=3399), mysql_tables["orders"], ["id"])
    assert caught.value.message == "could not connect to 127.0.0.1:3399: connection refused"
    with pytest.raises(ReadError) as caught:
        test_connection(mysql_source(database="pontis_no_such_db"))
    assert caught.value.message == (
        "could not connect to 127.0.0.1:3306: unknown database 'pontis_no_such_db'"
    )


def test_mysql_unknown_table_and_syntax_error(mysql_tables):
    with pytest.raises(ReadError) as caught:
        read_all(mysql_source(), "nope_table", ["id"])
    assert caught.value.message == "the query failed: Table 'test.nope_table' doesn't exist"
    with pytest.raises(ReadError, match="^the query failed: You have an error in your SQL syntax"):
        read_all(mysql_source(), f"select id frm `{mysql_tables['orders']}`", ["id"])


def test_mysql_refuses_executable_comments_and_writes(mysql_tables):
    table = mysql_tables["orders"]
    with pytest.raises(ReadError, match="executable comments"):
        open_dataset(
            mysql_source(),
            f"select id from `{table}` /*!50000 into outfile '/tmp/x' */",
            {},
            ["id"],
        )
    with pytest.raises(ReadError, match="one statement only"):
        open_dataset(mysql_source(), f"select 1; drop table `{table}`", {}, ["id"])
    with open_dataset(mysql_source(), table, {}, ["id"]) as dataset:
        variable = (
            "tx_read_only"
            if "MariaDB" in dataset.conn.server_version_text
            else "transaction_read_only"
        )
        assert dataset._execute(f"SELECT @@session.{variable}")[1] == [(1,)]
        with pytest.raises(ReadError) as caught:
            dataset._execute(f"DELETE FROM `{table}`")
        assert caught.value.message == (
            "the query failed: Cannot execute statement in a READ ONLY transaction"
        )
        # And one statement per call, whatever got past the checker.
        with pytest.raises(ReadError, match="error in your SQL syntax"):
            dataset._execute(f"SELECT 1; DELETE FROM `{table}`")
    assert mysql_count(table) == 3


def test_mysql_statement_timeout_stops_a_long_query(mysql_tables, settings):
    settings.PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(ReadError) as caught:
        read_all(mysql_source(), "select sleep(600) as id", ["id"])
    assert caught.value.message == "statement timeout after 1 s"
    assert time.monotonic() - started < 10


def test_mysql_streams_unbuffered_in_batches_and_can_stop_early(mysql_tables):
    with open_dataset(mysql_source(), mysql_tables["big"], {}, ["digest", "id"]) as dataset:
        sizes = [len(batch) for batch in dataset.batches(10_000)]
    assert sizes == [10_000, 10_000, 5_000]
    with open_dataset(mysql_source(), mysql_tables["big"], {}, ["id"]) as dataset:
        assert len(next(dataset.batches(10))) == 10
        conn = dataset.conn
    assert not conn.open
    # The server is fine afterwards.
    assert mysql_count(mysql_tables["big"]) == 25_000


# --------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path, settings):
    settings.PONTIS_RECON_SQLITE_DIR = str(tmp_path)
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount NUMERIC,
                             changed TEXT, changed_epoch INTEGER);
        INSERT INTO orders VALUES
            (1, 'ACME', 10.5, '2024-05-01T08:00:00Z', 1714550400),
            (2, 'Globex', 20, '2024-05-02 10:00:00+02:00', 1714644000),
            (3, NULL, NULL, NULL, NULL),
            (4, 'Initech', 0.05, '2024-05-03', 1714694400);
        """
    )
    conn.commit()
    conn.close()
    return path


def sqlite_source(path):
    return DataSource(kind="sqlite", dsn=f"sqlite://{path}")


def test_sqlite_reads_a_table_and_a_query(sqlite_file):
    source = sqlite_source(sqlite_file)
    assert test_connection(source) == (
        f"Opened SQLite {sqlite3.sqlite_version} file {sqlite_file} (read-only)"
    )
    assert read_all(source, "orders", ["customer", "id", "amount"]) == [
        ("ACME", 1, 10.5),
        ("Globex", 2, 20),
        (None, 3, None),
        ("Initech", 4, 0.05),
    ]
    assert read_all(source, "select id * 10 as tens from orders where id < 3", ["tens"]) == [
        (10,),
        (20,),
    ]


def test_sqlite_window_reads_iso_texts_and_epoch_numbers(sqlite_file):
    source = sqlite_source(sqlite_file)
    window = Window("changed", datetime(2024, 5, 1, 8, 0, tzinfo=UTC), datetime(2024, 5, 3))
    assert read_all(source, "orders", ["id"], window=window) == [(1,), (2,)]
    window = Window("changed_epoch", datetime(2024, 5, 1, 8, 0, tzinfo=UTC), datetime(2024, 5, 3))
    assert read_all(source, "orders", ["id"], window=window) == [(1,), (2,)]


def test_sqlite_is_read_only_and_one_statement_at_a_time(sqlite_file):
    with open_dataset(sqlite_source(sqlite_file), "orders", {}, ["id"]) as dataset:
        with pytest.raises(ReadError) as caught:
            dataset._execute("DELETE FROM orders")
        assert caught.value.message == "the query failed: attempt to write a readonly database"
        with pytest.raises(ReadError, match="You can only execute one statement at a time"):
            dataset._execute("SELECT 1; DELETE FROM orders")
    assert sqlite3.connect(sqlite_file).execute("select count(*) from orders").fetchone() == (4,)


def test_sqlite_statement_timeout_interrupts_a_runaway_query(sqlite_file, settings):
    settings.PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(ReadError) as caught:
        read_all(
            sqlite_source(sqlite_file),
            "with recursive c(x) as (select 1 union all select x + 1 from c) "
            "select max(x) as id from c",
            ["id"],
        )
    assert caught.value.message == "statement timeout after 1 s"
    assert time.monotonic() - started < 5


def test_sqlite_missing_file_unknown_table_and_files_outside_the_directory(sqlite_file, tmp_path):
    with pytest.raises(ReadError) as caught:
        test_connection(sqlite_source(tmp_path / "gone.db"))
    assert caught.value.message == f"the SQLite file {tmp_path}/gone.db does not exist"
    with pytest.raises(ReadError) as caught:
        read_all(sqlite_source(sqlite_file), "nope", ["id"])
    assert caught.value.message == "the query failed: no such table: nope"
    with pytest.raises(ReadError, match="is not below it"):
        open_dataset(sqlite_source("/etc/hostname"), "orders", {}, ["id"])
    (tmp_path / "text.db").write_text("not a database at all, just text" * 100)
    with pytest.raises(ReadError, match="is not a SQLite database|not a readable SQLite"):
        test_connection(sqlite_source(tmp_path / "text.db"))
