"""Browser views of manual test cases: record a tester's result, download its evidence files."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_safe
from django.views.generic import FormView

from apps.accounts import policy
from apps.accounts.mixins import WriteAccessMixin, apply_validation_error
from apps.catalog.models import Environment
from apps.testing import manual
from apps.testing.models import TestCase, TestKind


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of files (the domain function enforces how many and how big)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        clean_one = super().clean
        if isinstance(data, list | tuple):
            return [clean_one(item, initial) for item in data]
        return [clean_one(data, initial)] if data else []


class ManualResultForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("position", "name"))
    outcome = forms.ChoiceField(choices=manual.ManualOutcome.choices, widget=forms.RadioSelect)
    notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What you saw. Required unless the case passed.",
    )
    files = MultipleFileField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = manual.human_size(settings.PONTIS_EVIDENCE_MAX_UPLOAD_BYTES)
        self.fields["files"].help_text = (
            f"Screenshots, logs, exports: at most {manual.MAX_FILES_PER_RESULT} files "
            f"of up to {limit} each."
        )


class RecordManualResult(WriteAccessMixin, FormView):
    """The case's steps and expected result above a form for the outcome, notes and files."""

    form_class = ManualResultForm
    template_name = "testing/manual_record.html"

    def dispatch(self, request, *args, **kwargs):
        # Anonymous users and read-only roles are refused by WriteAccessMixin before any lookup.
        if request.user.is_authenticated and request.user.can_write:
            self.case = get_object_or_404(
                TestCase.objects.select_related("interface"), pk=kwargs["pk"], kind=TestKind.MANUAL
            )
            policy.require_change(request.user, self.case.interface)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(case=self.case, **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            run = manual.record_manual_result(
                self.request.user,
                self.case,
                data["environment"],
                data["outcome"],
                data["notes"],
                data["files"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Recorded {data['outcome']} for {self.case.name}.")
        return redirect("testing:run_detail", pk=run.pk)


@login_required
@require_safe
def evidence_file(request, pk):
    evidence = get_object_or_404(manual.visible_evidence_files(request.user), pk=pk)
    return manual.as_attachment(evidence)
