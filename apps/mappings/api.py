"""REST API for mappings: specs and their versions, rows, mapping tests, lookup tables.

Thin views over apps.mappings.services. Errors:

* a bad request or a refused change (a frozen approved version, a bad row, a bad sheet) is
  400 problem+json naming the field, row or column;
* a change the permission policy refuses is 403;
* a write naming an older ``revision`` of a spec than the stored one is 409 with
  ``current_revision``, ``changed_by`` and ``changed_at`` (someone else saved it first).

Transforming a payload and running a spec's mapping tests are reads that happen to be POSTs:
anyone who may read the spec may call them (they write nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Max, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.functional import cached_property
from django.utils.text import slugify
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response

from apps.accounts import policy
from apps.catalog.api import AuditEntrySerializer
from apps.core import audit
from apps.core.csv_export import csv_response
from apps.core.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE
from apps.core.queries import related_count
from apps.mappings import engine, lookups, schemas, services, sheets, suggest
from apps.mappings.coverage import spec_coverage
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    SpecStatus,
)
from apps.mappings.serializers import (
    AcceptedRowsSerializer,
    AcceptSuggestionsSerializer,
    FieldRuleSerializer,
    LookupEntrySerializer,
    LookupImportResultSerializer,
    LookupImportSerializer,
    LookupTableSerializer,
    MappingSpecListSerializer,
    MappingSpecSerializer,
    MappingTestSerializer,
    RevisionSerializer,
    RowDeletedSerializer,
    RuleRowSerializer,
    SheetImportRequestSerializer,
    SheetImportResultSerializer,
    SuggestionListSerializer,
    TestRunSummarySerializer,
    TransformRequestSerializer,
    TransformResultSerializer,
)

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SOURCE_MEDIA_TYPES = {"json": "application/json", "xml": "application/xml", "csv": "text/csv"}
MAX_ALTERNATIVES = 10


# --------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------


class SignedIn(permissions.BasePermission):
    """For POSTs that only read (transform, run tests): anyone signed in who may read the
    object, viewers included."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


def as_api_errors(exc: DjangoValidationError):
    """A domain ValidationError as DRF error detail (form-wide errors as non_field_errors)."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": exc.messages}
    return {
        ("non_field_errors" if name == "__all__" else name): messages
        for name, messages in exc.message_dict.items()
    }


def spec_conflict_response(request, exc: services.SpecConflict) -> Response:
    """409 problem+json telling who changed the spec, when, and its revision now."""
    body = {
        "type": PROBLEM_TYPE_BASE + "spec-conflict",
        "title": "Conflict",
        "status": 409,
        "detail": str(exc),
        "instance": request.get_full_path(),
        "current_revision": exc.current_revision,
        "changed_by": exc.changed_by,
        "changed_at": exc.changed_at,
    }
    return Response(body, status=409, content_type=PROBLEM_CONTENT_TYPE)


class ServiceErrorsMixin:
    """Turns the services' errors into API answers: SpecConflict 409, ValidationError 400
    (SpecFrozen is one), PermissionDenied 403 with the service's own message."""

    def handle_exception(self, exc):
        if isinstance(exc, services.SpecConflict):
            return spec_conflict_response(self.request, exc)
        if isinstance(exc, DjangoValidationError):
            exc = serializers.ValidationError(as_api_errors(exc))
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        return super().handle_exception(exc)


