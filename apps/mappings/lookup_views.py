"""Browser views of lookup tables: list, detail with paginated entries edited inline (htmx),
create, edit, delete, import (CSV or XLSX) and export (CSV).

Changes go through apps.mappings.services (tables, entries) and apps.mappings.lookups
(imports), which check the permission policy and write the audit entries.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.generic import CreateView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import LiveValidationMixin, WriteAccessMixin, apply_validation_error
from apps.core.csv_export import csv_response
from apps.core.listing import FilteredListView
from apps.mappings import lookups, services
from apps.mappings.filters import LookupTableFilter
from apps.mappings.forms import LookupEntryForm, LookupImportForm, LookupTableForm
from apps.mappings.models import LookupEntry, LookupTable
from apps.mappings.spec_views import error_text, require_writer

ENTRIES_PER_PAGE = 50
READERS_SHOWN = 20


class LookupTableList(FilteredListView):
    template_name = "mappings/lookup_table_list.html"
    filterset_class = LookupTableFilter
    sort_fields = {"name": "name", "entries": "entry_count", "updated": "updated_at"}
    default_sort = "name"
    csv_filename = "lookup-tables.csv"
    csv_columns = [
        ("name", lambda t: t.name),
        ("owner team", lambda t: t.owner_team.name if t.owner_team_id else ""),
        ("entries", lambda t: t.entry_count),
        ("description", lambda t: t.description),
    ]

    def base_queryset(self):
        return (
            LookupTable.objects.for_user(self.request.user)
            .select_related("owner_team")
            .annotate(entry_count=Count("entries"))
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_create"] = self.request.user.can_write
        return context


def _table_or_404(request, pk) -> LookupTable:
    return get_object_or_404(
        LookupTable.objects.for_user(request.user).select_related("owner_team"), pk=pk
    )


def _entries_context(request, table: LookupTable, *, form=None, search=None, page=None) -> dict:
    """The entries partial: one page of entries matching the search, and the add form."""
    search = (request.GET.get("q", "") if search is None else search).strip()
    entries = table.entries.order_by("key").only("id", "key", "value", "table_id")
    if search:
        entries = entries.filter(Q(key__icontains=search) | Q(value__icontains=search))
    paginator = Paginator(entries, ENTRIES_PER_PAGE)
    page_obj = paginator.get_page(page or request.GET.get("page") or 1)
    can_change = policy.can_change(request.user, table)
    query = f"q={search}" if search else ""
    return {
        "table": table,
        "entries": page_obj.object_list,
        "page_obj": page_obj if page_obj.has_other_pages() else None,
        "paginator": paginator,
        "q": search,
        "query_string": query,
        "can_change": can_change,
        "add_form": form if form is not None else (LookupEntryForm() if can_change else None),
    }


@login_required
@require_safe
def lookup_table_detail(request, pk):
    """A table with one page of its entries (searchable) and the mapping rows reading it.
    Queries do not grow with entries: the table, the count, the page, the readers and the
    user's teams."""
    table = _table_or_404(request, pk)
    context = _entries_context(request, table)
    if request.htmx and not request.htmx.boosted and request.htmx.target == "list-table":
        return render(request, "mappings/partials/lookup_entries.html", context)
    readers = list(
        services.rules_using_table(table).order_by("spec__interface__code", "spec__name")[
            : READERS_SHOWN + 1
        ]
    )
    context.update(readers=readers[:READERS_SHOWN], more_readers=len(readers) > READERS_SHOWN)
    return render(request, "mappings/lookup_table_detail.html", context)


class LookupTableCreate(WriteAccessMixin, LiveValidationMixin, CreateView):
    form_class = LookupTableForm
    template_name = "mappings/lookup_table_form.html"

    def form_valid(self, form):
        try:
            self.object = services.save_lookup_table(self.request.user, form.instance)
        except PermissionDenied as exc:
            form.add_error("owner_team", str(exc))
            return self.form_invalid(form)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Created the lookup table {self.object}.")
        return redirect("mappings:lookup_table_detail", pk=self.object.pk)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title="New lookup table", cancel_url=reverse("mappings:lookup_table_list"), **kwargs
        )


class LookupTableUpdate(WriteAccessMixin, LiveValidationMixin, UpdateView):
    form_class = LookupTableForm
    template_name = "mappings/lookup_table_form.html"
    queryset = LookupTable.objects.select_related("owner_team")

    def form_valid(self, form):
        try:
            self.object = services.save_lookup_table(self.request.user, form.instance)
        except PermissionDenied as exc:
            form.add_error("owner_team", str(exc))
            return self.form_invalid(form)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved the lookup table {self.object}.")
        return redirect("mappings:lookup_table_detail", pk=self.object.pk)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title=f"Edit the lookup table {self.object}",
            cancel_url=reverse("mappings:lookup_table_detail", args=[self.object.pk]),
            **kwargs,
        )


