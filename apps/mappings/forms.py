"""Browser forms of the mappings app: specs, rows, mapping tests, sheet and lookup imports.

Forms check what a form can check (JSON syntax, shapes, a target path already mapped);
the services (apps.mappings.services) check the rest and own the save. Every form that
changes a spec or its rows carries the ``revision`` the user read, so a save over someone
else's newer change is refused (services.SpecConflict), never silently made.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

from apps.accounts.models import Team
from apps.catalog.models import ApiSpec
from apps.mappings import rules, sheets
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    RuleKind,
)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# What each kind's params hold (apps.mappings.rules documents and checks them).
KIND_HELP: dict[str, tuple[str, str]] = {
    "copy": ("1 source", "no params — copies the value, null included"),
    "constant": ("no source", '"value": any JSON value'),
    "default": ("1 source", '"value": used when the source is missing, null or ""'),
    "cast": (
        "1 source",
        '"to": string, integer, number, decimal, boolean or date; "places" (decimal); '
        '"format" (date, default iso)',
    ),
    "date_format": (
        "1 source",
        '"to" (required), "from" (default iso), "from_tz", "to_tz" — iso, iso_date, '
        "%d.%m.%Y or tokens like DD.MM.YYYY",
    ),
    "concat": ("1 or more sources", '"separator" (default ""), "skip_empty" (default true)'),
    "split": ("1 source", '"separator" (required), "index" (from 0; negative from the end)'),
    "substring": ("1 source", '"start" (from 0), "length"'),
    "pad": ("1 source", '"width" (required), "fill" (one character), "side" left or right'),
    "trim": ("1 source", '"side" both, left or right; "chars" to remove'),
    "upper": ("1 source", "no params"),
    "lower": ("1 source", "no params"),
    "code_map": ("1 source", '"map": {source code: target value} (required), "default"'),
    "lookup": ("1 source", '"table": a lookup table\'s name (required), "default"'),
    "arithmetic": (
        "0 or more sources",
        '"op": + - * / (required), "operand", "places", "rounding" (half_up…), '
        '"as" number or string',
    ),
    "conditional": (
        "1 or more sources",
        '"cases": [{"equals" | "in" | "matches" | "missing": …, "then": value | '
        '"then_from": path}], "else" / "else_from"',
    ),
    "expression": ("0 or more sources", '"expression": e.g. "qty * price"'),
}

KIND_EXAMPLES: dict[str, str] = {
    "constant": '{"value": "EUR"}',
    "default": '{"value": "unknown"}',
    "cast": '{"to": "integer"}',
    "date_format": '{"from": "DD.MM.YYYY", "to": "iso_date"}',
    "concat": '{"separator": " "}',
    "split": '{"separator": "-", "index": 0}',
    "substring": '{"start": 0, "length": 3}',
    "pad": '{"width": 10, "fill": "0"}',
    "code_map": '{"map": {"N": "new", "S": "shipped"}, "default": "other"}',
    "lookup": '{"table": "countries", "default": "XX"}',
    "arithmetic": '{"op": "*", "operand": 100, "places": 2}',
    "conditional": '{"cases": [{"equals": "Y", "then": true}], "else": false}',
    "expression": '{"expression": "qty * price"}',
}


def kind_help_rows() -> list[tuple[str, str, str, str]]:
    """(kind, label, sources, params) for the row form's help table, in kind order."""
    labels = dict(RuleKind.choices)
    return [
        (kind, labels.get(kind, kind), *KIND_HELP.get(kind, ("", "")))
        for kind in rules.KINDS
        if kind in labels
    ]


