"""Browser views of a spec's rows and mapping tests, and the live preview.

Rows are edited inline on the editor through htmx: the row form loads into the editor's
``#row-editor``; a save or a delete answers with the refreshed rows table and the
``rows-changed`` event (carrying the spec's new revision), which the preview listens for.
Every view also works without htmx (a full page, then a redirect to the editor).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import policy
from apps.accounts.mixins import apply_validation_error
from apps.mappings import engine, services
from apps.mappings.forms import MappingTestForm, RuleForm, kind_help_rows, preview_rule
from apps.mappings.models import FieldRule, MappingTest
from apps.mappings.spec_views import (
    editor_url,
    error_text,
    posted_revision,
    require_writer,
    row_views,
    sample_text,
    spec_or_404,
)

MAX_PREVIEW_CHARS = 200_000  # of the output shown; the rest is cut with a note
MAX_SAMPLE_CHARS = 1_000_000


def _rule_or_404(request, pk) -> FieldRule:
    return get_object_or_404(
        FieldRule.objects.for_user(request.user).select_related(
            "spec__interface__owner_team", "spec__updated_by"
        ),
        pk=pk,
    )


def _rows_changed(response, spec):
    """Tells the page the rows changed and which revision the spec is at now (the editor's
    forms take it, so the user's next save does not conflict with their own last one).
    After the swap: the preview then reads the page without the closed row form."""
    response["HX-Trigger-After-Swap"] = json.dumps({"rows-changed": {"revision": spec.revision}})
    return response


def _rows_table(request, spec, *, error="", conflict=None, oob=False) -> str:
    return render_to_string(
        "mappings/partials/rows_table.html",
        {
            "spec": spec,
            "rows": row_views(spec.rules.all()),
            "can_edit": policy.can_change(request.user, spec) and not spec.is_frozen,
            "error": error,
            "conflict": conflict,
            "oob": oob,
        },
        request=request,
    )


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def _rule_form(request, spec, rule: FieldRule):
    """The row form: shows it (GET), or saves it through services.save_rule (POST)."""
    conflict = None
    if request.method == "POST":
        form = RuleForm(request.POST, instance=rule)
        if form.is_valid():
            try:
                saved = services.save_rule(request.user, form.instance, form.expected_revision)
            except services.SpecConflict as exc:
                conflict = exc
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                done = f"Saved row {saved.position} ({saved.target_path})."
                if not request.htmx:
                    messages.success(request, done)
                    return redirect(editor_url(spec, f"row-{saved.position}"))
                html = render_to_string(
                    "mappings/partials/row_editor_placeholder.html",
                    {"spec": spec, "can_edit": True, "done": done},
                    request=request,
                ) + _rows_table(request, spec, oob=True)
                return _rows_changed(HttpResponse(html), spec)
    else:
        form = RuleForm(instance=rule)
        if spec.is_frozen:
            form.add_error(None, str(services.SpecFrozen(spec).message))
    context = {
        "spec": spec,
        "form": form,
        "rule": rule,
        "conflict": conflict,
        "kinds": kind_help_rows(),
        "action": request.path,
    }
    if request.htmx:
        return render(request, "mappings/partials/row_form.html", context)
    context["sample"] = ""
    first = spec.tests.first()
    if first is not None:
        context["tests"] = list(spec.tests.all())
        context["sample"] = sample_text(spec, first)
    return render(request, "mappings/rule_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def rule_create(request, pk):
    spec = spec_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, spec)
    return _rule_form(request, spec, FieldRule(spec=spec))


@login_required
@require_http_methods(["GET", "POST"])
def rule_update(request, pk):
    rule = _rule_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, rule.spec)
    return _rule_form(request, rule.spec, rule)


@login_required
@require_http_methods(["GET", "POST"])
def rule_delete(request, pk):
    """Asks for confirmation (GET; htmx pages ask in the browser), then deletes the row at
    the revision the page showed (POST)."""
    rule = _rule_or_404(request, pk)
    spec = rule.spec
    require_writer(request)
    policy.require_change(request.user, spec)
    if request.method == "GET":
        return render(request, "mappings/rule_confirm_delete.html", {"rule": rule, "spec": spec})
    try:
        services.delete_rule(request.user, rule, posted_revision(request))
    except services.SpecConflict as exc:
        if request.htmx:
            return HttpResponse(_rows_table(request, spec, conflict=exc))
        messages.error(request, str(exc))
    except ValidationError as exc:
        if request.htmx:
            return HttpResponse(_rows_table(request, spec, error=error_text(exc)))
        messages.error(request, error_text(exc))
    else:
        if request.htmx:
            return _rows_changed(HttpResponse(_rows_table(request, spec)), spec)
        messages.success(request, f"Deleted row {rule.position} ({rule.target_path}).")
    return redirect(editor_url(spec, "rows"))


# --------------------------------------------------------------------------------------
# Live preview
# --------------------------------------------------------------------------------------


@login_required
@require_POST
def spec_preview(request, pk):
    """Transforms the sample with the saved rows, or with one edited row in place of its
    saved version (``row_preview``: the row form's unsaved values). Read-only; answers a
    fragment with the output and every problem, whatever the sample holds. Open to every
    reader of the spec, as the API's transform is: nothing is written."""
    spec = spec_or_404(request, pk)
    sample = request.POST.get("sample", "")
    loaded = None
    if request.htmx and request.htmx.trigger_name == "load_test":
        test_id = request.POST.get("load_test", "")
        loaded = spec.tests.filter(pk=int(test_id)).first() if test_id.isdigit() else None
        if loaded is not None:
            sample = sample_text(spec, loaded)
    edited, notes, rows = None, [], None
    if request.POST.get("row_preview"):
        edited, notes = preview_rule(request.POST, spec)
        rows = services.rows_with(spec, edited)
    context = {"spec": spec, "edited": edited, "notes": notes, "loaded": loaded, "sample": sample}
    if not sample.strip():
        context["empty"] = True
    elif len(sample) > MAX_SAMPLE_CHARS:
        context["too_big"] = MAX_SAMPLE_CHARS
    else:
        result = services.transform(spec, sample, rows=rows)
        context["result"] = result
        if result.output is not None:
            text = json.dumps(result.output, indent=2, ensure_ascii=False, default=str)
            context["output"] = text[:MAX_PREVIEW_CHARS]
            context["output_cut"] = len(text) > MAX_PREVIEW_CHARS
        if result.rendered is not None:
            context["rendered"] = result.rendered[:MAX_PREVIEW_CHARS]
    if not request.htmx:
        return render(request, "mappings/preview_page.html", context)
    return render(request, "mappings/partials/preview_result.html", context)


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


@login_required
@require_POST
def mapping_tests_run(request, pk):
    """Runs every mapping test of the spec (read-only) and shows pass or fail with the
    structural differences of each failure. Open to every reader of the spec."""
    spec = spec_or_404(request, pk)
    context = {"spec": spec}
    try:
        outcomes = services.run_mapping_tests(spec)
    except engine.CompileError as exc:
        context["compile_problems"] = exc.problems
    else:
        context["outcomes"] = outcomes
        context["passed"] = sum(1 for outcome in outcomes if outcome.passed)
    if request.htmx:
        return render(request, "mappings/partials/test_results.html", context)
    return render(request, "mappings/test_results.html", context)


def _mapping_test_form(request, spec, test: MappingTest, title: str):
    if request.method == "POST":
        form = MappingTestForm(request.POST, instance=test)
        if form.is_valid():
            try:
                saved = services.save_mapping_test(request.user, form.instance)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, f"Saved the mapping test {saved.name}.")
                return redirect(editor_url(spec, "tests"))
    else:
        form = MappingTestForm(instance=test)
        if spec.is_frozen:
            form.add_error(None, str(services.SpecFrozen(spec).message))
    return render(
        request,
        "mappings/mapping_test_form.html",
        {"spec": spec, "form": form, "title": title, "cancel_url": editor_url(spec, "tests")},
    )


def _test_or_404(request, pk) -> MappingTest:
    return get_object_or_404(
        MappingTest.objects.for_user(request.user).select_related("spec__interface__owner_team"),
        pk=pk,
    )


@login_required
@require_http_methods(["GET", "POST"])
def mapping_test_create(request, pk):
    spec = spec_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, spec)
    return _mapping_test_form(request, spec, MappingTest(spec=spec), f"New mapping test for {spec}")


@login_required
@require_http_methods(["GET", "POST"])
def mapping_test_update(request, pk):
    test = _test_or_404(request, pk)
    require_writer(request)
    policy.require_change(request.user, test.spec)
    return _mapping_test_form(request, test.spec, test, f"Edit the mapping test {test.name}")


@login_required
@require_http_methods(["GET", "POST"])
def mapping_test_delete(request, pk):
    test = _test_or_404(request, pk)
    spec = test.spec
    require_writer(request)
    policy.require_change(request.user, spec)
    if request.method == "POST":
        try:
            services.delete_mapping_test(request.user, test)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, f"Deleted the mapping test {test.name}.")
        return redirect(editor_url(spec, "tests"))
    return render(
        request,
        "mappings/mapping_test_confirm_delete.html",
        {"test": test, "spec": spec, "cancel_url": reverse("mappings:spec_detail", args=[spec.pk])},
    )
