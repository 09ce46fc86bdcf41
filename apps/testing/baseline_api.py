"""REST API of known findings: list, accept, read and revoke (no update: revoke and accept anew)."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from apps.catalog.models import Interface
from apps.testing import baseline
from apps.testing.models import KnownFinding, TestCase


class KnownFindingSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    case = serializers.PrimaryKeyRelatedField(
        queryset=TestCase.objects.all(), required=False, allow_null=True, default=None
    )
    check_name = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text=f"Blank: any check. One of {', '.join(baseline.CHECK_NAMES)}, "
        "or an assertion's name ('assert $.id exists').",
    )
    accepted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = KnownFinding
        fields = [
            "id",
            "interface",
            "case",
            "check_name",
            "contains",
            "reason",
            "expires_on",
            "accepted_by",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["accepted_by", "created_at"]

    def get_is_active(self, finding) -> bool:
        return baseline.is_active(finding, timezone.localdate())


def as_api_errors(exc: ValidationError):
    """A domain ValidationError as DRF error detail (form-wide errors as non_field_errors)."""
    if not hasattr(exc, "error_dict"):
        return exc.messages
    return {
        ("non_field_errors" if name == "__all__" else name): messages
        for name, messages in exc.message_dict.items()
    }


class KnownFindingViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """An interface's baseline: leads of the owning team and admins accept and revoke findings."""

    serializer_class = KnownFindingSerializer
    ordering_fields = ["created_at", "expires_on"]
    filterset_fields = {"interface__code": ["exact"]}

    def get_queryset(self):
        return (
            KnownFinding.objects.for_user(self.request.user)
            .select_related("interface", "accepted_by")
            .order_by("-created_at", "-pk")
        )

    def create(self, request, *args, **kwargs):
        if not baseline.may_manage_any_findings(request.user):
            raise exceptions.PermissionDenied(baseline.REFUSAL)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            finding = baseline.accept_finding(
                request.user,
                interface=data["interface"],
                case=data["case"],
                check_name=data["check_name"],
                contains=data.get("contains", ""),
                reason=data["reason"],
                expires_on=data.get("expires_on"),
            )
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc))
        except ValidationError as exc:
            raise serializers.ValidationError(as_api_errors(exc))
        return Response(self.get_serializer(finding).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        try:
            baseline.revoke_finding(self.request.user, instance)
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc))
