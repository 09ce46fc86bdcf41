"""REST API for reconciliation: data sources, jobs and their runs.

Thin views over :mod:`apps.reconciliation.services`. Everyone signed in reads; a source's
owner team (a job's or run's interface team) writes; admins write everything; viewers
write nothing. Errors:

* bad input is 400 problem+json naming the field, and changes nothing;
* a change the permission policy refuses is 403;
* starting a run while one of the same job is queued or running is 409 naming it (``run``).

Credentials are write-only: no response, history entry or error shows a value; a source
shows the names of the fields that are set (``credential_fields_set``).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import OuterRef, Q, Subquery
from django.http import FileResponse, Http404
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from apps.accounts import policy
from apps.accounts.models import Team
from apps.catalog.api import AuditEntrySerializer
from apps.catalog.models import Endpoint, Interface
from apps.core import audit
from apps.core.models import FINISHED_JOB_STATUSES, JobStatus
from apps.core.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE
from apps.mappings.models import MappingSpec
from apps.reconciliation import compare, readers, runner, services
from apps.reconciliation.models import (
    DataSource,
    ReconciliationJob,
    ReconciliationRun,
    SourceKind,
)
from apps.testing.api import DefectSerializer
from apps.testing.models import Phase, Severity

MAX_WAIT_SECONDS = 120
WAIT_POLL_SECONDS = 0.5
TREND_DEFAULT_LIMIT = 30
TREND_MAX_LIMIT = 200
SIDES = ("source", "target")


# --------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------


def as_api_errors(exc: DjangoValidationError):
    """A domain ValidationError as DRF error detail (form-wide errors as non_field_errors)."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": exc.messages}
    return {
        ("non_field_errors" if name == "__all__" else name): messages
        for name, messages in exc.message_dict.items()
    }


class ServiceErrorsMixin:
    """The services' errors as API answers: ValidationError 400 (field by field),
    PermissionDenied 403 with the service's own message."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoValidationError):
            exc = serializers.ValidationError(as_api_errors(exc))
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        return super().handle_exception(exc)


class HistoryMixin:
    @extend_schema(responses=AuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        """The audit history of this object, newest first (credentials only as "changed")."""
        entries = audit.history_for(self.get_object())[:200]
        return Response(AuditEntrySerializer(entries, many=True).data)


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For a download answered with a FileResponse: any Accept header gets the file, and
    errors (404) are rendered as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def sentence(message: str) -> str:
    """A reader's message ("unknown option x") as a sentence ("Unknown option x.")."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


# --------------------------------------------------------------------------------------
# Data sources
# --------------------------------------------------------------------------------------


class DataSourceSerializer(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=Endpoint.objects.select_related("interface"),
        allow_null=True,
        required=False,
        help_text="HTTP sources: the id of the registered endpoint they read through.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True, trim_whitespace=False),
        write_only=True,
        required=False,
        help_text='Write-only. PostgreSQL and MySQL sources: {"password": "…"}. Sent, it '
        "replaces the stored credentials ({} keeps none); left out, they stay as they are. "
        "Never shown again: see credential_fields_set.",
    )
    credential_fields_set = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The names of the credential fields that hold a value.",
    )
    file = serializers.FileField(
        write_only=True,
        required=False,
        allow_empty_file=False,
        help_text="File sources: the CSV or XLSX file (multipart/form-data). Sent again, it "
        "replaces the stored file.",
    )

    class Meta:
        model = DataSource
        fields = [
            "id",
            "name",
            "kind",
            "owner_team",
            "description",
            "dsn",
            "endpoint",
            "credentials",
            "credential_fields_set",
            "file",
            "file_name",
            "file_sha256",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["file_name", "file_sha256"]
        # The unique name per team is checked in validate() with a message naming the field.
        validators = []

    def validate_file(self, upload):
        try:
            self.checked_file = services.check_upload(upload)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return upload

    def validate(self, attrs):
        instance = self.instance
        team = attrs.get("owner_team", getattr(instance, "owner_team", None))
        name = attrs.get("name", getattr(instance, "name", None))
        if team is not None and name:
            clash = DataSource.objects.filter(owner_team=team, name=name)
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {"name": f"{team} already has a data source named {name}."}
                )
        kind = attrs.get("kind", getattr(instance, "kind", None))
        if attrs.get("file") is not None and kind != SourceKind.FILE:
            raise serializers.ValidationError({"file": "Only file sources take a file."})
        return attrs


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(
        help_text="What was reached (e.g. the server version and database), or what failed."
    )


class DataSourceFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search in name, description and DSN")
    kind = filters.ChoiceFilter(choices=SourceKind.choices)
    owner_team = filters.CharFilter(field_name="owner_team__slug", label="Owner team's slug")

    class Meta:
        model = DataSource
        fields = ["q", "kind", "owner_team"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(description__icontains=value) | Q(dsn__icontains=value)
        )


@extend_schema_view(
    create=extend_schema(
        description="Adds a data source: JSON, or multipart/form-data with the `file` of a "
        "file source (CSV or XLSX; its name and SHA-256 are kept)."
    ),
    destroy=extend_schema(description="Deletes a data source that no job reads (else 400)."),
)
class DataSourceViewSet(ServiceErrorsMixin, HistoryMixin, viewsets.ModelViewSet):
    """Where reconciliation jobs read: SQL databases (DSN without password; the password
    in the write-only ``credentials``), HTTP resources through a registered endpoint, and
    uploaded CSV or XLSX files. ``POST …/{id}/test-connection/`` checks one."""

    serializer_class = DataSourceSerializer
    filterset_class = DataSourceFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "kind", "created_at", "updated_at"]

    def get_queryset(self):
        return (
            DataSource.objects.for_user(self.request.user)
            .select_related("owner_team")
            .order_by("name", "id")
        )

    def _save(self, serializer, source: DataSource):
        values = dict(serializer.validated_data)
        credentials = values.pop("credentials", None)
        upload = values.pop("file", None)
        for name, value in values.items():
            setattr(source, name, value)
        if upload is not None:
            services.attach_file(source, serializer.checked_file)
            problem = readers.dataset_problems(source, "", {})
            if problem:
                raise serializers.ValidationError({"file": sentence(problem)})
        serializer.instance = services.save_data_source(self.request.user, source, credentials)

    def perform_create(self, serializer):
        self._save(serializer, DataSource())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        services.delete_data_source(self.request.user, instance)

    @extend_schema(request=None, responses=ConnectionCheckSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection", url_name="test-connection")
    def check_connection(self, request, *args, **kwargs):
        """Connects to the source (or opens its file) and says what it found. A failure is
        an answer too: 200 with ``ok: false`` and what failed (never a credential)."""
        source = self.get_object()
        try:
            message = services.test_connection(request.user, source)
        except readers.ReadError as exc:
            return Response({"ok": False, "message": exc.message})
        return Response({"ok": True, "message": message})


# --------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------


class ColumnRuleSerializer(serializers.Serializer):
    """For the schema: how one column is normalised before comparing
    (apps.reconciliation.compare.ColumnRule). Every option may be left out."""

    type = serializers.ChoiceField(
        choices=compare.COLUMN_TYPES,
        required=False,
        help_text="text (default): compared as text. number, integer: by value (10.10 "
        "equals 10.1). date: ISO dates; a date-time counts by its UTC date. datetime: "
        "instants, offsets applied, no offset read as UTC. boolean: true/false, t/f, "
        "yes/no, y/n, 1/0. Typed values are read without surrounding whitespace and an "
        "empty text is NULL; a value that is not of its type stops the run naming it.",
    )
    trim = serializers.BooleanField(
        required=False, help_text="Text: ignore leading whitespace as well as trailing."
    )
    keep_trailing_whitespace = serializers.BooleanField(
        required=False, help_text="Text: trailing whitespace counts (ignored by default)."
    )
    case_insensitive = serializers.BooleanField(
        required=False, help_text="Text: compare in lower case."
    )
    empty_is_null = serializers.BooleanField(
        required=False, help_text="An empty text (after the whitespace rules) is NULL."
    )
    places = serializers.IntegerField(
        min_value=0,
        max_value=12,
        required=False,
        help_text="number, integer: round both sides to this many places first (half away "
        "from zero).",
    )
    tolerance = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        min_value=0,
        required=False,
        help_text="number, integer: accept a difference up to this amount (not on keys).",
    )


