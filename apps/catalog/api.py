"""REST API for the catalog: systems, environments, interfaces, endpoints, specs, checks."""

from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts import policy
from apps.accounts.models import Team
from apps.catalog import services
from apps.catalog.filters import (
    ApiSpecFilter,
    EndpointFilter,
    EnvironmentFilter,
    InterfaceFilter,
    SystemFilter,
)
from apps.catalog.models import (
    ApiSpec,
    Endpoint,
    EndpointCheck,
    Environment,
    Interface,
    System,
    Tag,
)
from apps.core import audit
from apps.core.models import AuditEntry
from apps.core.queries import related_count


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "action", "actor_name", "changes", "request_id", "created_at"]


class SystemSerializer(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    interface_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = System
        fields = [
            "id",
            "name",
            "kind",
            "business_owner",
            "owner_team",
            "description",
            "interface_count",
            "created_at",
            "updated_at",
        ]


class EnvironmentSerializer(serializers.ModelSerializer):
    egress_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False
    )

    class Meta:
        model = Environment
        fields = [
            "id",
            "name",
            "slug",
            "position",
            "is_production",
            "description",
            "egress_allowlist",
            "ca_bundle",
            "created_at",
            "updated_at",
        ]


class TagListField(serializers.ListField):
    """Tags as a list of names, read from the prefetched many-to-many relation."""

    child = serializers.RegexField(r"^[\w.-]{1,50}$")

    def to_representation(self, data):
        return [tag.name for tag in data.all()]


class InterfaceSerializer(serializers.ModelSerializer):
    source_system = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    target_system = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    owner_team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    tags = TagListField(required=False, help_text="Tag names.")
    allowed_next_statuses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Interface
        fields = [
            "id",
            "code",
            "name",
            "business_process",
            "source_system",
            "target_system",
            "pattern",
            "platform",
            "owner_team",
            "status",
            "allowed_next_statuses",
            "criticality",
            "holds_personal_data",
            "sla_latency_ms",
            "sla_freshness_minutes",
            "expected_volume_per_day",
            "runbook",
            "monitoring_url",
            "dashboard_url",
            "tags",
            "strict_contracts",
            "created_at",
            "updated_at",
        ]


class EndpointSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all()
    )
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True),
        write_only=True,
        required=False,
        help_text="Write-only. Keys by auth type: api_key; username, password; token; client_id, client_secret.",
    )
    credential_fields_set = serializers.ListField(child=serializers.CharField(), read_only=True)
    default_headers = serializers.DictField(
        child=serializers.CharField(max_length=1000), required=False
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "interface",
            "environment",
            "base_url",
            "auth_type",
            "api_key_name",
            "token_url",
            "scopes",
            "credentials",
            "credential_fields_set",
            "timeout_seconds",
            "rate_limit_per_second",
            "default_headers",
            "created_at",
            "updated_at",
        ]


class ApiSpecSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    content = serializers.CharField(
        write_only=True, required=False, help_text="The document as text."
    )
    file = serializers.FileField(
        write_only=True, required=False, help_text="Or the document as a file."
    )

    class Meta:
        model = ApiSpec
        fields = [
            "id",
            "interface",
            "version",
            "label",
            "kind",
            "spec_version",
            "title",
            "filename",
            "operation_count",
            "content_sha256",
            "notes",
            "created_at",
            "content",
            "file",
        ]
        read_only_fields = [
            "version",
            "label",
            "kind",
            "spec_version",
            "title",
            "filename",
            "operation_count",
            "content_sha256",
            "created_at",
        ]

    def validate(self, attrs):
        if bool(attrs.get("content")) == bool(attrs.get("file")):
            raise serializers.ValidationError(
                {"content": "Give the document as content or as a file, not both."}
            )
        limit = settings.PONTIS_SPEC_MAX_BYTES
        upload = attrs.get("file")
        if upload is not None and upload.size > limit:
            raise serializers.ValidationError(
                {"file": f"The file is {upload.size // 1024} KB; the limit is {limit // 1024} KB."}
            )
        return attrs


