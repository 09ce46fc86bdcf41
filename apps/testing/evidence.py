"""The evidence pack of a finished run: a zip an auditor can read without Pontis.

It holds ``summary.html`` (the run, every case and every check, readable in a
browser), ``run.json`` and one JSON file per result with the masked request and
response exactly as stored; a manual run adds its evidence files under
``files/<result id>/<name>``.
"""

import io
import json
import shutil
import zipfile

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from apps.testing.models import TestRun


class RunNotFinished(Exception):
    pass


def run_summary(run: TestRun) -> dict:
    return {
        "run": run.pk,
        "interface": run.interface.code,
        "interface_name": run.interface.name,
        "environment": run.environment.name,
        "spec_version": run.spec.version if run.spec_id else None,
        "status": run.status,
        "passed": run.passed,
        "failed": run.failed,
        "errored": run.errored,
        "error": run.error,
        "requested_by": run.requested_by.username if run.requested_by_id else None,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def evidence_pack(run: TestRun) -> bytes:
    """The zip of a finished run; an active run has no final evidence yet."""
    if run.is_active:
        raise RunNotFinished(f"Run #{run.pk} is still {run.status}: its evidence is not final yet.")
    results = list(
        run.results.select_related("recorded_by").prefetch_related("files").order_by("case_name")
    )
    for result in results:
        result.evidence_files = _evidence_files(result) if run.is_manual else []
    summary = run_summary(run)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "summary.html",
            render_to_string(
                "testing/evidence_summary.html",
                {
                    "run": run,
                    "summary": summary,
                    "results": results,
                    "generated_at": timezone.now(),
                },
            ),
        )
        archive.writestr("run.json", json.dumps(summary, indent=2))
        for index, result in enumerate(results, start=1):
            document = {
                "case": result.case_name,
                "outcome": result.outcome,
                "correlation_id": result.correlation_id,
                "elapsed_ms": result.elapsed_ms,
                "error": result.error,
                "checks": result.checks,
                "request": result.request,
                "response": result.response,
                "recorded_at": result.created_at.isoformat(),
            }
            if run.is_manual:
                document["notes"] = result.notes
                document["recorded_by"] = (
                    result.recorded_by.username if result.recorded_by else None
                )
                document["files"] = _write_evidence_files(archive, result.evidence_files)
            name = f"results/{index:04d}-{slugify(result.case_name)[:60] or 'case'}.json"
            archive.writestr(name, json.dumps(document, indent=2, ensure_ascii=False, default=str))
    return buffer.getvalue()


def _evidence_files(result) -> list[tuple]:
    """A manual result's files with their paths in the zip (a repeated name gets the file's id)."""
    placed, seen = [], set()
    for evidence in result.files.all():
        path = f"files/{result.pk}/{evidence.name}"
        if path in seen:
            path = f"files/{result.pk}/{evidence.pk}-{evidence.name}"
        seen.add(path)
        placed.append((evidence, path))
    return placed


def _write_evidence_files(archive: zipfile.ZipFile, evidence_files) -> list[dict]:
    """Copies the files into the zip, streamed; returns what was written where."""
    written = []
    for evidence, path in evidence_files:
        with evidence.file.open("rb") as source, archive.open(path, "w") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        written.append(
            {"name": evidence.name, "path": path, "size": evidence.size, "sha256": evidence.sha256}
        )
    return written


def as_download(run: TestRun, content: bytes) -> HttpResponse:
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="{run.interface.code}-run-{run.pk}-evidence.zip"'
    )
    return response
