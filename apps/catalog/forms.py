from django import forms
from django.conf import settings

from apps.accounts.models import Team
from apps.catalog.models import (
    CREDENTIAL_FIELDS,
    Endpoint,
    Environment,
    Interface,
    LifecycleStatus,
    System,
    Tag,
)


class TeamScopedForm(forms.ModelForm):
    """Offers only the user's own teams as owners (admins: all teams)."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if "owner_team" in self.fields and user is not None and not user.is_portal_admin:
            self.fields["owner_team"].queryset = Team.objects.filter(pk__in=user.team_ids())


class SystemForm(TeamScopedForm):
    class Meta:
        model = System
        fields = ["name", "kind", "business_owner", "owner_team", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class EnvironmentForm(forms.ModelForm):
    egress_allowlist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One entry a line: a network (10.20.0.0/16), an address (127.0.0.1) or a host name "
        "(erp.corp.local, *.corp.local). Endpoints here may reach these beyond the public internet.",
    )

    class Meta:
        model = Environment
        fields = [
            "name",
            "slug",
            "position",
            "is_production",
            "description",
            "egress_allowlist",
            "ca_bundle",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "ca_bundle": forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        }

    def __init__(self, *args, **kwargs):
        kwargs.pop("user", None)
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["egress_allowlist"] = "\n".join(self.instance.egress_allowlist or [])

    def clean_egress_allowlist(self):
        from apps.core import egress

        entries = [
            line.strip()
            for line in self.cleaned_data["egress_allowlist"].splitlines()
            if line.strip()
        ]
        try:
            egress.parse_allowlist(entries)
        except ValueError as exc:
            raise forms.ValidationError(str(exc))
        return entries


class InterfaceForm(TeamScopedForm):
    tags = forms.CharField(
        required=False,
        help_text="Comma separated, e.g. finance, invoices.",
        widget=forms.TextInput(),
    )

    class Meta:
        model = Interface
        fields = [
            "code",
            "name",
            "business_process",
            "source_system",
            "target_system",
            "pattern",
            "platform",
            "owner_team",
            "status",
            "criticality",
            "holds_personal_data",
            "sla_latency_ms",
            "sla_freshness_minutes",
            "expected_volume_per_day",
            "runbook",
            "monitoring_url",
            "dashboard_url",
            "strict_contracts",
        ]
        widgets = {"runbook": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source_system"].queryset = System.objects.only("id", "name").order_by("name")
        self.fields["target_system"].queryset = System.objects.only("id", "name").order_by("name")
        if self.instance.pk:
            self.initial["tags"] = ", ".join(tag.name for tag in self.instance.tags.all())
            allowed = {self.instance.status, *self.instance.allowed_next_statuses()}
            self.fields["status"].choices = [c for c in LifecycleStatus.choices if c[0] in allowed]
        else:
            self.fields["status"].choices = [
                (LifecycleStatus.PROPOSED, "Proposed"),
                (LifecycleStatus.DESIGN, "Design"),
            ]

    def clean_code(self):
        return self.cleaned_data["code"].strip().upper()

    def clean_tags(self):
        names = [
            name.strip().lower() for name in self.cleaned_data["tags"].split(",") if name.strip()
        ]
        for name in names:
            if len(name) > 50:
                raise forms.ValidationError(f"Tag '{name[:20]}…' is longer than 50 characters.")
        return list(dict.fromkeys(names))

    def tag_objects(self):
        return [Tag.objects.get_or_create(name=name)[0] for name in self.cleaned_data["tags"]]


class EndpointForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), label="API key"
    )
    username = forms.CharField(required=False)
    password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), label="Bearer token"
    )
    client_id = forms.CharField(required=False, label="Client id")
    client_secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    default_headers = forms.JSONField(
        required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 2})
    )

    CREDENTIAL_INPUTS = ("api_key", "username", "password", "token", "client_id", "client_secret")

    class Meta:
        model = Endpoint
        fields = [
            "environment",
            "base_url",
            "auth_type",
            "api_key_name",
            "token_url",
            "scopes",
            "timeout_seconds",
            "rate_limit_per_second",
            "default_headers",
        ]

    def __init__(self, *args, **kwargs):
        kwargs.pop("user", None)
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in self.instance.credential_fields_set:
                self.fields[name].help_text = "Stored (encrypted). Leave blank to keep it."

    def clean_default_headers(self):
        return self.cleaned_data["default_headers"] or {}

    def credentials(self) -> dict | None:
        """New credential values, merged with stored ones left blank; None when nothing was typed."""
        typed = {
            name: self.cleaned_data.get(name)
            for name in self.CREDENTIAL_INPUTS
            if self.cleaned_data.get(name)
        }
        allowed = CREDENTIAL_FIELDS[self.cleaned_data.get("auth_type") or self.instance.auth_type]
        if not typed:
            return None
        stored = self.instance.get_credentials() if self.instance.pk else {}
        return {name: typed.get(name) or stored.get(name, "") for name in allowed}


class SpecUploadForm(forms.Form):
    file = forms.FileField(
        required=False, help_text="OpenAPI 3.0/3.1, AsyncAPI 2.x/3.x or JSON Schema; JSON or YAML."
    )
    content = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "class": "mono"}),
        label="Or paste it",
    )
    notes = forms.CharField(required=False, max_length=300)

    def clean(self):
        cleaned = super().clean()
        upload, content = cleaned.get("file"), cleaned.get("content")
        if bool(upload) == bool(content):
            raise forms.ValidationError("Upload a file or paste the document, not both.")
        if upload and upload.size > settings.PONTIS_SPEC_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024} KB; the limit is {settings.PONTIS_SPEC_MAX_BYTES // 1024} KB."
            )
        return cleaned

    def raw(self) -> tuple[bytes | str, str]:
        upload = self.cleaned_data.get("file")
        if upload:
            return upload.read(), upload.name
        return self.cleaned_data["content"], ""
