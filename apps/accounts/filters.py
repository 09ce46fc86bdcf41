import django_filters
from django.db.models import Q

from apps.accounts.models import Role, Team, User
from apps.core.listing import yes_no_filter


class TeamFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Team
        fields = ["q"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value))


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    role = django_filters.ChoiceFilter(choices=Role.choices, empty_label="Any role")
    team = django_filters.ModelChoiceFilter(
        field_name="teams",
        to_field_name="slug",
        queryset=Team.objects.all(),
        empty_label="Any team",
    )
    is_active = yes_no_filter("Active")

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