class JSONTextField(forms.JSONField):
    """A JSON textarea naming itself in every error; ``shape`` "object" insists on an object.

    A blank textarea gives ``empty()``.
    """

    def __init__(self, *, label, empty=lambda: None, shape=None, rows=4, **kwargs):
        self.shape = shape
        self.empty = empty
        attrs = {"rows": rows, "class": "mono", "spellcheck": "false"}
        if "placeholder" in kwargs:
            attrs["placeholder"] = kwargs.pop("placeholder")
        super().__init__(label=label, required=False, widget=forms.Textarea(attrs=attrs), **kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip()
        if value in self.empty_values:
            return self.empty()
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{self.label} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                code="invalid",
            )
        except RecursionError:
            raise ValidationError(f"{self.label} is nested too deeply.", code="invalid")
        if self.shape == "object" and not isinstance(parsed, dict):
            raise ValidationError(
                f'{self.label} must be a JSON object such as {{"key": "value"}}.', code="wrong_type"
            )
        return JSONString(parsed) if isinstance(parsed, str) else parsed

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None or (self.shape == "object" and value == {}):
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


class RevisionField(forms.IntegerField):
    """The spec revision the user read; sent back with every change."""

    def __init__(self, **kwargs):
        super().__init__(
            widget=forms.HiddenInput(attrs={"data-spec-revision": ""}),
            min_value=1,
            error_messages={"required": "Send the revision you edited; reload the page."},
            **kwargs,
        )


def _json_rows(form: forms.Form) -> None:
    """Tall enough textareas for the pretty-printed JSON they hold, within reason."""
    for name, field in form.fields.items():
        if isinstance(field, JSONTextField):
            lines = str(form[name].value() or "").count("\n") + 1
            field.widget.attrs["rows"] = min(max(field.widget.attrs["rows"], lines), 18)


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------

SIDE_FIELDS = ("format", "schema", "spec", "operation", "part", "status")


class SpecForm(forms.ModelForm):
    """A mapping spec's name, description and both sides (the view sets ``instance.interface``).

    A side is an inline JSON Schema, or a registered API spec with an operation, a part and
    (for a response) a status; MappingSpec.clean checks that the side is usable.
    """

    source_schema = JSONTextField(
        label="Source JSON Schema",
        shape="object",
        rows=5,
        placeholder='{"type": "object", "properties": {"orderNumber": {"type": "string"}}}',
        help_text="Inline JSON Schema of the source payload; leave blank to use a registered spec.",
    )
    target_schema = JSONTextField(
        label="Target JSON Schema",
        shape="object",
        rows=5,
        placeholder='{"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}',
        help_text="Inline JSON Schema of the target payload; leave blank to use a registered spec.",
    )

    class Meta:
        model = MappingSpec
        fields = [
            "name",
            "description",
            *[f"source_{name}" for name in SIDE_FIELDS],
            *[f"target_{name}" for name in SIDE_FIELDS],
        ]
        labels = {
            "source_format": "Source format",
            "source_spec": "Source: registered spec",
            "source_operation": "Source operation",
            "source_part": "Source part",
            "source_status": "Source response status",
            "target_format": "Target format",
            "target_spec": "Target: registered spec",
            "target_operation": "Target operation",
            "target_part": "Target part",
            "target_status": "Target response status",
        }
        help_texts = {
            "source_operation": 'The operation key, e.g. "POST /orders" (AsyncAPI: the channel '
            'operation; JSON Schema documents: "schema").',
            "target_operation": 'The operation key, e.g. "POST /orders".',
            "source_status": "For a response: 200, 2XX or default; blank is the first 2XX.",
            "target_status": "For a response: 200, 2XX or default; blank is the first 2XX.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        specs = ApiSpec.objects.select_related("interface").only(
            "id", "version", "title", "label", "interface__code"
        )
        for side in ("source", "target"):
            field = self.fields[f"{side}_spec"]
            field.queryset = specs.order_by("interface__code", "-version")
            field.label_from_instance = lambda spec: (
                f"{spec.interface.code} v{spec.version} · {spec.title or 'untitled'}"
            )
            field.empty_label = "— none: use the inline JSON Schema —"
            self.fields[f"{side}_part"].choices = [("", "— (AsyncAPI and JSON Schema)")] + list(
                self.fields[f"{side}_part"].choices
            )[1:]
        if self.instance.pk:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "A mapping keeps its name; versions share it."
            self.fields["revision"] = RevisionField(initial=self.instance.revision)
        _json_rows(self)

    def sections(self):
        def bound(names):
            return [self[name] for name in names if name in self.fields]

        return [
            ("Mapping", bound(["name", "description"])),
            ("Source", bound([f"source_{name}" for name in SIDE_FIELDS])),
            ("Target", bound([f"target_{name}" for name in SIDE_FIELDS])),
        ]


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def source_list(text: str) -> list[str]:
    """Source paths typed as a mapping sheet holds them: by commas, semicolons or lines."""
    return sheets.split_sources(text or "")


