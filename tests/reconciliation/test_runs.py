"""Reconciliation jobs end to end: sources, jobs and runs through the services, the runner
on CSV files and SQLite databases, windows, defects, schedules, a lost worker, and
``manage.py reconcile``."""

import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.management import call_command

from apps.core import jobs
from apps.core.models import JobStatus
from apps.reconciliation import services
from apps.reconciliation.models import (
    DataSource,
    ReconciliationJob,
    ReconciliationRun,
    SourceKind,
)
from apps.reconciliation.runner import run_job

pytestmark = pytest.mark.django_db

SOURCE_CSV = (
    "order_id,amount,booked_at,status\n"
    "1,10.10,2024-05-01T10:00:00+02:00,open\n"
    "2,5.00,2024-05-01T11:00:00Z,open\n"
    "3,7.50,2024-05-02T09:00:00Z,paid \n"
    "4,1.00,2024-05-02T09:00:00Z,paid\n"
    "5,2.00,2024-05-02T09:00:00Z,paid\n"
    "5,2.00,2024-05-02T09:00:00Z,paid\n"
)
TARGET_CSV = (
    "ID;AMOUNT;BOOKED;STATUS\n"
    "1;10.1;2024-05-01T08:00:00Z;open\n"  # equal by value
    "2;6.00;2024-05-01T11:00:00Z;open\n"  # amount changed
    "3;7.5;2024-05-02T09:00:00+00:00;paid\n"  # equal (trailing space ignored)
    "5;2.00;2024-05-02T09:00:00Z;paid\n"
    "9;1.00;2024-05-02T09:00:00Z;paid\n"  # unexpected
)


def file_source(team, name, text) -> DataSource:
    source = DataSource(owner_team=team, name=name, kind=SourceKind.FILE)
    source.file.save(f"{name}.csv", ContentFile(text.encode()), save=False)
    source.file_name = f"{name}.csv"
    return source


@pytest.fixture
def files_job(engineer, team_a, interface_a):
    source = services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV))
    target = services.save_data_source(engineer, file_source(team_a, "crm-orders", TARGET_CSV))
    job = ReconciliationJob(
        interface=interface_a,
        name="orders",
        source=source,
        target=target,
        key_columns=["order_id"],
        compare_columns=["amount", "booked_at", "status"],
        column_mapping={
            "order_id": "ID",
            "amount": "AMOUNT",
            "booked_at": "BOOKED",
            "status": "STATUS",
        },
        normalisation={
            "order_id": {"type": "integer"},
            "amount": {"type": "number"},
            "booked_at": {"type": "datetime"},
        },
    )
    return services.save_job(engineer, job)


def run_now(actor, job) -> ReconciliationRun:
    run = services.start_run(actor, job)
    jobs.execute(ReconciliationRun, run.pk, run_job)
    run.refresh_from_db()
    return run


def test_a_run_on_two_files_counts_every_kind_of_difference(engineer, files_job):
    run = run_now(engineer, files_job)
    assert run.status == JobStatus.FAILED  # 2 of 6 matched is below 99.5%
    assert run.error == "Accuracy 33.333% is below the target of 99.500%."
    assert (run.source_rows, run.target_rows) == (6, 5)
    assert (run.matched, run.mismatched) == (2, 1)
    assert (run.missing_in_target, run.unexpected_in_target) == (1, 1)
    assert (run.duplicate_source_keys, run.duplicate_source_rows) == (1, 2)
    assert run.column_mismatches == {"amount": 1, "booked_at": 0, "status": 0}
    assert run.accuracy == Decimal("33.333") and run.met_target is False
    assert run.strategy == "streamed"
    assert run.samples["mismatched"][0]["source"]["amount"] == "5.00"
    assert run.samples["mismatched"][0]["target"]["AMOUNT"] == "6.00"
    report = (settings.VAR_DIR / run.report_file).read_text()
    assert sorted(report.splitlines()[1:]) == [
        "duplicate,5,,2 rows,1 rows",
        "mismatched,2,amount,5.00,6.00",
        "missing_in_target,4,,,",
        "unexpected_in_target,9,,,",
    ]


