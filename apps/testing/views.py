"""Browser views of test runs: start one, follow its progress, read its evidence."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe
from django.views.generic import DetailView

from apps.accounts import policy
from apps.catalog.models import Environment, Interface
from apps.core import audit, jobs
from apps.core.listing import FilteredListView
from apps.testing import baseline, defects, evidence, services, trend
from apps.testing.compliance import compliance_of
from apps.testing.filters import DefectFilter
from apps.testing.models import Defect, TestResult, TestRun


@login_required
@require_POST
def start_run(request, code):
    interface = get_object_or_404(Interface, code=code)
    if not policy.can_change(request.user, interface):
        raise PermissionDenied("You may only run tests of your own teams' interfaces.")
    environment = get_object_or_404(Environment, pk=request.POST.get("environment") or 0)
    tag = request.POST.get("tag", "").strip()[:50]
    try:
        run = services.start_run(request.user, interface, environment, tag=tag)
    except services.RunAlreadyActive as exc:
        messages.info(request, str(exc))
        run = exc.run
    return redirect("testing:run_detail", pk=run.pk)


@login_required
@require_POST
def cancel_run(request, pk):
    run = get_object_or_404(TestRun.objects.select_related("interface"), pk=pk)
    if not policy.can_change(request.user, run):
        raise PermissionDenied("You may only cancel runs of your own teams' interfaces.")
    if jobs.cancel(run):
        messages.success(
            request, f"Asked run #{run.pk} to stop; it stops after the cases in flight."
        )
    else:
        messages.info(request, f"Run #{run.pk} had already finished.")
    return redirect("testing:run_detail", pk=run.pk)


def _run_or_404(request, pk):
    return get_object_or_404(
        TestRun.objects.for_user(request.user).select_related("interface", "environment", "spec"),
        pk=pk,
    )


@login_required
@require_safe
def run_detail(request, pk):
    run = _run_or_404(request, pk)
    results = run.results.order_by("case_name")
    context = {
        "run": run,
        "results": results,
        "can_change": policy.can_change(request.user, run),
        "can_accept_findings": baseline.can_manage_findings(request.user, run.interface),
    }
    return render(request, "testing/run_detail.html", context)


@login_required
@require_safe
def run_progress(request, pk):
    """The progress partial; HTTP 286 once the run has finished stops htmx polling."""
    run = _run_or_404(request, pk)
    response = render(request, "testing/partials/run_progress.html", {"run": run})
    if not run.is_active:
        response.status_code = 286
    return response


@login_required
@require_safe
def contracts(request, code):
    """An interface's contract compliance per environment, with its test cases and recent runs."""
    interface = get_object_or_404(Interface.objects.select_related("owner_team"), code=code)
    cases = list(interface.test_cases.order_by("name"))
    return render(
        request,
        "testing/contracts.html",
        {
            "interface": interface,
            "compliance": compliance_of(interface),
            "cases": cases,
            "case_tags": sorted({tag for case in cases for tag in case.tags or []}),
            "runs": interface.test_runs.select_related("environment")[:20],
            "trends": trend.trends_for(interface),
            "trend_limit": trend.DEFAULT_LIMIT,
            "can_change": policy.can_change(request.user, interface),
        },
    )


@login_required
@require_POST
def raise_defect(request, pk):
    result = get_object_or_404(
        TestResult.objects.select_related("run__interface", "run__environment"), pk=pk
    )
    if not policy.can_change(request.user, result.run):
        raise PermissionDenied("You may only raise defects of your own teams' interfaces.")
    try:
        defect = defects.raise_from_result(
            request.user, result, severity=request.POST.get("severity", "medium")
        )
    except defects.NotAFailure as exc:
        messages.error(request, str(exc))
        return redirect("testing:run_detail", pk=result.run_id)
    messages.success(request, f"Raised {defect}.")
    return redirect(defect.get_absolute_url())


class DefectList(FilteredListView):
    template_name = "testing/defect_list.html"
    filterset_class = DefectFilter
    sort_fields = {
        "created": "created_at",
        "severity": "severity",
        "status": "status",
        "interface": "interface__code",
    }
    default_sort = "-created"
    csv_filename = "defects.csv"
    csv_columns = [
        ("id", lambda d: f"DEF-{d.pk}"),
        ("interface", lambda d: d.interface.code),
        ("title", lambda d: d.title),
        ("severity", lambda d: d.get_severity_display()),
        ("phase_found", lambda d: d.get_phase_found_display()),
        ("status", lambda d: d.get_status_display()),
        ("correlation_id", lambda d: d.correlation_id),
        ("created_at", lambda d: d.created_at.isoformat()),
    ]

    def base_queryset(self):
        return (
            Defect.objects.for_user(self.request.user)
            .select_related("interface", "raised_by")
            .defer("payload_sample", "expected", "actual", "description")
        )


class DefectDetail(LoginRequiredMixin, DetailView):
    template_name = "testing/defect_detail.html"

    def get_queryset(self):
        return Defect.objects.for_user(self.request.user).select_related(
            "interface", "result__run", "raised_by"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["history"] = audit.history_for(self.object)[:50]
        context["can_change"] = policy.can_change(self.request.user, self.object)
        return context


@login_required
@require_safe
def evidence_pack(request, pk):
    run = _run_or_404(request, pk)
    try:
        content = evidence.evidence_pack(run)
    except evidence.RunNotFinished as exc:
        messages.info(request, str(exc))
        return redirect("testing:run_detail", pk=run.pk)
    return evidence.as_download(run, content)


@login_required
@require_safe
def compare_with_last_pass(request, pk):
    """A failing result beside the last passing result of the same case in the same environment."""
    result = get_object_or_404(
        TestResult.objects.filter(run__in=TestRun.objects.for_user(request.user)).select_related(
            "run__interface", "run__environment"
        ),
        pk=pk,
    )
    last_pass = (
        TestResult.objects.filter(
            case_id=result.case_id,
            run__environment_id=result.run.environment_id,
            outcome="passed",
            created_at__lt=result.created_at,
        )
        .select_related("run")
        .order_by("-created_at")
        .first()
    )
    return render(request, "testing/compare.html", {"result": result, "last_pass": last_pass})
