"""Browser views of an interface's test cases: list, read, create, edit, delete."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.generic import CreateView, DetailView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import (
    AuditedDeleteView,
    LiveValidationMixin,
    WriteAccessMixin,
    apply_validation_error,
)
from apps.catalog.mixins import InterfaceChildCreateMixin
from apps.catalog.models import Interface
from apps.core import audit
from apps.core.listing import FilteredListView
from apps.testing import services
from apps.testing.filters import TestCaseFilter
from apps.testing.forms import TestCaseForm
from apps.testing.models import TestCase, TestResult

RECENT_RESULTS = 20


def case_url(case: TestCase) -> str:
    # TestCase.get_absolute_url is the API address; the browser pages live here.
    return reverse("testing:case_detail", args=[case.pk])


class CaseList(FilteredListView):
    template_name = "testing/case_list.html"
    filterset_class = TestCaseFilter
    sort_fields = {"name": "name", "kind": "kind", "path": "path"}
    default_sort = "name"
    csv_columns = [
        ("name", lambda c: c.name),
        ("kind", lambda c: c.get_kind_display()),
        ("scenario", lambda c: c.get_scenario_display()),
        ("method", lambda c: c.method),
        ("path", lambda c: c.path),
        ("active", lambda c: c.is_active),
        ("tags", lambda c: ", ".join(c.tags or [])),
    ]

    @cached_property
    def interface(self):
        return get_object_or_404(
            Interface.objects.for_user(self.request.user), code=self.kwargs["code"]
        )

    @property
    def csv_filename(self):
        return f"{self.interface.code}-test-cases.csv"

    def base_queryset(self):
        return (
            TestCase.objects.for_user(self.request.user)
            .filter(interface=self.interface)
            .only(
                "id",
                "interface_id",
                "name",
                "kind",
                "scenario",
                "method",
                "path",
                "is_active",
                "tags",
            )
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["interface"] = self.interface
        context["can_change"] = policy.can_change(self.request.user, self.interface)
        return context


class CaseDetail(LoginRequiredMixin, DetailView):
    template_name = "testing/case_detail.html"
    context_object_name = "case"

    def get_queryset(self):
        return TestCase.objects.for_user(self.request.user).select_related("interface")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["results"] = (
            TestResult.objects.filter(case=self.object)
            .select_related("run__environment")
            .only(
                "id",
                "outcome",
                "elapsed_ms",
                "error",
                "created_at",
                "run",
                "run__is_manual",
                "run__environment",
                "run__environment__name",
            )
            .order_by("-created_at", "-pk")[:RECENT_RESULTS]
        )
        context["history"] = audit.history_for(self.object)[:50]
        context["can_change"] = policy.can_change(self.request.user, self.object)
        return context


class CaseFormMixin(WriteAccessMixin, LiveValidationMixin):
    """Saves through services.save_case: the validation and audit entry the API uses too."""

    form_class = TestCaseForm
    template_name = "testing/case_form.html"

    def form_valid(self, form):
        try:
            self.object = services.save_case(self.request.user, form.instance)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved {self.object.name}.")
        return redirect(case_url(self.object))


class CaseCreate(InterfaceChildCreateMixin, CaseFormMixin, CreateView):
    child_model = TestCase

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            interface=self.interface,
            title=f"New test case for {self.interface.code}",
            cancel_url=reverse("testing:case_list", args=[self.interface.code]),
            **kwargs,
        )


class CaseUpdate(CaseFormMixin, UpdateView):
    queryset = TestCase.objects.select_related("interface")

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            interface=self.object.interface,
            title=f"Edit {self.object.name}",
            cancel_url=case_url(self.object),
            **kwargs,
        )


class CaseDelete(AuditedDeleteView):
    queryset = TestCase.objects.select_related("interface")
    template_name = "testing/case_confirm_delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            result_count=self.object.results.count(),
            finding_count=self.object.known_findings.count(),
            **kwargs,
        )

    def get_success_url(self):
        return reverse("testing:case_list", args=[self.object.interface.code])
