"""Forms of the reconciliation pages: data sources (write-only password, file upload) and
jobs (columns as comma-separated names, the mapping as "source = target" lines, JSON for
options and normalisation). Forms check the shape of what was typed; the services check the
rest (field by field) and save."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from apps.accounts.models import Team
from apps.catalog.models import Endpoint
from apps.mappings.models import MappingSpec, SpecStatus
from apps.reconciliation import compare, services
from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind
from apps.testing.models import Phase, Severity


class DataSourceForm(forms.ModelForm):
    """A data source. The password is write-only: never rendered back, blank keeps the
    stored one; ``remove_password`` drops it. A file source takes an upload (CSV or XLSX),
    hashed while it is read."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="PostgreSQL and MySQL: stored encrypted, never shown again.",
    )
    remove_password = forms.BooleanField(required=False, label="Remove the stored password")
    upload = forms.FileField(
        required=False,
        label="CSV or XLSX file",
        help_text="CSV (comma, semicolon or tab; UTF-8) or XLSX (the first worksheet). "
        "The first line holds the column names.",
    )

    class Meta:
        model = DataSource
        fields = ["name", "owner_team", "kind", "description", "dsn", "endpoint"]
        labels = {"owner_team": "Team", "dsn": "DSN", "endpoint": "Endpoint"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "dsn": "postgresql://reader@db.example:5432/erp · mysql://reader@db:3306/crm · "
            "sqlite:///orders.db — without the password.",
            "endpoint": "HTTP sources read through a registered endpoint of the team's "
            "interfaces (its URL, credentials, egress rules and rate limit).",
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.checked_file: services.CheckedFile | None = None
        teams = Team.objects.order_by("name")
        endpoints = Endpoint.objects.select_related("interface", "environment").order_by(
            "interface__code", "environment__position"
        )
        if user is not None and not user.is_portal_admin:
            teams = teams.filter(pk__in=user.team_ids())
            endpoints = endpoints.filter(interface__owner_team__in=user.team_ids())
        self.fields["owner_team"].queryset = teams
        self.fields["endpoint"].queryset = endpoints
        self.fields["endpoint"].required = False
        self.fields["kind"].widget.attrs["data-source-kind"] = ""
        stored = self.instance.pk and "password" in (self.instance.credential_fields_set or [])
        if stored:
            self.fields[
                "password"
            ].help_text = "A password is set (stored encrypted). Leave blank to keep it."
        else:
            del self.fields["remove_password"]
        if self.instance.pk and self.instance.file_name:
            self.fields["upload"].help_text = (
                f"Holds {self.instance.file_name}. Upload a file to replace it; leave empty "
                "to keep it. " + self.fields["upload"].help_text
            )

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if not upload:
            return None
        try:
            self.checked_file = services.check_upload(upload)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return upload

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        allowed = services.CREDENTIAL_FIELDS.get(kind, ()) if kind else ()
        if cleaned.get("password") and kind and "password" not in allowed:
            self.add_error(
                "password", f"{SourceKind(kind).label} sources take no password; leave it empty."
            )
        if self.checked_file is not None and kind and kind != SourceKind.FILE:
            self.add_error("upload", "Only file sources hold a file; choose the kind File.")
        return cleaned

    def credentials(self) -> dict | None:
        """What replaces the stored credentials: None keeps them."""
        kind = self.cleaned_data.get("kind")
        allowed = services.CREDENTIAL_FIELDS.get(kind, ())
        typed = self.cleaned_data.get("password")
        if typed:
            return {"password": typed}
        if self.cleaned_data.get("remove_password"):
            return {}
        stored = self.instance.credential_fields_set or []
        if stored and not set(stored) <= set(allowed):
            return {}  # the new kind takes no such credential: drop it
        return None


# --------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------

NORMALISATION_HELP = (
    'A JSON object: column name → rules, e.g. {"amount": {"type": "number", "places": 2}}. '
    "Options: type (text, number, integer, date, datetime, boolean), trim, "
    "keep_trailing_whitespace, case_insensitive, empty_is_null (true/false), places (0–12), "
    "tolerance (a number)."
)


def _names(text: str, label: str) -> list[str]:
    names = [part.strip() for part in (text or "").split(",")]
    names = [name for name in names if name]
    seen = set()
    for name in names:
        if name in seen:
            raise forms.ValidationError(f"{name} is named twice in the {label}.")
        seen.add(name)
    return names


def parse_mapping(text: str) -> dict[str, str]:
    """``source = target`` lines (blank lines and ``#`` comments skipped) as a dict."""
    mapping: dict[str, str] = {}
    errors = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, sep, target = line.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            errors.append(f"Line {number}: write source column = target column.")
        elif source in mapping:
            errors.append(f"Line {number}: {source} is mapped twice.")
        else:
            mapping[source] = target
    if errors:
        raise forms.ValidationError(errors)
    return mapping


def mapping_text(mapping: dict) -> str:
    return "\n".join(f"{source} = {target}" for source, target in (mapping or {}).items())


class JSONObjectField(forms.JSONField):
    """A JSON textarea shown indented; an empty object shows as an empty box."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value in (None, "", {}):
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


class JobForm(forms.ModelForm):
    """A reconciliation job of one interface (set by the view); sources of its team only."""

    key_columns = forms.CharField(
        label="Key columns",
        help_text="Source column names, comma-separated: what identifies a record.",
    )
    compare_columns = forms.CharField(
        label="Compared columns",
        required=False,
        help_text="Source column names, comma-separated. Empty: only presence is compared.",
    )
    column_mapping = forms.CharField(
        label="Column mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="One “source column = target column” a line, where the names differ. "
        "Columns not listed have the same name on both sides.",
    )
    source_options = JSONObjectField(
        label="Source options",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text='JSON. HTTP: {"records_path": "$.items", "pagination": {"style": "page"}}; '
        'files: {"delimiter": ";"}.',
    )
    target_options = JSONObjectField(
        label="Target options",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="JSON, as for the source.",
    )
    normalisation = JSONObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text=NORMALISATION_HELP,
    )

    SIDE_HELP = (
        "SQL: a table name or one read-only SELECT. HTTP: the path below the endpoint's "
        "base URL. File: leave empty."
    )

    class Meta:
        model = ReconciliationJob
        fields = [
            "name",
            "description",
            "source",
            "source_dataset",
            "source_options",
            "target",
            "target_dataset",
            "target_options",
            "key_columns",
            "compare_columns",
            "column_mapping",
            "mapping_spec",
            "normalisation",
            "window",
            "window_source_column",
            "window_target_column",
            "strategy",
            "schedule_cron",
            "accuracy_target",
        ]
        labels = {
            "source": "Source data source",
            "source_dataset": "Source dataset",
            "target": "Target data source",
            "target_dataset": "Target dataset",
            "mapping_spec": "Take the mapping from",
            "window_source_column": "Source timestamp column",
            "window_target_column": "Target timestamp column",
            "schedule_cron": "Schedule",
            "accuracy_target": "Accuracy target (%)",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "source_dataset": forms.Textarea(attrs={"rows": 2, "class": "mono"}),
            "target_dataset": forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        interface = self.instance.interface
        sources = DataSource.objects.filter(owner_team_id=interface.owner_team_id).order_by("name")
        for side in ("source", "target"):
            self.fields[side].queryset = sources
            self.fields[side].empty_label = "Choose a data source"
            self.fields[side].help_text = (
                f"Data sources of {interface.owner_team.name}."
                if side == "source"
                else "Often another system's copy of the same records."
            )
            self.fields[f"{side}_dataset"].required = False
            self.fields[f"{side}_dataset"].help_text = self.SIDE_HELP
        self.fields["mapping_spec"].queryset = MappingSpec.objects.filter(
            interface_id=interface.pk, status=SpecStatus.APPROVED
        ).select_related("interface")
        self.fields["mapping_spec"].empty_label = "None: only the mapping above"
        self.fields["mapping_spec"].help_text = (
            "An approved mapping spec of this interface: its copy rows (one plain source "
            "field into one plain target field) give the column mapping; lines above win."
        )
        self.fields[
            "window"
        ].help_text = "Read only the records whose timestamp column lies in the window (UTC)."
        self.fields["strategy"].help_text = (
            "Automatic compares in the database when both sides are in one PostgreSQL "
            "database, else streams both sides through the worker."
        )
        self.fields["schedule_cron"].help_text = (
            "Cron in UTC: minute hour day-of-month month day-of-week, e.g. 0 2 * * * "
            "(02:00 every day). Empty: run by hand only."
        )
        self.fields[
            "accuracy_target"
        ].help_text = "Percent of source rows that must match; a run below it fails."
        if self.instance.pk and not self.is_bound:
            job = self.instance
            self.initial.update(
                key_columns=", ".join(job.key_columns or []),
                compare_columns=", ".join(job.compare_columns or []),
                column_mapping=mapping_text(job.column_mapping),
            )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = ReconciliationJob.objects.filter(
            interface_id=self.instance.interface_id, name=name
        ).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(
                f"{self.instance.interface.code} has a job named {name} already."
            )
        return name

    def clean_key_columns(self):
        names = _names(self.cleaned_data.get("key_columns"), "key columns")
        if not names:
            raise forms.ValidationError("Name at least one key column.")
        return names

    def clean_compare_columns(self):
        return _names(self.cleaned_data.get("compare_columns"), "compared columns")

    def clean_column_mapping(self):
        return parse_mapping(self.cleaned_data.get("column_mapping"))

    def _json_object(self, name: str) -> dict:
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Write a JSON object: {…}.")
        return value

    def clean_source_options(self):
        return self._json_object("source_options")

    def clean_target_options(self):
        return self._json_object("target_options")

    def clean_normalisation(self):
        value = self._json_object("normalisation")
        errors = []
        for column, rule in value.items():
            try:
                compare.ColumnRule.from_dict(column, rule)
            except compare.ComparisonError as exc:
                errors.append(str(exc))
        if errors:
            raise forms.ValidationError(errors)
        return value


class DefectForm(forms.Form):
    """Raising a defect from a run below its target."""

    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.HIGH)
    phase = forms.ChoiceField(choices=Phase.choices, initial=Phase.SIT, label="Phase found")
