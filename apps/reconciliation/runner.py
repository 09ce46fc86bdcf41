"""Running a reconciliation job: the work of a ReconciliationRun.

Both sides are read from the start on every attempt, so a run picked up again after its
worker died gives the same result as a first run. The counts, a bounded sample of each
kind of difference and the path of the full difference report (CSV) are written on the
run row when the comparison ends; a run below its job's accuracy target fails, with its
figures kept.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django import db
from django.conf import settings
from django.utils import timezone

from apps.core import jobs
from apps.reconciliation import compare
from apps.reconciliation.models import (
    ReconciliationJob,
    ReconciliationRun,
    SourceKind,
    Strategy,
    Window,
)

BATCH_ROWS = 10_000
HEARTBEAT_SECONDS = 2.0


def report_dir() -> Path:
    path = Path(settings.VAR_DIR) / "reconciliation" / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def column_mapping(job: ReconciliationJob) -> dict[str, str]:
    """Source column -> target column: the job's own mapping, over the copy rows of its
    mapping spec (a row that copies a plain source field into a plain target field)."""
    mapping: dict[str, str] = {}
    if job.mapping_spec_id:
        for rule in job.mapping_spec.rules.all():
            sources = rule.source_paths
            if (
                rule.kind == "copy"
                and len(sources) == 1
                and _plain(sources[0])
                and _plain(rule.target_path)
            ):
                mapping[sources[0]] = rule.target_path
    mapping.update(job.column_mapping or {})
    return mapping


def _plain(path: str) -> bool:
    return isinstance(path, str) and "[" not in path and path != ""


def plan_for(job: ReconciliationJob) -> compare.Plan:
    """The comparison the job asks for; ComparisonError names what is wrong."""
    if not isinstance(job.key_columns, list) or not isinstance(job.compare_columns, list):
        raise compare.ComparisonError("Key and compared columns must be lists of names.")
    if not isinstance(job.column_mapping, dict) or not isinstance(job.normalisation, dict):
        raise compare.ComparisonError("The column mapping and normalisation must be objects.")
    return compare.Plan.build(
        job.key_columns, job.compare_columns, column_mapping(job), job.normalisation
    )


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of a window at ``now`` (UTC days for "yesterday")."""
    if window == Window.YESTERDAY:
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=1), today
    if window == Window.LAST_24_HOURS:
        return now - timedelta(hours=24), now
    if window == Window.LAST_7_DAYS:
        return now - timedelta(days=7), now
    return None


def same_database(job: ReconciliationJob) -> bool:
    """Both sides are SQL datasets of one PostgreSQL database (same DSN)."""
    return (
        job.source.kind == SourceKind.POSTGRESQL
        and job.target.kind == SourceKind.POSTGRESQL
        and job.source.dsn.strip() == job.target.dsn.strip()
        and job.source.get_credentials() == job.target.get_credentials()
    )


def choose_strategy(job: ReconciliationJob) -> str:
    if job.strategy == Strategy.IN_DATABASE:
        if not same_database(job):
            raise compare.ComparisonError(
                "The in-database strategy needs both sides in one PostgreSQL database."
            )
        return Strategy.IN_DATABASE
    if job.strategy == Strategy.AUTO and same_database(job):
        return Strategy.IN_DATABASE
    return Strategy.STREAMED


class _Progress:
    """Heartbeats at most every HEARTBEAT_SECONDS with the rows read so far."""

    def __init__(self, run: ReconciliationRun):
        self.run = run
        self.last = 0.0

    def __call__(self, note: str, rows: int, *, force: bool = False, **counters) -> None:
        now = time.monotonic()
        if force or now - self.last >= HEARTBEAT_SECONDS:
            self.last = now
            jobs.heartbeat(self.run, note=note, done=min(rows, 2**31 - 1), **counters)


def run_job(run: ReconciliationRun) -> str | None:
    """Work of a ReconciliationRun. Returns an error text (the run fails) or None."""
    from apps.reconciliation import readers

    job = (
        ReconciliationJob.objects.select_related("source", "target", "mapping_spec")
        .prefetch_related("mapping_spec__rules")
        .get(pk=run.job_id)
    )
    try:
        plan = plan_for(job)
        strategy = choose_strategy(job)
    except compare.ComparisonError as exc:
        return str(exc)
    bounds = window_bounds(job.window, timezone.now())
    ReconciliationRun.objects.filter(pk=run.pk).update(
        strategy=strategy,
        accuracy_target=job.accuracy_target,
        window_start=bounds[0] if bounds else None,
        window_end=bounds[1] if bounds else None,
    )
    progress = _Progress(run)
    final_path = report_dir() / f"run-{run.pk}.csv"
    partial_path = final_path.with_suffix(".csv.partial")
    try:
        with open(partial_path, "w", newline="", encoding="utf-8") as report:
            if strategy == Strategy.IN_DATABASE:
                progress("Comparing in the database", 0, force=True)
                outcome = _compare_in_database(job, plan, bounds, report, progress)
            else:
                outcome = _compare_streamed(job, plan, bounds, report, progress)
    except (compare.ComparisonError, readers.ReadError) as exc:
        partial_path.unlink(missing_ok=True)
        return str(exc)
    except BaseException:
        partial_path.unlink(missing_ok=True)
        raise
    os.replace(partial_path, final_path)
    accuracy = outcome.accuracy
    met = accuracy >= job.accuracy_target
    ReconciliationRun.objects.filter(pk=run.pk).update(
        **outcome.counts(),
        column_mismatches=outcome.column_mismatches,
        samples=outcome.samples,
        accuracy=accuracy,
        met_target=met,
        report_file=str(final_path.relative_to(settings.VAR_DIR)),
        progress_note="Compared",
    )
    if not met:
        return f"Accuracy {accuracy}% is below the target of {job.accuracy_target}%."
    return None


