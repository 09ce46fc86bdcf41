"""Browser views of reconciliation runs: live progress, then the figures, the samples of
each kind of difference with both sides side by side, the difference report, cancel and
Raise defect."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST, require_safe

from apps.accounts import policy
from apps.reconciliation import compare, runner, services
from apps.reconciliation.forms import DefectForm
from apps.reconciliation.models import ReconciliationRun

SAMPLE_KINDS = (
    ("mismatched", "Mismatched", "Keys on both sides once, with some compared column different."),
    ("missing_in_target", "Missing in target", "Keys in the source that the target lacks."),
    ("unexpected_in_target", "Unexpected in target", "Keys in the target that the source lacks."),
    (
        "duplicate",
        "Duplicate keys",
        "Keys on both sides, more than once on one: counted, not compared.",
    ),
)
_ABSENT = object()


@dataclass
class Shown:
    """A value as a sample cell shows it."""

    text: str
    css: str = ""  # "null", "absent" or ""


def shown(value: Any) -> Shown:
    if value is _ABSENT:
        return Shown("—", "absent")
    if value is None:
        return Shown("NULL", "null")
    if isinstance(value, str):
        if value == "":
            return Shown("(empty)", "null")
        if value != value.strip():
            return Shown(json.dumps(value, ensure_ascii=False))  # the spaces become visible
        return Shown(value)
    if isinstance(value, bool):
        return Shown("true" if value else "false")
    return Shown(str(value))


@dataclass
class SampleCell:
    source_column: str
    target_column: str
    source: Shown
    target: Shown
    differs: bool
    is_key: bool


@dataclass
class SampleRecord:
    key: str
    cells: list[SampleCell] = field(default_factory=list)
    source_count: int | None = None
    target_count: int | None = None


@dataclass
class SampleGroup:
    kind: str
    label: str
    help: str
    count: int
    records: list[SampleRecord]


def column_pairs(run: ReconciliationRun) -> tuple[list[tuple[str, str]], int]:
    """(source, target) column pairs, keys first, and the number of keys, from the job's
    plan; ([], 0) when the job's settings no longer make a plan."""
    try:
        plan = runner.plan_for(run.job)
    except compare.ComparisonError:
        return [], 0
    return plan.keys + plan.columns, len(plan.keys)


def sample_record(item: dict, pairs: list[tuple[str, str]], key_count: int) -> SampleRecord:
    """One sampled difference as rows of (column, source value, target value). The pairs
    come from the job as it is now; columns of the sample they do not name still show."""
    source = item.get("source") or {}
    target = item.get("target") or {}
    differing = set(item.get("columns") or ())
    key = item.get("key") or []
    record = SampleRecord(
        key=", ".join(shown(part).text for part in key),
        source_count=item.get("source_count"),
        target_count=item.get("target_count"),
    )
    used_source, used_target = set(), set()
    for index, (source_name, target_name) in enumerate(pairs):
        if source_name not in source and target_name not in target:
            continue
        used_source.add(source_name)
        used_target.add(target_name)
        record.cells.append(
            SampleCell(
                source_name,
                target_name,
                shown(source.get(source_name, _ABSENT)),
                shown(target.get(target_name, _ABSENT)),
                source_name in differing,
                index < key_count,
            )
        )
    for name in [n for n in source if n not in used_source]:
        twin = name if name in target and name not in used_target else None
        if twin:
            used_target.add(twin)
        record.cells.append(
            SampleCell(
                name,
                twin or "",
                shown(source[name]),
                shown(target[twin] if twin else _ABSENT),
                name in differing,
                False,
            )
        )
    for name in [n for n in target if n not in used_target]:
        record.cells.append(SampleCell("", name, shown(_ABSENT), shown(target[name]), False, False))
    return record


def sample_groups(run: ReconciliationRun) -> list[SampleGroup]:
    pairs, key_count = column_pairs(run)
    counts = {
        "mismatched": run.mismatched,
        "missing_in_target": run.missing_in_target,
        "unexpected_in_target": run.unexpected_in_target,
        "duplicate": run.duplicates,
    }
    samples = run.samples or {}
    groups = []
    for kind, label, help_text in SAMPLE_KINDS:
        items = samples.get(kind) or []
        groups.append(
            SampleGroup(
                kind,
                label,
                help_text,
                counts[kind],
                [sample_record(item, pairs, key_count) for item in items],
            )
        )
    return groups


