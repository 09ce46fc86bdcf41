"""REST API of an interface's pass-rate trend: the last finished automated runs per environment."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import Environment, Interface
from apps.testing import trend


class PassRateQuerySerializer(serializers.Serializer):
    environment = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Environment.objects.all(),
        required=False,
        help_text="An environment's slug; all environments when left out.",
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=trend.MAX_LIMIT,
        default=trend.DEFAULT_LIMIT,
        help_text="The last this many finished automated runs, per environment.",
    )


class PassRateSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="run_id")
    environment = serializers.CharField(source="environment_slug")
    finished_at = serializers.DateTimeField(allow_null=True)
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    errored = serializers.IntegerField()
    pass_rate = serializers.FloatField(
        allow_null=True, help_text="passed ÷ (passed + failed + errored); null without results."
    )


class PassRateView(APIView):
    @extend_schema(parameters=[PassRateQuerySerializer], responses=PassRateSerializer(many=True))
    def get(self, request, code):
        """Pass rate of the last finished automated runs of an interface, oldest first, per environment."""
        interface = get_object_or_404(Interface.objects.for_user(request.user), code=code.upper())
        query = PassRateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        points = trend.recent_pass_rates(
            interface,
            environment=query.validated_data.get("environment"),
            limit=query.validated_data["limit"],
        )
        return Response(PassRateSerializer(points, many=True).data)
