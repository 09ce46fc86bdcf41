"""Runs of the in-database strategy end to end, on a PostgreSQL database of their own: the
counts, samples and report of a run, and a long statement that keeps the run's heartbeat and
stops when the run is cancelled."""

import threading
import time

import psycopg
import pytest
from django import db
from django.conf import settings

from apps.core import jobs
from apps.core.models import JobStatus
from apps.reconciliation import runner, services
from apps.reconciliation.models import DataSource, ReconciliationJob, ReconciliationRun, SourceKind
from tests.reconciliation import postgres

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = """
CREATE TABLE orders (id integer, amount numeric(12, 2), name text);
INSERT INTO orders SELECT g, g * 1.5, 'name ' || g FROM generate_series(1, 40) g;
CREATE TABLE orders_copy AS SELECT * FROM orders;
UPDATE orders_copy SET amount = 0 WHERE id = 3;
DELETE FROM orders_copy WHERE id = 4;
INSERT INTO orders_copy VALUES (99, 1, 'extra'), (5, 7.5, 'name 5');
CREATE VIEW orders_view AS SELECT * FROM orders;
CREATE MATERIALIZED VIEW orders_kept AS SELECT * FROM orders;
"""


@pytest.fixture(scope="module")
def database():
    with postgres.scratch_database("pontis_recon_runs", SCHEMA) as name:
        yield name


def pg_job(engineer, team, interface, database, source_dataset="orders"):
    sources = []
    for name in ("erp", "erp-copy"):
        source = DataSource(
            owner_team=team,
            name=name,
            kind=SourceKind.POSTGRESQL,
            dsn=f"postgresql://postgres@127.0.0.1:5432/{database}",
        )
        source.set_credentials({"password": ""})
        sources.append(services.save_data_source(engineer, source))
    return services.save_job(
        engineer,
        ReconciliationJob(
            interface=interface,
            name="orders in one database",
            source=sources[0],
            source_dataset=source_dataset,
            target=sources[1],
            target_dataset="orders_copy",
            key_columns=["id"],
            compare_columns=["amount", "name"],
            normalisation={"id": {"type": "integer"}, "amount": {"type": "number"}},
        ),
    )


def test_a_run_in_the_database_counts_samples_and_writes_the_report(
    engineer, team_a, interface_a, database
):
    job = pg_job(engineer, team_a, interface_a, database)
    run = services.start_run(engineer, job)
    jobs.execute(ReconciliationRun, run.pk, runner.run_job)
    run.refresh_from_db()
    assert run.strategy == "in_database"
    assert run.status == JobStatus.FAILED  # 36 of 40 matched is below 99.5%
    assert (run.source_rows, run.target_rows, run.matched) == (40, 41, 37)
    assert (run.mismatched, run.missing_in_target, run.unexpected_in_target) == (1, 1, 1)
    assert (run.duplicates, run.duplicate_target_keys, run.duplicate_target_rows) == (1, 1, 2)
    assert run.column_mismatches == {"amount": 1, "name": 0}
    assert run.samples["mismatched"][0]["source"]["amount"] == "4.50"
    report = (settings.VAR_DIR / run.report_file).read_text().splitlines()
    assert sorted(report[1:]) == [
        "duplicate,5,,1 rows,2 rows",
        "mismatched,3,amount,4.50,0.00",
        "missing_in_target,4,,,",
        "unexpected_in_target,99,,,",
    ]


def test_a_long_comparison_keeps_its_heartbeat_and_stops_when_cancelled(
    engineer, team_a, interface_a, database, monkeypatch
):
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.2)
    # 40 rows, a quarter of a second each: ten seconds in one statement (a query: its rows
    # are counted as the comparison reads them, not by running it twice).
    slow = "SELECT id, amount, name FROM orders WHERE pg_sleep(0.25) IS NOT NULL"
    job = pg_job(engineer, team_a, interface_a, database, source_dataset=slow)
    monkeypatch.setattr(jobs, "enqueue", lambda run: None)  # this test's thread runs it
    run = services.start_run(engineer, job)

    def work():
        try:
            jobs.execute(ReconciliationRun, run.pk, runner.run_job)
        finally:
            db.connections.close_all()

    worker = threading.Thread(target=work)
    started = time.monotonic()
    worker.start()
    beats = set()
    while len(beats) < 4 and time.monotonic() - started < 8:
        current = ReconciliationRun.objects.get(pk=run.pk)
        if current.status == JobStatus.RUNNING and current.progress_note:
            beats.add(current.heartbeat_at)
        time.sleep(0.05)
    assert len(beats) >= 4, "no heartbeat while the statement ran"
    assert current.progress_note == "Comparing in the database"
    jobs.cancel(current)
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - started < 8  # the statement was cancelled, not waited for
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert not run.report_file
    with psycopg.connect(**postgres.SERVER, dbname=database) as conn:
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.25)%' "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert running == 0


@pytest.mark.parametrize(
    "dataset, stored",
    [
        ("orders", True),
        ("public.orders", True),
        ("orders_kept", True),  # a materialised view holds its rows
        ("orders_view", False),
        ("SELECT id, amount, name FROM orders", False),
    ],
)
def test_only_stored_tables_are_read_again_to_count_their_rows(
    engineer, team_a, interface_a, database, dataset, stored
):
    from apps.reconciliation.readers import open_dataset

    job = pg_job(engineer, team_a, interface_a, database, source_dataset=dataset)
    with open_dataset(job.source, dataset, {}, ["id", "amount", "name"]) as reader:
        assert reader.reads_stored_table() is stored