def column_table(run: ReconciliationRun) -> list[dict]:
    """Mismatches per compared column, most first, with their share of the compared rows."""
    pairs, _ = column_pairs(run)
    target_of = dict(pairs)
    compared = run.matched + run.mismatched
    rows = [
        {
            "column": name,
            "target_column": target_of.get(name, ""),
            "count": count,
            "percent": round(100 * count / compared, 2) if compared else 0,
        }
        for name, count in (run.column_mismatches or {}).items()
    ]
    return sorted(rows, key=lambda row: (-row["count"], row["column"]))


def _run_or_404(request, pk) -> ReconciliationRun:
    return get_object_or_404(
        ReconciliationRun.objects.for_user(request.user).select_related(
            "job__interface__owner_team",
            "job__source",
            "job__target",
            "job__mapping_spec",
            "requested_by",
            "defect",
        ),
        pk=pk,
    )


def run_context(request, run: ReconciliationRun) -> dict:
    can_change = policy.can_change(request.user, run)
    context = {"run": run, "job": run.job, "can_change": can_change}
    if not run.is_active:
        context.update(
            groups=sample_groups(run),
            columns=column_table(run),
            can_raise_defect=can_change and run.met_target is False and not run.defect_id,
            defect_form=DefectForm(),
        )
    return context


@login_required
@require_safe
def run_detail(request, pk):
    run = _run_or_404(request, pk)
    return render(request, "reconciliation/run_detail.html", run_context(request, run))


@login_required
@require_safe
def run_progress(request, pk):
    """The run's body: its progress while it runs, then its figures. HTTP 286 once the
    run has finished stops htmx polling (the figures replace the progress)."""
    run = _run_or_404(request, pk)
    response = render(request, "reconciliation/partials/run_body.html", run_context(request, run))
    if not run.is_active:
        response.status_code = 286
    return response


@login_required
@require_POST
def run_cancel(request, pk):
    run = get_object_or_404(ReconciliationRun.objects.select_related("job__interface"), pk=pk)
    if not policy.can_change(request.user, run):
        raise PermissionDenied("You may only cancel runs of your own teams' interfaces.")
    if services.cancel_run(request.user, run):
        messages.success(request, f"Asked run #{run.pk} to stop; it stops after the batch in hand.")
    else:
        messages.info(request, f"Run #{run.pk} had already finished.")
    return redirect(run.get_absolute_url())


@login_required
@require_safe
def run_report(request, pk):
    """The full difference report of a finished run, as CSV."""
    run = _run_or_404(request, pk)
    if not run.report_file:
        raise Http404("This run wrote no difference report.")
    base = (Path(settings.VAR_DIR) / "reconciliation" / "reports").resolve()
    path = (Path(settings.VAR_DIR) / run.report_file).resolve()
    if base not in path.parents or not path.is_file():
        raise Http404("The difference report of this run is no longer stored.")
    name = f"{slugify(run.job.interface.code)}-{slugify(run.job.name)}-run-{run.pk}.csv"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type="text/csv")


@login_required
@require_POST
def run_defect_create(request, pk):
    """Raises a defect from a run below its accuracy target, with the figures prefilled."""
    run = get_object_or_404(
        ReconciliationRun.objects.select_related("job__interface", "defect"), pk=pk
    )
    if not policy.can_change(request.user, run):
        raise PermissionDenied("You may only raise defects of your own teams' interfaces.")
    form = DefectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a severity and the phase the defect was found in.")
        return redirect(run.get_absolute_url())
    try:
        defect = services.raise_defect(
            request.user,
            run,
            severity=form.cleaned_data["severity"],
            phase=form.cleaned_data["phase"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(run.get_absolute_url())
    messages.success(request, f"Raised defect #{defect.pk} from run #{run.pk}.")
    return redirect(defect.get_absolute_url())
