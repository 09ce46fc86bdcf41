"""Browser views of mapping specs: an interface's list, the editor, review actions, versions,
coverage, suggestions and mapping sheets in and out.

Views stay thin: every change goes through apps.mappings.services, which checks the
permission policy, claims the spec's revision and writes the audit entry. A stale revision
(services.SpecConflict) is shown with its message and a reload link, never overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.generic import CreateView, UpdateView

from apps.accounts import policy
from apps.accounts.mixins import LiveValidationMixin, WriteAccessMixin, apply_validation_error
from apps.catalog.mixins import InterfaceChildCreateMixin
from apps.catalog.models import Interface
from apps.core import audit
from apps.core.listing import FilteredListView
from apps.mappings import coverage, schemas, services, sheets, suggest
from apps.mappings.filters import MappingSpecFilter
from apps.mappings.forms import SheetImportForm, SpecForm
from apps.mappings.models import FieldRule, MappingSpec, SpecStatus

HISTORY_ENTRIES = 30
BIG = ("content", "document", "operations")  # columns of an API spec the editor never shows
SUGGESTIONS_PER_TARGET = 3
HIDDEN_SUGGESTIONS_KEY = "mappings:hidden-suggestions"


# --------------------------------------------------------------------------------------
# Shared by the mapping views
# --------------------------------------------------------------------------------------


def require_writer(request) -> None:
    """Viewers (stakeholders) write nothing and get 403 before any work is done."""
    if not request.user.can_write:
        raise PermissionDenied("Your role is read-only.")


def spec_queryset(user):
    return MappingSpec.objects.for_user(user).select_related(
        "interface__owner_team", "approved_by", "updated_by", "based_on"
    )


def spec_or_404(request, pk) -> MappingSpec:
    return get_object_or_404(spec_queryset(request.user), pk=pk)


def editor_url(spec: MappingSpec, anchor: str = "") -> str:
    url = reverse("mappings:spec_detail", args=[spec.pk])
    return f"{url}#{anchor}" if anchor else url


def posted_revision(request) -> int | None:
    value = request.POST.get("revision", "")
    return int(value) if value.isdigit() else None


def error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@dataclass
class RowView:
    """A row as the editor's table shows it: the rule and its readable rule text."""

    rule: FieldRule
    rule_text: str
    lookup_table: str
    default: str


def row_views(rules) -> list[RowView]:
    shown = []
    for rule in rules:
        cells = sheets.rule_cells(
            sheets.RuleRow(
                target_path=rule.target_path,
                source_paths=list(rule.source_paths or []),
                kind=rule.kind,
                params=rule.params if isinstance(rule.params, dict) else {},
                required=rule.required,
                target_type=rule.target_type,
            )
        )
        shown.append(RowView(rule, *cells))
    return shown


def side_label(spec: MappingSpec, side: str) -> tuple[str, object]:
    """How a side is described, in one line, and the registered API spec it reads (the
    caller loads it with the spec, its big text columns deferred)."""
    api_spec = getattr(spec, f"{side}_spec") if getattr(spec, f"{side}_spec_id") else None
    fmt = getattr(spec, f"get_{side}_format_display")()
    if api_spec is not None:
        parts = [getattr(spec, f"{side}_operation")]
        part = getattr(spec, f"get_{side}_part_display")()
        if part:
            parts.append(part.lower())
        status = getattr(spec, f"{side}_status")
        if status:
            parts.append(f"status {status}")
        return f"{fmt} · {' · '.join(p for p in parts if p)} of", api_spec
    if getattr(spec, f"{side}_schema") is not None:
        return f"{fmt} · inline JSON Schema", None
    return f"{fmt} · no schema (paths are not checked)", None


# --------------------------------------------------------------------------------------
# List and create
# --------------------------------------------------------------------------------------


