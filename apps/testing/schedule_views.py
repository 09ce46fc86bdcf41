"""Browser views of test schedules: an interface's list, and create, edit, enable and delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django.views.generic import CreateView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import (
    AuditedDeleteView,
    LiveValidationMixin,
    WriteAccessMixin,
    apply_validation_error,
)
from apps.catalog.mixins import InterfaceChildCreateMixin
from apps.catalog.models import Interface
from apps.testing import schedules
from apps.testing.models import TestRun, TestSchedule
from apps.testing.schedule_forms import TestScheduleForm


def _list_url(schedule: TestSchedule) -> str:
    return reverse("testing:schedule_list", args=[schedule.interface.code])


@login_required
@require_safe
def schedule_list(request, code):
    interface = get_object_or_404(Interface.objects.select_related("owner_team"), code=code)
    latest_run = TestRun.objects.filter(schedule=OuterRef("pk")).order_by("-pk")
    rows = (
        interface.test_schedules.select_related("environment")
        .annotate(
            last_run_id=Subquery(latest_run.values("pk")[:1]),
            last_run_status=Subquery(latest_run.values("status")[:1]),
            last_run_created_at=Subquery(latest_run.values("created_at")[:1]),
        )
        .order_by("name")
    )
    now = timezone.now()
    for schedule in rows:
        schedule.upcoming = (
            schedules.next_occurrences(schedule.cron, now) if schedule.is_enabled else []
        )
        schedule.description = schedules.describe(schedule.cron)
    return render(
        request,
        "testing/schedule_list.html",
        {
            "interface": interface,
            "schedules": rows,
            "can_change": policy.can_change(request.user, interface),
        },
    )


class ScheduleFormMixin(WriteAccessMixin, LiveValidationMixin):
    form_class = TestScheduleForm
    template_name = "testing/schedule_form.html"

    def form_valid(self, form):
        try:
            self.object = schedules.save_schedule(self.request.user, form.instance)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved schedule {self.object.name}.")
        return redirect(_list_url(self.object))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("testing:schedule_list", args=[self.interface.code])
        return context


class ScheduleCreate(InterfaceChildCreateMixin, ScheduleFormMixin, CreateView):
    child_model = TestSchedule

    def get_context_data(self, **kwargs):
        return super().get_context_data(title=f"New schedule for {self.interface.code}", **kwargs)


class ScheduleUpdate(ScheduleFormMixin, UpdateView):
    queryset = TestSchedule.objects.select_related("interface", "environment")

    def get_object(self, queryset=None):
        schedule = super().get_object(queryset)
        self.interface = schedule.interface
        return schedule


class ScheduleDelete(AuditedDeleteView):
    queryset = TestSchedule.objects.select_related("interface", "environment")
    template_name = "testing/schedule_confirm_delete.html"

    def get_success_url(self):
        return _list_url(self.object)


@login_required
@require_POST
def schedule_enable(request, pk):
    """Turns a schedule on (``enabled=1``) or off; saying the same twice changes nothing."""
    schedule = get_object_or_404(
        TestSchedule.objects.select_related("interface", "environment"), pk=pk
    )
    if not policy.can_change(request.user, schedule):
        raise PermissionDenied("You may only change schedules of your own teams' interfaces.")
    schedule.is_enabled = request.POST.get("enabled") == "1"
    try:
        schedules.save_schedule(request.user, schedule)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        state = "enabled" if schedule.is_enabled else "disabled"
        messages.success(request, f"Schedule {schedule.name} is {state}.")
    return redirect(_list_url(schedule))