def test_running_again_gives_the_same_result_and_a_lost_worker_leaves_nothing_running(
    engineer, files_job
):
    first = run_now(engineer, files_job)
    run = services.start_run(engineer, files_job)
    # A worker claims the run and dies before it finishes.
    jobs.claim(ReconciliationRun, run.pk)
    ReconciliationRun.objects.filter(pk=run.pk).update(
        heartbeat_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert jobs.reap_stale(lease_seconds=60)["requeued"] == 1
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED
    jobs.execute(ReconciliationRun, run.pk, run_job)
    run.refresh_from_db()
    fields = [
        "source_rows",
        "target_rows",
        "matched",
        "mismatched",
        "missing_in_target",
        "unexpected_in_target",
        "duplicate_source_keys",
        "column_mismatches",
        "accuracy",
    ]
    assert [getattr(run, f) for f in fields] == [getattr(first, f) for f in fields]
    assert not ReconciliationRun.objects.filter(status=JobStatus.RUNNING).exists()


def test_a_second_active_run_is_refused(engineer, files_job):
    services.start_run(engineer, files_job)
    with pytest.raises(services.RunAlreadyActive):
        services.start_run(engineer, files_job)


def test_a_run_at_its_target_succeeds_and_a_failed_one_raises_a_defect(engineer, files_job):
    files_job.accuracy_target = Decimal("30")
    services.save_job(engineer, files_job)
    assert run_now(engineer, files_job).status == JobStatus.SUCCEEDED

    files_job.accuracy_target = Decimal("99.5")
    services.save_job(engineer, files_job)
    failed = run_now(engineer, files_job)
    defect = services.raise_defect(engineer, failed)
    assert "accuracy 33.333% below 99.500%" in defect.title
    assert (
        "Missing in target: 1; unexpected in target: 1; mismatched: 1 (amount 1)" in defect.actual
    )
    assert failed.__class__.objects.get(pk=failed.pk).defect == defect
    with pytest.raises(ValidationError, match="raised from this run already"):
        services.raise_defect(engineer, ReconciliationRun.objects.get(pk=failed.pk))


def test_bad_data_fails_the_run_with_a_clear_error(engineer, team_a, files_job):
    files_job.target = services.save_data_source(
        engineer, file_source(team_a, "broken", "ID;AMOUNT;BOOKED;STATUS\n1;ten;x;open\n")
    )
    services.save_job(engineer, files_job)
    run = run_now(engineer, files_job)
    assert run.status == JobStatus.FAILED
    assert run.error == "target column AMOUNT: 'ten' is not a number."
    assert not run.report_file


def test_bad_source_data_fails_the_run_while_the_target_is_read_alongside(
    engineer, team_a, files_job
):
    import threading

    files_job.source = services.save_data_source(
        engineer,
        file_source(team_a, "broken-source", "order_id,amount,booked_at,status\n1,x,y,z\n"),
    )
    services.save_job(engineer, files_job)
    run = run_now(engineer, files_job)
    assert run.status == JobStatus.FAILED
    assert run.error == "source column amount: 'x' is not a number."
    assert not run.report_file
    assert not [t for t in threading.enumerate() if t.name.startswith("pontis-recon-target")]


@pytest.mark.django_db(transaction=True)
def test_comparing_what_was_read_keeps_the_heartbeat(engineer, files_job, monkeypatch):
    import time

    from apps.reconciliation import runner, vectorised

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.1)
    seen = {}
    finish = vectorised.VectorisedComparison.finish

    def slow_finish(self, report=None):
        before = ReconciliationRun.objects.get(job=files_job).heartbeat_at
        time.sleep(0.6)
        after = ReconciliationRun.objects.get(job=files_job)
        seen.update(before=before, after=after.heartbeat_at, note=after.progress_note)
        return finish(self, report)

    monkeypatch.setattr(vectorised.VectorisedComparison, "finish", slow_finish)
    run_now(engineer, files_job)
    assert seen["after"] > seen["before"]  # beaten from the heartbeat's thread meanwhile
    assert seen["note"] == "Comparing 11 rows"


def test_a_missing_key_column_fails_the_run_naming_it(engineer, team_a, files_job):
    files_job.target = services.save_data_source(
        engineer, file_source(team_a, "nokey", "AMOUNT,BOOKED,STATUS\n1,x,y\n")
    )
    services.save_job(engineer, files_job)
    run = run_now(engineer, files_job)
    assert run.status == JobStatus.FAILED
    assert "ID" in run.error


def sqlite_database(path, rows):
    connection = sqlite3.connect(path)
    connection.execute("create table orders (id integer, amount numeric, changed_at text)")
    connection.executemany("insert into orders values (?, ?, ?)", rows)
    connection.commit()
    connection.close()


def test_sqlite_sides_with_a_window_and_a_query(engineer, team_a, interface_a, settings, tmp_path):
    settings.PONTIS_RECON_SQLITE_DIR = str(tmp_path)
    now = datetime.now(UTC)
    recent = (now - timedelta(hours=2)).isoformat()
    old = (now - timedelta(days=3)).isoformat()
    sqlite_database(tmp_path / "a.db", [(1, 10, recent), (2, 20, recent), (3, 30, old)])
    sqlite_database(tmp_path / "b.db", [(1, 10.0, recent), (2, 21, recent)])
    sources = [
        services.save_data_source(
            engineer,
            DataSource(
                owner_team=team_a,
                name=name,
                kind=SourceKind.SQLITE,
                dsn=f"sqlite:///{tmp_path / name}",
            ),
        )
        for name in ("a.db", "b.db")
    ]
    job = services.save_job(
        engineer,
        ReconciliationJob(
            interface=interface_a,
            name="recent orders",
            source=sources[0],
            source_dataset="orders",
            target=sources[1],
            target_dataset="select id, amount, changed_at from orders where id < 100",
            key_columns=["id"],
            compare_columns=["amount"],
            normalisation={"id": {"type": "integer"}, "amount": {"type": "number"}},
            window="last_24h",
            window_source_column="changed_at",
            window_target_column="changed_at",
        ),
    )
    run = run_now(engineer, job)
    assert (run.source_rows, run.target_rows, run.matched, run.mismatched) == (2, 2, 1, 1)
    assert run.window_start is not None and run.window_end is not None


