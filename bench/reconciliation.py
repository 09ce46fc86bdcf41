"""Reconciliation benchmark: Pontis comparing two datasets of 1,000,000 rows by key, in each
of its modes, next to the floors and tools the issue names, all measured in the same run.

1. Generates, with ``generate_series`` in PostgreSQL (127.0.0.1:5432, user postgres; another
   server with ``PONTIS_BENCH_RECON_PG=postgresql://user:password@host:port``), a source and a target table of ``--rows`` keys and
   8 typed columns in a database of their own (``pontis_bench_recon``), and a copy of the
   target in a second database (``pontis_bench_recon_b``). Tables are kept and reused while
   their row count, seed and generator version match. Both tables are exported as CSV
   (``COPY … TO STDOUT`` through the client) for the file modes, the target with some
   instants written at another offset. Every count of the right answer is known from the
   generator (:func:`truth`), never from a comparison.
2. Sets Django up on a SQLite database of the benchmark's own and creates the data sources
   and jobs of the four Pontis modes.
3. Measures, in 3 passes, each measure in a process of its own (its time from the start of
   the work to its end, its peak RSS from ``getrusage``): the anchors (the COPY floor, one
   hand-written SQL statement, a hand-written polars comparison of the CSV files, datacompy
   with its polars backend on the same CSV files) and the Pontis modes, each a
   ``jobs.execute(ReconciliationRun, run.pk, run_job)`` as a worker runs it. Every count
   of every measure is checked against the known truth; a wrong one is reported as WRONG
   and fails the benchmark (after the results are written).
4. Optionally (``--ten-million``) runs the streamed cross-database mode on 10,000,000 keys
   once, for its time and peak memory (goal: under 1 GB). Without the flag, the last
   10M figures measured are carried over into the results file, marked as such.

Run it with ``make bench BENCH=reconciliation`` or ``.venv/bin/python bench/reconciliation.py``
(``--help`` for the options). datacompy pins polars below the version the app uses, so it
runs in a virtualenv of its own, ``var/bench/datacompy-venv``, created from
``requirements-bench-datacompy.txt`` on first use. Writes ``bench/results/reconciliation.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import common

ROWS = int(os.environ.get("PONTIS_BENCH_RECON_ROWS", "1000000"))
TEN_MILLION = 10_000_000
SEED = 20261125
PASSES = 3
GENERATOR_VERSION = 1  # bump when the generated data changes: old tables are regenerated
PANDAS_ROWS = 100_000  # datacompy-pandas takes ≈ 38 s at 1M; it runs on this size instead
SLOW_SECONDS = 30  # a measure whose first pass takes longer runs once only

# The server the data lives on; the user must be allowed to create databases.
PG_URL = os.environ.get("PONTIS_BENCH_RECON_PG", "postgresql://postgres@127.0.0.1:5432")


def _pg_params() -> dict:
    from urllib.parse import unquote, urlsplit

    url = urlsplit(PG_URL)
    params = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": unquote(url.username or "postgres"),
    }
    if url.password:
        params["password"] = unquote(url.password)
    return params


PG = _pg_params()
DB_A = "pontis_bench_recon"
DB_B = "pontis_bench_recon_b"
DATA_DIR = common.REPO_DIR / "var" / "bench" / "reconciliation-data"
VAR_DIR = common.REPO_DIR / "var" / "bench" / "reconciliation"
DATACOMPY_VENV = common.REPO_DIR / "var" / "bench" / "datacompy-venv"
DATACOMPY_REQUIREMENTS = common.REPO_DIR / "requirements-bench-datacompy.txt"

COLUMNS = ["id", "name", "amount", "qty", "due", "booked_at", "active", "note"]
COMPARED = COLUMNS[1:]
NORMALISATION = {
    "id": {"type": "integer"},
    "amount": {"type": "number"},
    "qty": {"type": "integer"},
    "due": {"type": "date"},
    "booked_at": {"type": "datetime"},
    "active": {"type": "boolean"},
    "note": {"empty_is_null": True},  # a CSV file writes NULL as an empty cell
}

# Goals from the issue.
GOAL_IN_DATABASE = 1.2  # × the hand-written statement
GOAL_CROSS_SOURCE = 2.0  # × the COPY floor
GOAL_FILES = 1.5  # × the hand-written polars comparison
GOAL_MEMORY_MB = 1024  # worker peak at 10M rows, streamed
ISSUE_FIGURES = {  # seconds, measured by the issue on 2 cores, medians of three
    "copy_floor": 2.8,
    "hand_sql": 3.4,
    "hand_polars": 1.5,
    "datacompy_polars": 4.3,
    "datacompy_pandas": 38,
}

# --------------------------------------------------------------------------------------
# The generated data and its known truth
# --------------------------------------------------------------------------------------
#
# Keys 1..n; each key falls in a bucket b = hash(key) % 1000 (the same formula in SQL and
# Python). Buckets:
#   0-4    missing in target             (source 1 row, target none)
#   5-9    duplicate in source           (source 2 rows, the 2nd with another amount; target 1)
#   10-12  duplicate in target           (target 2 rows, 3 in bucket 10; source 1)
#   13-14  duplicate on both sides       (2 rows each)
#   15-16  duplicate in source, missing  (source 2 identical rows, target none)
#   17-26  changed: one column, chosen by (key / 7) % 7; buckets 25-26 change the amount too
#   27-46  amount equal by value, written otherwise: 123.40 in the source's numeric(12,2),
#          123.4 or 123.4000 in the target's unconstrained numeric
#   37-56  booked_at the same instant, written in the target CSV at +02:00 with a "T"
#   other  equal
# Keys n+1..n+n/200 are in the target only (unexpected), every 10th of them twice.

MISSING = range(0, 5)
SOURCE_DUPLICATE = range(5, 10)
TARGET_DUPLICATE = range(10, 13)
BOTH_DUPLICATE = range(13, 15)
SOURCE_DUPLICATE_MISSING = range(15, 17)
CHANGED = range(17, 27)
CHANGED_TWICE = range(25, 27)
EQUAL_AMOUNT = range(27, 47)
EQUAL_INSTANT = range(37, 57)


def bucket(key: int, seed: int) -> int:
    return ((key * 2654435761 + seed * 97) % 4294967296) % 1000


def _bucket_sql(key: str, seed: int) -> str:
    return f"((({key}) * 2654435761 + {seed * 97}) % 4294967296) % 1000"


def extra_keys(n: int) -> int:
    return max(n // 200, 1)


def truth(n: int, seed: int) -> dict:
    """The counts a right comparison reports (Pontis' semantics, see compare.py), the
    counts datacompy's semantics give (duplicates paired by order), and how many rows are
    equal by value but written otherwise."""
    counts = dict.fromkeys(range(1000), 0)
    changed_columns = dict.fromkeys(COMPARED, 0)
    for key in range(1, n + 1):
        b = bucket(key, seed)
        counts[b] += 1
        if b in CHANGED:
            column = COMPARED[(key // 7) % 7]
            changed_columns[column] += 1
            if b in CHANGED_TWICE and column != "amount":
                changed_columns["amount"] += 1

    def among(buckets: range) -> int:
        return sum(counts[b] for b in buckets)

    extras = extra_keys(n)
    extra_doubles = sum(1 for key in range(n + 1, n + extras + 1) if key % 10 == 0)
    missing, source_dup, both_dup = among(MISSING), among(SOURCE_DUPLICATE), among(BOTH_DUPLICATE)
    target_dup, target_triple = among(TARGET_DUPLICATE), counts[10]
    dup_missing, changed = among(SOURCE_DUPLICATE_MISSING), among(CHANGED)
    source_rows = n + source_dup + both_dup + dup_missing
    target_rows = (
        n - missing - dup_missing + target_dup + target_triple + both_dup + extras + extra_doubles
    )
    duplicates = source_dup + target_dup + both_dup
    pontis = {
        "source_rows": source_rows,
        "target_rows": target_rows,
        "matched": n - missing - dup_missing - duplicates - changed,
        "mismatched": changed,
        "missing_in_target": missing + dup_missing,
        "unexpected_in_target": extras,
        "duplicates": duplicates,
        "duplicate_source_keys": source_dup + both_dup + dup_missing,
        "duplicate_source_rows": 2 * (source_dup + both_dup + dup_missing),
        "duplicate_target_keys": target_dup + both_dup + extra_doubles,
        "duplicate_target_rows": 2 * (target_dup + both_dup + extra_doubles) + target_triple,
        "column_mismatches": changed_columns,
    }
    # datacompy pairs the k-th row of a key on one side with the k-th on the other.
    paired = n - missing - dup_missing + both_dup  # min(source, target) rows per key, summed
    datacompy = {
        "source_rows": source_rows,
        "target_rows": target_rows,
        "intersect_rows": paired,
        "source_only_rows": source_rows - paired,
        "target_only_rows": target_rows - paired,
        "matching_rows": paired - changed,
        "column_mismatches": changed_columns,
    }
    equal_amount, equal_instant = among(EQUAL_AMOUNT), among(EQUAL_INSTANT)
    return {
        "pontis": pontis,
        "datacompy": datacompy,
        "value_equal_rows": {
            "amount written otherwise (numeric scale), every mode": equal_amount,
            "instant written at another offset (target CSV only)": equal_instant,
            "either (in the file modes)": among(range(EQUAL_AMOUNT.start, EQUAL_INSTANT.stop)),
        },
    }


def _side_sql(table: str, side: str, n: int, seed: int) -> list[str]:
    """CREATE TABLE and INSERT … SELECT generate_series statements of one side."""
    amount_type = "numeric(12,2)" if side == "source" else "numeric"
    statements = [
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE UNLOGGED TABLE {table} (id bigint, name text, amount {amount_type}, "
        "qty integer, due date, booked_at timestamptz, active boolean, note text)",
    ]
    # k: key, b: bucket, h: a second hash for values, col: the column a change hits.
    keys = (
        "SELECT i AS k, {bucket} AS b, (i * 40503 + {seed}) % 1000003 AS h, "
        "(i / 7) % 7 AS col FROM generate_series({first}::bigint, {last}::bigint) AS i"
    )
    equal_amount = f"b BETWEEN {EQUAL_AMOUNT.start} AND {EQUAL_AMOUNT.stop - 1}"
    base_amount = (
        f"CASE WHEN {equal_amount} THEN round((h % 100000) / 10.0, 1) "
        "ELSE round((h % 10000000) / 100.0, 2) END"
    )
    base_note = "CASE WHEN k % 7 = 0 THEN NULL ELSE 'note ' || (k % 97) END"
    base_active = "k % 3 = 0"
    base_booked = (
        "timestamptz '2024-01-01 00:00:00+00' + (k * 37) * interval '1 second' "
        "+ (h % 1000000) * interval '1 microsecond'"
    )
    if side == "source":
        copies = (
            f"CASE WHEN b BETWEEN {SOURCE_DUPLICATE.start} AND {SOURCE_DUPLICATE.stop - 1} "
            f"OR b BETWEEN {BOTH_DUPLICATE.start} AND {SOURCE_DUPLICATE_MISSING.stop - 1} "
            "THEN 2 ELSE 1 END"
        )
        select = (
            "k, 'customer ' || k, "
            f"{base_amount} + CASE WHEN c = 2 AND b BETWEEN {SOURCE_DUPLICATE.start} AND "
            f"{SOURCE_DUPLICATE.stop - 1} THEN 1 ELSE 0 END, "
            "(h % 1000)::int, date '2020-01-01' + (k % 2000)::int, "
            f"{base_booked}, {base_active}, {base_note}"
        )
        parts = [(1, n, copies)]
    else:
        changed = f"b BETWEEN {CHANGED.start} AND {CHANGED.stop - 1}"
        twice = f"b BETWEEN {CHANGED_TWICE.start} AND {CHANGED_TWICE.stop - 1}"
        copies = (
            f"CASE WHEN b < {MISSING.stop} OR b BETWEEN {SOURCE_DUPLICATE_MISSING.start} AND "
            f"{SOURCE_DUPLICATE_MISSING.stop - 1} THEN 0 WHEN b = {TARGET_DUPLICATE.start} "
            f"THEN 3 WHEN b BETWEEN {TARGET_DUPLICATE.start} AND {BOTH_DUPLICATE.stop - 1} "
            "THEN 2 ELSE 1 END"
        )
        amount = (
            f"CASE WHEN {equal_amount} AND k % 2 = 0 THEN trim_scale({base_amount}) "
            f"WHEN {equal_amount} THEN ({base_amount})::numeric(14,4) ELSE {base_amount} END "
            f"+ CASE WHEN {changed} AND (col = 1 OR {twice}) THEN 0.01 ELSE 0 END"
        )
        select = (
            f"k, 'customer ' || k || CASE WHEN {changed} AND col = 0 THEN ' jr' ELSE '' END, "
            f"{amount}, "
            f"(h % 1000)::int + CASE WHEN {changed} AND col = 2 THEN 1 ELSE 0 END, "
            "date '2020-01-01' + (k % 2000)::int "
            f"+ CASE WHEN {changed} AND col = 3 THEN 1 ELSE 0 END, "
            f"{base_booked} + CASE WHEN {changed} AND col = 4 THEN interval '1 millisecond' "
            "ELSE interval '0' END, "
            f"CASE WHEN {changed} AND col = 5 THEN NOT ({base_active}) ELSE {base_active} END, "
            f"CASE WHEN {changed} AND col = 6 THEN (CASE WHEN ({base_note}) IS NULL THEN 'added' "
            f"WHEN k % 2 = 0 THEN NULL ELSE ({base_note}) || '!' END) ELSE {base_note} END"
        )
        parts = [
            (1, n, copies),
            (n + 1, n + extra_keys(n), "CASE WHEN k % 10 = 0 THEN 2 ELSE 1 END"),
        ]
    for first, last, copies_sql in parts:
        key_sql = keys.format(
            bucket=_bucket_sql("i", seed) if first == 1 else "999",
            seed=seed,
            first=first,
            last=last,
        )
        statements.append(
            f"INSERT INTO {table} SELECT {select} FROM ({key_sql}) AS x "  # noqa: S608 - integers only
            f"CROSS JOIN LATERAL generate_series(1, {copies_sql}) AS c"
        )
    statements.append(f"ANALYZE {table}")
    return statements


def target_csv_query(table: str, n: int, seed: int) -> str:
    """The target's CSV export: instants of buckets 37-56 written at +02:00 with a "T"."""
    instant = (
        f"id <= {n} AND {_bucket_sql('id', seed)} BETWEEN {EQUAL_INSTANT.start} "
        f"AND {EQUAL_INSTANT.stop - 1}"
    )
    return (
        "SELECT id, name, amount, qty, due, "
        f"CASE WHEN {instant} THEN to_char((booked_at AT TIME ZONE 'UTC') + interval '2 hours', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+02:00' ELSE booked_at::text END AS booked_at, "
        f"active, note FROM {table}"  # noqa: S608 - integers only
    )


def table_names(n: int) -> tuple[str, str]:
    return f"recon_source_{n}", f"recon_target_{n}"


# --------------------------------------------------------------------------------------
# PostgreSQL: databases, tables, CSV files
# --------------------------------------------------------------------------------------


def pg_connect(dbname: str, **kwargs):
    import psycopg

    return psycopg.connect(dbname=dbname, **PG, **kwargs)


def ensure_database(name: str) -> None:
    with pg_connect("postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _stamp(n: int, seed: int) -> str:
    return f"rows={n} seed={seed} generator={GENERATOR_VERSION}"


def ensure_table(dbname: str, table: str, side: str, n: int, seed: int) -> float:
    """Generates the table unless an identical one is there; returns the seconds spent."""
    with pg_connect(dbname, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_tables (name text PRIMARY KEY, stamp text)")
        row = conn.execute("SELECT stamp FROM bench_tables WHERE name = %s", [table]).fetchone()
        exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]
        if row and row[0] == _stamp(n, seed) and exists:
            return 0.0
        started = time.perf_counter()
        print(f"   generating {dbname}.{table} ({n:,} keys)…", flush=True)
        for statement in _side_sql(table, side, n, seed):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO bench_tables VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
            "SET stamp = excluded.stamp",
            [table, _stamp(n, seed)],
        )
        return time.perf_counter() - started


def export_csv(dbname: str, query: str, path: Path, stamp: str) -> float:
    """COPY (query) TO STDOUT as CSV with a header into ``path``, unless done already."""
    done = path.with_suffix(".stamp")
    if path.exists() and done.exists() and done.read_text() == stamp:
        return 0.0
    started = time.perf_counter()
    print(f"   exporting {path.name}…", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with pg_connect(dbname) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        with (
            open(partial, "wb") as handle,
            conn.cursor().copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy,
        ):
            for data in copy:
                handle.write(data)
    partial.replace(path)
    done.write_text(stamp)
    return time.perf_counter() - started


def prepare_data(n: int, seed: int, *, second_database: bool = True, csv: bool = True) -> dict:
    """Tables (and CSV files) of ``n`` keys: source and target in A, the target in B."""
    source, target = table_names(n)
    spent = 0.0
    ensure_database(DB_A)
    spent += ensure_table(DB_A, source, "source", n, seed)
    if csv or not second_database:
        spent += ensure_table(DB_A, target, "target", n, seed)
    if second_database:
        ensure_database(DB_B)
        spent += ensure_table(DB_B, target, "target", n, seed)
    files = {}
    if csv:
        stamp = _stamp(n, seed)
        files["source"] = DATA_DIR / f"source-{n}.csv"
        files["target"] = DATA_DIR / f"target-{n}.csv"
        spent += export_csv(DB_A, f"SELECT * FROM {source}", files["source"], stamp)  # noqa: S608
        spent += export_csv(DB_A, target_csv_query(target, n, seed), files["target"], stamp)
    return {
        "rows": n,
        "source_table": source,
        "target_table": target,
        "csv": {side: str(path) for side, path in files.items()},
        "csv_bytes": {side: path.stat().st_size for side, path in files.items()},
        "prepare_seconds": round(spent, 1),
    }


# --------------------------------------------------------------------------------------
# The anchors (each runs in a worker process)
# --------------------------------------------------------------------------------------


def copy_floor(config: dict) -> dict:
    """Both tables read once with COPY … TO STDOUT (text), the bytes discarded: the
    source from database A, the target from database B, as the cross-database mode."""
    total = 0
    for dbname, table in ((DB_A, config["source_table"]), (DB_B, config["target_table"])):
        with pg_connect(dbname) as conn, conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
            for data in copy:
                total += len(data)
    return {"bytes": total}


HAND_SQL = """
WITH s AS (
    SELECT DISTINCT ON (id) id, name, amount, qty, due, booked_at, active, note,
           count(*) OVER (PARTITION BY id) AS n
    FROM {source} ORDER BY id
), t AS (
    SELECT DISTINCT ON (id) id, name, amount, qty, due, booked_at, active, note,
           count(*) OVER (PARTITION BY id) AS n
    FROM {target} ORDER BY id
), j AS (
    SELECT s.n AS sn, t.n AS tn,
           s.name IS DISTINCT FROM t.name AS d_name,
           s.amount IS DISTINCT FROM t.amount AS d_amount,
           s.qty IS DISTINCT FROM t.qty AS d_qty,
           s.due IS DISTINCT FROM t.due AS d_due,
           s.booked_at IS DISTINCT FROM t.booked_at AS d_booked_at,
           s.active IS DISTINCT FROM t.active AS d_active,
           s.note IS DISTINCT FROM t.note AS d_note
    FROM s FULL JOIN t ON s.id = t.id
), c AS (
    SELECT sn, tn, d_name, d_amount, d_qty, d_due, d_booked_at, d_active, d_note,
           sn = 1 AND tn = 1 AS single,
           d_name OR d_amount OR d_qty OR d_due OR d_booked_at OR d_active OR d_note AS d_any
    FROM j
)
SELECT coalesce(sum(sn), 0), coalesce(sum(tn), 0),
       count(*) FILTER (WHERE single AND NOT d_any),
       count(*) FILTER (WHERE single AND d_any),
       count(*) FILTER (WHERE tn IS NULL),
       count(*) FILTER (WHERE sn IS NULL),
       count(*) FILTER (WHERE sn IS NOT NULL AND tn IS NOT NULL AND (sn > 1 OR tn > 1)),
       count(*) FILTER (WHERE sn > 1), coalesce(sum(sn) FILTER (WHERE sn > 1), 0),
       count(*) FILTER (WHERE tn > 1), coalesce(sum(tn) FILTER (WHERE tn > 1), 0),
       count(*) FILTER (WHERE single AND d_name),
       count(*) FILTER (WHERE single AND d_amount),
       count(*) FILTER (WHERE single AND d_qty),
       count(*) FILTER (WHERE single AND d_due),
       count(*) FILTER (WHERE single AND d_booked_at),
       count(*) FILTER (WHERE single AND d_active),
       count(*) FILTER (WHERE single AND d_note)
FROM c
"""

COUNT_NAMES = [
    "source_rows",
    "target_rows",
    "matched",
    "mismatched",
    "missing_in_target",
    "unexpected_in_target",
    "duplicates",
    "duplicate_source_keys",
    "duplicate_source_rows",
    "duplicate_target_keys",
    "duplicate_target_rows",
]


def _counts_from_row(row) -> dict:
    values = [int(value) for value in row]
    counts = dict(zip(COUNT_NAMES, values, strict=False))
    counts["column_mismatches"] = dict(zip(COMPARED, values[len(COUNT_NAMES) :], strict=True))
    return counts


def hand_sql(config: dict) -> dict:
    """One hand-written statement: DISTINCT ON and a window count per side, a FULL JOIN
    and null-safe typed comparison (IS DISTINCT FROM: numeric by value, timestamptz by
    instant), under the server's default settings as Pontis' own statement runs."""
    sql = HAND_SQL.format(source=config["source_table"], target=config["target_table"])
    with pg_connect(DB_A) as conn:
        row = conn.execute(sql).fetchone()
    return {"counts": _counts_from_row(row)}


def _typed_frame(pl, path: str, *, lazy: bool):
    """A CSV file as typed columns: numbers as decimals (12.30 equals 12.3), instants
    parsed with their offset into UTC, t/f as booleans."""
    schema = {
        "id": pl.Int64,
        "name": pl.String,
        "amount": pl.Decimal(18, 4),
        "qty": pl.Int64,
        "due": pl.Date,
        "booked_at": pl.String,
        "active": pl.String,
        "note": pl.String,
    }
    frame = (pl.scan_csv if lazy else pl.read_csv)(path, schema=schema)
    return frame.with_columns(
        pl.col("booked_at")
        .str.replace("T", " ", literal=True)
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_zone="UTC", cache=False),
        pl.col("active").replace_strict({"t": True, "f": False}, return_dtype=pl.Boolean),
    )


def hand_polars(config: dict) -> dict:
    """A hand-written polars comparison of the two CSV files: typed reads, one row and a
    count per key and side (a window count, then one row per key), a full join, null-safe
    equality per column; one lazy query."""
    import polars as pl

    def side(path):  # one row per key (any of its rows) and the key's row count
        return (
            _typed_frame(pl, path, lazy=True)
            .with_columns(pl.len().over("id").alias("n"))
            .unique("id", keep="any")
        )

    joined = side(config["csv"]["source"]).join(
        side(config["csv"]["target"]), on="id", how="full", coalesce=True, suffix="_t"
    )
    sn, tn = pl.col("n"), pl.col("n_t")
    single = ((sn == 1) & (tn == 1)).fill_null(False)
    differs = {c: ~pl.col(c).eq_missing(pl.col(f"{c}_t")) for c in COMPARED}
    any_differs = pl.any_horizontal(list(differs.values()))
    both = sn.is_not_null() & tn.is_not_null()
    row = (
        joined.select(
            sn.sum().alias("source_rows"),
            tn.sum().alias("target_rows"),
            (single & ~any_differs).sum().alias("matched"),
            (single & any_differs).sum().alias("mismatched"),
            (sn.is_not_null() & tn.is_null()).sum().alias("missing_in_target"),
            (sn.is_null() & tn.is_not_null()).sum().alias("unexpected_in_target"),
            (both & ((sn > 1) | (tn > 1))).sum().alias("duplicates"),
            (sn > 1).sum().alias("duplicate_source_keys"),
            sn.filter(sn > 1).sum().alias("duplicate_source_rows"),
            (tn > 1).sum().alias("duplicate_target_keys"),
            tn.filter(tn > 1).sum().alias("duplicate_target_rows"),
            *((single & d).sum().alias(f"d_{c}") for c, d in differs.items()),
        )
        .collect()
        .row(0)
    )
    return {"counts": _counts_from_row(row)}


def datacompy_polars(config: dict) -> dict:
    """datacompy's PolarsCompare on the two CSV files read as typed frames (the same
    reading as the hand-written polars comparison), joined on id."""
    import polars as pl
    from datacompy.polars import PolarsCompare

    df1 = _typed_frame(pl, config["csv"]["source"], lazy=False)
    df2 = _typed_frame(pl, config["csv"]["target"], lazy=False)
    compare = PolarsCompare(df1, df2, join_columns=["id"], df1_name="source", df2_name="target")
    return {"counts": _datacompy_counts(compare, len(df1), len(df2))}


def datacompy_pandas(config: dict) -> dict:
    """datacompy's pandas Compare on the CSV files of the small dataset, typed alike."""
    import datacompy
    import pandas as pd

    def load(path):
        frame = pd.read_csv(
            path,
            dtype={"id": "int64", "name": "string", "qty": "int64", "note": "string"},
            keep_default_na=False,
            na_values={"note": [""]},
        )
        frame["booked_at"] = pd.to_datetime(frame["booked_at"], utc=True, format="ISO8601")
        frame["due"] = pd.to_datetime(frame["due"], format="%Y-%m-%d")
        frame["active"] = frame["active"] == "t"
        return frame

    df1, df2 = load(config["csv"]["source"]), load(config["csv"]["target"])
    compare = datacompy.PandasCompare(
        df1, df2, join_columns="id", df1_name="source", df2_name="target"
    )
    return {"counts": _datacompy_counts(compare, len(df1), len(df2))}


def _datacompy_counts(compare, source_rows: int, target_rows: int) -> dict:
    stats = {stat["column"]: stat["unequal_cnt"] for stat in compare.column_stats}
    return {
        "source_rows": source_rows,
        "target_rows": target_rows,
        "intersect_rows": len(compare.intersect_rows),
        "source_only_rows": len(compare.df1_unq_rows),
        "target_only_rows": len(compare.df2_unq_rows),
        "matching_rows": int(compare.count_matching_rows()),
        "column_mismatches": {column: int(stats[column]) for column in COMPARED},
    }


# --------------------------------------------------------------------------------------
# The Pontis modes
# --------------------------------------------------------------------------------------

MODES = {
    # key: (label, source data source, target data source, strategy)
    "in_database": ("Pontis, both sides in one PostgreSQL", "pg_a", "pg_a", "in_database"),
    "cross_database": ("Pontis, PostgreSQL vs another database", "pg_a", "pg_b", "auto"),
    "pg_file": ("Pontis, PostgreSQL vs CSV file", "pg_a", "file_target", "auto"),
    "file_file": ("Pontis, CSV file vs CSV file", "file_source", "file_target", "auto"),
}


def seed_app(datasets: dict[int, dict]) -> dict:
    """Team, interface, data sources and one job per mode and size; returns job ids."""
    from apps.accounts.models import Team
    from apps.catalog.models import Interface, Pattern, Platform, System, SystemKind
    from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind

    team = Team.objects.create(name="Bench", slug="bench")
    interface = Interface.objects.create(
        code="BEN-REC",
        name="Orders reconciliation",
        source_system=System.objects.create(name="ERP", kind=SystemKind.SAAS, owner_team=team),
        target_system=System.objects.create(name="CRM", kind=SystemKind.SAAS, owner_team=team),
        pattern=Pattern.values[0],
        platform=Platform.values[0],
        owner_team=team,
    )
    from django.conf import settings

    media_files = Path(settings.MEDIA_ROOT) / "reconciliation" / "files"
    media_files.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for n, dataset in datasets.items():
        sources = {
            f"pg_{letter}": DataSource(
                kind=SourceKind.POSTGRESQL,
                dsn=f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{dbname}",
            )
            for letter, dbname in (("a", DB_A), ("b", DB_B))
        }
        for side, path in dataset["csv"].items():
            # The exported file, linked into the media storage as if it had been uploaded.
            stored = media_files / f"bench-{side}-{n}.csv"
            stored.unlink(missing_ok=True)
            try:
                os.link(path, stored)
            except OSError:
                shutil.copyfile(path, stored)
            sources[f"file_{side}"] = DataSource(
                kind=SourceKind.FILE,
                file=f"reconciliation/files/{stored.name}",
                file_name=stored.name,
            )
        for key, source in sources.items():
            source.owner_team = team
            source.name = f"{key} {n}"
            if source.kind == SourceKind.POSTGRESQL and "password" in PG:
                source.set_credentials({"password": PG["password"]})
            source.save()
        for mode, (_label, source_key, target_key, strategy) in MODES.items():
            if n == TEN_MILLION and mode != "cross_database":
                continue  # the 10M check runs the streamed cross-database mode only
            job = ReconciliationJob.objects.create(
                interface=interface,
                name=f"{mode} {n}",
                source=sources[source_key],
                source_dataset="" if source_key.startswith("file") else dataset["source_table"],
                target=sources[target_key],
                target_dataset="" if target_key.startswith("file") else dataset["target_table"],
                key_columns=["id"],
                compare_columns=COMPARED,
                normalisation=NORMALISATION,
                strategy=strategy,
                accuracy_target=0,
            )
            jobs[f"{mode}:{n}"] = job.pk
    return jobs


def pontis_run(config: dict) -> dict:
    """One run of a job as a worker executes it (in a worker process, Django set up)."""
    from apps.core import jobs
    from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
    from apps.reconciliation.runner import run_job

    job = ReconciliationJob.objects.get(pk=config["job_id"])
    run = ReconciliationRun.objects.create(job=job, accuracy_target=job.accuracy_target)
    started = time.perf_counter()
    outcome = jobs.execute(ReconciliationRun, run.pk, run_job)
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    result = {
        "seconds": seconds,
        "outcome": outcome,
        "status": run.status,
        "run_error": run.error,
        "strategy": run.strategy,
        "counts": {name: getattr(run, name) for name in COUNT_NAMES}
        | {"column_mismatches": run.column_mismatches},
    }
    if run.report_file:
        from django.conf import settings

        report = Path(settings.VAR_DIR) / run.report_file
        if report.exists():
            with open(report, "rb") as handle:
                result["report_lines"] = sum(1 for _ in handle)
        report.unlink(missing_ok=True)
    run.delete()
    if run.status != "succeeded":
        result["error"] = f"the run {run.status}: {run.error}"
    return result


# --------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------

ANCHORS = {
    "copy_floor": copy_floor,
    "hand_sql": hand_sql,
    "hand_polars": hand_polars,
    "datacompy_polars": datacompy_polars,
    "datacompy_pandas": datacompy_pandas,
}


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def worker(measure: str, config: dict) -> None:
    """Runs one measure in this process and prints its result as JSON on the last line."""
    if measure in MODES:
        sys.path.insert(0, str(common.REPO_DIR))
        import django

        django.setup()
        # What a worker has loaded after its first run: the reconciliation modules.
        import importlib

        for name in ("runner", "compare", "readers", "in_database", "vectorised"):
            with contextlib.suppress(ImportError):
                importlib.import_module(f"apps.reconciliation.{name}")
        work = pontis_run
    else:
        import importlib

        for name in ("psycopg", "polars", "pandas", "datacompy", "datacompy.polars"):
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        work = ANCHORS[measure]
    baseline = _rss_bytes()
    started = time.perf_counter()
    result = work(config)
    seconds = time.perf_counter() - started
    result.setdefault("seconds", seconds)
    result["baseline_rss_bytes"] = baseline
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result, default=str))


