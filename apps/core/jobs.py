"""The job-run machinery: claim once, heartbeat, finish, cancel, reap.

Celery delivers at least once, so every step is a conditional update that
succeeds for exactly one caller. Job state lives in the database, never in
Celery.
"""

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import metrics
from apps.core.models import ACTIVE_JOB_STATUSES, JobRun, JobStatus

logger = logging.getLogger(__name__)

# Concrete JobRun models register here with the function that enqueues them.
_registry: dict[type[JobRun], Callable[[int], None]] = {}


class JobCancelled(Exception):
    """Raised inside a job's work when a user asked to cancel it."""


class JobDeferred(Exception):
    """Raised inside a job's work to hand the run back to the queue until ``until``.

    For waits too long to hold a worker (a ``Retry-After`` of an hour): the row
    goes back to ``queued`` with ``not_before`` set, and the sweeper in
    ``reap_stale`` sends it again once that time has passed.
    """

    def __init__(self, until, reason: str):
        super().__init__(reason)
        self.until = until
        self.reason = reason


def register(model: type[JobRun], enqueue: Callable[[int], None]) -> None:
    _registry[model] = enqueue


def registered_models() -> list[type[JobRun]]:
    return list(_registry)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(run: JobRun) -> None:
    """Publishes the run's task once the surrounding transaction commits.

    The row is the truth, the message only a nudge: when the broker is down the
    run stays queued and saved, and the sweeper in ``reap_stale`` sends it again.
    """
    transaction.on_commit(lambda: send(type(run), run.pk))


def send(model: type[JobRun], run_id: int) -> bool:
    try:
        _registry[model](run_id)
    except Exception as exc:  # any broker failure; the sweeper retries
        logger.warning(
            "could not send %s %s to the broker (%s); it stays queued", model.__name__, run_id, exc
        )
        return False
    return True


def claim(model: type[JobRun], run_id: int) -> JobRun | None:
    """Moves a queued run to running for this worker; None when someone else has it.

    Idempotent: a second delivery of the same message finds the row no longer
    queued and does nothing.
    """
    now = timezone.now()
    changed = (
        model.objects.filter(pk=run_id, status=JobStatus.QUEUED, cancel_requested=False)
        .exclude(not_before__gt=now)
        .update(
            status=JobStatus.RUNNING,
            worker=worker_name(),
            heartbeat_at=now,
            started_at=now,
            attempts=F("attempts") + 1,
        )
    )
    if changed != 1:
        # A cancelled-while-queued run is finished here so it does not wait for the reaper.
        model.objects.filter(pk=run_id, status=JobStatus.QUEUED, cancel_requested=True).update(
            status=JobStatus.CANCELLED, finished_at=now
        )
        return None
    return model.objects.get(pk=run_id)


def heartbeat(
    run: JobRun,
    *,
    done: int | None = None,
    total: int | None = None,
    note: str | None = None,
    **progress_fields,
) -> None:
    """Records progress and proves the worker is alive; raises JobCancelled when asked to stop.

    Only the worker holding the run may write: the update is conditional on the
    run still being ``running`` for this worker and not cancelled, so a reaped run
    is not revived. ``progress_fields`` are further columns of the run to set
    (counters), written in the same statement.
    """
    fields = {"heartbeat_at": timezone.now(), **progress_fields}
    if done is not None:
        fields["progress_done"] = run.progress_done = done
    if total is not None:
        fields["progress_total"] = run.progress_total = total
    if note is not None:
        fields["progress_note"] = run.progress_note = note[:200]
    changed = (
        type(run)
        .objects.filter(
            pk=run.pk, status=JobStatus.RUNNING, worker=run.worker, cancel_requested=False
        )
        .update(**fields)
    )
    if changed != 1:
        if type(run).objects.filter(pk=run.pk, cancel_requested=True).exists():
            raise JobCancelled("cancelled by a user")
        raise JobCancelled("the run is no longer held by this worker")


def finish(run: JobRun, status: str, error: str = "") -> bool:
    """Ends a running run; False when it was no longer ours (reaped or already finished)."""
    changed = (
        type(run)
        .objects.filter(pk=run.pk, status=JobStatus.RUNNING, worker=run.worker)
        .update(
            status=status,
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
            error=error[:5000],
        )
    )
    if changed:
        run.status, run.error = status, error
        metrics.JOBS_FINISHED.labels(type(run).__name__, status).inc()
    return changed == 1


