"""Mapping specs, their field rules and tests, and the lookup tables rules read.

A mapping spec is one version of a source-to-target mapping of an interface. Its rows
(:class:`FieldRule`) say how each target field is made; :mod:`apps.mappings.engine`
compiles them and transforms payloads. Changes go through :mod:`apps.mappings.services`,
which enforces the optimistic-concurrency ``revision`` and freezes approved versions.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.accounts.models import Team
from apps.accounts.policy import PolicyQuerySet
from apps.catalog.models import ApiSpec, Interface
from apps.core.fields import OrderedJSONField
from apps.core.models import TimeStampedModel


class SpecStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"


class PayloadFormat(models.TextChoices):
    JSON = "json", "JSON"
    XML = "xml", "XML"
    CSV = "csv", "CSV record"


class SchemaPart(models.TextChoices):
    REQUEST = "request", "Request body"
    RESPONSE = "response", "Response body"


class RuleKind(models.TextChoices):
    COPY = "copy", "Copy"
    CONSTANT = "constant", "Constant"
    DEFAULT = "default", "Default when missing"
    CAST = "cast", "Type cast"
    DATE_FORMAT = "date_format", "Date/time reformat"
    CONCAT = "concat", "Concatenate"
    SPLIT = "split", "Split"
    SUBSTRING = "substring", "Substring"
    PAD = "pad", "Pad"
    TRIM = "trim", "Trim"
    UPPER = "upper", "Upper case"
    LOWER = "lower", "Lower case"
    CODE_MAP = "code_map", "Code map"
    LOOKUP = "lookup", "Lookup table"
    ARITHMETIC = "arithmetic", "Arithmetic"
    CONDITIONAL = "conditional", "Conditional value"
    EXPRESSION = "expression", "Expression"


class MappingSpecQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class MappingSpec(TimeStampedModel):
    """One version of a source-to-target mapping of an interface.

    Each side (source, target) is described by a format and either an inline JSON Schema
    (``*_schema``) or an operation of a registered API spec (``*_spec`` + ``*_operation`` +
    ``*_part``, and ``*_status`` for a response; blank means its first 2XX). For XML and CSV
    the schema describes the tree the converters make (apps.mappings.converters).

    ``revision`` grows with every change of the spec or its rules; a save that names an
    older revision is refused (services.save_spec). An approved version is frozen; a new
    draft starts from it (services.start_new_draft) with ``based_on`` pointing back.
    """

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="mapping_specs")
    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=SpecStatus.choices, default=SpecStatus.DRAFT, db_index=True
    )
    description = models.TextField(blank=True)

    source_format = models.CharField(
        max_length=4, choices=PayloadFormat.choices, default=PayloadFormat.JSON
    )
    source_schema = OrderedJSONField(null=True, blank=True, help_text="A JSON Schema.")
    source_spec = models.ForeignKey(
        ApiSpec, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    source_operation = models.CharField(
        max_length=300, blank=True, help_text='The operation key, e.g. "POST /orders".'
    )
    source_part = models.CharField(max_length=10, choices=SchemaPart.choices, blank=True)
    source_status = models.CharField(
        max_length=10, blank=True, help_text="For a response: 200, 2XX or default."
    )

    target_format = models.CharField(
        max_length=4, choices=PayloadFormat.choices, default=PayloadFormat.JSON
    )
    target_schema = OrderedJSONField(null=True, blank=True, help_text="A JSON Schema.")
    target_spec = models.ForeignKey(
        ApiSpec, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    target_operation = models.CharField(max_length=300, blank=True)
    target_part = models.CharField(max_length=10, choices=SchemaPart.choices, blank=True)
    target_status = models.CharField(max_length=10, blank=True)

    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived_specs"
    )
    revision = models.PositiveIntegerField(default=1, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = MappingSpecQuerySet.as_manager()

    AUDIT_EXCLUDE_FIELDS = ("source_schema", "target_schema", "revision", "updated_by")

    class Meta:
        ordering = ["interface", "name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["interface", "name", "version"], name="unique_mapping_spec_version"
            )
        ]

    def __str__(self):
        return f"{self.interface.code} {self.name} v{self.version}"

    def policy_team_id(self):
        return self.interface.owner_team_id

    @property
    def is_frozen(self) -> bool:
        return self.status == SpecStatus.APPROVED

    def clean(self):
        from apps.mappings import schemas

        errors = {}
        for side in ("source", "target"):
            for field, message in schemas.side_definition_problems(self, side).items():
                errors.setdefault(field, message)
        if errors:
            raise ValidationError(errors)


class FieldRuleQuerySet(PolicyQuerySet):
    team_lookup = "spec__interface__owner_team"


class FieldRule(TimeStampedModel):
    """One row of a mapping sheet: how one target field is made from the source.

    ``target_path`` and ``source_paths`` use the path syntax of apps.mappings.paths
    (``customer.id``, ``lines[*].sku``, ``["odd key"]``); ``params`` depend on the kind
    (apps.mappings.rules documents each). ``position`` is the row number that problems name.
    """

    spec = models.ForeignKey(MappingSpec, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(default=0)
    target_path = models.CharField(max_length=500)
    source_paths = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=12, choices=RuleKind.choices, default=RuleKind.COPY)
    params = models.JSONField(default=dict, blank=True)
    required = models.BooleanField(default=False)
    target_type = models.CharField(
        max_length=100, blank=True, help_text='As a mapping sheet names it: "string", "date"…'
    )
    notes = models.TextField(blank=True)
    example = models.CharField(max_length=500, blank=True)

    objects = FieldRuleQuerySet.as_manager()

    class Meta:
        ordering = ["spec", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["spec", "target_path"], name="unique_rule_target")
        ]

    def __str__(self):
        return f"row {self.position}: {self.target_path}"

    def policy_team_id(self):
        return self.spec.interface.owner_team_id

    def clean(self):
        from apps.mappings import rules

        errors = rules.row_problems(self)
        if errors:
            raise ValidationError(errors)


class LookupTableQuerySet(PolicyQuerySet):
    team_lookup = "owner_team"


class LookupTable(TimeStampedModel):
    """Keys and values a lookup rule reads (country codes, status codes, GL accounts…).

    Rules name a table by ``name``. A table without an owner team is estate-wide: everyone
    reads it, only admins change it.
    """

    name = models.CharField(max_length=100, unique=True)
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="lookup_tables"
    )
    description = models.TextField(blank=True)

    objects = LookupTableQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def policy_team_id(self):
        return self.owner_team_id


class LookupEntryQuerySet(PolicyQuerySet):
    team_lookup = "table__owner_team"


class LookupEntry(models.Model):
    """One key and its value in a lookup table."""

    table = models.ForeignKey(LookupTable, on_delete=models.CASCADE, related_name="entries")
    key = models.CharField(max_length=200)
    value = models.CharField(max_length=1000, blank=True)

    objects = LookupEntryQuerySet.as_manager()

    class Meta:
        ordering = ["table", "key"]
        constraints = [models.UniqueConstraint(fields=["table", "key"], name="unique_lookup_key")]
        verbose_name_plural = "lookup entries"

    def __str__(self):
        return f"{self.table.name}: {self.key}"

    def policy_team_id(self):
        return self.table.owner_team_id


class MappingTestQuerySet(PolicyQuerySet):
    team_lookup = "spec__interface__owner_team"


class MappingTest(TimeStampedModel):
    """A sample source payload and the target payload the spec must make of it.

    JSON sources sit in ``source_payload``; XML and CSV sources in ``source_text``. The
    expected payload is the target tree (for XML and CSV targets: the tree before rendering).
    """

    spec = models.ForeignKey(MappingSpec, on_delete=models.CASCADE, related_name="tests")
    name = models.CharField(max_length=200)
    source_payload = models.JSONField(null=True, blank=True)
    source_text = models.TextField(blank=True)
    expected_payload = models.JSONField(null=True, blank=True)
    notes = models.TextField(blank=True)

    objects = MappingTestQuerySet.as_manager()

    class Meta:
        ordering = ["spec", "name"]
        constraints = [
            models.UniqueConstraint(fields=["spec", "name"], name="unique_mapping_test_name")
        ]

    def __str__(self):
        return f"{self.spec}: {self.name}"

    def policy_team_id(self):
        return self.spec.interface.owner_team_id