def _side_window(job, side: str, bounds):
    from apps.reconciliation import readers

    if bounds is None:
        return None
    column = job.window_source_column if side == "source" else job.window_target_column
    if not column:
        raise compare.ComparisonError(f"The window needs a {side} timestamp column.")
    return readers.Window(column=column, start=bounds[0], end=bounds[1])


def _open_side(job, plan, side: str, bounds, options: dict):
    """The reader of one side of the job (``with`` it to read), its columns in the plan's
    order, within the job's window."""
    from apps.reconciliation import readers

    return readers.open_dataset(
        getattr(job, side),
        getattr(job, f"{side}_dataset"),
        options,
        plan.side_columns(side),
        window=_side_window(job, side, bounds),
    )


def _compare_streamed(job, plan, bounds, report, progress) -> compare.Outcome:
    """Each side read the fastest way its reader allows (PostgreSQL through COPY, CSV files
    through polars, other sources in batches of rows) into the vectorised comparison, which
    answers what compare.StreamedComparison answers. The two sides are read at once: the
    target in a thread of its own, the source in this one, which reports the progress."""
    from apps.reconciliation import vectorised

    comparison = vectorised.VectorisedComparison(plan)
    stop = threading.Event()

    def read(side: str):
        with _open_side(job, plan, side, bounds, getattr(job, f"{side}_options") or {}) as rows:
            for _added in vectorised.read_side(comparison, side, rows, BATCH_ROWS):
                if stop.is_set():
                    return
                yield

    def read_target():
        try:
            for _step in read("target"):
                pass
        finally:
            db.connections.close_all()  # this thread's, if a reader opened one

    def report_progress(force=False):
        outcome = comparison.outcome
        read_rows = outcome.source_rows + outcome.target_rows
        progress(
            f"Reading: {outcome.source_rows:,} source and {outcome.target_rows:,} target rows",
            read_rows,
            force=force,
            source_rows=outcome.source_rows,
            target_rows=outcome.target_rows,
        )

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pontis-recon-target") as pool:
        target = pool.submit(read_target)
        try:
            for _step in read("source"):
                report_progress()
                if target.done() and target.exception() is not None:
                    break  # the target failed: its error is the run's
            while True:
                try:
                    target.result(timeout=HEARTBEAT_SECONDS)
                    break
                except FutureTimeout:
                    report_progress()
        finally:
            stop.set()
    read_rows = comparison.outcome.source_rows + comparison.outcome.target_rows
    note = f"Comparing {read_rows:,} rows"
    progress(note, read_rows, force=True)
    with _HeartbeatWhile(progress, note):
        return comparison.finish(report)


def _compare_in_database(job, plan, bounds, report, progress) -> compare.Outcome:
    """Both sides are SELECTs on one PostgreSQL database: each reader checks its dataset and
    columns and builds its SELECT; the source's read-only connection runs the comparison,
    one statement however long, while a thread of its own keeps the run's heartbeat."""
    from apps.reconciliation import in_database

    with (
        _open_side(job, plan, "source", bounds, {}) as source,
        _open_side(job, plan, "target", bounds, {}) as target,
        _HeartbeatWhile(progress, "Comparing in the database", source.conn) as beat,
    ):
        try:
            return in_database.compare_in_database(
                source.conn,
                plan,
                source.select_sql,
                target.select_sql,
                report=report,
                rescan={
                    side
                    for side, reader in (("source", source), ("target", target))
                    if reader.reads_stored_table()
                },
            )
        except compare.ComparisonError:
            beat.raise_if_stopped()  # the statement was cancelled for the run's sake
            raise


class _HeartbeatWhile:
    """Heartbeats a run every HEARTBEAT_SECONDS from a thread of its own while the worker's
    thread is busy with one long step (a statement, the comparison of what was read). When
    the run is cancelled (or taken from this worker) it cancels the statement on
    ``connection``, if one is given, and the worker raises JobCancelled at the end of the
    step."""

    def __init__(self, progress: _Progress, note: str, connection=None):
        self.progress = progress
        self.note = note
        self.connection = connection
        self.stop = threading.Event()
        self.stopped: jobs.JobCancelled | None = None
        self.thread = threading.Thread(target=self._beat, name="pontis-recon-heartbeat")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()
        self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        if self.stopped is not None:
            raise self.stopped

    def _beat(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.progress(self.note, 0, force=True)
                except jobs.JobCancelled as exc:
                    self.stopped = exc
                    if self.connection is not None:
                        self.connection.cancel_safe()
                    return
        finally:
            db.connections.close_all()  # this thread's own