class RuleForm(forms.ModelForm):
    """One row of a spec (the view sets ``instance.spec``). Fields are prefixed ``row-`` so
    the live preview can read them next to its own sample field."""

    prefix = "row"

    source_paths = forms.CharField(
        required=False,
        label="Source field(s)",
        help_text="Paths such as customer.id or lines[*].sku; several separated by commas.",
    )
    params = JSONTextField(
        label="Params",
        shape="object",
        empty=dict,
        rows=3,
        placeholder='{"to": "integer"}',
        help_text="A JSON object; what each kind takes is listed below the form.",
    )

    class Meta:
        model = FieldRule
        fields = [
            "position",
            "target_path",
            "source_paths",
            "kind",
            "params",
            "required",
            "target_type",
            "notes",
            "example",
        ]
        labels = {
            "position": "Row #",
            "target_path": "Target field",
            "required": "Required in the target",
        }
        help_texts = {"target_path": "Path in the target, e.g. order.id or items[*].code."}
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["revision"] = RevisionField(initial=self.instance.spec.revision)
        self.initial["source_paths"] = ", ".join(self.instance.source_paths or [])
        self.fields["target_path"].widget.attrs.update({"class": "mono", "autocomplete": "off"})
        self.fields["source_paths"].widget.attrs.update({"class": "mono", "autocomplete": "off"})
        self.fields["position"].widget.attrs["min"] = 0
        if not self.instance.pk and not self.is_bound:
            last = max((rule.position for rule in self.instance.spec.rules.all()), default=0)
            self.initial["position"] = last + 1
        _json_rows(self)

    def clean_source_paths(self):
        return source_list(self.cleaned_data["source_paths"])

    def clean(self):
        cleaned = super().clean()
        target = cleaned.get("target_path")
        if target:
            clash = (
                FieldRule.objects.filter(spec=self.instance.spec, target_path=target)
                .exclude(pk=self.instance.pk)
                .values_list("position", flat=True)
                .first()
            )
            if clash is not None:
                self.add_error("target_path", f"Row {clash} already maps {target}.")
        return cleaned

    def _update_errors(self, errors):
        # A field that failed on its own (params that are not JSON) keeps its own message:
        # the row check ran with the field's old value and would only add noise.
        if hasattr(errors, "error_dict"):
            errors.error_dict = {
                name: found for name, found in errors.error_dict.items() if name not in self._errors
            }
        super()._update_errors(errors)

    @property
    def expected_revision(self) -> int:
        return self.cleaned_data["revision"]


def preview_rule(data, spec: MappingSpec) -> tuple[FieldRule, list[str]]:
    """The row a row form holds right now, read leniently for the live preview: unreadable
    values are left out and reported, so the preview can say what is wrong with them."""
    prefix = RuleForm.prefix + "-"

    def text(name: str) -> str:
        return str(data.get(prefix + name, "") or "")

    problems = []
    rule = FieldRule(spec=spec)
    raw_pk = data.get("row_pk", "")
    rule.pk = int(raw_pk) if str(raw_pk).isdigit() else None
    position = text("position").strip()
    rule.position = int(position) if position.isdigit() else 0
    rule.target_path = text("target_path").strip()
    rule.source_paths = source_list(text("source_paths"))
    rule.kind = text("kind") or "copy"
    rule.required = text("required").lower() in {"on", "true", "1"}
    rule.target_type = text("target_type").strip()
    params = text("params").strip()
    rule.params = {}
    if params:
        try:
            parsed = json.loads(params)
        except (ValueError, RecursionError) as exc:
            problems.append(f"Params are not valid JSON yet: {exc}.")
        else:
            if isinstance(parsed, dict):
                rule.params = parsed
            else:
                problems.append("Params must be a JSON object.")
    if not rule.target_path:
        problems.append("The row has no target field yet.")
    return rule, problems


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


