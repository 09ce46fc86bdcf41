"""Browser views of an interface's baseline of known findings: read it, accept a finding, revoke one."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe
from django.views.generic import DeleteView, FormView

from apps.accounts.mixins import LiveValidationMixin, apply_validation_error
from apps.catalog.models import Interface
from apps.testing import baseline
from apps.testing.models import KnownFinding, TestResult


class KnownFindingForm(forms.Form):
    case = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Any case", help_text="Blank: any case."
    )
    check_name = forms.ChoiceField(label="Check", required=False)
    contains = forms.CharField(
        required=False,
        max_length=baseline.CONTAINS_MAX_CHARS,
        help_text="Text that must appear in the check's message or one of its violations. "
        "Blank: anything.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    expires_on = forms.DateField(
        required=False,
        label="Accepted until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: until revoked. After this day the failure counts again.",
    )

    def __init__(self, *args, interface, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.interface = interface
        self.fields["case"].queryset = interface.test_cases.order_by("name")
        self.fields["case"].label_from_instance = lambda case: case.name
        choices = [("", "Any check")] + [(name, name) for name in baseline.CHECK_NAMES]
        # A failed assertion is a check of its own, named after it: offer the one being accepted.
        wanted = (self.data.get(self.add_prefix("check_name")) if self.is_bound else None) or (
            self.initial.get("check_name")
        )
        if wanted and wanted not in baseline.CHECK_NAMES and baseline.is_check_name(wanted):
            choices.append((wanted, wanted))
        self.fields["check_name"].choices = choices

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            baseline.validate_finding(
                interface=self.interface,
                case=cleaned.get("case"),
                check_name=cleaned.get("check_name", ""),
                contains=cleaned.get("contains", "").strip(),
                reason=cleaned.get("reason", ""),
                expires_on=cleaned.get("expires_on"),
                today=timezone.localdate(),
            )
        return cleaned


@login_required
@require_safe
def baseline_page(request, code):
    """An interface's known findings: those that apply today and those that have expired."""
    interface = get_object_or_404(Interface.objects.select_related("owner_team"), code=code)
    today = timezone.localdate()
    findings = interface.known_findings.select_related("case", "accepted_by").order_by(
        "-created_at", "-pk"
    )
    active, expired = [], []
    for finding in findings:
        (active if baseline.is_active(finding, today) else expired).append(finding)
    context = {
        "interface": interface,
        "active": active,
        "expired": expired,
        "can_manage": baseline.can_manage_findings(request.user, interface),
    }
    return render(request, "testing/baseline.html", context)


class FindingManagerMixin(LoginRequiredMixin):
    """Refuses every request (GET included) from a role that may never manage findings."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not baseline.may_manage_any_findings(request.user):
            raise PermissionDenied(baseline.REFUSAL)
        return super().dispatch(request, *args, **kwargs)


class KnownFindingCreate(FindingManagerMixin, LiveValidationMixin, FormView):
    """The add form; ``?result=<id>&check=<index>`` prefills it from a failed check of a run."""

    form_class = KnownFindingForm
    template_name = "form.html"

    def dispatch(self, request, *args, **kwargs):
        self.interface = get_object_or_404(Interface, code=kwargs["code"])
        if request.user.is_authenticated:
            baseline.require_manage_findings(request.user, self.interface)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["interface"] = self.interface
        return kwargs

    def get_initial(self):
        result_id, index = self.request.GET.get("result"), self.request.GET.get("check")
        if not (result_id and result_id.isdigit() and index and index.isdigit()):
            return {}
        result = (
            TestResult.objects.filter(pk=result_id, run__interface=self.interface)
            .only("pk", "case_id", "checks")
            .first()
        )
        return baseline.prefill_from_check(result, int(index)) if result else {}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title=f"Accept a known finding of {self.interface.code}", **kwargs
        )

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            finding = baseline.accept_finding(
                self.request.user,
                interface=self.interface,
                case=data["case"],
                check_name=data["check_name"],
                contains=data["contains"],
                reason=data["reason"],
                expires_on=data["expires_on"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Accepted known finding #{finding.pk}.")
        return redirect("testing:baseline", code=self.interface.code)


class KnownFindingRevoke(FindingManagerMixin, DeleteView):
    """Asks for confirmation (GET), then revokes the finding (POST)."""

    template_name = "testing/known_finding_revoke.html"
    queryset = KnownFinding.objects.select_related("interface", "case", "accepted_by")

    def get_object(self, queryset=None):
        finding = super().get_object(queryset)
        baseline.require_manage_findings(self.request.user, finding.interface)
        return finding

    def form_valid(self, form):
        code = self.object.interface.code
        baseline.revoke_finding(self.request.user, self.object)
        messages.success(
            self.request,
            f"Revoked known finding #{self.kwargs['pk']}: it counts as a failure again.",
        )
        return redirect("testing:baseline", code=code)
