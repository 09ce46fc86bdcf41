"""List pages: filters, sorting, pagination and CSV export, as one full page or its table partial."""

import django_filters
from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.views.generic import ListView

from apps.core.csv_export import csv_response

MAX_PAGE_SIZE = 100


class FilteredListView(LoginRequiredMixin, ListView):
    """Subclasses set ``filterset_class``, ``sort_fields`` (name → order_by expression),
    ``default_sort`` and ``csv_columns`` ((header, getter) pairs), and implement ``base_queryset``.
    """

    filterset_class = None
    sort_fields: dict[str, str] = {}
    default_sort = ""
    csv_columns: list = []
    csv_filename = "export.csv"
    paginate_by = 25

    def base_queryset(self):
        raise NotImplementedError

    def get_paginate_by(self, queryset):
        try:
            size = int(self.request.GET.get("page_size", self.paginate_by))
        except ValueError:
            size = self.paginate_by
        return max(1, min(size, MAX_PAGE_SIZE))

    def current_sort(self) -> str:
        sort = self.request.GET.get("sort", self.default_sort)
        return sort if sort.lstrip("-") in self.sort_fields else self.default_sort

    def get_queryset(self):
        self.filterset = self.filterset_class(
            self.request.GET or None, queryset=self.base_queryset(), request=self.request
        )
        queryset = (
            self.filterset.qs
            if self.filterset.is_bound and self.filterset.is_valid()
            else self.filterset.queryset
        )
        sort = self.current_sort()
        if sort:
            expression = self.sort_fields[sort.lstrip("-")]
            descending = sort.startswith("-")
            queryset = queryset.order_by(f"{'-' if descending else ''}{expression}", "pk")
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        sort_query = query.copy()
        sort_query.pop("sort", None)
        context.update(
            filterset=self.filterset,
            sort=self.current_sort(),
            query_string=query.urlencode(),
            sort_query_string=sort_query.urlencode(),
        )
        return context

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            queryset = self.get_queryset()
            return csv_response(
                self.csv_filename, self.csv_columns, queryset.iterator(chunk_size=2000)
            )
        return super().get(request, *args, **kwargs)

    def get_template_names(self):
        names = super().get_template_names()
        if (
            self.request.htmx
            and not self.request.htmx.boosted
            and self.request.htmx.target == "list-table"
        ):
            return [f"{names[0]}#table"]
        return names

    def paginate_queryset(self, queryset, page_size):
        paginator = Paginator(queryset, page_size)
        page_number = self.request.GET.get("page") or 1
        page = paginator.get_page(page_number)
        return paginator, page, page.object_list, page.has_other_pages()


def yes_no_filter(label: str, **kwargs):
    """A boolean filter that reads "Any / Yes / No" and takes true/false in the query string."""
    choices = [("", "Any"), ("true", "Yes"), ("false", "No")]
    return django_filters.BooleanFilter(label=label, widget=forms.Select(choices=choices), **kwargs)
