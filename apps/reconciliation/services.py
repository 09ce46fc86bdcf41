"""Reconciliation operations shared by the browser UI, the REST API, the command line and
the scheduler. Each checks the permission policy and records its audit entry; bad input
raises ValidationError (field -> messages) and changes nothing."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.accounts import policy
from apps.core import audit, jobs
from apps.core.models import AuditAction
from apps.reconciliation import compare, runner
from apps.reconciliation.models import (
    SQL_KINDS,
    DataSource,
    ReconciliationJob,
    ReconciliationRun,
    SourceKind,
    Strategy,
)
from apps.testing import schedules
from apps.testing.models import Defect, Phase

logger = logging.getLogger(__name__)

# The credential fields each kind of source takes.
CREDENTIAL_FIELDS = {
    SourceKind.POSTGRESQL: ("password",),
    SourceKind.MYSQL: ("password",),
    SourceKind.SQLITE: (),
    SourceKind.HTTP: (),
    SourceKind.FILE: (),
}


class RunAlreadyActive(Exception):
    def __init__(self, run: ReconciliationRun):
        super().__init__(f"Run #{run.pk} of {run.job} is still {run.status}.")
        self.run = run


# --------------------------------------------------------------------------------------
# Data sources
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Uploaded files
# --------------------------------------------------------------------------------------

FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
MAX_FILE_NAME_CHARS = 200


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    if size >= 1024:
        return f"{size / 1024:g} KB"
    return f"{size} bytes"


@dataclass
class CheckedFile:
    """An upload that was measured and hashed before anything is stored."""

    upload: UploadedFile
    name: str
    sha256: str
    size: int


def _safe_name(raw: str) -> str:
    try:
        name = get_valid_filename(PurePath(raw.replace("\\", "/")).name)
    except SuspiciousFileOperation:
        name = "data.csv"
    if len(name) > MAX_FILE_NAME_CHARS:
        suffix = PurePath(name).suffix[:10]
        name = name[: MAX_FILE_NAME_CHARS - len(suffix)] + suffix
    return name


def check_upload(upload: UploadedFile) -> CheckedFile:
    """Checks a file source's upload (kind by name, size within PONTIS_MAX_UPLOAD_BYTES, not
    empty) and hashes it while reading, before anything is stored; ValidationError says why."""
    name = _safe_name(upload.name or "")
    if PurePath(name.lower()).suffix not in FILE_SUFFIXES:
        raise ValidationError(
            f"{name}: only CSV (.csv, .tsv, .txt) and XLSX (.xlsx) files can be read."
        )
    limit = settings.PONTIS_MAX_UPLOAD_BYTES
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        size += len(chunk)
        if size > limit:
            raise ValidationError(
                f"{name} is larger than the limit of {human_size(limit)}; "
                "read large exports from a database source instead."
            )
        digest.update(chunk)
    if size == 0:
        raise ValidationError(f"{name} is empty.")
    upload.seek(0)
    return CheckedFile(upload, name, digest.hexdigest(), size)


def attach_file(source: DataSource, checked: CheckedFile) -> None:
    """Gives a file source its checked upload; it is written to storage when the source is
    saved, so a refused save stores nothing."""
    checked.upload.name = checked.name
    source.file = checked.upload
    source.file_name = checked.name
    source.file_sha256 = checked.sha256


def source_problems(source: DataSource) -> dict[str, str]:
    """What a data source lacks for its kind (field -> message)."""
    from apps.reconciliation import readers

    errors = {}
    if source.kind in SQL_KINDS:
        problem = readers.dsn_problems(source.kind, source.dsn)
        if problem:
            errors["dsn"] = problem
    elif source.dsn:
        errors["dsn"] = "Only SQL sources have a DSN."
    if source.kind == SourceKind.HTTP:
        if source.endpoint_id is None:
            errors["endpoint"] = "An HTTP source reads through a registered endpoint."
        elif source.endpoint.interface.owner_team_id != source.owner_team_id:
            errors["endpoint"] = "The endpoint must belong to an interface of the same team."
    elif source.endpoint_id is not None:
        errors["endpoint"] = "Only HTTP sources read through an endpoint."
    if source.kind == SourceKind.FILE and not source.file:
        errors["file"] = "Upload the CSV or XLSX file."
    return errors


def save_data_source(actor, source: DataSource, credentials: dict | None = None) -> DataSource:
    """Adds or changes a data source; ``credentials`` (when given) replace the stored ones
    (an empty value keeps nothing). Credentials are encrypted and never shown again."""
    if source.pk is None:
        if not policy.can_create_for_team(actor, source.owner_team_id):
            raise PermissionDenied("You may not add data sources for this team.")
    else:
        policy.require_change(actor, DataSource.objects.get(pk=source.pk))
        policy.require_change(actor, source)
    errors = source_problems(source)
    if credentials is not None:
        allowed = CREDENTIAL_FIELDS.get(source.kind, ())
        unknown = sorted(set(credentials) - set(allowed))
        if unknown:
            errors["credentials"] = f"{source.get_kind_display()} takes no {', '.join(unknown)}."
    if errors:
        raise ValidationError(errors)
    if credentials is not None:
        source.set_credentials(credentials)
    return audit.save_with_audit(actor, source)


def delete_data_source(actor, source: DataSource) -> None:
    policy.require_change(actor, source)
    users = ReconciliationJob.objects.filter(source=source) | ReconciliationJob.objects.filter(
        target=source
    )
    names = sorted({str(job) for job in users.select_related("interface")})
    if names:
        raise ValidationError(
            f"{source} is read by {', '.join(names[:5])}; change those jobs first."
        )
    file_name, storage = source.file.name, source.file.storage
    audit.delete_with_audit(actor, source)
    if file_name:
        transaction.on_commit(lambda: storage.delete(file_name))


def test_connection(actor, source: DataSource) -> str:
    """A plain message of what was reached; raises readers.ReadError saying what failed."""
    from apps.reconciliation import readers

    policy.require_change(actor, source)
    return readers.test_connection(source)


# --------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------


def _sentence(message: str) -> str:
    """A reader's message ("unknown option x") as a sentence ("Unknown option x.")."""
    message = message.strip()
    if message and not message.endswith((".", "?", "!")):
        message += "."
    return message[:1].upper() + message[1:]


