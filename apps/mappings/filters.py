"""List filters of the mappings pages."""

import django_filters
from django.db.models import Q

from apps.accounts.models import Team
from apps.mappings.models import LookupTable, MappingSpec, SpecStatus


class MappingSpecFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.ChoiceFilter(choices=SpecStatus.choices, empty_label="Any status")

    class Meta:
        model = MappingSpec
        fields = ["q", "status"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class LookupTableFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    owner_team = django_filters.ModelChoiceFilter(
        queryset=Team.objects.order_by("name"), empty_label="Any team", label="Owner team"
    )

    class Meta:
        model = LookupTable
        fields = ["q", "owner_team"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
