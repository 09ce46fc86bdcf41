import django_filters
from django.db.models import Q

from apps.accounts.models import Role, Team, User


class TeamFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Team
        fields = ["q"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value))


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    role = django_filters.ChoiceFilter(choices=Role.choices)
    team = django_filters.CharFilter(field_name="teams__slug", label="Team")
    is_active = django_filters.BooleanFilter(label="Active")

    class Meta:
        model = User
        fields = ["q", "role", "team", "is_active"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(username__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(email__icontains=value)
        )