class HistoryMixin:
    @extend_schema(responses=AuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        """The audit history of this object, newest first."""
        entries = audit.history_for(self.get_object())[:200]
        return Response(AuditEntrySerializer(entries, many=True).data)


def required_revision(data, where: str = "body") -> int:
    """The ``revision`` a write names, or 400."""
    raw = data.get("revision") if hasattr(data, "get") else None
    if raw is None:
        raise serializers.ValidationError(
            {"revision": f"Send the revision of the spec you edited (in the {where})."}
        )
    serializer = RevisionSerializer(data={"revision": raw})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["revision"]


def problems_of(problems) -> list[dict]:
    return [problem.as_dict() for problem in problems]


def compile_problems(spec: MappingSpec, rows=None) -> list[dict]:
    try:
        engine.compile_spec(spec, rows)
    except engine.CompileError as exc:
        return problems_of(exc.problems)
    return []


@dataclass
class RawSource:
    """A request body given as is (XML or CSV text) rather than as JSON."""

    content: bytes
    format: str


class _RawSourceParser(BaseParser):
    format = ""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content = stream.read(limit + 1)
        if limit is not None and len(content) > limit:
            raise RequestDataTooBig("The request body is larger than this server accepts.")
        return RawSource(content, self.format)


class XmlSourceParser(_RawSourceParser):
    media_type = "application/xml"
    format = "xml"


class TextXmlSourceParser(XmlSourceParser):
    media_type = "text/xml"


class CsvSourceParser(_RawSourceParser):
    media_type = "text/csv"
    format = "csv"


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For downloads answered with a plain HttpResponse: ``?format=`` names the file
    format (csv, xlsx), not a renderer; errors are rendered as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------


class MappingSpecFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search in name and description")
    interface = filters.CharFilter(
        field_name="interface__code", lookup_expr="iexact", label="Interface code"
    )
    status = filters.ChoiceFilter(choices=SpecStatus.choices)
    name = filters.CharFilter(field_name="name", lookup_expr="iexact", label="Mapping name")

    class Meta:
        model = MappingSpec
        fields = ["q", "interface", "status", "name"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


REVISION_BODY = {"application/json": RevisionSerializer}


@extend_schema_view(
    update=extend_schema(
        description="Saves the editable fields; the body must carry the `revision` you read.",
        responses={200: MappingSpecSerializer, 409: OpenApiTypes.OBJECT},
    ),
    partial_update=extend_schema(
        description="Saves the fields sent; the body must carry the `revision` you read.",
        responses={200: MappingSpecSerializer, 409: OpenApiTypes.OBJECT},
    ),
    destroy=extend_schema(description="Deletes a version that was never approved."),
)
class MappingSpecViewSet(ServiceErrorsMixin, HistoryMixin, viewsets.ModelViewSet):
    """Mapping specs: one row per version of a mapping of an interface.

    A new spec is a draft (version 1, or the next version of its name); edit it (with the
    ``revision`` you read), submit it for review, approve it (a lead of the interface's
    team or an admin), and start a new draft from an approved version to change it.
    """

    filterset_class = MappingSpecFilter
    search_fields = ["name", "description", "interface__code"]
    ordering_fields = ["name", "version", "status", "updated_at", "created_at"]

    def get_serializer_class(self):
        return MappingSpecListSerializer if self.action == "list" else MappingSpecSerializer

    def get_queryset(self):
        queryset = (
            MappingSpec.objects.for_user(self.request.user)
            .select_related("interface", "approved_by", "updated_by")
            .annotate(rule_count=related_count(FieldRule, "spec"))
            .order_by("interface__code", "name", "-version")
        )
        if self.action == "list":
            return queryset.defer("source_schema", "target_schema")
        if self.action == "retrieve":
            return self.with_rows(queryset)
        return queryset

    @staticmethod
    def with_rows(queryset):
        return queryset.prefetch_related(
            Prefetch("rules", queryset=FieldRule.objects.order_by("position", "id")),
            Prefetch("tests", queryset=MappingTest.objects.only("id", "name", "spec_id")),
        )

    def detail_response(self, spec: MappingSpec, status_code=status.HTTP_200_OK) -> Response:
        """The spec as retrieve shows it, read again after a change."""
        spec = self.with_rows(self.get_queryset()).get(pk=spec.pk)
        return Response(
            MappingSpecSerializer(spec, context=self.get_serializer_context()).data,
            status=status_code,
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        values.pop("revision", None)
        spec = services.create_spec(request.user, MappingSpec(**values))
        return self.detail_response(spec, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        spec = self.get_object()
        serializer = self.get_serializer(
            spec, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        revision = values.pop("revision", None)
        if revision is None:
            raise serializers.ValidationError(
                {"revision": "Send the revision of the spec you edited."}
            )
        for name, value in values.items():
            setattr(spec, name, value)
        services.save_spec(request.user, spec, revision)
        return self.detail_response(spec)

    def perform_destroy(self, instance):
        services.delete_spec(self.request.user, instance)

    # Review ----------------------------------------------------------------------------

    def _status_change(self, request, change) -> Response:
        spec = self.get_object()
        change(request.user, spec, required_revision(request.data))
        return self.detail_response(spec)

    @extend_schema(request=REVISION_BODY, responses={200: MappingSpecSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request, *args, **kwargs):
        """Draft -> in review; refused (400, each problem naming its row) while the spec
        does not compile."""
        return self._status_change(request, services.submit_for_review)

    @extend_schema(request=REVISION_BODY, responses={200: MappingSpecSerializer})
    @action(detail=True, methods=["post"], url_path="return-to-draft")
    def return_to_draft(self, request, *args, **kwargs):
        """In review -> draft (the reviewer wants changes)."""
        return self._status_change(request, services.return_to_draft)

    @extend_schema(request=REVISION_BODY, responses={200: MappingSpecSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, *args, **kwargs):
        """In review -> approved (leads of the interface's team and admins); the version is
        frozen from then on."""
        return self._status_change(request, services.approve_spec)

    @extend_schema(request=None, responses={201: MappingSpecSerializer})
    @action(detail=True, methods=["post"], url_path="new-draft")
    def new_draft(self, request, *args, **kwargs):
        """A new draft version copied from this approved one (rows and tests included)."""
        draft = services.start_new_draft(request.user, self.get_object())
        return self.detail_response(draft, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against",
                int,
                description="Id of the spec to compare with. Default: the version this one "
                "is based on, else the previous version of the same mapping.",
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, *args, **kwargs):
        """What changed from ``against`` (old) to this spec (new): spec fields, and rows
        matched by target path (added, removed, changed with the fields that changed)."""
        spec = self.get_object()
        against = request.query_params.get("against", "").strip()
        if against:
            if not against.isdigit():
                raise serializers.ValidationError(
                    {"against": "Give the id of the mapping spec to compare with."}
                )
            other = MappingSpec.objects.for_user(request.user).filter(pk=int(against)).first()
            if other is None:
                raise serializers.ValidationError(
                    {"against": f"There is no mapping spec with the id {against}."}
                )
        else:
            other = spec.based_on or (
                MappingSpec.objects.filter(
                    interface_id=spec.interface_id, name=spec.name, version__lt=spec.version
                )
                .order_by("-version")
                .first()
            )
            if other is None:
                raise serializers.ValidationError(
                    {
                        "against": f"{spec} is the first version of its mapping; give the id "
                        "of a spec to compare with."
                    }
                )
        data = services.diff_versions(other, spec).as_dict()
        for item in data["spec_fields"]:
            # Registered API specs (source_spec, target_spec) are shown by their ids.
            for side in ("old", "new"):
                item[side] = getattr(item[side], "pk", item[side])
        return Response(data)

    # Reads that are POSTs --------------------------------------------------------------

    def _transform_source(self, request, spec: MappingSpec):
        data = request.data
        if isinstance(data, RawSource):
            if data.format != spec.source_format:
                raise serializers.ValidationError(
                    {
                        "source": f"{spec} reads {spec.get_source_format_display()}; send it "
                        f'as {SOURCE_MEDIA_TYPES[spec.source_format]} or as "source" in a '
                        "JSON body."
                    }
                )
            if not data.content.strip():
                raise serializers.ValidationError({"source": "The request body is empty."})
            return data.content
        if not isinstance(data, dict) or data.get("source") is None:
            raise serializers.ValidationError(
                {
                    "source": 'Send the source payload as "source" in a JSON body (a JSON tree, '
                    "or the document's text), or send an XML or CSV document as the body with "
                    "its content type."
                }
            )
        return data["source"]

    @extend_schema(
        request={
            "application/json": TransformRequestSerializer,
            "application/xml": OpenApiTypes.STR,
            "text/xml": OpenApiTypes.STR,
            "text/csv": OpenApiTypes.STR,
        },
        responses={200: TransformResultSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[SignedIn],
        parser_classes=[JSONParser, XmlSourceParser, TextXmlSourceParser, CsvSourceParser],
    )
    def transform(self, request, *args, **kwargs):
        """Transforms one source payload with this version of the mapping — the reference
        transformation. Any reader may call it (it writes nothing), for any version,
        approved ones included.

        Send ``{"source": …}`` as JSON (a JSON tree, or the text of an XML, CSV or JSON
        document), or for an XML or CSV spec the document itself as the body with the
        content type ``application/xml``, ``text/xml`` or ``text/csv``.

        The answer is 200 even when there are problems: lookup misses, bad dates,
        impossible casts, division by zero and target schema violations each name the row
        and the target path; a spec that does not compile gives no output and its compile
        problems. 400 only when no source is sent."""
        spec = self.get_object()
        result = services.transform(spec, self._transform_source(request, spec))
        return Response(
            {
                "ok": result.ok,
                "output": result.output,
                "rendered": result.rendered,
                "problems": problems_of(result.problems),
            }
        )

    @extend_schema(request=None, responses={200: TestRunSummarySerializer})
    @action(detail=True, methods=["post"], url_path="run-tests", permission_classes=[SignedIn])
    def run_tests(self, request, *args, **kwargs):
        """Runs every mapping test of the spec and reports each (passed, output, problems,
        structural differences from the expected payload) with totals. Any reader may call
        it; it writes nothing.

        A spec that does not compile answers 200 with ``compiles: false``, its compile
        problems (each naming its row) and no outcomes."""
        spec = self.get_object()
        total = spec.tests.count()
        try:
            outcomes = services.run_mapping_tests(spec)
        except engine.CompileError as exc:
            return Response(
                {
                    "compiles": False,
                    "problems": problems_of(exc.problems),
                    "total": total,
                    "passed": 0,
                    "failed": 0,
                    "outcomes": [],
                }
            )
        passed = sum(1 for outcome in outcomes if outcome.passed)
        return Response(
            {
                "compiles": True,
                "problems": [],
                "total": len(outcomes),
                "passed": passed,
                "failed": len(outcomes) - passed,
                "outcomes": [
                    {
                        "id": outcome.test.pk,
                        "name": outcome.test.name,
                        "passed": outcome.passed,
                        "output": outcome.output,
                        "problems": problems_of(outcome.problems),
                        "differences": [d.as_dict() for d in outcome.differences],
                    }
                    for outcome in outcomes
                ],
            }
        )

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def coverage(self, request, *args, **kwargs):
        """How completely the spec covers its schemas and how well its tests exercise it:
        required target fields without a row, unused and unknown source fields, type
        mismatches, uncovered enum values, rows no test exercises, and a summary."""
        return Response(spec_coverage(self.get_object()).as_dict())

    # Suggestions -----------------------------------------------------------------------

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "alternatives",
                int,
                description=f"Suggestions per target field, best first (1 to {MAX_ALTERNATIVES}; default 3).",
            ),
            OpenApiParameter(
                "best_only", bool, description="Only the best suggestion of each target field."
            ),
        ],
        responses={200: SuggestionListSerializer},
    )
    @action(detail=True, methods=["get"])
    def suggestions(self, request, *args, **kwargs):
        """Source fields proposed for each target field the spec does not map yet, from the
        two schemas' names and types, in target schema order with the best first; each
        with its score (0..1), the rule it proposes and the reasons. Accept some with
        ``POST …/suggestions/accept/``; the rest need nothing."""
        spec = self.get_object()
        sides = {}
        for side in ("source", "target"):
            try:
                sides[side] = schemas.side_schema(spec, side)
            except schemas.SchemaProblem as exc:
                raise serializers.ValidationError(
                    {f"{side}_schema": f"The {side} schema cannot be used: {exc}."}
                )
            if sides[side] is None:
                raise serializers.ValidationError(
                    {f"{side}_schema": f"{spec} has no {side} schema to suggest from."}
                )
        raw = request.query_params.get("alternatives", "3")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_ALTERNATIVES:
            raise serializers.ValidationError(
                {"alternatives": f"A whole number from 1 to {MAX_ALTERNATIVES}."}
            )
        found = suggest.suggest(
            sides["source"],
            sides["target"],
            existing_target_paths=list(spec.rules.values_list("target_path", flat=True)),
            limit_per_target=int(raw),
        )
        if request.query_params.get("best_only", "").lower() in ("1", "true", "yes"):
            found = [item for item in found if item.best]
        return Response({"count": len(found), "results": [asdict(item) for item in found]})

    @extend_schema(request=AcceptSuggestionsSerializer, responses={201: AcceptedRowsSerializer})
    @action(detail=True, methods=["post"], url_path="suggestions/accept")
    def accept_suggestions(self, request, *args, **kwargs):
        """Adds a row for each accepted suggestion after the last row, all or none, with
        one revision claim. A target field the spec already maps (or one given twice) is
        refused, naming it."""
        spec = self.get_object()
        serializer = AcceptSuggestionsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rules = services.accept_suggestions(
            request.user,
            spec,
            serializer.validated_data["pairs"],
            serializer.validated_data["revision"],
        )
        return Response(
            {
                "spec_revision": spec.revision,
                "rows": RuleRowSerializer(rules, many=True).data,
            },
            status=status.HTTP_201_CREATED,
        )

    # Mapping sheets --------------------------------------------------------------------

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=["csv", "xlsx"], description="The file format; default csv."
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY,
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FirstRendererNegotiation)
    def sheet(self, request, *args, **kwargs):
        """The spec's rows as a mapping sheet to download (CSV or XLSX), every cell escaped
        against formula injection; importing it gives the same rows back."""
        spec = self.get_object()
        kind = request.query_params.get("format", "csv").lower()
        if kind not in ("csv", "xlsx"):
            raise serializers.ValidationError({"format": "csv or xlsx."})
        rows = services.sheet_rows(spec)
        if kind == "csv":
            response = HttpResponse(sheets.write_csv(rows), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(sheets.write_xlsx(rows), content_type=XLSX_CONTENT_TYPE)
        filename = f"{spec.interface.code}-{slugify(spec.name) or 'mapping'}-v{spec.version}.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(
        request={"multipart/form-data": SheetImportRequestSerializer},
        responses={200: SheetImportResultSerializer},
    )
    @sheet.mapping.post
    def import_sheet(self, request, *args, **kwargs):
        """Replaces every row of a draft or in-review spec with the rows of a mapping sheet
        (multipart ``file`` and ``revision``), in one transaction: a sheet with any problem
        changes nothing and answers 400 listing every problem, each naming its row and
        column. ``dry_run=true`` reads and reports the rows without saving (no revision
        needed)."""
        spec = self.get_object()
        serializer = SheetImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > sheets.MAX_FILE_BYTES:
            raise serializers.ValidationError(
                {"file": f"The file is larger than {sheets.MAX_FILE_BYTES // (1024 * 1024)} MB."}
            )
        content = upload.read()
        try:
            if serializer.validated_data["dry_run"]:
                return Response(self._dry_run(request.user, spec, content, upload.name))
            revision = serializer.validated_data.get("revision")
            if revision is None:
                raise serializers.ValidationError(
                    {"revision": "Send the revision of the spec you edited (or dry_run=true)."}
                )
            result = services.import_sheet(request.user, spec, content, upload.name, revision)
        except sheets.SheetError as exc:
            raise serializers.ValidationError({"file": exc.messages})
        return Response(
            {
                "dry_run": False,
                "rows": result.rows,
                "replaced": result.replaced,
                "ignored_columns": result.ignored_columns,
                "spec_revision": spec.revision,
                "problems": compile_problems(spec),
            }
        )

    def _dry_run(self, user, spec: MappingSpec, content: bytes, filename: str) -> dict:
        policy.require_change(user, spec)
        if spec.is_frozen:
            raise services.SpecFrozen(spec)
        read = sheets.read_sheet(content, filename)
        rules = services.rules_from_sheet(spec, read.rows)
        return {
            "dry_run": True,
            "rows": len(read.rows),
            "replaced": None,
            "ignored_columns": read.ignored_columns,
            "spec_revision": spec.revision,
            "problems": compile_problems(spec, rules),
            "sheet_rows": [asdict(row) for row in read.rows],
        }


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


class SpecIdFilter(filters.FilterSet):
    spec = filters.NumberFilter(field_name="spec_id", label="Mapping spec id")


REVISION_QUERY = OpenApiParameter(
    "revision",
    int,
    description="The spec's revision you read (or send it in the body).",
)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("spec", int, required=True, description="The mapping spec's id.")
        ]
    ),
    create=extend_schema(responses={201: FieldRuleSerializer, 409: OpenApiTypes.OBJECT}),
    update=extend_schema(responses={200: FieldRuleSerializer, 409: OpenApiTypes.OBJECT}),
    partial_update=extend_schema(responses={200: FieldRuleSerializer, 409: OpenApiTypes.OBJECT}),
    destroy=extend_schema(
        parameters=[REVISION_QUERY],
        responses={200: RowDeletedSerializer, 409: OpenApiTypes.OBJECT},
    ),
)
class FieldRuleViewSet(ServiceErrorsMixin, viewsets.ModelViewSet):
    """Rows of a mapping spec. Writes carry the spec's ``revision`` (not the row's: every
    row change takes the spec's next revision) and answer with the spec's new one as
    ``spec_revision``. A row with a bad path, kind or params is refused field by field."""

    serializer_class = FieldRuleSerializer
    filterset_class = SpecIdFilter
    search_fields = ["target_path"]
    ordering_fields = ["position", "target_path"]

    def get_queryset(self):
        queryset = FieldRule.objects.for_user(self.request.user)
        if self.action == "list":
            # One spec's revision for every row, without reading the spec (and its schemas)
            # once per row.
            queryset = queryset.annotate(spec_revision=F("spec__revision"))
        else:
            queryset = queryset.select_related("spec__interface")
        return queryset.order_by("spec_id", "position", "id")

    def list(self, request, *args, **kwargs):
        if not request.query_params.get("spec"):
            raise serializers.ValidationError({"spec": "Give the id of a mapping spec."})
        return super().list(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        revision = values.pop("revision")
        rule = FieldRule(**values)
        if "position" not in values:
            last = rule.spec.rules.aggregate(last=Max("position"))["last"] or 0
            rule.position = last + 1
        services.save_rule(request.user, rule, revision)
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        rule = self.get_object()
        serializer = self.get_serializer(
            rule, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        revision = values.pop("revision")
        for name, value in values.items():
            setattr(rule, name, value)
        services.save_rule(request.user, rule, revision)
        return Response(self.get_serializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        """Deletes a row; send the spec's ``revision`` as a query parameter or in the body.
        Answers with the spec's new revision."""
        rule = self.get_object()
        source = request.query_params if "revision" in request.query_params else request.data
        revision = required_revision(source, "query or the body")
        rule_id = rule.pk
        services.delete_rule(request.user, rule, revision)
        return Response({"id": rule_id, "spec_revision": rule.spec.revision})


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


class MappingTestFilter(filters.FilterSet):
    spec = filters.NumberFilter(field_name="spec_id", label="Mapping spec id")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search in names")


class MappingTestViewSet(ServiceErrorsMixin, viewsets.ModelViewSet):
    """Sample sources and the target payloads specs must make of them. Tests of an
    approved spec are frozen with it (400)."""

    serializer_class = MappingTestSerializer
    filterset_class = MappingTestFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        queryset = MappingTest.objects.for_user(self.request.user)
        if self.action != "list":
            # Writes check the policy, which reads the spec's interface.
            queryset = queryset.select_related("spec__interface")
        return queryset.order_by("spec_id", "name")

    def perform_create(self, serializer):
        test = MappingTest(**serializer.validated_data)
        serializer.instance = services.save_mapping_test(self.request.user, test)

    def perform_update(self, serializer):
        test = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(test, name, value)
        serializer.instance = services.save_mapping_test(self.request.user, test)

    def perform_destroy(self, instance):
        services.delete_mapping_test(self.request.user, instance)


# --------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------


class LookupTableFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search in name and description")
    owner_team = filters.CharFilter(field_name="owner_team__slug", label="Owner team's slug")

    class Meta:
        model = LookupTable
        fields = ["q", "owner_team"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class LookupTableViewSet(ServiceErrorsMixin, HistoryMixin, viewsets.ModelViewSet):
    """Lookup tables that rows read by name. Team tables are changed by the team's
    writers, estate-wide tables (no owner team) by admins; a table that rows read is not
    deleted (400 naming the specs)."""

    serializer_class = LookupTableSerializer
    filterset_class = LookupTableFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at"]

    def get_queryset(self):
        return (
            LookupTable.objects.for_user(self.request.user)
            .select_related("owner_team")
            .annotate(entry_count=related_count(LookupEntry, "table"))
            .order_by("name")
        )

    def _save(self, serializer, table: LookupTable):
        for name, value in serializer.validated_data.items():
            setattr(table, name, value)
        table = services.save_lookup_table(self.request.user, table)
        serializer.instance = self.get_queryset().get(pk=table.pk)

    def perform_create(self, serializer):
        self._save(serializer, LookupTable())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        services.delete_lookup_table(self.request.user, instance)

    @extend_schema(
        request={"multipart/form-data": LookupImportSerializer},
        responses={200: LookupImportResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="import")
    def import_entries(self, request, *args, **kwargs):
        """Replaces every entry with those of a CSV or XLSX file (a header row naming the
        ``key`` and ``value`` columns). The file is checked whole first: any problem answers
        400 listing every one by line or row, and nothing changes."""
        table = self.get_object()
        serializer = LookupImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > lookups.MAX_IMPORT_BYTES:
            raise serializers.ValidationError(
                {"file": f"The file is larger than {lookups.MAX_IMPORT_BYTES // (1024 * 1024)} MB."}
            )
        try:
            count = lookups.import_lookup_file(
                table, upload.read(), upload.name, actor=request.user
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"file": exc.messages})
        return Response({"entries": count})

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def export(self, request, *args, **kwargs):
        """The entries as CSV (key, value), cells escaped against formula injection."""
        table = self.get_object()
        rows = table.entries.order_by("key").values_list("key", "value").iterator()
        return csv_response(
            f"{slugify(table.name) or 'lookup'}.csv",
            [("key", lambda row: row[0]), ("value", lambda row: row[1])],
            rows,
        )


class LookupEntryFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search in keys and values")

    def search(self, queryset, name, value):
        return queryset.filter(Q(key__icontains=value) | Q(value__icontains=value))


TABLE_ID = OpenApiParameter("table_id", int, OpenApiParameter.PATH)
ENTRY_ID = OpenApiParameter("entry_id", int, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(parameters=[TABLE_ID]),
    create=extend_schema(parameters=[TABLE_ID]),
    retrieve=extend_schema(parameters=[TABLE_ID, ENTRY_ID]),
    update=extend_schema(parameters=[TABLE_ID, ENTRY_ID]),
    partial_update=extend_schema(parameters=[TABLE_ID, ENTRY_ID]),
    destroy=extend_schema(parameters=[TABLE_ID, ENTRY_ID]),
)
class LookupEntryViewSet(ServiceErrorsMixin, viewsets.ModelViewSet):
    """The keys and values of one lookup table (``lookup-tables/{table_id}/entries/``)."""

    serializer_class = LookupEntrySerializer
    filterset_class = LookupEntryFilter
    search_fields = ["key", "value"]
    ordering_fields = ["key", "value"]
    lookup_url_kwarg = "entry_id"

    @cached_property
    def table(self) -> LookupTable:
        return get_object_or_404(
            LookupTable.objects.for_user(self.request.user), pk=self.kwargs["table_id"]
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LookupEntry.objects.none()
        queryset = LookupEntry.objects.filter(table=self.table)
        if self.action != "list":
            queryset = queryset.select_related("table")  # the policy reads its owner team
        return queryset.order_by("key", "id")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["table"] = self.table
        return context

    def perform_create(self, serializer):
        entry = LookupEntry(table=self.table, **serializer.validated_data)
        serializer.instance = services.save_lookup_entry(self.request.user, entry)

    def perform_update(self, serializer):
        entry = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(entry, name, value)
        serializer.instance = services.save_lookup_entry(self.request.user, entry)

    def perform_destroy(self, instance):
        services.delete_lookup_entry(self.request.user, instance)