def job_problems(job: ReconciliationJob) -> dict[str, str]:
    """Field -> message for everything wrong with a job, without connecting anywhere."""
    from apps.reconciliation import readers

    errors = {}
    team_id = job.interface.owner_team_id
    for side in ("source", "target"):
        source = getattr(job, side, None) if getattr(job, f"{side}_id") else None
        if source is None:
            errors[side] = f"Choose the {side} data source."
            continue
        if source.owner_team_id != team_id:
            errors[side] = "The data source must belong to the interface's team."
        dataset = getattr(job, f"{side}_dataset").strip()
        options = getattr(job, f"{side}_options")
        if not isinstance(options, dict):
            errors[f"{side}_options"] = "Options must be an object."
            continue
        # A problem with the dataset alone is the dataset's, else the options'.
        problem = readers.dataset_problems(source, dataset, {})
        if problem:
            errors[f"{side}_dataset"] = _sentence(problem)
        elif options and (problem := readers.dataset_problems(source, dataset, options)):
            errors[f"{side}_options"] = _sentence(problem)
    for name in ("key_columns", "compare_columns"):
        value = getattr(job, name)
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            errors[name] = "A list of column names."
    if not errors.get("key_columns") and not job.key_columns:
        errors["key_columns"] = "Name at least one key column."
    if "key_columns" not in errors and "compare_columns" not in errors:
        try:
            runner.plan_for(job)
        except compare.ComparisonError as exc:
            errors["normalisation"] = str(exc)
    if job.window:
        for side in ("source", "target"):
            if not getattr(job, f"window_{side}_column"):
                errors[f"window_{side}_column"] = f"A window needs the {side} timestamp column."
    if job.mapping_spec_id and job.mapping_spec.status != "approved":
        errors["mapping_spec"] = "Only an approved mapping spec can supply the column mapping."
    if job.mapping_spec_id and job.mapping_spec.interface_id != job.interface_id:
        errors["mapping_spec"] = "The mapping spec must belong to the same interface."
    if job.strategy == Strategy.IN_DATABASE and not errors:
        try:
            runner.choose_strategy(job)
        except compare.ComparisonError as exc:
            errors["strategy"] = str(exc)
    if job.schedule_cron:
        try:
            schedules.check_cron(job.schedule_cron)
        except schedules.CronError as exc:
            errors["schedule_cron"] = str(exc)
    return errors


def save_job(actor, job: ReconciliationJob) -> ReconciliationJob:
    if job.pk is None:
        if not policy.can_create_for_team(actor, job.interface.owner_team_id):
            raise PermissionDenied("You may not add reconciliation jobs to this interface.")
        stored = None
    else:
        stored = ReconciliationJob.objects.get(pk=job.pk)
        policy.require_change(actor, stored)
        policy.require_change(actor, job)
    errors = job_problems(job)
    if errors:
        raise ValidationError(errors)
    if not job.schedule_cron:
        job.next_run_at = None
    elif stored is None or stored.schedule_cron != job.schedule_cron or job.next_run_at is None:
        job.next_run_at = schedules.next_occurrence(job.schedule_cron, timezone.now())
    return audit.save_with_audit(actor, job)