@login_required
@require_http_methods(["GET", "POST"])
def lookup_table_delete(request, pk):
    """Asks first; refuses, with the specs named, while mapping rows read the table."""
    table = _table_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, table)
    if request.method == "POST":
        try:
            services.delete_lookup_table(request.user, table)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
            return redirect("mappings:lookup_table_detail", pk=table.pk)
        messages.success(request, f"Deleted the lookup table {table}.")
        return redirect("mappings:lookup_table_list")
    readers = list(services.rules_using_table(table)[: READERS_SHOWN + 1])
    return render(
        request,
        "mappings/lookup_table_confirm_delete.html",
        {
            "table": table,
            "readers": readers[:READERS_SHOWN],
            "entry_count": table.entries.count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def lookup_table_import(request, pk):
    """Replaces every entry with a file's, validated whole first: nothing changes on error."""
    table = _table_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, table)
    problems: list[str] = []
    if request.method == "POST":
        form = LookupImportForm(request.POST, request.FILES)
        if form.is_valid():
            data, filename = form.data_and_name()
            try:
                count = lookups.import_lookup_file(table, data, filename, actor=request.user)
            except ValidationError as exc:
                problems = exc.messages
            else:
                messages.success(
                    request,
                    f"Imported {count:,} entr{'ies' if count != 1 else 'y'} from {filename}.",
                )
                return redirect("mappings:lookup_table_detail", pk=table.pk)
    else:
        form = LookupImportForm()
    return render(
        request,
        "mappings/lookup_import.html",
        {"table": table, "form": form, "problems": problems},
    )


@login_required
@require_safe
def lookup_table_export(request, pk):
    table = _table_or_404(request, pk)
    entries = table.entries.order_by("key").only("key", "value")
    return csv_response(
        f"{table.name}.csv",
        [("key", lambda e: e.key), ("value", lambda e: e.value)],
        entries.iterator(chunk_size=2000),
    )


# --------------------------------------------------------------------------------------
# Entries, inline
# --------------------------------------------------------------------------------------


def _entry_or_404(request, pk) -> LookupEntry:
    return get_object_or_404(
        LookupEntry.objects.for_user(request.user).select_related("table__owner_team"), pk=pk
    )


@login_required
@require_POST
def lookup_entry_create(request, pk):
    """Adds an entry; htmx gets the refreshed entries partial (with the form's errors)."""
    table = _table_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, table)
    form = LookupEntryForm(request.POST, instance=LookupEntry(table=table))
    saved = None
    if form.is_valid():
        try:
            saved = services.save_lookup_entry(request.user, form.instance)
        except ValidationError as exc:
            apply_validation_error(form, exc)
    if not request.htmx:
        if saved is not None:
            messages.success(request, f"Added {saved.key}.")
        else:
            messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect("mappings:lookup_table_detail", pk=table.pk)
    search = request.POST.get("q", "")
    context = _entries_context(
        request, table, form=LookupEntryForm() if saved else form, search=search
    )
    context["added"] = saved
    return render(request, "mappings/partials/lookup_entries.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def lookup_entry_update(request, pk):
    """Inline edit of one entry's row: the form row (GET), the saved row or the form with
    its errors (POST); ``?show=1`` gives the plain row back (cancel)."""
    entry = _entry_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, entry.table)
    context = {"entry": entry, "table": entry.table, "can_change": True}
    if request.method == "GET" and request.GET.get("show") == "1":
        return render(request, "mappings/partials/lookup_entry_row.html", context)
    if request.method == "POST":
        form = LookupEntryForm(request.POST, instance=entry)
        if form.is_valid():
            try:
                entry = services.save_lookup_entry(request.user, form.instance)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                if not request.htmx:
                    messages.success(request, f"Saved {entry.key}.")
                    return redirect("mappings:lookup_table_detail", pk=entry.table_id)
                return render(
                    request, "mappings/partials/lookup_entry_row.html", {**context, "entry": entry}
                )
    else:
        form = LookupEntryForm(instance=entry)
    context["form"] = form
    if request.htmx:
        return render(request, "mappings/partials/lookup_entry_form_row.html", context)
    return render(request, "mappings/lookup_entry_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def lookup_entry_delete(request, pk):
    """Deletes an entry: the browser asks first on the table page (htmx gets an empty row
    back); without htmx a confirmation page asks."""
    entry = _entry_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, entry.table)
    if request.method == "GET":
        return render(request, "mappings/lookup_entry_confirm_delete.html", {"entry": entry})
    services.delete_lookup_entry(request.user, entry)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"Deleted {entry.key}.")
    return redirect("mappings:lookup_table_detail", pk=entry.table_id)