def test_job_settings_are_checked_field_by_field(engineer, files_job, team_b):
    files_job.normalisation = {"amount": {"type": "money"}}
    files_job.key_columns = ["order_id"]
    files_job.window = "yesterday"
    files_job.schedule_cron = "every day"
    files_job.source_dataset = "orders"
    with pytest.raises(ValidationError) as info:
        services.save_job(engineer, files_job)
    errors = info.value.message_dict
    assert set(errors) >= {
        "normalisation",
        "window_source_column",
        "window_target_column",
        "schedule_cron",
        "source_dataset",
    }
    assert "amount: type must be one of" in errors["normalisation"][0]


def test_only_the_team_changes_sources_and_jobs_and_starts_runs(
    files_job, viewer, engineer_b, lead, admin_user
):
    for user in (viewer, engineer_b):
        with pytest.raises(PermissionDenied):
            services.start_run(user, files_job)
        with pytest.raises(PermissionDenied):
            services.save_job(user, files_job)
        with pytest.raises(PermissionDenied):
            services.save_data_source(user, files_job.source)
        with pytest.raises(PermissionDenied):
            services.delete_job(user, files_job)
    assert not ReconciliationRun.objects.exists()
    for user in (lead, admin_user):
        run = services.start_run(user, files_job)
        services.cancel_run(user, run)


def test_a_dsn_with_a_password_and_credentials_of_the_wrong_kind_are_refused(engineer, team_a):
    with pytest.raises(ValidationError) as info:
        services.save_data_source(
            engineer,
            DataSource(
                owner_team=team_a,
                name="erp",
                kind=SourceKind.POSTGRESQL,
                dsn="postgresql://reader:secret@db.example:5432/erp",
            ),
        )
    assert "dsn" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.save_data_source(
            engineer,
            DataSource(owner_team=team_a, name="f", kind=SourceKind.FILE),
            {"password": "x"},
        )
    assert set(info.value.message_dict) == {"file", "credentials"}
    assert not DataSource.objects.exists()


def test_credentials_are_encrypted_and_never_in_the_audit(engineer, team_a):
    from apps.core.models import AuditEntry

    source = services.save_data_source(
        engineer,
        DataSource(
            owner_team=team_a,
            name="erp",
            kind=SourceKind.POSTGRESQL,
            dsn="postgresql://reader@db.example:5432/erp",
        ),
        {"password": "canary-s3cret"},
    )
    stored = DataSource.objects.get(pk=source.pk)
    assert "canary-s3cret" not in stored.credentials_ciphertext
    assert stored.get_credentials() == {"password": "canary-s3cret"}
    assert "canary-s3cret" not in str(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_a_source_in_use_is_not_deleted(engineer, files_job):
    with pytest.raises(ValidationError, match="read by INT-042 orders"):
        services.delete_data_source(engineer, files_job.source)


def test_schedules_start_one_run_per_occurrence(engineer, files_job):
    files_job.schedule_cron = "0 2 * * *"
    services.save_job(engineer, files_job)
    files_job.refresh_from_db()
    assert files_job.next_run_at is not None
    later = files_job.next_run_at + timedelta(minutes=1)
    assert services.run_due_jobs(later) == 1
    assert services.run_due_jobs(later) == 0  # claimed once
    assert ReconciliationRun.objects.get().scheduled


def test_the_reconcile_command_prints_figures_writes_the_report_and_exits_1(
    admin_user, files_job, tmp_path
):
    out = io.StringIO()
    report = tmp_path / "diff.csv"
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "reconcile", "INT-042/orders", "--report", str(report), stdout=out, stderr=io.StringIO()
        )
    assert exit_info.value.code == 1
    text = out.getvalue()
    assert "matched                          2" in text
    assert "accuracy              33.333% (target 99.500%)" in text
    assert list(csv.reader(report.open()))[0][0] == "difference"

    files_job.accuracy_target = Decimal("10")
    files_job.save()
    call_command("reconcile", str(files_job.pk), stdout=io.StringIO())


def test_the_reconcile_command_names_an_unknown_job(admin_user):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No reconciliation job 'INT-1/x'"):
        call_command("reconcile", "INT-1/x")
