"""REST API for manual test cases: record a tester's result with evidence files, download them."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import policy
from apps.catalog.models import Environment
from apps.testing import manual
from apps.testing.api import TestResultSerializer, TestRunSerializer
from apps.testing.models import EvidenceFile, TestCase


class ManualResultRequestSerializer(serializers.Serializer):
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all()
    )
    outcome = serializers.ChoiceField(choices=manual.ManualOutcome.choices)
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required unless passed."
    )
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        default=list,
        help_text=f"Evidence files, one part each; at most {manual.MAX_FILES_PER_RESULT}.",
    )


class EvidenceFileSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = EvidenceFile
        fields = [
            "id",
            "name",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "created_at",
            "download",
        ]

    def get_download(self, evidence) -> str:
        return f"/api/v1/evidence-files/{evidence.pk}/"


class ManualTestResultSerializer(TestResultSerializer):
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    files = EvidenceFileSerializer(many=True, read_only=True)

    class Meta(TestResultSerializer.Meta):
        fields = [*TestResultSerializer.Meta.fields, "notes", "recorded_by", "files"]


class ManualResultResponseSerializer(serializers.Serializer):
    run = TestRunSerializer()
    result = ManualTestResultSerializer()


class ManualResultView(APIView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(
        request={"multipart/form-data": ManualResultRequestSerializer},
        responses={201: ManualResultResponseSerializer},
    )
    def post(self, request, id):
        """Records a tester's outcome of a manual case: a finished run with one result and its files.

        ``blocked`` is stored as errored. Nothing is saved when a file is too big, there are
        too many files, or a failed or blocked outcome comes without notes.
        """
        case = get_object_or_404(
            TestCase.objects.for_user(request.user).select_related("interface"), pk=id
        )
        # Before the body is parsed: a refusal must not depend on what was sent.
        if not policy.can_change(request.user, case.interface):
            raise exceptions.PermissionDenied(
                "You may only record results of your own teams' interfaces."
            )
        serializer = ManualResultRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = manual.record_manual_result(
            request.user, case, data["environment"], data["outcome"], data["notes"], data["files"]
        )
        result = run.results.select_related("recorded_by").prefetch_related("files").get()
        body = ManualResultResponseSerializer({"run": run, "result": result}).data
        return Response(body, status=status.HTTP_201_CREATED)


class EvidenceFileView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, id):
        """Downloads an evidence file, always as an attachment."""
        evidence = get_object_or_404(manual.visible_evidence_files(request.user), pk=id)
        return manual.as_attachment(evidence)
