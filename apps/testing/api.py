"""REST API for test cases and test runs."""

import time

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import policy
from apps.catalog.models import Environment, Interface
from apps.core import audit, jobs
from apps.core.problems import problem_response
from apps.testing import compliance, defects, evidence, generate, services
from apps.testing.case_json import EDITABLE_FIELDS, JSON_SHAPES, shape_problem
from apps.testing.junit import run_as_junit
from apps.testing.models import Defect, Phase, Severity, TestCase, TestResult, TestRun

MAX_WAIT_SECONDS = 120


class TestCaseSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())

    class Meta:
        model = TestCase
        fields = [
            "id",
            "interface",
            *EDITABLE_FIELDS,
            "scripts",
            "created_at",
            "updated_at",
        ]
        # Postman scripts come only from an import and are kept as text, never executed.
        read_only_fields = ["scripts"]

    def validate(self, attrs):
        problems = {
            name: problem
            for name, value in attrs.items()
            if name in JSON_SHAPES and (problem := shape_problem(name, value))
        }
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class InterfaceOwnedViewSet(viewsets.ModelViewSet):
    """Writes of objects that belong to an interface: its owner team decides, the audit records."""

    owned_object = "objects"

    def save_instance(self, instance):
        raise NotImplementedError

    def _save(self, serializer, instance):
        interface = serializer.validated_data.get("interface") or instance.interface
        if not policy.can_create_for_team(self.request.user, interface.owner_team_id):
            raise exceptions.PermissionDenied(
                f"You may only write {self.owned_object} of your own teams' interfaces."
            )
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        try:
            serializer.instance = self.save_instance(instance)
        except ValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            )

    def perform_create(self, serializer):
        self._save(serializer, self.get_queryset().model())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        audit.delete_with_audit(self.request.user, instance)


def run_conflict(request, exc: services.RunAlreadyActive):
    """409 naming the active run, with its address."""
    url = request.build_absolute_uri(f"/api/v1/test-runs/{exc.run.pk}/")
    return problem_response(
        409, str(exc), type_slug="run-already-active", instance=url, headers={"Location": url}
    )


