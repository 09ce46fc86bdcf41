"""Manual test cases: a tester records what they saw, with evidence files.

A recorded outcome becomes a finished TestRun (``is_manual``) holding one
TestResult and its EvidenceFiles, so manual evidence sits beside the automated
kind in run pages, evidence packs and KPIs.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.accounts import policy
from apps.catalog.models import Environment
from apps.core import audit
from apps.core.models import AuditAction, JobStatus
from apps.testing.models import (
    EvidenceFile,
    Outcome,
    TestCase,
    TestKind,
    TestResult,
    TestRun,
)

MAX_FILES_PER_RESULT = 10
MAX_NAME_CHARS = 150  # leaves room for "evidence/<run>/<hash>-" within the 300-char file path


class ManualOutcome(models.TextChoices):
    """What a tester may answer."""

    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked (could not be carried out)"


# The outcome each answer is stored as.
STORED_OUTCOMES = {
    ManualOutcome.PASSED: Outcome.PASSED,
    ManualOutcome.FAILED: Outcome.FAILED,
    ManualOutcome.BLOCKED: Outcome.ERRORED,
}
CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


@dataclass
class CheckedUpload:
    upload: UploadedFile
    name: str
    size: int
    sha256: str
    content_type: str


def _safe_name(raw: str) -> str:
    """The file's own name, without any directory, made safe for storage and headers."""
    try:
        name = get_valid_filename(PurePath(raw.replace("\\", "/")).name)
    except SuspiciousFileOperation:
        name = "file"
    if len(name) > MAX_NAME_CHARS:
        suffix = PurePath(name).suffix[:20]
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name


def _check_uploads(files) -> list[CheckedUpload]:
    """Hashes and measures every upload by streaming its chunks; refuses too many or too big.

    Runs before anything is written, so a refusal leaves no row and no file behind.
    """
    if len(files) > MAX_FILES_PER_RESULT:
        raise ValidationError(
            {"files": f"At most {MAX_FILES_PER_RESULT} files per result; {len(files)} were sent."}
        )
    limit = settings.PONTIS_EVIDENCE_MAX_UPLOAD_BYTES
    checked = []
    for upload in files:
        name = _safe_name(upload.name or "")
        digest = hashlib.sha256()
        size = 0
        for chunk in upload.chunks():
            size += len(chunk)
            if size > limit:
                raise ValidationError(
                    {"files": f"{name} is larger than the limit of {human_size(limit)} per file."}
                )
            digest.update(chunk)
        content_type = (getattr(upload, "content_type", "") or "").strip()[:100]
        checked.append(
            CheckedUpload(
                upload=upload,
                name=name,
                size=size,
                sha256=digest.hexdigest(),
                content_type=content_type
                if CONTENT_TYPE.match(content_type)
                else "application/octet-stream",
            )
        )
    return checked


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    if size >= 1024:
        return f"{size / 1024:g} KB"
    return f"{size} bytes"


def _check_message(case: TestCase, notes: str) -> str:
    expected = case.expected_result.strip() or "(no expected result written down)"
    observed = notes.strip() or "(no notes)"
    return f"Expected: {expected}\nObserved: {observed}"


def record_manual_result(
    actor,
    case: TestCase,
    environment: Environment,
    outcome: str,
    notes: str = "",
    files=(),
) -> TestRun:
    """Records a tester's outcome of a manual case as a finished run with its evidence files.

    ``outcome`` is passed, failed or blocked (stored as errored); anything but a pass needs
    notes. Refusals raise ValidationError (or PermissionDenied) before anything is written.
    The run, its result, its files and the audit entry land together: when saving fails
    midway, the rows roll back and the files already stored are deleted. Not idempotent:
    each call records a new run.
    """
    policy.require_change(actor, case.interface)
    if case.kind != TestKind.MANUAL:
        raise ValidationError({"case": f"{case.name} is not a manual test case."})
    if outcome not in STORED_OUTCOMES:
        raise ValidationError({"outcome": "Choose passed, failed or blocked."})
    notes = (notes or "").strip()
    if outcome != "passed" and not notes:
        raise ValidationError({"notes": f"Say what you saw: a {outcome} result needs notes."})
    uploads = _check_uploads(list(files))

    stored_names = []
    stored_outcome = STORED_OUTCOMES[outcome]
    now = timezone.now()
    try:
        with transaction.atomic():
            run = TestRun.objects.create(
                interface=case.interface,
                environment=environment,
                case_ids=[case.pk],
                is_manual=True,
                status=JobStatus.SUCCEEDED if outcome == "passed" else JobStatus.FAILED,
                requested_by=actor,
                started_at=now,
                finished_at=now,
                progress_total=1,
                progress_done=1,
                passed=int(stored_outcome == Outcome.PASSED),
                failed=int(stored_outcome == Outcome.FAILED),
                errored=int(stored_outcome == Outcome.ERRORED),
            )
            result = TestResult.objects.create(
                run=run,
                case=case,
                case_name=case.name,
                outcome=stored_outcome,
                checks=[
                    {
                        "name": "manual verification",
                        "passed": {"passed": True, "failed": False}.get(outcome),
                        "message": _check_message(case, notes),
                        "details": [],
                    }
                ],
                notes=notes,
                recorded_by=actor,
                correlation_id=uuid.uuid4().hex,
                request={},
                response={},
            )
            for checked in uploads:
                evidence = EvidenceFile(
                    result=result,
                    name=checked.name,
                    content_type=checked.content_type,
                    size=checked.size,
                    sha256=checked.sha256,
                    uploaded_by=actor,
                )
                checked.upload.seek(0)
                evidence.file.save(checked.name, checked.upload, save=False)
                stored_names.append(evidence.file.name)
                evidence.save()
            audit.record(actor, run, AuditAction.CREATE)
    except BaseException:
        # The rows rolled back; the files on disk are not part of the transaction.
        for name in stored_names:
            default_storage.delete(name)
        raise
    return run


def visible_evidence_files(user):
    """Evidence files of the runs this user may see."""
    return EvidenceFile.objects.filter(result__run__in=TestRun.objects.for_user(user))


def as_attachment(evidence: EvidenceFile) -> FileResponse:
    """The stored file as a download, never shown inline: a tester's upload is not our page."""
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404("The evidence file is missing from storage.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.name,
        content_type=evidence.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
