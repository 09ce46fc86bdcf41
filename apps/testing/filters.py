import django_filters
from django.db.models import Q

from apps.core.listing import yes_no_filter
from apps.testing.models import Defect, DefectStatus, Phase, Severity, TestCase, TestKind


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


class TestCaseFilter(django_filters.FilterSet):
    __test__ = False  # not a pytest class

    q = django_filters.CharFilter(method="search", label="Search")
    kind = django_filters.ChoiceFilter(choices=TestKind.choices, empty_label="All kinds")
    tag = django_filters.CharFilter(method="with_tag", label="Tag")
    is_active = yes_no_filter("Active")

    class Meta:
        model = TestCase
        fields = ["q", "kind", "tag", "is_active"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(path__icontains=value))

    def with_tag(self, queryset, name, value):
        # SQLite has no JSON containment lookup; the cases of one interface are few, so the
        # match is made here, exactly as the runner selects a run's cases by tag.
        value = value.strip()
        matching = [pk for pk, tags in queryset.values_list("pk", "tags") if value in (tags or [])]
        return queryset.filter(pk__in=matching)
