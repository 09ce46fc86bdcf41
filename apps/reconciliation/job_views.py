"""Browser views of reconciliation jobs: an interface's jobs, a job's page with its runs and
accuracy trend, create, edit, delete and Run now.

Every change goes through :mod:`apps.reconciliation.services` (policy, validation field by
field, audit). Query counts stay constant however many jobs and runs there are: the last
run of each job comes from subqueries, the trend from one query.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django.views.generic import CreateView, DetailView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import LiveValidationMixin, WriteAccessMixin, apply_validation_error
from apps.catalog.mixins import InterfaceChildCreateMixin
from apps.catalog.models import Interface
from apps.core import audit
from apps.reconciliation import runner, services, trend
from apps.reconciliation.forms import JobForm
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.testing import schedules

HISTORY_ENTRIES = 30
RUNS_SHOWN = 30
UPCOMING = 3


def with_latest_run(jobs: QuerySet) -> QuerySet:
    """Annotates each job with its last run (id, status, when) and its last accuracy
    (the newest run that has one): subqueries, so one query for any number of jobs."""
    runs = ReconciliationRun.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-pk")
    measured = runs.filter(accuracy__isnull=False)
    return jobs.annotate(
        last_run_id=Subquery(runs.values("pk")[:1]),
        last_run_status=Subquery(runs.values("status")[:1]),
        last_run_created_at=Subquery(runs.values("created_at")[:1]),
        last_accuracy=Subquery(measured.values("accuracy")[:1]),
        last_accuracy_met=Subquery(measured.values("met_target")[:1]),
        last_accuracy_run_id=Subquery(measured.values("pk")[:1]),
    )


def upcoming_runs(cron: str) -> list:
    """The next occurrences of a schedule (UTC); none for no or a broken schedule."""
    if not cron:
        return []
    try:
        return schedules.next_occurrences(cron, timezone.now(), UPCOMING)
    except schedules.CronError:
        return []


@login_required
@require_safe
def job_list(request, code):
    interface = get_object_or_404(
        Interface.objects.select_related("owner_team", "source_system", "target_system"), code=code
    )
    jobs = with_latest_run(
        interface.reconciliation_jobs.select_related("source", "target").defer(
            "normalisation", "source_options", "target_options", "description"
        )
    ).order_by("name")
    return render(
        request,
        "reconciliation/job_list.html",
        {
            "interface": interface,
            "jobs": jobs,
            "can_change": policy.can_change(request.user, interface),
        },
    )


class JobDetail(DetailView):
    template_name = "reconciliation/job_detail.html"
    context_object_name = "job"

    def get_queryset(self):
        return ReconciliationJob.objects.for_user(self.request.user).select_related(
            "interface__owner_team", "source", "target", "mapping_spec"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        runs = list(
            job.runs.select_related("requested_by", "defect")
            .defer("samples", "column_mismatches")
            .order_by("-created_at", "-pk")[:RUNS_SHOWN]
        )
        context.update(
            columns=column_rows(job),
            runs=runs,
            active_run=next((run for run in runs if run.is_active), None),
            chart=trend.trend_for(job),
            trend_limit=trend.DEFAULT_LIMIT,
            upcoming=upcoming_runs(job.schedule_cron),
            schedule_text=schedules.describe(job.schedule_cron) if job.schedule_cron else "",
            history=audit.history_for(job)[:HISTORY_ENTRIES],
            can_change=policy.can_change(self.request.user, job),
        )
        return context


job_detail = login_required(require_safe(JobDetail.as_view()))


def rule_text(rule) -> str:
    """A column's normalisation in words: "number, places 2, tolerance 0.01"."""
    if not isinstance(rule, dict) or not rule:
        return "text"
    parts = [str(rule.get("type", "text"))]
    for flag in ("trim", "keep_trailing_whitespace", "case_insensitive", "empty_is_null"):
        if rule.get(flag) is True:
            parts.append(flag.replace("_", " "))
    for option in ("places", "tolerance"):
        if rule.get(option) is not None:
            parts.append(f"{option} {rule[option]}")
    return ", ".join(parts)


