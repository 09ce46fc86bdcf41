"""REST API for teams, the signed-in user and their API tokens."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import MAX_TOKEN_DAYS, ApiToken, Team, User
from apps.accounts.permissions import OwnObjectPermission
from apps.core import audit
from apps.core.api import AuditedModelViewSet
from apps.core.models import AuditAction


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "created_at", "updated_at"]


class TeamViewSet(AuditedModelViewSet):
    """Teams: everyone reads; admins create, change and delete."""

    serializer_class = TeamSerializer
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]
    lookup_field = "slug"

    def get_queryset(self):
        return Team.objects.all().order_by("name")

    def check_permissions(self, request):
        super().check_permissions(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.user.is_portal_admin:
            raise exceptions.PermissionDenied("Only admins manage teams.")


class MeSerializer(serializers.ModelSerializer):
    teams = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "role", "teams"]


class UserSerializer(serializers.ModelSerializer):
    teams = serializers.SlugRelatedField(slug_field="slug", many=True, queryset=Team.objects.all())

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "role",
            "teams",
            "is_active",
            "last_login",
        ]
        read_only_fields = ["username", "first_name", "last_name", "email", "last_login"]


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """People: everyone reads; admins change roles, team membership and access."""

    serializer_class = UserSerializer
    search_fields = ["username", "first_name", "last_name", "email"]
    ordering_fields = ["username", "role", "last_login"]
    filterset_fields = ["role", "is_active"]

    def get_queryset(self):
        return User.objects.prefetch_related("teams").order_by("username")

    def check_permissions(self, request):
        super().check_permissions(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.user.is_portal_admin:
            raise exceptions.PermissionDenied("Only admins change roles and team membership.")

    def perform_update(self, serializer):
        user = serializer.instance
        new_role = serializer.validated_data.get("role", user.role)
        active = serializer.validated_data.get("is_active", user.is_active)
        if (
            user == self.request.user
            and not user.is_superuser
            and (new_role != "admin" or not active)
        ):
            raise serializers.ValidationError(
                {"role": "You cannot take away your own admin role or access."}
            )
        with transaction.atomic():
            before = audit.snapshot(user)
            instance = serializer.save()
            audit.record(self.request.user, instance, AuditAction.UPDATE, before)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        """The signed-in user, their role and teams."""
        return Response(MeSerializer(request.user).data)


class ApiTokenSerializer(serializers.ModelSerializer):
    days = serializers.IntegerField(
        write_only=True,
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        default=90,
        help_text="Days until it expires.",
    )
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "key_prefix",
            "state",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
            "days",
        ]
        read_only_fields = ["key_prefix", "expires_at", "revoked_at", "last_used_at", "created_at"]


class IssuedApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The signed-in user's own API tokens. The key is shown once, when the token is created."""

    serializer_class = ApiTokenSerializer
    permission_classes = [OwnObjectPermission]
    ordering_fields = ["created_at", "name", "expires_at"]

    queryset = ApiToken.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user).order_by("-created_at")

    @extend_schema(responses={201: IssuedApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                token, key = ApiToken.issue(
                    user=request.user,
                    name=serializer.validated_data["name"],
                    days=serializer.validated_data["days"],
                )
                audit.record(request.user, token, AuditAction.CREATE)
        except IntegrityError:
            raise serializers.ValidationError({"name": "You already have a token with this name."})
        data = IssuedApiTokenSerializer(token).data
        data["key"] = key
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        """Revokes the token at once; revoking twice is harmless."""
        token = self.get_object()
        revoke_token(request.user, token)
        token.refresh_from_db()
        return Response(ApiTokenSerializer(token).data)


def revoke_token(actor, token: ApiToken) -> None:
    with transaction.atomic():
        before = audit.snapshot(token)
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            token.refresh_from_db()
            audit.record(actor, token, AuditAction.UPDATE, before)