class MappingTestForm(forms.ModelForm):
    """A sample source and the target the spec must make of it. JSON sources are JSON;
    XML and CSV sources are text (the view sets ``instance.spec``)."""

    source_payload = JSONTextField(
        label="Source (JSON)",
        rows=8,
        placeholder='{"orderNumber": "SO-1", "state": "N"}',
    )
    expected_payload = JSONTextField(
        label="Expected target (JSON)",
        rows=8,
        placeholder='{"order": {"id": "SO-1", "status": "new"}}',
        help_text="The target tree the mapping must make (for XML and CSV targets: the tree "
        "before rendering).",
    )

    class Meta:
        model = MappingTest
        fields = ["name", "source_payload", "source_text", "expected_payload", "notes"]
        labels = {"source_text": "Source text"}
        widgets = {
            "source_text": forms.Textarea(
                attrs={"rows": 8, "class": "mono", "spellcheck": "false"}
            ),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        spec = self.instance.spec
        if spec.source_format == "json":
            del self.fields["source_text"]
        else:
            del self.fields["source_payload"]
            self.fields["source_text"].label = f"Source ({spec.get_source_format_display()})"
            self.fields["source_text"].required = True
        _json_rows(self)

    def clean_name(self):
        name = self.cleaned_data["name"]
        others = MappingTest.objects.filter(spec=self.instance.spec, name=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise ValidationError(f"This mapping already has a test named {name!r}.")
        return name


# --------------------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------------------


class UploadForm(forms.Form):
    """One file, at most MAX_UPLOAD_BYTES."""

    accept = ".csv,.xlsx"
    file = forms.FileField(help_text="A CSV (UTF-8) or XLSX file.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs["accept"] = self.accept

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                f"The file is {upload.size // (1024 * 1024)} MB; the limit is "
                f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
        return upload

    def data_and_name(self) -> tuple[bytes, str]:
        upload = self.cleaned_data["file"]
        return upload.read(), upload.name


class SheetImportForm(UploadForm):
    file = forms.FileField(
        label="Mapping sheet",
        help_text="CSV or XLSX with a header row: target field, target type, required, source "
        "field, transformation rule, lookup table, default, notes, example.",
    )

    def __init__(self, *args, revision=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["revision"] = RevisionField(initial=revision)


class LookupImportForm(UploadForm):
    file = forms.FileField(
        label="Entries file",
        help_text="CSV or XLSX with a header row naming the key and value columns; it "
        "replaces every entry of the table.",
    )


# --------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------


class LookupTableForm(forms.ModelForm):
    class Meta:
        model = LookupTable
        fields = ["name", "owner_team", "description"]
        help_texts = {
            "name": "Lookup rows name the table by this name.",
            "owner_team": "Its writers change the table; blank: estate-wide, changed by admins.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        teams = Team.objects.order_by("name")
        if user is not None and not user.is_portal_admin:
            teams = teams.filter(pk__in=user.team_ids())
            self.fields["owner_team"].required = True
        self.fields["owner_team"].queryset = teams
        self.fields["owner_team"].empty_label = "— estate-wide (admins) —"


class LookupEntryForm(forms.ModelForm):
    class Meta:
        model = LookupEntry
        fields = ["key", "value"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].widget.attrs.update({"class": "mono", "autocomplete": "off"})
        self.fields["value"].widget.attrs.update({"class": "mono", "autocomplete": "off"})

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if not key:
            raise ValidationError("The key is empty.")
        table = self.instance.table
        if LookupEntry.objects.filter(table=table, key=key).exclude(pk=self.instance.pk).exists():
            raise ValidationError(f"{table.name} already has the key {key!r}.")
        return key