class SpecList(FilteredListView):
    template_name = "mappings/spec_list.html"
    filterset_class = MappingSpecFilter
    sort_fields = {
        "name": "name",
        "version": "version",
        "status": "status",
        "updated": "updated_at",
    }
    default_sort = "name"
    csv_columns = [
        ("name", lambda s: s.name),
        ("version", lambda s: s.version),
        ("status", lambda s: s.get_status_display()),
        ("rows", lambda s: s.row_count),
        ("updated", lambda s: s.updated_at.isoformat()),
    ]

    @cached_property
    def interface(self):
        return get_object_or_404(
            Interface.objects.for_user(self.request.user).select_related("owner_team"),
            code=self.kwargs["code"],
        )

    @property
    def csv_filename(self):
        return f"{self.interface.code}-mappings.csv"

    def base_queryset(self):
        return (
            MappingSpec.objects.for_user(self.request.user)
            .filter(interface=self.interface)
            .select_related("updated_by", "approved_by")
            .annotate(row_count=Count("rules"))
            .defer("source_schema", "target_schema")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["interface"] = self.interface
        context["can_change"] = policy.can_change(self.request.user, self.interface)
        return context


class SpecCreate(InterfaceChildCreateMixin, WriteAccessMixin, LiveValidationMixin, CreateView):
    child_model = MappingSpec
    form_class = SpecForm
    template_name = "mappings/spec_form.html"

    def form_valid(self, form):
        try:
            self.object = services.create_spec(self.request.user, form.instance)
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Created {self.object}. Add its rows below.")
        return redirect(editor_url(self.object))

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            interface=self.interface,
            title=f"New mapping for {self.interface.code}",
            cancel_url=reverse("mappings:spec_list", args=[self.interface.code]),
            **kwargs,
        )


class SpecUpdate(WriteAccessMixin, LiveValidationMixin, UpdateView):
    """The spec's description and sides; saved with the revision the form was read at."""

    form_class = SpecForm
    template_name = "mappings/spec_form.html"

    def get_queryset(self):
        return spec_queryset(self.request.user)

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        if self.object.is_frozen:
            messages.info(request, f"{self.object} is approved and frozen; start a new draft.")
            return redirect(editor_url(self.object))
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            self.object = services.save_spec(
                self.request.user, form.instance, form.cleaned_data["revision"]
            )
        except services.SpecConflict as exc:
            form.add_error(None, str(exc))
            return self.render_to_response(self.get_context_data(form=form, conflict=exc))
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Saved {self.object}.")
        return redirect(editor_url(self.object))

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            interface=self.object.interface,
            title=f"Edit {self.object}",
            cancel_url=editor_url(self.object),
            **kwargs,
        )


# --------------------------------------------------------------------------------------
# The editor
# --------------------------------------------------------------------------------------


@login_required
@require_safe
def spec_detail(request, pk):
    """The mapping sheet of one version with its review actions, live preview and tests.

    Queries do not grow with rows or tests: the spec with its interface and people, the
    rows, the tests, the versions of the same mapping, the history and the user's teams.
    """
    spec = get_object_or_404(
        spec_queryset(request.user)
        .select_related("source_spec__interface", "target_spec__interface")
        .defer(*[f"{side}_spec__{name}" for side in ("source", "target") for name in BIG]),
        pk=pk,
    )
    if request.htmx and request.htmx.target == "row-editor":
        # Closing the row editor: back to its placeholder; the preview drops the unsaved row.
        response = render(
            request,
            "mappings/partials/row_editor_placeholder.html",
            {"spec": spec, "can_edit": policy.can_change(request.user, spec)},
        )
        response["HX-Trigger-After-Swap"] = json.dumps(
            {"rows-changed": {"revision": spec.revision}}
        )
        return response
    rules = list(spec.rules.all())
    tests = list(spec.tests.all())
    for test in tests:
        test.source_summary = source_summary(spec, test)
    versions = list(
        MappingSpec.objects.filter(interface_id=spec.interface_id, name=spec.name)
        .only("id", "version", "status")
        .order_by("-version")
    )
    can_change = policy.can_change(request.user, spec)
    first_test = tests[0] if tests else None
    return render(
        request,
        "mappings/spec_detail.html",
        {
            "spec": spec,
            "interface": spec.interface,
            "rows": row_views(rules),
            "tests": tests,
            "versions": versions,
            "compare_with": spec.based_on_id
            or next((v.pk for v in versions if v.version < spec.version), None),
            "open_version": next(
                (v for v in versions if v.status != SpecStatus.APPROVED and v.pk != spec.pk), None
            ),
            "source_side": side_label(spec, "source"),
            "target_side": side_label(spec, "target"),
            "can_change": can_change,
            "can_edit": can_change and not spec.is_frozen,
            "can_approve": services.can_approve(request.user, spec),
            "sample": sample_text(spec, first_test) if first_test else "",
            "history": audit.history_for(spec)[:HISTORY_ENTRIES],
        },
    )