def run_worker(measure: str, config: dict, log_dir: Path, python: str | None = None) -> dict:
    """The measure in a fresh process; its stderr goes to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{measure}.log"
    with open(log, "a") as stderr:
        completed = subprocess.run(
            [python or sys.executable, __file__, "--worker", measure, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=False,
        )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = log.read_text()[-2000:]
        return {"error": f"exit {completed.returncode}: {tail.strip()[-600:]}"}
    return json.loads(lines[-1])


def ensure_datacompy_venv() -> str | None:
    """The Python of the datacompy virtualenv, created on first use; None if impossible."""
    python = DATACOMPY_VENV / "bin" / "python"
    stamp = DATACOMPY_VENV / ".requirements"
    wanted = DATACOMPY_REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    print(f"   installing datacompy into {DATACOMPY_VENV}…", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(DATACOMPY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(DATACOMPY_REQUIREMENTS)],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        print(f"   datacompy could not be installed: {exc}", flush=True)
        return None
    stamp.write_text(wanted)
    return str(python)


# --------------------------------------------------------------------------------------
# Checking and summarising
# --------------------------------------------------------------------------------------


def differences(counts: dict | None, expected: dict) -> dict:
    """{name: [got, expected]} for every count that differs (columns flattened)."""
    if counts is None:
        return {"counts": [None, "a result"]}
    wrong = {}
    for name, value in expected.items():
        if name == "column_mismatches":
            got = counts.get(name) or {}
            for column, count in value.items():
                if got.get(column) != count:
                    wrong[f"column_mismatches.{column}"] = [got.get(column), count]
        elif counts.get(name) != value:
            wrong[name] = [counts.get(name), value]
    return wrong


VALUE_EQUAL_COUNTS = {
    "matched",
    "mismatched",
    "matching_rows",
    "column_mismatches.amount",
    "column_mismatches.booked_at",
}


def summarise(samples: list[dict], expected: dict | None) -> dict:
    """Median time and peak RSS over the passes; correctness of every pass."""
    good = [sample for sample in samples if "error" not in sample]
    summary: dict = {"passes": len(samples)}
    errors = [sample["error"] for sample in samples if "error" in sample]
    if errors:
        summary["errors"] = errors
    if not good:
        return summary | {"seconds": None, "peak_rss_mb": None, "correct": False}
    summary["seconds"] = statistics.median(sample["seconds"] for sample in good)
    summary["pass_seconds"] = [round(sample["seconds"], 3) for sample in good]
    summary["pass_numbers"] = [sample.get("pass", 1) for sample in good]
    summary["peak_rss_mb"] = max(sample["peak_rss_bytes"] for sample in good) / 2**20
    summary["baseline_rss_mb"] = min(sample["baseline_rss_bytes"] for sample in good) / 2**20
    for key in ("strategy", "report_lines", "bytes"):
        if key in good[0]:
            summary[key] = good[0][key]
    statuses = {sample.get("status") for sample in good} - {None}
    if statuses:
        summary["status"] = sorted(statuses)
    if expected is not None:
        wrong = [differences(sample.get("counts"), expected) for sample in good]
        summary["counts"] = good[0].get("counts")
        summary["count_differences"] = next((w for w in wrong if w), {})
        summary["correct"] = not errors and not any(wrong)
        # The counts a value-equal row written otherwise would change if it were reported.
        summary["value_equal_right"] = (
            not any(set(w) & VALUE_EQUAL_COUNTS for w in wrong) and not errors
        )
    return summary


def _ratio(value, anchor) -> float | None:
    if value is None or not anchor:
        return None
    return round(value / anchor, 3)


def _pass_ratios(summary: dict | None, anchor: dict | None) -> list[float]:
    """value ÷ anchor within each pass both ran in (the passes are interleaved, so a pass
    ratio is less sensitive to what else the machine did during the run)."""
    if not summary or not anchor:
        return []
    anchors = dict(zip(anchor.get("pass_numbers", []), anchor.get("pass_seconds", []), strict=True))
    return [
        round(seconds / anchors[number], 3)
        for number, seconds in zip(
            summary.get("pass_numbers", []), summary.get("pass_seconds", []), strict=True
        )
        if anchors.get(number)
    ]


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def measure_all(
    n: int, dataset: dict, job_ids: dict, truth_n: dict, log_dir: Path, passes: int,
    datacompy_python: str | None, pandas_dataset: dict | None,
) -> dict:  # fmt: skip
    """Every measure, interleaved, in ``passes`` passes: {key: summary}."""
    base = {
        "source_table": dataset["source_table"],
        "target_table": dataset["target_table"],
        "csv": dataset["csv"],
    }
    plan = [  # key, measure, config, python, expected counts
        ("copy_floor", "copy_floor", base, None, None),
        ("hand_sql", "hand_sql", base, None, truth_n["pontis"]),
        ("hand_polars", "hand_polars", base, None, truth_n["pontis"]),
    ]
    if datacompy_python:
        plan.append(
            ("datacompy_polars", "datacompy_polars", base, datacompy_python, truth_n["datacompy"])
        )
        if pandas_dataset is not None:
            plan.append(
                (
                    "datacompy_pandas",
                    "datacompy_pandas",
                    {"csv": pandas_dataset["csv"]},
                    datacompy_python,
                    truth(PANDAS_ROWS, SEED)["datacompy"],
                )
            )
    for mode in MODES:
        job_id = job_ids.get(f"{mode}:{n}")
        if job_id is not None:
            plan.append((mode, mode, {"job_id": job_id}, None, truth_n["pontis"]))
    samples: dict[str, list[dict]] = {key: [] for key, *_ in plan}
    for number in range(1, passes + 1):
        print(f"-- pass {number} of {passes}", flush=True)
        for key, measure, config, python, _expected in plan:
            if number > 1 and samples[key] and samples[key][0].get("seconds", 0) > SLOW_SECONDS:
                continue  # a slow measure runs once (said in the results)
            sample = run_worker(measure, config, log_dir, python) | {"pass": number}
            samples[key].append(sample)
            shown = (
                f"{sample['seconds']:.2f} s, peak {sample['peak_rss_bytes'] / 2**20:.0f} MB"
                if "error" not in sample
                else f"ERROR {sample['error'][:300]}"
            )
            print(f"   {key:18} {shown}", flush=True)
    return {key: summarise(samples[key], expected) for key, _, _, _, expected in plan}


def ten_million(job_ids: dict, dataset: dict, log_dir: Path) -> dict:
    """The streamed cross-database mode on 10M keys, once; and the COPY floor of it."""
    expected = truth(TEN_MILLION, SEED)["pontis"]
    config = {"source_table": dataset["source_table"], "target_table": dataset["target_table"]}
    floor = summarise([run_worker("copy_floor", config, log_dir)], None)
    print(f"   copy_floor 10M     {floor.get('seconds') or 0:.2f} s", flush=True)
    mode = summarise(
        [run_worker("cross_database", {"job_id": job_ids[f"cross_database:{TEN_MILLION}"]}, log_dir)],
        expected,
    )  # fmt: skip
    shown = mode.get("seconds")
    print(
        f"   cross_database 10M {shown if shown is None else round(shown, 2)} s, "
        f"peak {mode.get('peak_rss_mb') or 0:.0f} MB",
        flush=True,
    )
    return {"rows": TEN_MILLION, "copy_floor": floor, "cross_database": mode}


def build_figures(n: int, results: dict, ten: dict | None) -> list[dict]:
    figures = []
    copy_s = results["copy_floor"].get("seconds")
    dc_s = (results.get("datacompy_polars") or {}).get("seconds")
    rows = f"{n:,} rows"

    def figure(metric, unit, value, anchor, anchor_value, goal=None, *, pair=None, **extra):
        item = {
            "metric": metric,
            "unit": unit,
            "value": None if value is None else round(value, 3),
            "anchor": anchor,
            "anchor_value": None if anchor_value is None else round(anchor_value, 3),
            "ratio": _ratio(value, anchor_value),
        }
        if goal is not None:
            item["goal"] = goal
            item["meets_goal"] = item["ratio"] is not None and item["ratio"] <= goal
        if pair is not None:
            ratios = _pass_ratios(*pair)
            item["pass_ratios"] = ratios
            item["median_pass_ratio"] = statistics.median(ratios) if ratios else None
        item.update(extra)
        figures.append(item)

    copy_anchor = (
        f"COPY floor: both tables read once with COPY … TO STDOUT, bytes discarded ({rows})"
    )
    for key, label in (
        ("hand_sql", "hand-written SQL statement (DISTINCT ON + window count, FULL JOIN)"),
        ("hand_polars", "hand-written polars comparison of the CSV files"),
        ("datacompy_polars", "datacompy PolarsCompare on the CSV files"),
    ):
        summary = results.get(key)
        if summary is None:
            continue
        figure(
            f"{label}: time", "s", summary.get("seconds"), copy_anchor, copy_s,
            pair=(summary, results["copy_floor"]),
            correct=summary.get("correct"), count_differences=summary.get("count_differences"),
            pass_values=summary.get("pass_seconds"), peak_rss_mb=summary.get("peak_rss_mb"),
            issue_seconds=ISSUE_FIGURES[key],
        )  # fmt: skip
    if "datacompy_pandas" in results:
        summary = results["datacompy_pandas"]
        figure(
            f"datacompy pandas Compare on the CSV files: time at {PANDAS_ROWS:,} rows (not "
            f"{n:,}: ≈ {ISSUE_FIGURES['datacompy_pandas']} s there per the issue)",
            "s", summary.get("seconds"), "datacompy PolarsCompare time at the full size",
            dc_s, correct=summary.get("correct"),
            count_differences=summary.get("count_differences"),
            pass_values=summary.get("pass_seconds"), peak_rss_mb=summary.get("peak_rss_mb"),
            linear_estimate_at_full_size_s=None if summary.get("seconds") is None
            else round(summary["seconds"] * n / PANDAS_ROWS, 1),
        )  # fmt: skip
    goals = {
        "in_database": ("hand_sql", "hand-written SQL statement, same database", GOAL_IN_DATABASE),
        "cross_database": ("copy_floor", copy_anchor, GOAL_CROSS_SOURCE),
        "pg_file": ("copy_floor", copy_anchor, GOAL_CROSS_SOURCE),
        "file_file": ("hand_polars", "hand-written polars comparison of the CSV files", GOAL_FILES),
    }
    for mode, (label, *_rest) in MODES.items():
        summary = results.get(mode)
        if summary is None:
            continue
        anchor_key, anchor, goal = goals[mode]
        anchor_value = results[anchor_key].get("seconds")
        common_extra = {
            "correct": summary.get("correct"),
            "count_differences": summary.get("count_differences"),
            "strategy": summary.get("strategy"),
        }
        figure(
            f"{label}: time", "s", summary.get("seconds"), anchor, anchor_value, goal,
            pair=(summary, results[anchor_key]),
            pass_values=summary.get("pass_seconds"), errors=summary.get("errors"),
            **common_extra,
        )  # fmt: skip
        if dc_s is not None:
            figure(
                f"{label}: time against datacompy", "s", summary.get("seconds"),
                "datacompy PolarsCompare on the CSV files (same run)", dc_s, 1.0,
                pair=(summary, results.get("datacompy_polars")), **common_extra,
            )  # fmt: skip
        figure(
            f"{label}: peak memory of the worker process", "MB", summary.get("peak_rss_mb"),
            "the same process' RSS before the run (Django and libraries loaded)",
            summary.get("baseline_rss_mb"),
        )  # fmt: skip
    if ten is not None:
        mode = ten["cross_database"]
        floor = ten["copy_floor"].get("seconds")
        extra = {"measured_at": ten.get("measured_at"), "carried_over": ten.get("carried_over")}
        figure(
            f"{MODES['cross_database'][0]}, {TEN_MILLION:,} rows: time", "s", mode.get("seconds"),
            f"COPY floor at {TEN_MILLION:,} rows", floor, GOAL_CROSS_SOURCE,
            correct=mode.get("correct"), count_differences=mode.get("count_differences"),
            strategy=mode.get("strategy"), **extra,
        )  # fmt: skip
        one_m = (results.get("cross_database") or {}).get("peak_rss_mb")
        item_value = mode.get("peak_rss_mb")
        figure(
            f"{MODES['cross_database'][0]}, {TEN_MILLION:,} rows: peak memory of the worker",
            "MB", item_value, f"the same mode's peak at {n:,} rows", one_m,
            goal_mb=GOAL_MEMORY_MB,
            meets_goal=item_value is not None and item_value < GOAL_MEMORY_MB, **extra,
        )  # fmt: skip
    return figures


def print_table(figures: list[dict]) -> None:
    rows = []
    for item in figures:
        value = "-" if item["value"] is None else f"{item['value']:,.2f}"
        anchor = "-" if item["anchor_value"] is None else f"{item['anchor_value']:,.2f}"
        ratio = "-" if item["ratio"] is None else f"{item['ratio']:.2f}"
        pass_ratio = item.get("median_pass_ratio")
        pass_ratio = "" if pass_ratio is None else f"{pass_ratio:.2f}"
        goal = ""
        if "goal" in item:
            goal = f"≤{item['goal']} {'ok' if item['meets_goal'] else 'MISS'}"
        elif "goal_mb" in item:
            goal = f"<{item['goal_mb']} MB {'ok' if item['meets_goal'] else 'MISS'}"
        correct = {True: "yes", False: "WRONG", None: ""}[item.get("correct")]
        rows.append([item["metric"], item["unit"], value, anchor, ratio, pass_ratio, goal, correct])
    print(
        common.format_table(
            ["figure", "unit", "value", "anchor", "ratio", "per pass", "goal", "counts right"],
            rows,
        )
    )
    print(
        "ratio: median value ÷ median anchor; per pass: median of the ratios within each pass. "
        "counts right: every count of every pass equal to the known truth."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="keys per table (1,000,000)")
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument(
        "--ten-million",
        action="store_true",
        help="also run the streamed cross-database mode on 10,000,000 keys (generated once)",
    )
    parser.add_argument("--no-datacompy", action="store_true", help="skip the datacompy anchors")
    parser.add_argument("--worker", nargs=2, metavar=("MEASURE", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], json.loads(args.worker[1]))
        return 0

    started = time.perf_counter()
    n = args.rows
    print(f"Data: PostgreSQL {PG['host']}:{PG['port']}, databases {DB_A} and {DB_B}", flush=True)
    import psycopg

    try:
        datasets = {n: prepare_data(n, SEED)}
    except psycopg.OperationalError as exc:
        print(
            f"This benchmark needs PostgreSQL at {PG['host']}:{PG['port']} (user {PG['user']}, "
            f"allowed to create databases; PONTIS_BENCH_RECON_PG names another server): {exc}",
            file=sys.stderr,
        )
        return 1
    pandas_dataset = None
    if not args.no_datacompy and n != PANDAS_ROWS:
        pandas_dataset = prepare_data(PANDAS_ROWS, SEED, second_database=False)
    if args.ten_million:
        datasets[TEN_MILLION] = prepare_data(TEN_MILLION, SEED, csv=False)
    datacompy_python = None if args.no_datacompy else ensure_datacompy_venv()

    database = common.prepare_database(VAR_DIR)
    common.setup_django()
    notes = [f"App database (jobs and runs): {database.description}."]
    job_ids = seed_app(datasets)
    print(notes[0], flush=True)

    print(f"Truth of {n:,} keys…", flush=True)
    expected = truth(n, SEED)
    log_dir = VAR_DIR / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    results = measure_all(
        n, datasets[n], job_ids, expected, log_dir, args.passes, datacompy_python, pandas_dataset
    )

    previous_file = common.RESULTS_DIR / "reconciliation.json"
    ten = None
    if args.ten_million:
        print(f"-- {TEN_MILLION:,} keys, streamed cross-database mode, once", flush=True)
        ten = ten_million(job_ids, datasets[TEN_MILLION], log_dir)
        ten["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        ten["carried_over"] = False
    elif previous_file.exists():
        previous = json.loads(previous_file.read_text()).get("ten_million")
        if previous:
            ten = previous | {"carried_over": True}

    figures = build_figures(n, results, ten)
    print()
    print_table(figures)
    wrong = [key for key, summary in results.items() if summary.get("correct") is False]
    if ten is not None and not ten.get("carried_over") and not ten["cross_database"].get("correct"):
        wrong.append(f"cross_database at {TEN_MILLION:,}")
    failed = [key for key, summary in results.items() if summary.get("errors")]

    data = {
        "benchmark": "reconciliation",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_info() | {"data_server": _server_version()},
        "notes": notes
        + [
            "Every measure runs in a process of its own; time is from the start of its work "
            "to its end (imports and Django set-up before), peak memory is the process' "
            "ru_maxrss. PostgreSQL's own memory is not counted.",
            "Pontis modes: jobs.execute(ReconciliationRun, run.pk, run_job), as a worker "
            "runs it: counts, samples and the difference report (CSV) written.",
            f"A measure whose first pass takes over {SLOW_SECONDS} s runs once ('passes').",
        ],
        "dataset": {
            "keys": n,
            "seed": SEED,
            "generator_version": GENERATOR_VERSION,
            "columns": "id bigint (key), name text, amount numeric(12,2) / numeric, qty int, "
            "due date, booked_at timestamptz, active boolean, note text (nullable)",
            "normalisation": NORMALISATION,
            "tables": {key: value for key, value in datasets[n].items() if key != "csv"},
            "truth": expected,
        },
        "issue_seconds": ISSUE_FIGURES,
        "results": results,
        "ten_million": ten,
        "figures": figures,
        "wrong": wrong,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    path = common.write_results("reconciliation", data)
    print(f"\nResults: {path} ({data['total_seconds']:.0f} s)")
    if wrong:
        print(
            "\n!!! WRONG COUNTS: " + ", ".join(wrong) + " — see count_differences in the "
            "results file. The benchmark fails.",
            file=sys.stderr,
        )
    if failed:
        print("\n!!! ERRORS in: " + ", ".join(failed), file=sys.stderr)
    return 1 if wrong or failed else 0


def _server_version() -> str:
    with pg_connect(DB_A) as conn:
        return conn.execute("SELECT version()").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