def delete_job(actor, job: ReconciliationJob) -> None:
    policy.require_change(actor, job)
    if jobs.active_run(ReconciliationRun, job=job):
        raise ValidationError("A run of this job is still active; cancel it first.")
    audit.delete_with_audit(actor, job)


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


def start_run(actor, job: ReconciliationJob, *, scheduled: bool = False) -> ReconciliationRun:
    """Queues a run; refuses a second active run of the same job. The scheduler starts
    runs without an actor (the job's owners were checked when it was saved)."""
    if actor is not None or not scheduled:
        policy.require_change(actor, job)
    with transaction.atomic():
        ReconciliationJob.objects.select_for_update().filter(pk=job.pk).first()
        active = jobs.active_run(ReconciliationRun, job=job)
        if active:
            raise RunAlreadyActive(active)
        run = ReconciliationRun.objects.create(
            job=job,
            requested_by=actor if actor is not None and actor.is_authenticated else None,
            accuracy_target=job.accuracy_target,
            scheduled=scheduled,
        )
        jobs.enqueue(run)
    return run


def cancel_run(actor, run: ReconciliationRun) -> bool:
    policy.require_change(actor, run)
    return jobs.cancel(run)


def raise_defect(
    actor, run: ReconciliationRun, *, severity: str = "high", phase: str = Phase.SIT
) -> Defect:
    """A defect from a run below its accuracy target, with the figures prefilled."""
    policy.require_change(actor, run)
    if run.met_target is not False:
        raise ValidationError("Only a run below its accuracy target raises a defect.")
    if run.defect_id:
        raise ValidationError(f"Defect #{run.defect_id} was raised from this run already.")
    job = run.job
    columns = ", ".join(
        f"{name} {count:,}" for name, count in sorted(run.column_mismatches.items()) if count
    )
    actual = (
        f"Accuracy {run.accuracy}% ({run.matched:,} of {run.source_rows:,} source rows matched).\n"
        f"Missing in target: {run.missing_in_target:,}; unexpected in target: "
        f"{run.unexpected_in_target:,}; mismatched: {run.mismatched:,}"
        + (f" ({columns})" if columns else "")
        + f"; duplicate keys: {run.duplicate_source_keys:,} source, "
        f"{run.duplicate_target_keys:,} target."
    )
    with transaction.atomic():
        defect = Defect.objects.create(
            interface=job.interface,
            title=f"{job.interface.code} {job.name}: accuracy {run.accuracy}% below {run.accuracy_target}%"[
                :200
            ],
            severity=severity,
            phase_found=phase,
            expected=f"At least {run.accuracy_target}% of source rows arrive unchanged in the target.",
            actual=actual,
            payload_sample={
                kind: items[:3] for kind, items in (run.samples or {}).items() if items
            },
            raised_by=actor,
        )
        audit.record(actor, defect, AuditAction.CREATE)
        ReconciliationRun.objects.filter(pk=run.pk).update(defect=defect)
        run.defect = defect
    return defect


def run_due_jobs(now: datetime | None = None) -> int:
    """Beat: starts one run of every scheduled job that is due (each occurrence claimed
    once; an occurrence is skipped while a run is active; after an outage, one run)."""
    now = now or timezone.now()
    started = 0
    due = ReconciliationJob.objects.filter(next_run_at__lte=now).exclude(schedule_cron="")
    for job in due.select_related("interface").order_by("next_run_at", "pk"):
        try:
            following = schedules.next_occurrence(job.schedule_cron, now)
        except schedules.CronError as exc:
            logger.warning("reconciliation job %s schedule stopped: %s", job.pk, exc)
            ReconciliationJob.objects.filter(pk=job.pk).update(next_run_at=None)
            continue
        with transaction.atomic():
            claimed = ReconciliationJob.objects.filter(
                pk=job.pk, next_run_at=job.next_run_at
            ).update(next_run_at=following, last_scheduled_for=now)
            if not claimed:
                continue
            try:
                start_run(None, job, scheduled=True)
            except RunAlreadyActive as exc:
                logger.info("reconciliation job %s skipped an occurrence: %s", job.pk, exc)
                continue
        started += 1
    return started