def source_summary(spec: MappingSpec, test, limit: int = 120) -> str:
    """A mapping test's source on one line, cut to ``limit`` characters."""
    if spec.source_format == "json":
        text = json.dumps(test.source_payload, ensure_ascii=False)
    else:
        text = " ".join((test.source_text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sample_text(spec: MappingSpec, test) -> str:
    """A mapping test's source as the preview's sample textarea shows it."""
    if spec.source_format == "json":
        return json.dumps(test.source_payload, indent=2, ensure_ascii=False)
    return test.source_text


@login_required
@require_POST
def spec_status_update(request, pk):
    """Submit for review, return to draft, or approve, at the revision the page showed."""
    spec = spec_or_404(request, pk)
    require_writer(request)
    action = request.POST.get("action", "")
    operations = {
        "submit": (services.submit_for_review, "Submitted {spec} for review."),
        "return": (services.return_to_draft, "Returned {spec} to draft."),
        "approve": (services.approve_spec, "Approved {spec}; this version is now frozen."),
    }
    if action not in operations:
        messages.error(request, "Choose submit, return or approve.")
        return redirect(editor_url(spec))
    operation, done = operations[action]
    revision = posted_revision(request)
    try:
        operation(request.user, spec, revision)
    except services.SpecConflict as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        if hasattr(exc, "error_dict") and "rules" in exc.message_dict:
            problems = exc.message_dict["rules"]
            messages.error(
                request,
                f"{spec} does not compile yet ({len(problems)} problem"
                f"{'s' if len(problems) != 1 else ''}): " + "; ".join(problems[:10]),
            )
        else:
            messages.error(request, error_text(exc))
    else:
        messages.success(request, done.format(spec=spec))
    return redirect(editor_url(spec))


@login_required
@require_POST
def spec_draft_create(request, pk):
    """A new draft version copied from an approved one."""
    spec = spec_or_404(request, pk)
    require_writer(request)
    try:
        draft = services.start_new_draft(request.user, spec)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect(editor_url(spec))
    messages.success(request, f"Started {draft} from version {spec.version}.")
    return redirect(editor_url(draft))


@login_required
@require_http_methods(["GET", "POST"])
def spec_delete(request, pk):
    spec = spec_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, spec)
    if spec.is_frozen:
        messages.error(request, f"{spec} is approved; approved versions are kept as the record.")
        return redirect(editor_url(spec))
    if request.method == "POST":
        try:
            services.delete_spec(request.user, spec)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
            return redirect(editor_url(spec))
        messages.success(request, f"Deleted {spec}.")
        return redirect("mappings:spec_list", code=spec.interface.code)
    return render(
        request,
        "mappings/spec_confirm_delete.html",
        {"spec": spec, "row_count": spec.rules.count(), "test_count": spec.tests.count()},
    )


# --------------------------------------------------------------------------------------
# Mapping sheets
# --------------------------------------------------------------------------------------


def _sheet_name(spec: MappingSpec, extension: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in spec.name).strip("-")
    return f"{spec.interface.code}-{safe or 'mapping'}-v{spec.version}.{extension}"


@login_required
@require_safe
def spec_export_csv(request, pk):
    spec = spec_or_404(request, pk)
    response = HttpResponse(
        sheets.write_csv(services.sheet_rows(spec)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_sheet_name(spec, "csv")}"'
    return response


@login_required
@require_safe
def spec_export_xlsx(request, pk):
    spec = spec_or_404(request, pk)
    response = HttpResponse(
        sheets.write_xlsx(services.sheet_rows(spec)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="{_sheet_name(spec, "xlsx")}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def spec_import(request, pk):
    """Replaces every row with a mapping sheet's, all or nothing; problems by row and column."""
    spec = spec_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, spec)
    problems: list[str] = []
    conflict = None
    if request.method == "POST":
        form = SheetImportForm(request.POST, request.FILES, revision=spec.revision)
        if form.is_valid():
            data, filename = form.data_and_name()
            try:
                result = services.import_sheet(
                    request.user, spec, data, filename, form.cleaned_data["revision"]
                )
            except services.SpecConflict as exc:
                conflict = exc
            except sheets.SheetError as exc:
                problems = exc.messages
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(
                    request,
                    f"Imported {result.rows} row{'s' if result.rows != 1 else ''} from "
                    f"{filename} (replacing {result.replaced}).",
                )
                if result.ignored_columns:
                    messages.info(
                        request,
                        "Ignored columns no mapping sheet has: "
                        + ", ".join(result.ignored_columns),
                    )
                return redirect(editor_url(spec))
    else:
        form = SheetImportForm(revision=spec.revision)
    return render(
        request,
        "mappings/spec_import.html",
        {"spec": spec, "form": form, "problems": problems, "conflict": conflict},
    )


# --------------------------------------------------------------------------------------
# Versions, coverage, suggestions
# --------------------------------------------------------------------------------------


@login_required
@require_safe
def spec_diff(request, pk):
    """Two versions of one mapping side by side; by default this one against its base."""
    spec = spec_or_404(request, pk)
    versions = list(
        MappingSpec.objects.filter(interface_id=spec.interface_id, name=spec.name).order_by(
            "-version"
        )
    )
    by_id = {str(version.pk): version for version in versions}
    new = by_id.get(request.GET.get("new", ""), spec)
    default_old = spec.based_on_id or next(
        (v.pk for v in versions if v.version < new.version), None
    )
    old = by_id.get(request.GET.get("old", ""), by_id.get(str(default_old)))
    result = None
    if old is not None and old.pk != new.pk:
        if old.version > new.version:
            old, new = new, old
        result = services.diff_versions(old, new)
        for change in result.rows:
            change.old_text = _rule_text(change.old)
            change.new_text = _rule_text(change.new)
        result.field_rows = [
            (name, _field_value(old, name), _field_value(new, name)) for name in result.spec_fields
        ]
    return render(
        request,
        "mappings/spec_diff.html",
        {"spec": spec, "versions": versions, "old": old, "new": new, "diff": result},
    )


def _rule_text(rule: FieldRule | None) -> str:
    if rule is None:
        return ""
    view = row_views([rule])[0]
    extra = [view.rule_text]
    if view.lookup_table:
        extra.append(f"table {view.lookup_table}")
    if view.default:
        extra.append(f"default {view.default}")
    return " · ".join(extra)


def _field_value(spec: MappingSpec, name: str) -> str:
    value = getattr(spec, f"{name}_id" if name.endswith("_spec") else name)
    if value is None or value == "":
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


@login_required
@require_safe
def spec_coverage(request, pk):
    spec = spec_or_404(request, pk)
    report = coverage.spec_coverage(spec)
    return render(request, "mappings/spec_coverage.html", {"spec": spec, "report": report})


def _suggestion_key(target_path: str, source_path: str) -> str:
    return json.dumps([target_path, source_path], ensure_ascii=False)


def _hidden(request, spec: MappingSpec) -> set[str]:
    return set(request.session.get(HIDDEN_SUGGESTIONS_KEY, {}).get(str(spec.pk), []))


def _suggestions(spec: MappingSpec) -> tuple[list[suggest.Suggestion], str]:
    """The suggestions for the target fields no row maps yet, or why there are none."""
    try:
        source = schemas.side_schema(spec, "source")
        target = schemas.side_schema(spec, "target")
    except schemas.SchemaProblem as exc:
        return [], f"The schemas cannot be read: {exc}."
    if source is None or target is None:
        missing = " and ".join(
            side for side, schema in (("source", source), ("target", target)) if schema is None
        )
        return [], f"Suggestions need both schemas; this mapping has no {missing} schema."
    mapped = list(spec.rules.values_list("target_path", flat=True))
    found = suggest.suggest(
        source,
        target,
        existing_target_paths=mapped,
        limit_per_target=SUGGESTIONS_PER_TARGET,
    )
    return found, ""


@login_required
@require_http_methods(["GET", "POST"])
def spec_suggestions(request, pk):
    """Source fields proposed for each unmapped target field: accept some (one new row each,
    all in one go) or hide them (for this user's session)."""
    spec = spec_or_404(request, pk)
    can_edit = policy.can_change(request.user, spec) and not spec.is_frozen
    found, reason = _suggestions(spec)
    hidden = _hidden(request, spec)
    errors: list[str] = []
    if request.method == "POST":
        require_writer(request)
        policy.require_change(request.user, spec)
        by_key = {_suggestion_key(s.target_path, s.source_path): s for s in found}
        if "reject" in request.POST or "unhide" in request.POST:
            if "reject" in request.POST:
                hidden.add(request.POST["reject"])
            else:
                hidden = set()
            store = request.session.get(HIDDEN_SUGGESTIONS_KEY, {})
            store[str(spec.pk)] = sorted(key for key in hidden if key in by_key)
            request.session[HIDDEN_SUGGESTIONS_KEY] = store
            return redirect("mappings:spec_suggestions", pk=spec.pk)
        keys = request.POST.getlist("accept")
        unknown = [key for key in keys if key not in by_key]
        chosen = [by_key[key] for key in keys if key in by_key]
        if unknown:
            errors.append(
                f"{len(unknown)} chosen suggestion{'s are' if len(unknown) != 1 else ' is'} no "
                "longer offered (the rows or schemas changed); choose again."
            )
        else:
            try:
                added = services.accept_suggestions(
                    request.user, spec, chosen, posted_revision(request)
                )
            except services.SpecConflict as exc:
                errors.append(str(exc))
            except ValidationError as exc:
                errors.extend(exc.messages)
            else:
                messages.success(
                    request,
                    f"Added {len(added)} row{'s' if len(added) != 1 else ''} from suggestions.",
                )
                return redirect(editor_url(spec, "rows"))
    show_hidden = request.GET.get("hidden") == "1"
    shown = []
    for item in found:
        key = _suggestion_key(item.target_path, item.source_path)
        if key in hidden and not show_hidden:
            continue
        params = json.dumps(item.rule_params, ensure_ascii=False) if item.rule_params else ""
        shown.append((item, key, key in hidden, params))
    return render(
        request,
        "mappings/spec_suggestions.html",
        {
            "spec": spec,
            "suggestions": shown,
            "hidden_count": len(
                hidden & {_suggestion_key(s.target_path, s.source_path) for s in found}
            ),
            "show_hidden": show_hidden,
            "reason": reason,
            "errors": errors,
            "chosen": set(request.POST.getlist("accept")) if request.method == "POST" else None,
            "can_edit": can_edit,
        },
    )
