import django_filters
from django.db.models import Q

from apps.catalog.models import (
    ApiSpec,
    Criticality,
    Endpoint,
    Environment,
    Interface,
    LifecycleStatus,
    Pattern,
    Platform,
    System,
    SystemKind,
)


class SystemFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    kind = django_filters.ChoiceFilter(choices=SystemKind.choices)
    owner_team = django_filters.CharFilter(field_name="owner_team__slug", label="Team")

    class Meta:
        model = System
        fields = ["q", "kind", "owner_team"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(business_owner__icontains=value))


class EnvironmentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = Environment
        fields = ["q", "is_production"]


class InterfaceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.MultipleChoiceFilter(choices=LifecycleStatus.choices)
    pattern = django_filters.ChoiceFilter(choices=Pattern.choices)
    platform = django_filters.ChoiceFilter(choices=Platform.choices)
    criticality = django_filters.ChoiceFilter(choices=Criticality.choices)
    owner_team = django_filters.CharFilter(field_name="owner_team__slug", label="Team")
    system = django_filters.NumberFilter(method="filter_system", label="System id")
    tag = django_filters.CharFilter(field_name="tags__name", label="Tag")
    holds_personal_data = django_filters.BooleanFilter()

    class Meta:
        model = Interface
        fields = [
            "q",
            "status",
            "pattern",
            "platform",
            "criticality",
            "owner_team",
            "system",
            "tag",
        ]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(code__icontains=value)
            | Q(name__icontains=value)
            | Q(business_process__icontains=value)
            | Q(source_system__name__icontains=value)
            | Q(target_system__name__icontains=value)
        )

    def filter_system(self, queryset, name, value):
        return queryset.filter(Q(source_system_id=value) | Q(target_system_id=value))


class EndpointFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    interface = django_filters.CharFilter(field_name="interface__code", label="Interface code")
    environment = django_filters.CharFilter(field_name="environment__slug", label="Environment")
    auth_type = django_filters.CharFilter()

    class Meta:
        model = Endpoint
        fields = ["q", "interface", "environment", "auth_type"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(base_url__icontains=value) | Q(interface__code__icontains=value))


class ApiSpecFilter(django_filters.FilterSet):
    interface = django_filters.CharFilter(field_name="interface__code", label="Interface code")
    kind = django_filters.CharFilter()

    class Meta:
        model = ApiSpec
        fields = ["interface", "kind"]