class ApiSpecDetailSerializer(ApiSpecSerializer):
    operations = serializers.JSONField(read_only=True)
    document = serializers.JSONField(read_only=True)

    class Meta(ApiSpecSerializer.Meta):
        fields = [*ApiSpecSerializer.Meta.fields, "operations", "document"]


class EndpointCheckSerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=Endpoint.objects.all())

    class Meta:
        model = EndpointCheck
        fields = [
            "id",
            "endpoint",
            "status",
            "progress_done",
            "progress_total",
            "status_code",
            "latency_ms",
            "detail",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = [f for f in fields if f != "endpoint"]


class CatalogViewSet(viewsets.ModelViewSet):
    """Reads for everyone signed in; writes through the policy and the audited services.

    ``team_field`` names the field that decides the owner team: ``owner_team``
    itself, ``interface`` (whose owner team counts), or None for admin-only objects.
    """

    team_field: str | None = None

    def owner_team_id(self, values: dict) -> int | None:
        related = values.get(self.team_field) if self.team_field else None
        if related is None:
            return None
        return related.owner_team_id if self.team_field == "interface" else related.pk

    def perform_create(self, serializer):
        if not policy.can_create_for_team(
            self.request.user, self.owner_team_id(serializer.validated_data)
        ):
            raise exceptions.PermissionDenied(
                "You may only create objects owned by your own teams."
            )
        self._save(serializer, self.queryset.model())

    def perform_update(self, serializer):
        instance = serializer.instance
        current = {self.team_field: getattr(instance, self.team_field)} if self.team_field else {}
        new_team = self.owner_team_id({**current, **serializer.validated_data})
        if not policy.can_create_for_team(self.request.user, new_team):
            raise exceptions.PermissionDenied("You may only give objects to your own teams.")
        self._save(serializer, instance)

    def _save(self, serializer, instance):
        try:
            serializer.instance = self.save_instance(instance, dict(serializer.validated_data))
        except ValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            )

    def save_instance(self, instance, validated: dict):
        """Applies the validated values and saves through the domain service."""
        for name, value in validated.items():
            setattr(instance, name, value)
        return services.save_audited(self.request.user, instance)

    def perform_destroy(self, instance):
        services.delete_audited(self.request.user, instance)

    @extend_schema(responses=AuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        """The audit history of this object, newest first."""
        entries = audit.history_for(self.get_object())[:200]
        return Response(AuditEntrySerializer(entries, many=True).data)


class SystemViewSet(CatalogViewSet):
    team_field = "owner_team"
    queryset = System.objects.all()
    serializer_class = SystemSerializer
    filterset_class = SystemFilter
    search_fields = ["name", "business_owner", "description"]
    ordering_fields = ["name", "kind", "created_at", "interface_count"]

    def get_queryset(self):
        return (
            System.objects.for_user(self.request.user)
            .select_related("owner_team")
            .with_interface_count()
            .order_by("name")
        )


class EnvironmentViewSet(CatalogViewSet):
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilter
    search_fields = ["name", "slug"]
    ordering_fields = ["position", "name"]
    lookup_field = "slug"

    def get_queryset(self):
        return Environment.objects.for_user(self.request.user).order_by("position", "name")


class InterfaceViewSet(CatalogViewSet):
    team_field = "owner_team"
    queryset = Interface.objects.all()
    serializer_class = InterfaceSerializer
    filterset_class = InterfaceFilter
    search_fields = [
        "code",
        "name",
        "business_process",
        "source_system__name",
        "target_system__name",
    ]
    ordering_fields = ["code", "name", "status", "criticality", "created_at", "updated_at"]
    lookup_field = "code"
    lookup_value_regex = "[A-Za-z0-9-]+"

    def get_queryset(self):
        return (
            Interface.objects.for_user(self.request.user)
            .select_related("source_system", "target_system", "owner_team")
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
            .order_by("code")
        )

    def save_instance(self, instance, validated):
        tag_names = validated.pop("tags", None)
        for name, value in validated.items():
            setattr(instance, name, value)
        m2m = {}
        if tag_names is not None:
            m2m["tags"] = [
                Tag.objects.get_or_create(name=name)[0] for name in dict.fromkeys(tag_names)
            ]
        return services.save_audited(self.request.user, instance, m2m=m2m)


class EndpointViewSet(CatalogViewSet):
    team_field = "interface"
    queryset = Endpoint.objects.all()
    serializer_class = EndpointSerializer
    filterset_class = EndpointFilter
    search_fields = ["base_url", "interface__code", "interface__name"]
    ordering_fields = ["interface__code", "environment__position", "base_url", "created_at"]

    def get_queryset(self):
        return (
            Endpoint.objects.for_user(self.request.user)
            .select_related("interface", "environment")
            .order_by("interface__code", "environment__position")
        )

    def save_instance(self, instance, validated):
        credentials = validated.pop("credentials", None)
        for name, value in validated.items():
            setattr(instance, name, value)
        return services.save_endpoint(self.request.user, instance, credentials)

    @extend_schema(request=None, responses={202: EndpointCheckSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request, *args, **kwargs):
        """Queues a connectivity check of this endpoint (or returns the one already queued)."""
        endpoint = self.get_object()
        check = services.request_endpoint_check(request.user, endpoint)
        return Response(EndpointCheckSerializer(check).data, status=status.HTTP_202_ACCEPTED)


class ApiSpecViewSet(CatalogViewSet):
    """Spec versions are immutable: upload a new version instead of editing one."""

    team_field = "interface"
    http_method_names = ["get", "post", "delete", "head", "options"]
    queryset = ApiSpec.objects.all()
    serializer_class = ApiSpecSerializer
    filterset_class = ApiSpecFilter
    search_fields = ["title", "label", "interface__code"]
    ordering_fields = ["created_at", "version", "interface__code"]

    def get_serializer_class(self):
        return ApiSpecDetailSerializer if self.action == "retrieve" else ApiSpecSerializer

    def get_queryset(self):
        queryset = ApiSpec.objects.for_user(self.request.user).select_related("interface")
        if self.action == "list":
            queryset = queryset.defer("content", "document", "operations")
        return queryset.order_by("interface__code", "-version")

    def save_instance(self, instance, validated):
        upload = validated.get("file")
        return services.upload_spec(
            self.request.user,
            validated["interface"],
            upload.read() if upload else validated["content"],
            filename=upload.name if upload else "",
            notes=validated.get("notes", ""),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against", int, description="Id of the other spec version.", required=True
            )
        ],
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, *args, **kwargs):
        """Breaking and compatible changes from ``against`` (older) to this version."""
        spec = self.get_object()
        against = request.query_params.get("against", "")
        if not against.isdigit():
            raise serializers.ValidationError(
                {"against": "Give the id of the spec version to compare with."}
            )
        other = get_object_or_404(
            self.get_queryset(), pk=int(against), interface_id=spec.interface_id
        )
        result = services.diff_spec_versions(other, spec)
        return Response(
            {
                "from_version": other.version,
                "to_version": spec.version,
                "breaking": [asdict(change) for change in result.breaking],
                "compatible": [asdict(change) for change in result.compatible],
            }
        )


class EndpointCheckViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Connectivity checks: POST an endpoint id to queue one, GET to follow it."""

    serializer_class = EndpointCheckSerializer
    ordering_fields = ["created_at"]
    filterset_fields = ["endpoint", "status"]

    def get_queryset(self):
        return EndpointCheck.objects.filter(
            endpoint__in=Endpoint.objects.for_user(self.request.user)
        ).order_by("-created_at")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.validated_data["endpoint"]
        if not policy.can_change(request.user, endpoint):
            raise exceptions.PermissionDenied("You may only check endpoints of your own teams.")
        check = services.request_endpoint_check(request.user, endpoint)
        return Response(self.get_serializer(check).data, status=status.HTTP_202_ACCEPTED)


class TagSerializer(serializers.ModelSerializer):
    interface_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "interface_count"]


class TagViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TagSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "interface_count"]

    def get_queryset(self):
        return Tag.objects.annotate(
            interface_count=related_count(Interface.tags.through, "tag")
        ).order_by("name")