class GenerateSerializer(serializers.Serializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    apply = serializers.BooleanField(default=False, help_text="False: only show the plan.")


class TestCaseViewSet(InterfaceOwnedViewSet):
    serializer_class = TestCaseSerializer
    search_fields = ["name", "path", "interface__code"]
    ordering_fields = ["name", "created_at", "interface__code"]
    filterset_fields = {"interface__code": ["exact"], "kind": ["exact"], "is_active": ["exact"]}

    def get_queryset(self):
        return (
            TestCase.objects.for_user(self.request.user)
            .select_related("interface")
            .order_by("interface__code", "name")
        )

    owned_object = "test cases"

    def save_instance(self, instance):
        return services.save_case(self.request.user, instance)

    @extend_schema(request=GenerateSerializer, responses={200: dict})
    @action(detail=False, methods=["post"])
    def generate(self, request):
        """Plans contract cases from the interface's current spec; applies them with ``"apply": true``."""
        serializer = GenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interface = serializer.validated_data["interface"]
        if not policy.can_change(request.user, interface):
            raise exceptions.PermissionDenied(
                "You may only write test cases of your own teams' interfaces."
            )
        spec = interface.specs.order_by("-version").first()
        if spec is None or not spec.kind.startswith("openapi"):
            raise serializers.ValidationError(
                {"interface": f"{interface.code} has no OpenAPI spec to generate from."}
            )
        apply = serializer.validated_data["apply"]
        plan = (
            generate.apply_plan(request.user, interface, spec)
            if apply
            else generate.plan_for(interface, spec)
        )
        return Response(
            {
                "spec_version": spec.version,
                "applied": apply,
                "add": plan.add,
                "change": plan.change,
                "drop": plan.drop,
                "unchanged": plan.unchanged,
            }
        )


class TestResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = TestResult
        fields = [
            "id",
            "case",
            "case_name",
            "outcome",
            "checks",
            "request",
            "response",
            "elapsed_ms",
            "correlation_id",
            "error",
            "created_at",
        ]


class TestRunSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all()
    )
    case_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    spec_version = serializers.IntegerField(source="spec.version", read_only=True, default=None)

    class Meta:
        model = TestRun
        fields = [
            "id",
            "interface",
            "environment",
            "tag",
            "case_ids",
            "status",
            "progress_done",
            "progress_total",
            "progress_note",
            "passed",
            "failed",
            "errored",
            "spec_version",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = [
            "status",
            "progress_done",
            "progress_total",
            "progress_note",
            "passed",
            "failed",
            "errored",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class TestRunViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Start a run (202), follow it, wait for it, read its results, export JUnit XML, cancel it."""

    serializer_class = TestRunSerializer
    ordering_fields = ["created_at"]
    filterset_fields = {
        "interface__code": ["exact"],
        "environment__slug": ["exact"],
        "status": ["exact"],
    }

    def get_queryset(self):
        return (
            TestRun.objects.for_user(self.request.user)
            .select_related("interface", "environment", "spec")
            .order_by("-created_at")
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not policy.can_change(request.user, data["interface"]):
            raise exceptions.PermissionDenied(
                "You may only run tests of your own teams' interfaces."
            )
        try:
            run = services.start_run(
                request.user,
                data["interface"],
                data["environment"],
                tag=data.get("tag", ""),
                case_ids=data.get("case_ids", []),
            )
        except services.RunAlreadyActive as exc:
            return run_conflict(request, exc)
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "timeout", int, description=f"Seconds to wait, at most {MAX_WAIT_SECONDS}."
            )
        ],
        responses=TestRunSerializer,
    )
    @action(detail=True, methods=["get"])
    def wait(self, request, *args, **kwargs):
        """Answers when the run has finished, or after ``timeout`` seconds with its progress so far."""
        run = self.get_object()
        try:
            timeout = min(max(int(request.query_params.get("timeout", 60)), 0), MAX_WAIT_SECONDS)
        except ValueError:
            raise serializers.ValidationError({"timeout": "Seconds, as a whole number."})
        deadline = time.monotonic() + timeout
        while run.is_active and time.monotonic() < deadline:
            time.sleep(0.5)
            run.refresh_from_db()
        return Response(self.get_serializer(run).data)

    @extend_schema(responses=TestResultSerializer(many=True))
    @action(detail=True, methods=["get"])
    def results(self, request, *args, **kwargs):
        run = self.get_object()
        page = self.paginate_queryset(run.results.order_by("case_name"))
        return self.get_paginated_response(TestResultSerializer(page, many=True).data)

    @extend_schema(responses={(200, "application/xml"): str})
    @action(detail=True, methods=["get"])
    def junit(self, request, *args, **kwargs):
        run = self.get_object()
        response = HttpResponse(run_as_junit(run), content_type="application/xml")
        response["Content-Disposition"] = (
            f'attachment; filename="{run.interface.code}-run-{run.pk}.xml"'
        )
        return response

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"], url_path="evidence-pack")
    def evidence_pack(self, request, *args, **kwargs):
        """A zip for audit: a readable HTML summary and the JSON of every result."""
        run = self.get_object()
        try:
            content = evidence.evidence_pack(run)
        except evidence.RunNotFinished as exc:
            return problem_response(409, str(exc), type_slug="run-not-finished")
        return evidence.as_download(run, content)

    @extend_schema(request=None, responses={202: TestRunSerializer})
    @action(detail=True, methods=["post"], url_path="rerun-failed")
    def rerun_failed(self, request, *args, **kwargs):
        """Starts a new run of the cases that failed or errored in this one."""
        run = self.get_object()
        policy.require_change(request.user, run)
        failed = list(
            run.results.exclude(outcome="passed")
            .exclude(case=None)
            .values_list("case_id", flat=True)
        )
        if not failed:
            raise serializers.ValidationError({"run": "No case failed or errored in this run."})
        try:
            new_run = services.start_run(
                request.user, run.interface, run.environment, case_ids=failed
            )
        except services.RunAlreadyActive as exc:
            return run_conflict(request, exc)
        return Response(self.get_serializer(new_run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=TestRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        run = self.get_object()
        policy.require_change(request.user, run)
        jobs.cancel(run)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)


class ComplianceView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, code):
        """Contract compliance of an interface per environment: coverage and conformance of its current spec."""
        interface = get_object_or_404(Interface.objects.for_user(request.user), code=code.upper())
        return Response(compliance.as_dict(compliance.compliance_of(interface)))


class DefectSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    raised_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    age_days = serializers.SerializerMethodField()

    class Meta:
        model = Defect
        fields = [
            "id",
            "interface",
            "result",
            "title",
            "severity",
            "phase_found",
            "status",
            "correlation_id",
            "expected",
            "actual",
            "payload_sample",
            "description",
            "raised_by",
            "age_days",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["result", "correlation_id", "payload_sample", "raised_by"]

    def get_age_days(self, defect) -> int:
        return (timezone.now() - defect.created_at).days


class RaiseDefectSerializer(serializers.Serializer):
    result = serializers.PrimaryKeyRelatedField(
        queryset=TestResult.objects.select_related("run__interface", "run__environment")
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    phase_found = serializers.ChoiceField(choices=Phase.choices, required=False)


class DefectViewSet(InterfaceOwnedViewSet):
    """Defects: filter by status, severity, phase and interface; raise one from a failed result."""

    serializer_class = DefectSerializer
    search_fields = ["title", "correlation_id", "interface__code"]
    ordering_fields = ["created_at", "severity", "status"]
    filterset_fields = {
        "status": ["exact"],
        "severity": ["exact"],
        "phase_found": ["exact"],
        "interface__code": ["exact"],
    }

    def get_queryset(self):
        return (
            Defect.objects.for_user(self.request.user)
            .select_related("interface", "raised_by")
            .order_by("-created_at")
        )

    owned_object = "defects"

    def save_instance(self, instance):
        if instance.raised_by_id is None:
            instance.raised_by = self.request.user
        return audit.save_with_audit(self.request.user, instance)

    @extend_schema(request=RaiseDefectSerializer, responses={201: DefectSerializer})
    @action(detail=False, methods=["post"], url_path="from-result")
    def from_result(self, request):
        """Raises a defect from a failed result, prefilled with expected, actual and a masked payload sample."""
        serializer = RaiseDefectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not policy.can_change(request.user, data["result"].run):
            raise exceptions.PermissionDenied(
                "You may only raise defects of your own teams' interfaces."
            )
        try:
            defect = defects.raise_from_result(
                request.user,
                data["result"],
                severity=data["severity"],
                phase=data.get("phase_found"),
            )
        except defects.NotAFailure as exc:
            raise serializers.ValidationError({"result": str(exc)})
        return Response(DefectSerializer(defect).data, status=status.HTTP_201_CREATED)
