"""Shared pieces of the benchmarks: a separate database, Django set-up, timing and output.

A benchmark module calls, in this order:

1. ``prepare_database()`` before Django is imported: it points the settings at a database of
   the benchmark's own, so a run never touches the developer's data;
2. ``setup_django()``: Django set-up, ``migrate``, the test host name and no API throttling;
3. ``time_get()`` and ``count_queries()`` to measure, ``summarise()`` for the statistics;
4. ``write_results()`` for ``bench/results/<name>.json``, and ``BenchDatabase.finish()``.
"""

import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_DIR = Path(__file__).resolve().parent.parent
BENCH_VAR_DIR = REPO_DIR / "var" / "bench"
RESULTS_DIR = REPO_DIR / "bench" / "results"
BENCH_DATABASE_NAME = "pontis_bench"


class BenchError(Exception):
    """A benchmark cannot go on (a wrong response, a database that is not empty…)."""


# ---------------------------------------------------------------- the benchmark's database


@dataclass
class BenchDatabase:
    """Where the benchmark keeps its data, and how to clean up after it."""

    description: str
    postgres_admin: dict | None = None  # connection parameters of the server's given database

    def finish(self) -> None:
        """Drops the dedicated PostgreSQL database; the SQLite file is kept for inspection."""
        if self.postgres_admin is None:
            return
        from django.db import connections

        connections.close_all()
        _postgres_execute(self.postgres_admin, f'DROP DATABASE IF EXISTS "{BENCH_DATABASE_NAME}"')


def prepare_database(var_dir: Path = BENCH_VAR_DIR) -> BenchDatabase:
    """Points the settings at the benchmark's own database; call it before Django is set up.

    ``var_dir`` becomes ``PONTIS_VAR_DIR`` (keys, files, the SQLite database).
    Without ``DATABASE_URL``: SQLite at ``<var_dir>/pontis.sqlite3``, recreated on each run.
    With a PostgreSQL ``DATABASE_URL``: a database ``pontis_bench`` on that server, created
    afresh now and dropped by ``BenchDatabase.finish()``. Any other ``DATABASE_URL`` is used
    as given (``setup_django`` refuses it unless its catalog is empty).
    """
    os.environ["PONTIS_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # STATIC_ROOT lives under the var directory; whitenoise warns on every start without it.
    (var_dir / "static").mkdir(parents=True, exist_ok=True)

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sqlite_file = var_dir / "pontis.sqlite3"
        for path in (sqlite_file, Path(f"{sqlite_file}-wal"), Path(f"{sqlite_file}-shm")):
            path.unlink(missing_ok=True)
        return BenchDatabase(description=f"SQLite at {sqlite_file} (recreated)")

    import dj_database_url

    given = dj_database_url.parse(url)
    if given["ENGINE"] != "django.db.backends.postgresql":
        return BenchDatabase(description=f"DATABASE_URL as given ({given['ENGINE']})")
    if given["NAME"] == BENCH_DATABASE_NAME:
        raise BenchError(
            f"DATABASE_URL names {BENCH_DATABASE_NAME!r}, the benchmark's own database; "
            "give the URL of another database on the same server."
        )
    admin = {
        "dbname": given["NAME"],
        "user": given.get("USER") or None,
        "password": given.get("PASSWORD") or None,
        "host": given.get("HOST") or None,
        "port": given.get("PORT") or None,
    }
    _postgres_execute(admin, f'DROP DATABASE IF EXISTS "{BENCH_DATABASE_NAME}"')
    _postgres_execute(admin, f'CREATE DATABASE "{BENCH_DATABASE_NAME}"')
    parts = urlsplit(url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{BENCH_DATABASE_NAME}"))
    server = f"{admin['host'] or 'localhost'}:{admin['port'] or 5432}"
    return BenchDatabase(
        description=(
            f"PostgreSQL from DATABASE_URL: dedicated database {BENCH_DATABASE_NAME!r} on "
            f"{server} (created now, dropped at the end)"
        ),
        postgres_admin=admin,
    )


def _postgres_execute(connection_params: dict, sql: str) -> None:
    """Runs one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    import psycopg

    params = {key: value for key, value in connection_params.items() if value is not None}
    with psycopg.connect(**params, autocommit=True) as connection:
        connection.execute(sql)


# ---------------------------------------------------------------- Django


def setup_django() -> list[str]:
    """Sets Django up on the prepared database, migrates it and relaxes two request guards.

    Returns notes on what was changed for the benchmark, to be printed with the results.
    """
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()

    from django.conf import settings
    from django.core.management import call_command

    from apps.accounts.throttling import TokenRateThrottle

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    # Thousands of requests per token would hit the per-token API rate limit.
    TokenRateThrottle.allow_request = _allow_every_request
    call_command("migrate", verbosity=0)
    return [
        "DRF throttling is off for the benchmark (TokenRateThrottle.allow_request patched to allow every request).",
        'ALLOWED_HOSTS has "testserver" added for Django\'s test Client.',
    ]


def _allow_every_request(throttle, request, view) -> bool:
    """Replaces ``TokenRateThrottle.allow_request`` during the benchmark."""
    return True


def machine_info() -> dict:
    """The machine, Python, Django and database the figures were measured on."""
    import django
    from django.db import connection

    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "database_vendor": connection.vendor,
        "database_version": _database_version(connection),
    }


def _database_version(connection) -> str:
    """The database library's (SQLite) or server's version."""
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        return cursor.fetchone()[0]


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# ---------------------------------------------------------------- measuring


def time_get(client, url: str, headers: dict) -> tuple[float, object]:
    """One ``client.get``: the elapsed time in milliseconds and the response."""
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return elapsed_ms, response


def count_queries(client, url: str, headers: dict) -> tuple[list[dict], object]:
    """The SQL queries of one request (after one untimed request, so caches are warm)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, headers=headers)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    return list(captured.captured_queries), response


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile, e.g. ``fraction=0.95`` for p95."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(passes: list[list[float]]) -> dict:
    """Median of the per-pass medians, and p95 over every timed request of every pass."""
    pass_medians = [statistics.median(samples) for samples in passes]
    every_sample = [sample for samples in passes for sample in samples]
    return {
        "median": statistics.median(pass_medians),
        "p95": percentile(every_sample, 0.95),
        "pass_medians": pass_medians,
    }


# ---------------------------------------------------------------- output


def write_results(name: str, data: dict) -> Path:
    """Writes ``bench/results/<name>.json`` (through a temporary file, then a rename)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)
    return path


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells):
        first = str(cells[0]).ljust(widths[0])
        others = [str(cell).rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *others])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
