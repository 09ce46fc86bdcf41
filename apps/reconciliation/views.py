"""Browser views of data sources: the list, a source's page, create, edit, delete and the
Test connection button. Jobs are in :mod:`job_views`, runs in :mod:`run_views`.

Views stay thin: every change goes through :mod:`apps.reconciliation.services`, which checks
the permission policy and writes the audit entry. Credentials are write-only: pages show
which are set, never their values.
"""

from __future__ import annotations

import django_filters
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Func, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DetailView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import LiveValidationMixin, WriteAccessMixin, apply_validation_error
from apps.accounts.models import Team
from apps.core import audit
from apps.core.listing import FilteredListView
from apps.reconciliation import readers, services
from apps.reconciliation.forms import DataSourceForm
from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind

HISTORY_ENTRIES = 30
# Domain errors keyed by a model field the form shows under another name.
SOURCE_ERROR_FIELDS = {"file": "upload", "credentials": "password"}


def jobs_reading(source: DataSource):
    """The jobs that read a data source, on either side."""
    return ReconciliationJob.objects.filter(Q(source=source) | Q(target=source))


def _job_count():
    """The number of jobs reading the outer data source: one subquery per page."""
    counted = (
        ReconciliationJob.objects.filter(Q(source=OuterRef("pk")) | Q(target=OuterRef("pk")))
        .order_by()
        .annotate(n=Func(Value(1), function="COUNT", output_field=IntegerField()))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class DataSourceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices, empty_label="All kinds")
    owner_team = django_filters.ModelChoiceFilter(
        field_name="owner_team",
        to_field_name="slug",
        queryset=Team.objects.all(),
        label="Team",
        empty_label="All teams",
    )

    class Meta:
        model = DataSource
        fields = ["q", "kind", "owner_team"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(dsn__icontains=value)
            | Q(file_name__icontains=value)
        )


class SourceList(FilteredListView):
    template_name = "reconciliation/source_list.html"
    filterset_class = DataSourceFilter
    sort_fields = {
        "name": "name",
        "kind": "kind",
        "team": "owner_team__name",
        "jobs": "job_count",
        "updated": "updated_at",
    }
    default_sort = "name"
    csv_filename = "data-sources.csv"
    csv_columns = [
        ("name", lambda s: s.name),
        ("kind", lambda s: s.get_kind_display()),
        ("owner_team", lambda s: s.owner_team.name),
        ("dsn", lambda s: s.dsn),
        ("endpoint", lambda s: str(s.endpoint) if s.endpoint_id else ""),
        ("file_name", lambda s: s.file_name),
        ("file_sha256", lambda s: s.file_sha256),
        ("password_set", lambda s: "password" in (s.credential_fields_set or [])),
        ("jobs", lambda s: s.job_count),
        ("description", lambda s: s.description),
    ]

    def base_queryset(self):
        return (
            DataSource.objects.for_user(self.request.user)
            .select_related("owner_team", "endpoint__interface", "endpoint__environment")
            .defer("credentials_ciphertext")
            .annotate(job_count=_job_count())
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_create"] = self.request.user.can_write
        return context


class SourceDetail(LoginRequiredMixin, DetailView):
    template_name = "reconciliation/source_detail.html"
    context_object_name = "source"

    def get_queryset(self):
        return (
            DataSource.objects.for_user(self.request.user)
            .select_related("owner_team", "endpoint__interface", "endpoint__environment")
            .defer("credentials_ciphertext")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = self.object
        context["jobs"] = (
            jobs_reading(source)
            .select_related("interface", "source", "target")
            .only(
                "name",
                "interface__code",
                "interface__name",
                "source__name",
                "target__name",
                "schedule_cron",
            )
            .order_by("interface__code", "name")
        )
        context["password_set"] = "password" in (source.credential_fields_set or [])
        context["history"] = audit.history_for(source)[:HISTORY_ENTRIES]
        context["can_change"] = policy.can_change(self.request.user, source)
        return context


class SourceFormMixin(WriteAccessMixin, LiveValidationMixin):
    form_class = DataSourceForm
    template_name = "reconciliation/source_form.html"

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        # The password is never sent while typing (no live validation of a secret).
        for name in ("password", "remove_password"):
            if name in form.fields:
                for attr in ("hx-post", "hx-trigger", "hx-target", "hx-include", "hx-vals"):
                    form.fields[name].widget.attrs.pop(attr, None)
        return form

    def form_valid(self, form):
        source = form.instance
        previous_file = DataSource.objects.get(pk=source.pk).file.name if source.pk else ""
        checked = form.checked_file
        if checked is not None:
            services.attach_file(source, checked)
        try:
            self.object = services.save_data_source(self.request.user, source, form.credentials())
        except ValidationError as exc:
            if checked is not None:
                source.file.name = previous_file or None
            _apply_source_errors(form, exc)
            return self.form_invalid(form)
        stored = self.object.file.name
        if checked is not None and previous_file and previous_file != stored:
            storage = self.object.file.storage
            transaction.on_commit(lambda: storage.delete(previous_file))
        messages.success(self.request, f"Saved data source {self.object.name}.")
        return redirect(self.object.get_absolute_url())


def _apply_source_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        exc = ValidationError(
            {
                SOURCE_ERROR_FIELDS.get(field, field): errors
                for field, errors in exc.error_dict.items()
            }
        )
    apply_validation_error(form, exc)


class SourceCreate(SourceFormMixin, CreateView):
    def get_initial(self):
        initial = super().get_initial()
        teams = self.request.user.team_ids()
        if len(teams) == 1:
            initial["owner_team"] = next(iter(teams))
        return initial

    def get_context_data(self, **kwargs):
        return super().get_context_data(title="New data source", **kwargs)


class SourceUpdate(SourceFormMixin, UpdateView):
    queryset = DataSource.objects.select_related("owner_team")


class SourceDelete(WriteAccessMixin, DetailView):
    """Asks for confirmation (GET), then deletes through the service (POST); a source
    that jobs read is refused with their names."""

    template_name = "reconciliation/source_confirm_delete.html"
    context_object_name = "source"
    queryset = DataSource.objects.select_related("owner_team")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["jobs"] = jobs_reading(self.object).select_related("interface")
        return context

    def post(self, request, *args, **kwargs):
        source = self.get_object()
        try:
            services.delete_data_source(request.user, source)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(source.get_absolute_url())
        messages.success(request, f"Deleted data source {source.name}.")
        return redirect("reconciliation:source_list")


@login_required
@require_POST
def source_connection_check(request, pk):
    """Connects to the source (or opens its file) and says what worked or what failed."""
    source = get_object_or_404(
        DataSource.objects.select_related("owner_team", "endpoint__interface"), pk=pk
    )
    try:
        message = services.test_connection(request.user, source)
        ok = True
    except readers.ReadError as exc:
        message, ok = exc.message, False
    if not request.htmx:
        (messages.success if ok else messages.error)(
            request, f"{'Connection works' if ok else 'Connection failed'}: {message}"
        )
        return redirect(source.get_absolute_url())
    html = render_to_string(
        "reconciliation/partials/connection_result.html",
        {"ok": ok, "message": message, "source": source},
        request=request,
    )
    return HttpResponse(html)