def column_rows(job: ReconciliationJob) -> list[dict]:
    """Each key and compared column with its target column and normalisation; the target
    name says whether it came from the job's mapping or its mapping spec."""
    mapping = runner.column_mapping(job)
    own = job.column_mapping or {}
    normalisation = job.normalisation if isinstance(job.normalisation, dict) else {}
    keys = list(job.key_columns or [])
    names = keys + [name for name in job.compare_columns or [] if name not in keys]
    return [
        {
            "source": name,
            "target": mapping.get(name) or name,
            "mapped_by": "job" if name in own else ("spec" if name in mapping else ""),
            "is_key": name in keys,
            "rule": rule_text(normalisation.get(name)),
        }
        for name in names
    ]


class JobFormMixin(WriteAccessMixin, LiveValidationMixin):
    form_class = JobForm
    template_name = "reconciliation/job_form.html"

    def post(self, request, *args, **kwargs):
        # While the schedule is typed, answer its next occurrences (or what is wrong).
        if (
            request.htmx
            and "_validate" in request.POST
            and request.htmx.trigger_name == "schedule_cron"
        ):
            if isinstance(self, UpdateView):
                self.get_object()  # the same permission check as a save
            return HttpResponse(cron_preview(request.POST.get("schedule_cron", "")))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            self.object = services.save_job(self.request.user, form.instance)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved reconciliation job {self.object.name}.")
        return redirect(self.object.get_absolute_url())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["interface"] = self.interface
        context["has_sources"] = context["form"].fields["source"].queryset.exists()
        field = context["form"]["schedule_cron"]
        context["cron_preview"] = "" if field.errors else cron_preview(field.value() or "")
        context["cancel_url"] = (
            self.object.get_absolute_url()
            if getattr(self, "object", None) and self.object.pk
            else reverse("reconciliation:job_list", args=[self.interface.code])
        )
        return context


def cron_preview(cron: str) -> str:
    """The schedule's next runs in words, or what is wrong with it (HTML)."""
    cron = (cron or "").strip()
    context = {"cron": cron, "upcoming": [], "error": "", "text": ""}
    if cron:
        try:
            schedules.check_cron(cron)
        except schedules.CronError as exc:
            context["error"] = str(exc)
        else:
            context["upcoming"] = upcoming_runs(cron)
            context["text"] = schedules.describe(cron)
    return render_to_string("reconciliation/partials/cron_preview.html", context)


class JobCreate(InterfaceChildCreateMixin, JobFormMixin, CreateView):
    child_model = ReconciliationJob

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title=f"New reconciliation job for {self.interface.code}", **kwargs
        )


class JobUpdate(JobFormMixin, UpdateView):
    queryset = ReconciliationJob.objects.select_related("interface__owner_team")

    def get_object(self, queryset=None):
        job = super().get_object(queryset)
        self.interface = job.interface
        return job


class JobDelete(WriteAccessMixin, DetailView):
    """Asks for confirmation (GET), then deletes through the service (POST)."""

    template_name = "reconciliation/job_confirm_delete.html"
    context_object_name = "job"
    queryset = ReconciliationJob.objects.select_related("interface__owner_team")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["run_count"] = self.object.runs.count()
        return context

    def post(self, request, *args, **kwargs):
        job = self.get_object()
        try:
            services.delete_job(request.user, job)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(job.get_absolute_url())
        messages.success(request, f"Deleted reconciliation job {job.name} and its runs.")
        return redirect("reconciliation:job_list", code=job.interface.code)


@login_required
@require_POST
def run_create(request, pk):
    """Run now: queues a run; a run still active answers 409 with a link to it."""
    job = get_object_or_404(ReconciliationJob.objects.select_related("interface"), pk=pk)
    if not policy.can_change(request.user, job):
        raise PermissionDenied("You may only run reconciliations of your own teams' interfaces.")
    try:
        run = services.start_run(request.user, job)
    except services.RunAlreadyActive as exc:
        return render(
            request, "reconciliation/run_active.html", {"job": job, "run": exc.run}, status=409
        )
    messages.success(request, f"Started run #{run.pk} of {job.name}.")
    return redirect(run.get_absolute_url())
