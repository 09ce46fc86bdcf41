"""REST API for test schedules: CRUD; when a schedule runs next is computed, never written."""

from django.utils import timezone
from rest_framework import serializers

from apps.catalog.models import Environment, Interface
from apps.testing import schedules
from apps.testing.api import InterfaceOwnedViewSet
from apps.testing.models import TestSchedule


class TestScheduleSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all()
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    description = serializers.SerializerMethodField(help_text="The cron expression in words.")
    upcoming = serializers.SerializerMethodField(help_text="The next three run times (UTC).")

    class Meta:
        model = TestSchedule
        fields = [
            "id",
            "interface",
            "environment",
            "name",
            "cron",
            "description",
            "tag",
            "is_enabled",
            "next_run_at",
            "upcoming",
            "last_run_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["next_run_at", "last_run_at"]

    def validate_cron(self, value):
        try:
            return schedules.check_cron(value)
        except schedules.CronError as exc:
            raise serializers.ValidationError(str(exc))

    def get_description(self, schedule) -> str:
        return schedules.describe(schedule.cron)

    def get_upcoming(self, schedule) -> list[str]:
        if not schedule.is_enabled:
            return []
        return [
            moment.isoformat()
            for moment in schedules.next_occurrences(schedule.cron, timezone.now())
        ]


class TestScheduleViewSet(InterfaceOwnedViewSet):
    """Schedules that run an interface's suite against an environment on a cron expression (UTC)."""

    serializer_class = TestScheduleSerializer
    search_fields = ["name", "interface__code"]
    ordering_fields = ["name", "next_run_at", "created_at"]
    filterset_fields = {
        "interface__code": ["exact"],
        "environment__slug": ["exact"],
        "is_enabled": ["exact"],
    }
    owned_object = "test schedules"

    def get_queryset(self):
        return (
            TestSchedule.objects.for_user(self.request.user)
            .select_related("interface", "environment", "created_by")
            .order_by("interface__code", "name")
        )

    def save_instance(self, instance):
        return schedules.save_schedule(self.request.user, instance)
