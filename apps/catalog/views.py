"""Browser views of the catalog. Thin: querysets from the policy, writes through services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST, require_safe
from django.views.generic import CreateView, DetailView, FormView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import (
    AuditedCreateView,
    AuditedDeleteView,
    AuditedUpdateView,
    LiveValidationMixin,
    WriteAccessMixin,
    apply_validation_error,
)
from apps.accounts.models import Team
from apps.catalog import services
from apps.catalog.filters import EndpointFilter, EnvironmentFilter, InterfaceFilter, SystemFilter
from apps.catalog.forms import (
    EndpointForm,
    EnvironmentForm,
    InterfaceForm,
    SpecUploadForm,
    SystemForm,
)
from apps.catalog.mixins import InterfaceChildCreateMixin
from apps.catalog.models import (
    ApiSpec,
    Endpoint,
    EndpointCheck,
    Environment,
    Interface,
    LifecycleStatus,
    Pattern,
    System,
    Tag,
)
from apps.core import audit
from apps.core.listing import FilteredListView
from apps.core.models import AuditEntry
from apps.core.queries import related_count

# ---------------------------------------------------------------- home and search


@login_required
@require_safe
def home(request):
    status_counts = dict(Interface.objects.values_list("status").annotate(n=Count("id")).order_by())
    context = {
        "status_counts": [
            (s, label, status_counts.get(s, 0)) for s, label in LifecycleStatus.choices
        ],
        "interface_total": sum(status_counts.values()),
        "system_total": System.objects.count(),
        "endpoint_total": Endpoint.objects.count(),
        "critical_live": Interface.objects.filter(
            status=LifecycleStatus.LIVE, criticality="critical"
        ).count(),
        "my_interfaces": Interface.objects.filter(owner_team__in=request.user.team_ids())
        .select_related("source_system", "target_system")
        .order_by("-updated_at")[:8],
        "recent_changes": AuditEntry.objects.select_related("content_type").order_by("-created_at")[
            :10
        ],
    }
    return render(request, "home.html", context)


SEARCH_LIMIT = 8


@login_required
@require_GET
def search(request):
    """The global search box: interfaces by code, name, system or tag; systems by name."""
    query = request.GET.get("q", "").strip()[:100]
    interfaces, systems = [], []
    if len(query) >= 2:
        tagged = Tag.objects.filter(name__iexact=query).values("interfaces")
        interfaces = list(
            Interface.objects.filter(
                Q(code__icontains=query)
                | Q(name__icontains=query)
                | Q(source_system__name__icontains=query)
                | Q(target_system__name__icontains=query)
                | Q(pk__in=tagged)
            )
            .select_related("source_system", "target_system")
            .only("code", "name", "status", "source_system__name", "target_system__name")
            .order_by("code")[:SEARCH_LIMIT]
        )
        systems = list(
            System.objects.filter(name__icontains=query).only("id", "name", "kind")[:SEARCH_LIMIT]
        )
    template = "catalog/partials/search_results.html" if request.htmx else "catalog/search.html"
    return render(request, template, {"query": query, "interfaces": interfaces, "systems": systems})


# ---------------------------------------------------------------- generic pieces


class HistoryMixin:
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["history"] = audit.history_for(self.object)[:50]
        context["can_change"] = policy.can_change(self.request.user, self.object)
        return context


# ---------------------------------------------------------------- systems


class SystemList(FilteredListView):
    template_name = "catalog/system_list.html"
    filterset_class = SystemFilter
    sort_fields = {
        "name": "name",
        "kind": "kind",
        "team": "owner_team__name",
        "interfaces": "interface_count",
    }
    default_sort = "name"
    csv_filename = "systems.csv"
    csv_columns = [
        ("name", lambda s: s.name),
        ("kind", lambda s: s.get_kind_display()),
        ("business_owner", lambda s: s.business_owner),
        ("owner_team", lambda s: s.owner_team.name),
        ("interfaces", lambda s: s.interface_count),
        ("description", lambda s: s.description),
    ]

    def base_queryset(self):
        return (
            System.objects.for_user(self.request.user)
            .select_related("owner_team")
            .with_interface_count()
        )


class SystemDetail(LoginRequiredMixin, HistoryMixin, DetailView):
    template_name = "catalog/system_detail.html"

    def get_queryset(self):
        return System.objects.for_user(self.request.user).select_related("owner_team")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        related = Interface.objects.select_related("source_system", "target_system", "owner_team")
        context["outbound"] = related.filter(source_system=self.object)
        context["inbound"] = related.filter(target_system=self.object)
        return context


class SystemCreate(AuditedCreateView):
    form_class = SystemForm
    extra_context = {"title": "New system"}


class SystemUpdate(AuditedUpdateView):
    form_class = SystemForm
    queryset = System.objects.all()


class SystemDelete(AuditedDeleteView):
    queryset = System.objects.all()

    def get_success_url(self):
        return reverse("catalog:system_list")


# ---------------------------------------------------------------- environments


class EnvironmentList(FilteredListView):
    template_name = "catalog/environment_list.html"
    filterset_class = EnvironmentFilter
    sort_fields = {"position": "position", "name": "name", "endpoints": "endpoint_count"}
    default_sort = "position"
    csv_filename = "environments.csv"
    csv_columns = [
        ("position", lambda e: e.position),
        ("name", lambda e: e.name),
        ("slug", lambda e: e.slug),
        ("production", lambda e: e.is_production),
        ("egress_allowlist", lambda e: " ".join(e.egress_allowlist or [])),
        ("endpoints", lambda e: e.endpoint_count),
    ]

    def base_queryset(self):
        return Environment.objects.for_user(self.request.user).annotate(
            endpoint_count=related_count(Endpoint, "environment")
        )


class EnvironmentDetail(LoginRequiredMixin, HistoryMixin, DetailView):
    template_name = "catalog/environment_detail.html"

    def get_queryset(self):
        return Environment.objects.for_user(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["endpoints"] = self.object.endpoints.select_related("interface").order_by(
            "interface__code"
        )[:100]
        context["endpoint_count"] = self.object.endpoints.count()
        return context


class EnvironmentCreate(AuditedCreateView):
    form_class = EnvironmentForm
    extra_context = {"title": "New environment"}
    forbidden_message = "Only admins create environments."

    def check_team(self, form):
        return self.request.user.is_portal_admin


class EnvironmentUpdate(AuditedUpdateView):
    form_class = EnvironmentForm
    queryset = Environment.objects.all()


class EnvironmentDelete(AuditedDeleteView):
    queryset = Environment.objects.all()

    def get_success_url(self):
        return reverse("catalog:environment_list")


# ---------------------------------------------------------------- interfaces


class InterfaceList(FilteredListView):
    template_name = "catalog/interface_list.html"
    filterset_class = InterfaceFilter
    sort_fields = {
        "code": "code",
        "name": "name",
        "status": "status",
        "criticality": "criticality",
        "team": "owner_team__name",
        "source": "source_system__name",
        "target": "target_system__name",
        "updated": "updated_at",
    }
    default_sort = "code"
    csv_filename = "interfaces.csv"
    csv_columns = [
        ("code", lambda i: i.code),
        ("name", lambda i: i.name),
        ("business_process", lambda i: i.business_process),
        ("source_system", lambda i: i.source_system.name),
        ("target_system", lambda i: i.target_system.name),
        ("pattern", lambda i: i.get_pattern_display()),
        ("platform", lambda i: i.get_platform_display()),
        ("owner_team", lambda i: i.owner_team.name),
        ("status", lambda i: i.get_status_display()),
        ("criticality", lambda i: i.get_criticality_display()),
        ("holds_personal_data", lambda i: i.holds_personal_data),
        ("sla_latency_ms", lambda i: i.sla_latency_ms),
        ("sla_freshness_minutes", lambda i: i.sla_freshness_minutes),
        ("expected_volume_per_day", lambda i: i.expected_volume_per_day),
        ("tags", lambda i: ", ".join(tag.name for tag in i.tags.all())),
    ]

    def base_queryset(self):
        return (
            Interface.objects.for_user(self.request.user)
            .select_related("source_system", "target_system", "owner_team")
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
            .defer("runbook")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_create"] = self.request.user.can_write
        return context


class InterfaceDetail(LoginRequiredMixin, HistoryMixin, DetailView):
    template_name = "catalog/interface_detail.html"
    slug_field = "code"
    slug_url_kwarg = "code"

    def get_queryset(self):
        return (
            Interface.objects.for_user(self.request.user)
            .select_related("source_system", "target_system", "owner_team")
            .prefetch_related("tags")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["endpoints"] = self.object.endpoints.select_related("environment").order_by(
            "environment__position"
        )
        context["specs"] = self.object.specs.defer("content", "document").select_related(
            "uploaded_by"
        )
        # Contract tests live in the testing app; the page reads them through the relation.
        context["test_case_count"] = self.object.test_cases.count()
        context["test_runs"] = self.object.test_runs.select_related("environment")[:5]
        return context


class InterfaceCreate(AuditedCreateView):
    form_class = InterfaceForm
    extra_context = {"title": "New interface"}

    def m2m_values(self, form):
        return {"tags": form.tag_objects()}


class InterfaceUpdate(AuditedUpdateView):
    form_class = InterfaceForm
    slug_field = "code"
    slug_url_kwarg = "code"
    queryset = Interface.objects.all()

    def m2m_values(self, form):
        return {"tags": form.tag_objects()}


class InterfaceDelete(AuditedDeleteView):
    slug_field = "code"
    slug_url_kwarg = "code"
    queryset = Interface.objects.all()

    def get_success_url(self):
        return reverse("catalog:interface_list")


# ---------------------------------------------------------------- endpoints


class EndpointList(FilteredListView):
    template_name = "catalog/endpoint_list.html"
    filterset_class = EndpointFilter
    sort_fields = {
        "interface": "interface__code",
        "environment": "environment__position",
        "url": "base_url",
    }
    default_sort = "interface"
    csv_filename = "endpoints.csv"
    csv_columns = [
        ("interface", lambda e: e.interface.code),
        ("environment", lambda e: e.environment.name),
        ("base_url", lambda e: e.base_url),
        ("auth_type", lambda e: e.get_auth_type_display()),
        ("timeout_seconds", lambda e: e.timeout_seconds),
        ("rate_limit_per_second", lambda e: e.rate_limit_per_second),
    ]

    def base_queryset(self):
        return Endpoint.objects.for_user(self.request.user).select_related(
            "interface", "environment"
        )


class EndpointDetail(LoginRequiredMixin, HistoryMixin, DetailView):
    template_name = "catalog/endpoint_detail.html"

    def get_queryset(self):
        return Endpoint.objects.for_user(self.request.user).select_related(
            "interface", "environment"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["checks"] = self.object.checks.all()[:10]
        return context


class EndpointFormMixin:
    form_class = EndpointForm
    template_name = "form.html"

    def form_valid(self, form):
        try:
            self.object = services.save_endpoint(
                self.request.user, form.instance, form.credentials()
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved {self.object}.")
        return redirect(self.object.get_absolute_url())


class EndpointCreate(
    WriteAccessMixin, InterfaceChildCreateMixin, EndpointFormMixin, LiveValidationMixin, CreateView
):
    child_model = Endpoint

    def get_context_data(self, **kwargs):
        return super().get_context_data(title=f"New endpoint for {self.interface.code}", **kwargs)


class EndpointUpdate(WriteAccessMixin, EndpointFormMixin, LiveValidationMixin, UpdateView):
    queryset = Endpoint.objects.select_related("interface", "environment")


class EndpointDelete(AuditedDeleteView):
    queryset = Endpoint.objects.select_related("interface", "environment")

    def get_success_url(self):
        return self.object.interface.get_absolute_url()


@login_required
@require_POST
def endpoint_check(request, pk):
    endpoint = get_object_or_404(Endpoint.objects.select_related("interface"), pk=pk)
    if not policy.can_change(request.user, endpoint):
        raise PermissionDenied("You may only check endpoints of your own teams.")
    check = services.request_endpoint_check(request.user, endpoint)
    return render(request, "catalog/partials/check_status.html", {"check": check})


@login_required
@require_GET
def endpoint_check_status(request, pk):
    """A check's progress partial; answers 286 once finished so htmx stops polling."""
    check = get_object_or_404(
        EndpointCheck.objects.filter(endpoint__in=Endpoint.objects.for_user(request.user)), pk=pk
    )
    response = render(request, "catalog/partials/check_status.html", {"check": check})
    if not check.is_active:
        response.status_code = 286
    return response


