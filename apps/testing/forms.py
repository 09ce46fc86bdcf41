"""Browser forms of the testing app."""

import copy
import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

from apps.testing import services
from apps.testing.case_json import EDITABLE_FIELDS, shape_problem
from apps.testing.models import HttpMethod, TestCase

MAX_TAG_LENGTH = 50  # TestRun.tag, the tag a run selects cases by, holds at most 50 characters


class JSONTextField(forms.JSONField):
    """A JSON textarea that names its field in every error and insists on the field's JSON shape.

    ``shape`` is the field's key in ``case_json.JSON_SHAPES`` (None: any JSON value);
    ``empty`` makes the value of a blank textarea.
    """

    def __init__(self, *, label, empty, shape=None, rows=3, placeholder="", **kwargs):
        self.shape = shape
        self.empty = empty
        widget = forms.Textarea(attrs={"rows": rows, "class": "mono", "placeholder": placeholder})
        super().__init__(label=label, required=False, widget=widget, **kwargs)

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
        if self.shape:
            problem = shape_problem(self.shape, parsed, self.label)
            if problem:
                raise ValidationError(problem, code="wrong_type")
        return JSONString(parsed) if isinstance(parsed, str) else parsed

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None or value == {} or value == []:
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


class TestCaseForm(forms.ModelForm):
    """A test case of one interface (the view sets ``instance.interface``).

    ``clean`` runs ``services.validate_case`` on the case as it would be saved, so the form
    refuses exactly what the API refuses, each error on its own field.
    """

    __test__ = False  # not a pytest class

    query = JSONTextField(
        shape="query", label="Query parameters", empty=dict, placeholder='{"status": "open"}'
    )
    headers = JSONTextField(
        shape="headers", label="Headers", empty=dict, placeholder='{"Accept": "application/json"}'
    )
    body = JSONTextField(
        label="Body (JSON)",
        empty=lambda: None,
        rows=6,
        placeholder='{"customer_id": "{{customer_id}}", "amount": 120.5}',
    )
    variables = JSONTextField(
        shape="variables",
        label="Variables",
        empty=dict,
        placeholder='{"customer_id": "C-1001"}',
        help_text="Values for the {{name}} placeholders of path, query, headers and body.",
    )
    extract = JSONTextField(
        shape="extract",
        label="Extract",
        empty=dict,
        placeholder='{"order_id": "$.id"}',
        help_text="Variables taken from the response for the later steps: {name: JSONPath}.",
    )
    steps = JSONTextField(
        shape="steps",
        label="Steps",
        empty=list,
        rows=5,
        placeholder='[{"method": "GET", "path": "orders/{{order_id}}", "expected_statuses": [200]}]',
        help_text="A list of step objects, sent in order after the first request.",
    )
    expected_statuses = forms.CharField(
        required=False,
        help_text="Comma separated, e.g. 200, 201. Empty: the status codes the spec documents.",
    )
    assertions = JSONTextField(
        shape="assertions",
        label="Assertions",
        empty=list,
        rows=4,
        placeholder='[{"path": "$.status", "op": "equals", "value": "open"}]',
        help_text="A list of {path, op, value}; op is one of equals, exists, absent, matches, "
        "type, length.",
    )
    tags = forms.CharField(required=False, help_text="Comma separated, e.g. smoke, orders.")

    class Meta:
        model = TestCase
        fields = EDITABLE_FIELDS
        labels = {
            "body_text": "Body (XML or text)",
            "send_credentials": "Send the endpoint's credentials",
            "validate_schema": "Validate the response against the spec's schema",
            "max_latency_ms": "Maximum latency (ms)",
            "is_active": "Active (runs with the suite)",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "body_text": forms.Textarea(attrs={"rows": 4, "class": "mono"}),
            "manual_steps": forms.Textarea(attrs={"rows": 3}),
            "expected_result": forms.Textarea(attrs={"rows": 2}),
        }

    # The form's fields in the groups the page shows them in.
    SECTIONS = [
        ("Case", ["name", "kind", "scenario", "description", "tags", "is_active"]),
        (
            "Request",
            [
                "method",
                "path",
                "query",
                "headers",
                "body_format",
                "body",
                "body_text",
                "variables",
                "send_credentials",
            ],
        ),
        (
            "Expectations",
            ["expected_statuses", "validate_schema", "assertions", "max_latency_ms"],
        ),
        ("Chained steps", ["extract", "steps"]),
        ("Manual cases", ["manual_steps", "expected_result"]),
    ]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = [(method, method) for method in HttpMethod.values]
        self.initial["expected_statuses"] = ", ".join(
            str(code) for code in self.instance.expected_statuses or []
        )
        self.initial["tags"] = ", ".join(self.instance.tags or [])
        for name, field in self.fields.items():
            if isinstance(field, JSONTextField):
                # Tall enough for the pretty-printed JSON, within reason.
                lines = str(self[name].value() or "").count("\n") + 1
                field.widget.attrs["rows"] = min(max(field.widget.attrs["rows"], lines), 16)

    def sections(self):
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]

    def clean_expected_statuses(self):
        codes = []
        for part in self.cleaned_data["expected_statuses"].split(","):
            part = part.strip()
            if not part:
                continue
            if not re.fullmatch(r"[0-9]{1,3}", part):
                raise ValidationError(
                    f"'{part}' is not a status code: give whole numbers such as 200, 201."
                )
            codes.append(int(part))
        return list(dict.fromkeys(codes))

    def clean_tags(self):
        names = [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]
        for name in names:
            if len(name) > MAX_TAG_LENGTH:
                raise ValidationError(
                    f"Tag '{name[:20]}…' is longer than {MAX_TAG_LENGTH} characters."
                )
        return list(dict.fromkeys(names))

    def clean(self):
        cleaned = super().clean()
        name = cleaned.get("name")
        interface = self.instance.interface
        if (
            name
            and TestCase.objects.filter(interface=interface, name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            self.add_error("name", f"{interface.code} already has a test case named {name!r}.")
        # The case as it would be saved; the instance itself changes only after clean().
        candidate = copy.copy(self.instance)
        for field_name, value in cleaned.items():
            setattr(candidate, field_name, value)
        try:
            services.validate_case(candidate)
        except ValidationError as exc:
            self._add_case_errors(exc)
        return cleaned

    def _add_case_errors(self, exc: ValidationError) -> None:
        """Puts validate_case's errors on their fields; a field that already failed keeps its own
        error (the case was checked with that field's old value)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for field, messages in exc.message_dict.items():
            if field not in self.fields:
                self.add_error(None, messages)
            elif not self.has_error(field):
                self.add_error(field, messages)