@extend_schema_field(
    serializers.DictField(
        child=ColumnRuleSerializer(),
        help_text="Per column (a source column name of the key or compared columns): how "
        "values are normalised before they are compared, on both sides alike. NULL equals "
        "NULL only. Unknown options are refused.",
    )
)
class NormalisationField(serializers.JSONField):
    """The normalisation as sent; its options are checked by the comparison plan, whose
    messages name the column and the option."""


class LastRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    accuracy = serializers.DecimalField(
        max_digits=7, decimal_places=3, allow_null=True, coerce_to_string=False
    )
    finished_at = serializers.DateTimeField(allow_null=True)


class ReconciliationJobSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    source = serializers.PrimaryKeyRelatedField(
        queryset=DataSource.objects.all(), help_text="The id of the source data source."
    )
    target = serializers.PrimaryKeyRelatedField(
        queryset=DataSource.objects.all(), help_text="The id of the target data source."
    )
    source_options = serializers.DictField(
        required=False,
        help_text='HTTP sources: records_path (JSONPath, e.g. "$.items"), pagination '
        '(e.g. {"style": "page"}), max_pages. File sources: delimiter. SQL sources: none.',
    )
    target_options = serializers.DictField(
        required=False, help_text="As source_options, for the target side."
    )
    key_columns = serializers.ListField(
        child=serializers.CharField(max_length=200),
        help_text="Source columns that identify a record (at least one).",
    )
    compare_columns = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Source columns compared besides the key.",
    )
    column_mapping = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Source column -> target column where the names differ (over the copy "
        "rows of mapping_spec).",
    )
    mapping_spec = serializers.PrimaryKeyRelatedField(
        queryset=MappingSpec.objects.all(),
        allow_null=True,
        required=False,
        help_text="An approved mapping spec of the interface whose copy rows give the "
        "column mapping.",
    )
    normalisation = NormalisationField(required=False)
    accuracy_target = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=0,
        max_value=100,
        coerce_to_string=False,
        required=False,
        help_text="Percent of source rows that must match (default 99.5).",
    )
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationJob
        fields = [
            "id",
            "interface",
            "name",
            "description",
            "source",
            "source_dataset",
            "source_options",
            "target",
            "target_dataset",
            "target_options",
            "key_columns",
            "compare_columns",
            "column_mapping",
            "mapping_spec",
            "normalisation",
            "window",
            "window_source_column",
            "window_target_column",
            "strategy",
            "accuracy_target",
            "schedule_cron",
            "next_run_at",
            "last_run",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["next_run_at"]
        extra_kwargs = {
            "source_dataset": {
                "help_text": "SQL: a table name or one read-only SELECT. HTTP: a path below "
                "the endpoint's base URL. File: empty."
            },
            "target_dataset": {"help_text": "As source_dataset, for the target side."},
            "window": {"help_text": "Compare only records changed in this window."},
            "schedule_cron": {"help_text": "Five-field cron in UTC; empty: no schedule."},
        }
        # The unique name per interface is checked in validate() naming the field.
        validators = []

    def validate_key_columns(self, value):
        if not value:
            raise serializers.ValidationError("Name at least one key column.")
        return value

    def validate(self, attrs):
        instance = self.instance
        interface = attrs.get("interface", getattr(instance, "interface", None))
        name = attrs.get("name", getattr(instance, "name", None))
        if interface is not None and name:
            clash = ReconciliationJob.objects.filter(interface=interface, name=name)
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {"name": f"{interface.code} already has a reconciliation job named {name}."}
                )
        return attrs

    @extend_schema_field(LastRunSerializer(allow_null=True))
    def get_last_run(self, job):
        run_id = getattr(job, "last_run_id", None)
        if run_id is None:
            return None
        return LastRunSerializer(
            {
                "id": run_id,
                "status": job.last_run_status,
                "accuracy": job.last_run_accuracy,
                "finished_at": job.last_run_finished_at,
            }
        ).data


class WindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class ReconciliationRunSerializer(serializers.ModelSerializer):
    job_name = serializers.CharField(source="job.name", read_only=True)
    interface = serializers.CharField(source="job.interface.code", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    accuracy = serializers.DecimalField(
        max_digits=7,
        decimal_places=3,
        allow_null=True,
        read_only=True,
        coerce_to_string=False,
        help_text="Percent of source rows matched (100 when both sides are empty); null "
        "until compared.",
    )
    accuracy_target = serializers.DecimalField(
        max_digits=6, decimal_places=3, read_only=True, coerce_to_string=False
    )
    column_mismatches = serializers.DictField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Per compared column: the mismatched rows where it differs.",
    )
    samples = serializers.JSONField(
        read_only=True,
        help_text="Up to 20 rows per kind of difference (mismatched, missing_in_target, "
        "unexpected_in_target, duplicate): key, source and target values.",
    )
    window = serializers.SerializerMethodField(
        help_text="The window of changed records compared, or null for all records."
    )
    report_url = serializers.SerializerMethodField(
        help_text="The full difference report (CSV), once the comparison ended."
    )

    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "job",
            "job_name",
            "interface",
            "status",
            "scheduled",
            "requested_by",
            "strategy",
            "window",
            "progress_done",
            "progress_total",
            "progress_note",
            "source_rows",
            "target_rows",
            "matched",
            "mismatched",
            "missing_in_target",
            "unexpected_in_target",
            "duplicates",
            "duplicate_source_keys",
            "duplicate_source_rows",
            "duplicate_target_keys",
            "duplicate_target_rows",
            "column_mismatches",
            "accuracy",
            "accuracy_target",
            "met_target",
            "samples",
            "error",
            "report_url",
            "defect",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(WindowSerializer(allow_null=True))
    def get_window(self, run):
        if run.window_start is None and run.window_end is None:
            return None
        return WindowSerializer({"start": run.window_start, "end": run.window_end}).data

    def get_report_url(self, run) -> str | None:
        if not run.report_file:
            return None
        path = reverse("api:reconciliation-run-report", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ReconciliationRunListSerializer(ReconciliationRunSerializer):
    """Runs in a list: everything but the samples."""

    class Meta(ReconciliationRunSerializer.Meta):
        fields = [name for name in ReconciliationRunSerializer.Meta.fields if name != "samples"]
        read_only_fields = fields


class TrendQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=TREND_MAX_LIMIT,
        default=TREND_DEFAULT_LIMIT,
        help_text="The last this many finished runs.",
    )


class TrendPointSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="pk")
    accuracy = serializers.DecimalField(
        max_digits=7,
        decimal_places=3,
        allow_null=True,
        coerce_to_string=False,
        help_text="Percent of source rows matched; null when the run ended before comparing.",
    )
    accuracy_target = serializers.DecimalField(
        max_digits=6, decimal_places=3, coerce_to_string=False
    )

    class Meta:
        model = ReconciliationRun
        fields = [
            "run",
            "status",
            "scheduled",
            "accuracy",
            "accuracy_target",
            "met_target",
            "source_rows",
            "target_rows",
            "matched",
            "mismatched",
            "missing_in_target",
            "unexpected_in_target",
            "duplicates",
            "created_at",
            "started_at",
            "finished_at",
        ]


# The columns a trend point reads: TrendPointSerializer's fields ("run" is the id).
TREND_FIELDS = ["id" if name == "run" else name for name in TrendPointSerializer.Meta.fields]


class ReconciliationJobFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search in name and description")
    interface = filters.CharFilter(
        field_name="interface__code", lookup_expr="iexact", label="Interface code"
    )

    class Meta:
        model = ReconciliationJob
        fields = ["q", "interface"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


def conflict_response(request, exc: services.RunAlreadyActive) -> Response:
    """409 problem+json naming the active run (``run``), with its address."""
    url = request.build_absolute_uri(reverse("api:reconciliation-run-detail", args=[exc.run.pk]))
    body = {
        "type": PROBLEM_TYPE_BASE + "run-already-active",
        "title": "Conflict",
        "status": 409,
        "detail": str(exc),
        "instance": url,
        "run": exc.run.pk,
    }
    return Response(body, status=409, content_type=PROBLEM_CONTENT_TYPE, headers={"Location": url})


@extend_schema_view(
    destroy=extend_schema(
        description="Deletes a job and its runs; refused (400) while a run is active."
    ),
)
class ReconciliationJobViewSet(ServiceErrorsMixin, HistoryMixin, viewsets.ModelViewSet):
    """Comparisons of a source dataset with a target dataset of an interface, by key.
    ``POST …/{id}/run/`` starts a run; ``GET …/{id}/trend/`` shows the last runs."""

    serializer_class = ReconciliationJobSerializer
    filterset_class = ReconciliationJobFilter
    search_fields = ["name", "description", "interface__code"]
    ordering_fields = ["name", "created_at", "updated_at", "next_run_at"]

    def get_queryset(self):
        last = ReconciliationRun.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-pk")
        return (
            ReconciliationJob.objects.for_user(self.request.user)
            .select_related("interface")
            .annotate(
                last_run_id=Subquery(last.values("pk")[:1]),
                last_run_status=Subquery(last.values("status")[:1]),
                last_run_accuracy=Subquery(last.values("accuracy")[:1]),
                last_run_finished_at=Subquery(last.values("finished_at")[:1]),
            )
            .order_by("interface__code", "name", "id")
        )

    def _save(self, serializer, job: ReconciliationJob):
        for name, value in serializer.validated_data.items():
            setattr(job, name, value)
        creating = job.pk is None
        team_id = job.interface.owner_team_id
        if creating and not policy.can_create_for_team(self.request.user, team_id):
            raise exceptions.PermissionDenied(
                "You may only add reconciliation jobs to your own teams' interfaces."
            )
        if not creating and not policy.can_change(self.request.user, job):
            raise exceptions.PermissionDenied(
                "You may only give reconciliation jobs to your own teams' interfaces."
            )
        job = services.save_job(self.request.user, job)
        serializer.instance = self.get_queryset().get(pk=job.pk)

    def perform_create(self, serializer):
        self._save(serializer, ReconciliationJob())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        services.delete_job(self.request.user, instance)

    @extend_schema(
        request=None,
        responses={
            201: ReconciliationRunSerializer,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A run of this job is queued or running: problem+json with its "
                "id as `run` and its address in `Location`.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request, *args, **kwargs):
        """Queues a run of this job (201). A job runs once at a time: while a run is queued
        or running, 409 names it."""
        job = self.get_object()
        try:
            run = services.start_run(request.user, job)
        except services.RunAlreadyActive as exc:
            return conflict_response(request, exc)
        run = ReconciliationRunViewSet.base_queryset(request.user).get(pk=run.pk)
        return Response(
            ReconciliationRunSerializer(run, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(parameters=[TrendQuerySerializer], responses=TrendPointSerializer(many=True))
    @action(detail=True, methods=["get"])
    def trend(self, request, *args, **kwargs):
        """The last finished runs (succeeded or failed), oldest first: accuracy, counts and
        times, for a chart."""
        job = self.get_object()
        query = TrendQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        runs = list(
            ReconciliationRun.objects.filter(
                job=job, status__in=[s for s in FINISHED_JOB_STATUSES if s != JobStatus.CANCELLED]
            )
            .only(*TREND_FIELDS)
            .order_by("-created_at", "-pk")[: query.validated_data["limit"]]
        )
        runs.reverse()
        return Response(TrendPointSerializer(runs, many=True).data)


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


class RunDefectSerializer(serializers.Serializer):
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.HIGH)
    # Named as on defects (DefectSerializer, POST /defects/from-result/).
    phase_found = serializers.ChoiceField(
        choices=Phase.choices, default=Phase.SIT, help_text="The phase the defect was found in."
    )


class ReconciliationRunFilter(filters.FilterSet):
    job = filters.NumberFilter(field_name="job_id", label="Reconciliation job id")
    status = filters.ChoiceFilter(choices=JobStatus.choices)
    interface = filters.CharFilter(
        field_name="job__interface__code", lookup_expr="iexact", label="Interface code"
    )

    class Meta:
        model = ReconciliationRun
        fields = ["job", "status", "interface"]


class ReconciliationRunViewSet(
    ServiceErrorsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Runs of reconciliation jobs (start one with ``POST /reconciliation-jobs/{id}/run/``):
    follow one, wait for it, cancel it, download its difference report, raise a defect
    from a run below its accuracy target."""

    filterset_class = ReconciliationRunFilter
    ordering_fields = ["created_at", "finished_at", "accuracy"]

    @staticmethod
    def base_queryset(user):
        return (
            ReconciliationRun.objects.for_user(user)
            .select_related("job__interface", "requested_by")
            .order_by("-created_at", "-pk")
        )

    def get_queryset(self):
        queryset = self.base_queryset(self.request.user)
        if self.action == "list":
            queryset = queryset.defer("samples")
        return queryset

    def get_serializer_class(self):
        if self.action == "list":
            return ReconciliationRunListSerializer
        return ReconciliationRunSerializer

    def _answer(self, run: ReconciliationRun, status_code=status.HTTP_200_OK) -> Response:
        return Response(
            ReconciliationRunSerializer(run, context=self.get_serializer_context()).data,
            status=status_code,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "timeout",
                int,
                description=f"Seconds to wait, at most {MAX_WAIT_SECONDS} (default 60).",
            )
        ],
        responses=ReconciliationRunSerializer,
    )
    @action(detail=True, methods=["get"])
    def wait(self, request, *args, **kwargs):
        """Answers when the run has finished, or after ``timeout`` seconds with its progress
        so far."""
        run = self.get_object()
        try:
            timeout = min(max(int(request.query_params.get("timeout", 60)), 0), MAX_WAIT_SECONDS)
        except ValueError:
            raise serializers.ValidationError({"timeout": "Seconds, as a whole number."})
        deadline = time.monotonic() + timeout
        while run.is_active and time.monotonic() < deadline:
            pause(WAIT_POLL_SECONDS)
            run.refresh_from_db()
        return self._answer(run)

    @extend_schema(request=None, responses=ReconciliationRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        """Cancels a queued run at once, a running one at its next heartbeat; a finished
        run stays as it is."""
        run = self.get_object()
        services.cancel_run(request.user, run)
        run.refresh_from_db()
        return self._answer(run)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="kind, the key columns, column, source value, target value: one "
                "line per difference.",
            ),
            404: OpenApiResponse(description="The run has no report (yet)."),
        }
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FirstRendererNegotiation)
    def report(self, request, *args, **kwargs):
        """The full difference report of the run as CSV, streamed (404 until the comparison
        has ended, and for runs that ended before comparing)."""
        run = self.get_object()
        path = report_path(run)
        if path is None:
            raise Http404
        response = FileResponse(
            open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=f"{run.job.interface.code}-reconciliation-run-{run.pk}.csv",
            content_type="text/csv; charset=utf-8",
        )
        return response

    @extend_schema(request=RunDefectSerializer, responses={201: DefectSerializer})
    @action(detail=True, methods=["post"])
    def defect(self, request, *args, **kwargs):
        """Raises a defect from a run below its accuracy target, prefilled with its figures
        (400 when the run met its target, or a defect was raised from it already)."""
        run = self.get_object()
        serializer = RunDefectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        defect = services.raise_defect(
            request.user,
            run,
            severity=serializer.validated_data["severity"],
            phase=serializer.validated_data["phase_found"],
        )
        return Response(DefectSerializer(defect).data, status=status.HTTP_201_CREATED)


def pause(seconds: float) -> None:
    """The wait between two looks at a run (a seam for tests)."""
    time.sleep(seconds)


def report_path(run: ReconciliationRun) -> Path | None:
    """The run's report file, when it exists below the reports directory."""
    if not run.report_file:
        return None
    base = runner.report_dir().resolve()
    path = (Path(settings.VAR_DIR) / run.report_file).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path
