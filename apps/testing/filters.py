import django_filters
from django.db.models import Q

from apps.testing.models import Defect, DefectStatus, Phase, Severity


class DefectFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.ChoiceFilter(choices=DefectStatus.choices, empty_label="Any status")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="Any severity")
    phase_found = django_filters.ChoiceFilter(
        choices=Phase.choices, empty_label="Any phase", label="Phase"
    )

    class Meta:
        model = Defect
        fields = ["q", "status", "severity", "phase_found"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(title__icontains=value)
            | Q(interface__code__icontains=value)
            | Q(correlation_id=value)
        )
