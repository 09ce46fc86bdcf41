"""Serializers of the mappings REST API (apps.mappings.api).

They read and check the shape of a request; every rule about what may change lives in
apps.mappings.services, which the viewsets call.
"""

from rest_framework import serializers

from apps.accounts import policy
from apps.accounts.models import Team
from apps.catalog.models import ApiSpec, Interface
from apps.mappings import services
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    RuleKind,
)

REVISION_HELP = (
    "The spec's revision you read. A write naming an older revision than the stored one is "
    "refused with 409 (someone else changed the spec)."
)


def revision_field(**options) -> serializers.IntegerField:
    options.setdefault("help_text", REVISION_HELP)
    return serializers.IntegerField(min_value=1, **options)


class RevisionSerializer(serializers.Serializer):
    revision = revision_field()


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------


class MappingSpecListSerializer(serializers.ModelSerializer):
    """A spec in a list: no schemas, no rows."""

    interface = serializers.SlugRelatedField(slug_field="code", read_only=True)
    rule_count = serializers.IntegerField(read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MappingSpec
        fields = [
            "id",
            "interface",
            "name",
            "version",
            "status",
            "description",
            "source_format",
            "target_format",
            "revision",
            "rule_count",
            "based_on",
            "approved_by",
            "approved_at",
            "updated_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RuleRowSerializer(serializers.ModelSerializer):
    """A row as part of its spec."""

    class Meta:
        model = FieldRule
        fields = [
            "id",
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
        read_only_fields = fields


class TestNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = MappingTest
        fields = ["id", "name"]
        read_only_fields = fields


class MappingSpecSerializer(serializers.ModelSerializer):
    """One version of a mapping: its definition, rows in row order and tests' names.

    Each side is an inline JSON Schema (``*_schema``) or an operation of a registered API
    spec (``*_spec`` id + ``*_operation`` + ``*_part``, and ``*_status`` for a response).
    ``interface`` and ``name`` are set when the spec is created; ``status`` changes through
    the submit, return-to-draft and approve actions.
    """

    interface = serializers.SlugRelatedField(
        slug_field="code", queryset=Interface.objects.all(), help_text="The interface's code."
    )
    source_spec = serializers.PrimaryKeyRelatedField(
        queryset=ApiSpec.objects.all(), required=False, allow_null=True
    )
    target_spec = serializers.PrimaryKeyRelatedField(
        queryset=ApiSpec.objects.all(), required=False, allow_null=True
    )
    revision = revision_field(
        required=False,
        help_text="Read: the current revision. PUT and PATCH must send the revision they "
        "edited; an older one is refused with 409.",
    )
    rule_count = serializers.IntegerField(read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rules = RuleRowSerializer(many=True, read_only=True, help_text="The rows, in row order.")
    tests = TestNameSerializer(many=True, read_only=True, help_text="The mapping tests.")
    can_change = serializers.SerializerMethodField()
    can_approve = serializers.SerializerMethodField()

    class Meta:
        model = MappingSpec
        fields = [
            "id",
            "interface",
            "name",
            "version",
            "status",
            "description",
            "source_format",
            "source_schema",
            "source_spec",
            "source_operation",
            "source_part",
            "source_status",
            "target_format",
            "target_schema",
            "target_spec",
            "target_operation",
            "target_part",
            "target_status",
            "revision",
            "rule_count",
            "based_on",
            "approved_by",
            "approved_at",
            "updated_by",
            "created_at",
            "updated_at",
            "can_change",
            "can_approve",
            "rules",
            "tests",
        ]
        read_only_fields = ["version", "status", "based_on", "approved_at"]
        # The unique (interface, name, version) constraint is the service's business: it
        # numbers versions itself.
        validators = []

    def _user(self):
        request = self.context.get("request")
        return request.user if request is not None else None

    def get_can_change(self, spec) -> bool:
        """Whether you may edit it now (it is not approved and it is your team's)."""
        return not spec.is_frozen and policy.can_change(self._user(), spec)

    def get_can_approve(self, spec) -> bool:
        """Whether you may approve it now (a lead of its team or an admin; in review)."""
        return spec.status == "in_review" and services.can_approve(self._user(), spec)


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


class FieldRuleSerializer(serializers.ModelSerializer):
    """A row of a mapping sheet. Writes carry the spec's ``revision`` and the answer carries
    the spec's new one as ``spec_revision``."""

    spec = serializers.PrimaryKeyRelatedField(
        queryset=MappingSpec.objects.select_related("interface"), help_text="The spec's id."
    )
    position = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="The row number problems name; a new row without one goes last.",
    )
    source_paths = serializers.ListField(
        child=serializers.CharField(max_length=500, trim_whitespace=False),
        required=False,
        help_text='Source paths: "customer.id", "lines[*].sku".',
    )
    params = serializers.DictField(
        required=False, help_text="The kind's parameters (apps.mappings.rules documents each)."
    )
    revision = revision_field(write_only=True)
    spec_revision = serializers.SerializerMethodField()

    class Meta:
        model = FieldRule
        fields = [
            "id",
            "spec",
            "position",
            "target_path",
            "source_paths",
            "kind",
            "params",
            "required",
            "target_type",
            "notes",
            "example",
            "revision",
            "spec_revision",
            "created_at",
            "updated_at",
        ]
        # Two rows writing one target path are refused by the service, with the row named.
        validators = []

    def validate(self, attrs):
        spec = attrs.get("spec") or self.instance.spec
        target = attrs.get("target_path", self.instance.target_path if self.instance else None)
        taken = FieldRule.objects.filter(spec=spec, target_path=target)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        position = taken.values_list("position", flat=True).first()
        if position is not None:
            raise serializers.ValidationError(
                {"target_path": f"Row {position} of the spec already writes {target}."}
            )
        return attrs

    def get_spec_revision(self, rule) -> int:
        """The spec's revision after this write: send it with the next one."""
        if FieldRule.spec.is_cached(rule):
            return rule.spec.revision
        return rule.spec_revision


class RowDeletedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    spec_revision = serializers.IntegerField()


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


class MappingTestSerializer(serializers.ModelSerializer):
    """A sample source and the target payload the spec must make of it. JSON sources go in
    ``source_payload``, XML and CSV sources (as text) in ``source_text``."""

    spec = serializers.PrimaryKeyRelatedField(
        queryset=MappingSpec.objects.select_related("interface"), help_text="The spec's id."
    )

    class Meta:
        model = MappingTest
        fields = [
            "id",
            "spec",
            "name",
            "source_payload",
            "source_text",
            "expected_payload",
            "notes",
            "created_at",
            "updated_at",
        ]
        validators = []

    def validate_spec(self, spec):
        if self.instance is not None and spec.pk != self.instance.spec_id:
            raise serializers.ValidationError("A mapping test cannot move to another spec.")
        return spec

    def validate(self, attrs):
        spec = attrs.get("spec") or self.instance.spec
        name = attrs.get("name", self.instance.name if self.instance else None)
        others = MappingTest.objects.filter(spec=spec, name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError({"name": f"{spec} already has a test {name!r}."})
        return attrs


# --------------------------------------------------------------------------------------
# Transform, tests, suggestions, sheets
# --------------------------------------------------------------------------------------


class ProblemSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="compile: a row or the spec cannot be used; rule: a row could not make its "
        "value; schema: the output breaks the target schema; source: the payload could not "
        "be read; target: the output could not be rendered.",
    )
    row = serializers.IntegerField(
        allow_null=True, help_text="The row number, when one row is to blame."
    )
    target_path = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class TransformRequestSerializer(serializers.Serializer):
    source = serializers.JSONField(
        help_text="The source payload: a JSON tree, or the text of an XML, CSV or JSON "
        "document in the spec's source format."
    )


class TransformResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="True when there is no problem.")
    output = serializers.JSONField(
        allow_null=True, help_text="The target tree; null when the spec does not compile."
    )
    rendered = serializers.CharField(
        allow_null=True, help_text="The XML or CSV text of an XML or CSV target; else null."
    )
    problems = ProblemSerializer(many=True)


class DifferenceSerializer(serializers.Serializer):
    path = serializers.CharField()
    change = serializers.CharField(help_text="added, removed or changed.")
    expected = serializers.JSONField(allow_null=True)
    actual = serializers.JSONField(allow_null=True)


class TestOutcomeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    passed = serializers.BooleanField()
    output = serializers.JSONField(allow_null=True)
    problems = ProblemSerializer(many=True)
    differences = DifferenceSerializer(many=True)


class TestRunSummarySerializer(serializers.Serializer):
    compiles = serializers.BooleanField()
    problems = ProblemSerializer(
        many=True, help_text="Compile problems (then no test ran and outcomes is empty)."
    )
    total = serializers.IntegerField()
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    outcomes = TestOutcomeSerializer(many=True)


class SuggestionSerializer(serializers.Serializer):
    target_path = serializers.CharField()
    source_path = serializers.CharField()
    score = serializers.FloatField(help_text="0..1: names and types together.")
    name_score = serializers.FloatField()
    type_score = serializers.FloatField()
    rule_kind = serializers.CharField(help_text="The proposed rule: copy, cast, date_format…")
    rule_params = serializers.DictField()
    reason = serializers.CharField()
    best = serializers.BooleanField(
        help_text="The one-to-one choice for the target; the others are alternatives."
    )
    source_type = serializers.CharField()
    target_type = serializers.CharField()


class SuggestionListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = SuggestionSerializer(many=True)


class AcceptedPairSerializer(serializers.Serializer):
    target_path = serializers.CharField(max_length=500)
    source_path = serializers.CharField(max_length=500)
    kind = serializers.ChoiceField(choices=RuleKind.choices, default=RuleKind.COPY)
    params = serializers.DictField(default=dict)
    target_type = serializers.CharField(max_length=100, required=False, allow_blank=True)


class AcceptSuggestionsSerializer(serializers.Serializer):
    revision = revision_field()
    pairs = AcceptedPairSerializer(
        many=True, allow_empty=False, help_text="The suggestions you accept; each becomes a row."
    )


class AcceptedRowsSerializer(serializers.Serializer):
    spec_revision = serializers.IntegerField()
    rows = RuleRowSerializer(many=True)


class SheetImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A mapping sheet: .csv, .tsv, .txt or .xlsx.")
    revision = revision_field(required=False, help_text="Required unless dry_run. " + REVISION_HELP)
    dry_run = serializers.BooleanField(
        default=False, help_text="True: read and report the rows; save nothing."
    )


class SheetRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The sheet row (1 is the header).")
    target_path = serializers.CharField()
    source_paths = serializers.ListField(child=serializers.CharField())
    kind = serializers.CharField()
    params = serializers.DictField()
    required = serializers.BooleanField()
    target_type = serializers.CharField(allow_blank=True)
    notes = serializers.CharField(allow_blank=True)
    example = serializers.CharField(allow_blank=True)


class SheetImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    rows = serializers.IntegerField(help_text="Rows in the sheet (now the spec's rows).")
    replaced = serializers.IntegerField(
        allow_null=True, help_text="Rows the import replaced; null for a dry run."
    )
    ignored_columns = serializers.ListField(child=serializers.CharField())
    spec_revision = serializers.IntegerField()
    problems = ProblemSerializer(
        many=True, help_text="Compile problems of the rows (they are saved all the same)."
    )
    sheet_rows = SheetRowSerializer(many=True, required=False, help_text="Dry run only.")


# --------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------


class LookupTableSerializer(serializers.ModelSerializer):
    """Rules name a table by ``name``. No ``owner_team``: estate-wide (admins change it)."""

    owner_team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="The team's slug; null for an estate-wide table.",
    )
    entry_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = LookupTable
        fields = [
            "id",
            "name",
            "owner_team",
            "description",
            "entry_count",
            "created_at",
            "updated_at",
        ]


class LookupEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LookupEntry
        fields = ["id", "key", "value"]
        validators = []

    def validate_key(self, key):
        table = self.context["table"]
        others = LookupEntry.objects.filter(table=table, key=key)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f"{table} already has the key {key!r}.")
        return key


class LookupImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv or .xlsx file with key and value columns.")


class LookupImportResultSerializer(serializers.Serializer):
    entries = serializers.IntegerField(help_text="The table's entries now.")