def cancel(run: JobRun) -> bool:
    """Asks a run to stop. A queued run is cancelled at once; a running one at its next heartbeat."""
    model = type(run)
    now = timezone.now()
    if model.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now
    ):
        return True
    return bool(
        model.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    )


def defer(run: JobRun, until, reason: str) -> bool:
    """Puts a running run back in the queue until ``until``; False when it was no longer ours.

    The attempt is given back: a deferral is the endpoint's request, not a lost worker.
    """
    changed = (
        type(run)
        .objects.filter(pk=run.pk, status=JobStatus.RUNNING, worker=run.worker)
        .update(
            status=JobStatus.QUEUED,
            worker="",
            heartbeat_at=None,
            not_before=until,
            deferrals=F("deferrals") + 1,
            attempts=F("attempts") - 1,
            progress_note=reason[:200],
            updated_at=timezone.now(),
        )
    )
    return changed == 1


def execute(model: type[JobRun], run_id: int, work: Callable[[JobRun], str | None]) -> str:
    """Claims a run, calls ``work(run)`` and records the outcome. Returns a short outcome string.

    ``work`` reports progress through ``heartbeat`` and may return an error text
    to mark the run failed. Safe to call twice for the same id.
    """
    run = claim(model, run_id)
    if run is None:
        return "not-claimed"
    try:
        failure = work(run)
    except JobCancelled:
        finish(run, JobStatus.CANCELLED, "Cancelled by a user.")
        return "cancelled"
    except JobDeferred as deferred:
        defer(run, deferred.until, deferred.reason)
        return "deferred"
    except Exception as exc:
        logger.exception("job %s %s failed", model.__name__, run_id)
        finish(run, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return "failed"
    if failure:
        finish(run, JobStatus.FAILED, failure)
        return "failed"
    finish(run, JobStatus.SUCCEEDED)
    return "succeeded"


def reap_stale(lease_seconds: int | None = None) -> dict[str, int]:
    """Re-queues or fails runs whose heartbeat is older than the lease.

    A run with attempts left goes back to ``queued`` and is enqueued again; one
    without is failed as "worker lost"; a run left queued longer than the lease is
    sent again. Safe to run from several beats at once: each row moves under a
    conditional update.
    """
    lease = lease_seconds if lease_seconds is not None else settings.PONTIS_JOB_LEASE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=lease)
    outcome = {"requeued": 0, "failed": 0, "resent": 0}
    for model in registered_models():
        stale = model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
        for run in stale.only("pk", "attempts", "worker", "cancel_requested"):
            base = model.objects.filter(
                pk=run.pk, status=JobStatus.RUNNING, worker=run.worker, heartbeat_at__lt=cutoff
            )
            if run.attempts < model.MAX_ATTEMPTS and not run.cancel_requested:
                if base.update(
                    status=JobStatus.QUEUED,
                    worker="",
                    heartbeat_at=None,
                    progress_note="re-queued after its worker was lost",
                    updated_at=timezone.now(),
                ):
                    outcome["requeued"] += 1
                    metrics.JOBS_REAPED.labels(model.__name__, "requeued").inc()
                    enqueue(model(pk=run.pk))
            elif base.update(
                status=JobStatus.FAILED,
                finished_at=timezone.now(),
                error=f"Worker lost: no heartbeat for {lease} s (worker {run.worker or 'unknown'}).",
            ):
                outcome["failed"] += 1
                metrics.JOBS_REAPED.labels(model.__name__, "failed").inc()
        # Queued runs nobody took within the lease (a lost message, a broker that was
        # down when they were created) are sent again; claim-once makes extras harmless.
        # A deferred run is sent once its time has come, whatever its age.
        now = timezone.now()
        waiting = model.objects.filter(status=JobStatus.QUEUED).filter(
            Q(not_before__isnull=True, updated_at__lt=cutoff) | Q(not_before__lte=now)
        )
        for run_id in waiting.values_list("pk", flat=True):
            if model.objects.filter(pk=run_id, status=JobStatus.QUEUED).filter(
                Q(not_before__isnull=True, updated_at__lt=cutoff) | Q(not_before__lte=now)
            ).update(updated_at=now, not_before=None) and send(model, run_id):
                outcome["resent"] += 1
    return outcome


def active_run(model: type[JobRun], **lookup) -> JobRun | None:
    return model.objects.filter(status__in=ACTIVE_JOB_STATUSES, **lookup).order_by("-pk").first()
