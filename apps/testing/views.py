"""Browser views of test runs: start one, follow its progress, read its evidence."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts import policy
from apps.catalog.models import Environment, Interface
from apps.testing import services
from apps.testing.compliance import compliance_of
from apps.testing.models import TestRun


@login_required
@require_POST
def start_run(request, code):
    interface = get_object_or_404(Interface, code=code)
    if not policy.can_change(request.user, interface):
        raise PermissionDenied("You may only run tests of your own teams' interfaces.")
    environment = get_object_or_404(Environment, pk=request.POST.get("environment") or 0)
    try:
        run = services.start_run(request.user, interface, environment)
    except services.RunAlreadyActive as exc:
        messages.info(request, str(exc))
        run = exc.run
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
    return render(request, "testing/run_detail.html", {"run": run, "results": results})


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
    return render(
        request,
        "testing/contracts.html",
        {
            "interface": interface,
            "compliance": compliance_of(interface),
            "cases": interface.test_cases.order_by("name"),
            "runs": interface.test_runs.select_related("environment")[:20],
            "can_change": policy.can_change(request.user, interface),
        },
    )