# ---------------------------------------------------------------- specs


class SpecUpload(WriteAccessMixin, FormView):
    form_class = SpecUploadForm
    template_name = "catalog/spec_upload.html"

    def dispatch(self, request, *args, **kwargs):
        self.interface = get_object_or_404(Interface, code=kwargs["code"])
        if request.user.is_authenticated and request.user.can_write:
            policy.require_change(request.user, self.interface)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(interface=self.interface, **kwargs)

    def form_valid(self, form):
        raw, filename = form.raw()
        try:
            spec = services.upload_spec(
                self.request.user,
                self.interface,
                raw,
                filename=filename,
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as exc:
            for message in exc.message_dict.get("content", exc.messages):
                form.add_error(None, message)
            return self.form_invalid(form)
        messages.success(
            self.request, f"Uploaded version {spec.version} ({spec.operation_count} operations)."
        )
        return redirect(spec.get_absolute_url())


def _spec_or_404(request, code, version):
    return get_object_or_404(
        ApiSpec.objects.for_user(request.user).select_related("interface", "uploaded_by"),
        interface__code=code,
        version=version,
    )


@login_required
@require_safe
def spec_detail(request, code, version):
    spec = _spec_or_404(request, code, version)
    versions = spec.interface.specs.only("id", "version", "label", "created_at").order_by(
        "-version"
    )
    return render(request, "catalog/spec_detail.html", {"spec": spec, "versions": versions})


@login_required
@require_safe
def spec_diff(request, code, version):
    spec = _spec_or_404(request, code, version)
    against = request.GET.get("against", "")
    if not against.isdigit():
        messages.error(request, "Pick a version to compare with.")
        return redirect(spec.get_absolute_url())
    other = _spec_or_404(request, code, int(against))
    old, new = (other, spec) if other.version < spec.version else (spec, other)
    result = services.diff_spec_versions(old, new)
    return render(
        request,
        "catalog/spec_diff.html",
        {"spec": spec, "old": old, "new": new, "diff": result, "interface": spec.interface},
    )


@login_required
@require_safe
def spec_raw(request, code, version):
    spec = _spec_or_404(request, code, version)
    response = HttpResponse(spec.content, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{code}-v{version}.{"json" if spec.content.lstrip().startswith("{") else "yaml"}"'
    )
    return response


# ---------------------------------------------------------------- data-flow map


@login_required
@require_safe
def flow_map(request):
    return render(
        request,
        "catalog/flow_map.html",
        {
            "teams": Team.objects.only("slug", "name"),
            "statuses": LifecycleStatus.choices,
            "patterns": Pattern.choices,
        },
    )


@login_required
@require_GET
def flow_map_data(request):
    """Systems as nodes, interfaces as edges, filtered by team, status and pattern."""
    interfaces = Interface.objects.for_user(request.user).select_related("owner_team")
    if request.GET.get("team"):
        interfaces = interfaces.filter(owner_team__slug=request.GET["team"])
    if request.GET.get("status"):
        interfaces = interfaces.filter(status=request.GET["status"])
    if request.GET.get("pattern"):
        interfaces = interfaces.filter(pattern=request.GET["pattern"])
    interfaces = (
        interfaces.exclude(status=LifecycleStatus.RETIRED)
        if not request.GET.get("status")
        else interfaces
    )
    edges = list(
        interfaces.values(
            "code",
            "name",
            "status",
            "pattern",
            "source_system_id",
            "target_system_id",
            "owner_team__slug",
        )[:2000]
    )
    system_ids = {e["source_system_id"] for e in edges} | {e["target_system_id"] for e in edges}
    nodes = list(System.objects.filter(pk__in=system_ids).values("id", "name", "kind"))
    return JsonResponse(
        {
            "nodes": nodes,
            "edges": [
                {
                    "code": e["code"],
                    "name": e["name"],
                    "status": e["status"],
                    "pattern": e["pattern"],
                    "team": e["owner_team__slug"],
                    "source": e["source_system_id"],
                    "target": e["target_system_id"],
                    "url": reverse("catalog:interface_detail", args=[e["code"]]),
                }
                for e in edges
            ],
        }
    )
