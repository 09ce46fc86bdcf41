"""Browser view plumbing built on the permission policy: write access, audited forms, live validation."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.generic import CreateView, DeleteView, UpdateView
from django.views.generic.edit import FormMixin

from apps.accounts import policy
from apps.core import audit


class WriteAccessMixin(LoginRequiredMixin):
    """Refuses every request (GET included) from a role that cannot write, before any work."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.can_write:
            raise PermissionDenied("Your role is read-only.")
        return super().dispatch(request, *args, **kwargs)

    def get_object(self, queryset=None):
        obj = super().get_object(queryset)
        policy.require_change(self.request.user, obj)
        return obj


class LiveValidationMixin(FormMixin):
    """htmx posts the form with ``_validate`` while the user types; answer that field's errors only."""

    def post(self, request, *args, **kwargs):
        if request.htmx and "_validate" in request.POST:
            form = self.get_form()
            form.is_valid()
            name = request.htmx.trigger_name or ""
            field = form[name] if name in form.fields else None
            errors = field.errors if field is not None else form.non_field_errors()
            return HttpResponse(render_to_string("partials/field_errors.html", {"errors": errors}))
        return super().post(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        for name, field in form.fields.items():
            if field.widget.input_type == "file" if hasattr(field.widget, "input_type") else False:
                continue
            field.widget.attrs.update(
                {
                    "hx-post": self.request.path,
                    "hx-trigger": "change, input changed delay:500ms",
                    "hx-target": f"#errors-{form.add_prefix(name)}",
                    "hx-include": "closest form",
                    "hx-vals": '{"_validate": "1"}',
                }
            )
        return form


def apply_validation_error(form, exc: ValidationError):
    """Puts a domain ValidationError onto the form's fields (unknown fields go to the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class AuditedDeleteView(WriteAccessMixin, DeleteView):
    """Asks for confirmation (GET), then deletes with an audit entry (POST)."""

    template_name = "confirm_delete.html"

    def form_valid(self, form):
        obj = self.object
        try:
            audit.delete_with_audit(self.request.user, obj)
        except ProtectedError as exc:
            related = sorted({str(item) for item in exc.protected_objects})[:5]
            messages.error(
                self.request, f"{obj} is still used by: {', '.join(related)}. Remove those first."
            )
            return redirect(obj.get_absolute_url())
        messages.success(self.request, f"Deleted {obj}.")
        return redirect(self.get_success_url())


class AuditedFormMixin(WriteAccessMixin, LiveValidationMixin):
    """Saves the form's object through ``audit.save_with_audit``; domain errors become form errors."""

    template_name = "form.html"
    success_verb = "Saved"

    def m2m_values(self, form) -> dict:
        return {}

    def refusal(self, form) -> str | None:
        """Why this user may not save this form, or None."""
        return None

    def form_valid(self, form):
        refusal = self.refusal(form)
        if refusal:
            form.add_error(None, refusal)
            return self.form_invalid(form)
        try:
            self.object = audit.save_with_audit(
                self.request.user, form.instance, m2m=self.m2m_values(form)
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"{self.success_verb} {self.object}.")
        return redirect(self.object.get_absolute_url())


class AuditedCreateView(AuditedFormMixin, CreateView):
    success_verb = "Created"
    forbidden_message = "You may only create objects owned by your own teams."

    def check_team(self, form) -> bool:
        team = form.cleaned_data.get("owner_team")
        return policy.can_create_for_team(self.request.user, team.pk if team else None)

    def refusal(self, form):
        return None if self.check_team(form) else self.forbidden_message


class AuditedUpdateView(AuditedFormMixin, UpdateView):
    def refusal(self, form):
        team = form.cleaned_data.get("owner_team")
        if team is not None and not policy.can_create_for_team(self.request.user, team.pk):
            return "You may only give objects to your own teams."
        return None
