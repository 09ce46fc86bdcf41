"""Mapping spec operations shared by the browser UI, the REST API and imports.

Each function takes the acting user, checks the permission policy, owns its transaction
and its audit entry, and raises:

* ``PermissionDenied`` when the actor may not do it;
* ``ValidationError`` (field -> messages) for bad input, :class:`SpecFrozen` (a
  ValidationError) for a change to an approved version;
* :class:`SpecConflict` when the caller edited an older ``revision`` than the stored one
  (optimistic concurrency: two people editing the same spec — the second save is told who
  changed it and when instead of silently overwriting).

Every change of a spec, of its rows or of its status claims the next revision with one
conditional UPDATE (``WHERE revision = expected``), so of two concurrent saves of the same
revision exactly one wins, on SQLite and PostgreSQL alike. None of these functions retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.accounts import policy
from apps.accounts.models import Role
from apps.core import audit
from apps.core.models import AuditAction
from apps.mappings import engine, sheets
from apps.mappings.diff import Difference, structural_diff
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    SpecStatus,
)

# Fields a save may not change: the identity of a version and its review record.
_FIXED_FIELDS = (
    "interface_id",
    "name",
    "version",
    "status",
    "approved_by_id",
    "approved_at",
    "based_on_id",
)
_COPIED_FIELDS = (
    "description",
    "source_format",
    "source_schema",
    "source_spec_id",
    "source_operation",
    "source_part",
    "source_status",
    "target_format",
    "target_schema",
    "target_spec_id",
    "target_operation",
    "target_part",
    "target_status",
)


class SpecConflict(Exception):
    """Someone saved the spec since the caller read it. Not retried: the caller reloads."""

    def __init__(self, spec: MappingSpec, expected_revision: int):
        self.spec = spec
        self.expected_revision = expected_revision
        self.current_revision = spec.revision
        self.changed_by = spec.updated_by.username if spec.updated_by_id else "someone"
        self.changed_at = spec.updated_at
        when = timezone.localtime(self.changed_at).strftime("%Y-%m-%d %H:%M:%S %Z")
        super().__init__(
            f"{spec} was changed by {self.changed_by} at {when} (revision {spec.revision}; "
            f"you edited revision {expected_revision}). Reload it and apply your changes again."
        )


class SpecFrozen(ValidationError):
    """A change to an approved version."""

    def __init__(self, spec: MappingSpec):
        super().__init__(
            f"{spec} is approved and frozen; start a new draft from it to change it.",
            code="frozen",
        )


def _user_or_none(actor):
    return actor if actor is not None and actor.is_authenticated else None


def _require_editable(spec: MappingSpec) -> None:
    if spec.status == SpecStatus.APPROVED:
        raise SpecFrozen(spec)


def _claim(actor, spec: MappingSpec, expected_revision: int, *, statuses=None) -> None:
    """Take the next revision of the spec, or raise SpecFrozen / SpecConflict.

    Call inside a transaction: when what follows fails, the claim rolls back with it.
    """
    if not isinstance(expected_revision, int) or isinstance(expected_revision, bool):
        raise ValidationError({"revision": "Send the revision you edited."})
    statuses = statuses or (SpecStatus.DRAFT, SpecStatus.IN_REVIEW)
    now = timezone.now()
    claimed = MappingSpec.objects.filter(
        pk=spec.pk, revision=expected_revision, status__in=statuses
    ).update(revision=F("revision") + 1, updated_by=_user_or_none(actor), updated_at=now)
    if claimed != 1:
        current = MappingSpec.objects.select_related("updated_by", "interface").get(pk=spec.pk)
        if current.revision != expected_revision:
            raise SpecConflict(current, expected_revision)
        _require_editable(current)
        raise ValidationError(
            {
                "status": f"{current} is {current.get_status_display().lower()}; this needs another status."
            }
        )
    spec.revision = expected_revision + 1
    spec.updated_by = _user_or_none(actor)
    spec.updated_at = now


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------


def create_spec(actor, spec: MappingSpec) -> MappingSpec:
    """Saves a new draft spec as version 1 of its name (or the next version of it)."""
    if not policy.can_create_for_team(actor, spec.interface.owner_team_id):
        raise PermissionDenied("You may not add mapping specs to this interface.")
    spec.status = SpecStatus.DRAFT
    spec.revision = 1
    spec.approved_by = None
    spec.approved_at = None
    spec.updated_by = _user_or_none(actor)
    with transaction.atomic():
        latest = MappingSpec.objects.filter(interface=spec.interface, name=spec.name).aggregate(
            version=Max("version")
        )["version"]
        spec.version = (latest or 0) + 1
        try:
            with transaction.atomic():
                return audit.save_with_audit(actor, spec)
        except IntegrityError:
            raise ValidationError({"name": "Someone just added this version; try again."})


def save_spec(actor, spec: MappingSpec, expected_revision: int) -> MappingSpec:
    """Saves the editable fields of a draft or in-review spec that was read at
    ``expected_revision``. Status changes go through submit/approve/return functions."""
    policy.require_change(actor, spec)
    stored = MappingSpec.objects.get(pk=spec.pk)
    _require_editable(stored)
    changed = [name for name in _FIXED_FIELDS if getattr(spec, name) != getattr(stored, name)]
    if changed:
        raise ValidationError(
            {name.removesuffix("_id"): "This cannot be changed here." for name in changed}
        )
    spec.full_clean()
    with transaction.atomic():
        _claim(actor, spec, expected_revision)
        return audit.save_with_audit(actor, spec)


def delete_spec(actor, spec: MappingSpec) -> None:
    """Deletes a version that was never approved (rows and mapping tests go with it).
    Approved versions are the record of what was agreed and stay."""
    policy.require_change(actor, spec)
    if spec.status == SpecStatus.APPROVED:
        raise ValidationError(
            {"status": f"{spec} is approved; approved versions are kept as the record."}
        )
    audit.delete_with_audit(actor, spec)


def _change_status(
    actor, spec: MappingSpec, expected_revision: int, *, to: str, allowed_from, **fields
) -> MappingSpec:
    with transaction.atomic():
        before = audit.snapshot(MappingSpec.objects.get(pk=spec.pk))
        _claim(actor, spec, expected_revision, statuses=allowed_from)
        spec.status = to
        for name, value in fields.items():
            setattr(spec, name, value)
        spec.save(update_fields=["status", *fields])
        audit.record(actor, spec, AuditAction.UPDATE, before)
    return spec


def _compile_problems(spec: MappingSpec) -> list[str]:
    try:
        engine.compile_spec(spec)
    except engine.CompileError as exc:
        return [str(problem) for problem in exc.problems]
    return []


def submit_for_review(actor, spec: MappingSpec, expected_revision: int) -> MappingSpec:
    """Draft -> in review. Refused while the spec does not compile."""
    policy.require_change(actor, spec)
    _require_editable(spec)
    problems = _compile_problems(spec)
    if problems:
        raise ValidationError({"rules": problems})
    return _change_status(
        actor, spec, expected_revision, to=SpecStatus.IN_REVIEW, allowed_from=(SpecStatus.DRAFT,)
    )


def return_to_draft(actor, spec: MappingSpec, expected_revision: int) -> MappingSpec:
    """In review -> draft (the reviewer wants changes)."""
    policy.require_change(actor, spec)
    _require_editable(spec)
    return _change_status(
        actor, spec, expected_revision, to=SpecStatus.DRAFT, allowed_from=(SpecStatus.IN_REVIEW,)
    )


def can_approve(user, spec: MappingSpec) -> bool:
    """Leads of the interface's team and admins approve mapping specs."""
    if not policy.can_change(user, spec):
        return False
    return user.is_portal_admin or user.role == Role.LEAD


def approve_spec(actor, spec: MappingSpec, expected_revision: int) -> MappingSpec:
    """In review -> approved, recording who approved it and when; the version is frozen."""
    if not can_approve(actor, spec):
        raise PermissionDenied("Only a lead of the interface's team or an admin approves mappings.")
    _require_editable(spec)
    problems = _compile_problems(spec)
    if problems:
        raise ValidationError({"rules": problems})
    return _change_status(
        actor,
        spec,
        expected_revision,
        to=SpecStatus.APPROVED,
        allowed_from=(SpecStatus.IN_REVIEW,),
        approved_by=_user_or_none(actor),
        approved_at=timezone.now(),
    )


def start_new_draft(actor, spec: MappingSpec) -> MappingSpec:
    """A new draft version copied from an approved one (rows and mapping tests included)."""
    policy.require_change(actor, spec)
    if spec.status != SpecStatus.APPROVED:
        raise ValidationError({"status": "A new draft starts from an approved version."})
    with transaction.atomic():
        # Lock the versions of this name so two people do not take the same number.
        versions = list(
            MappingSpec.objects.select_for_update()
            .filter(interface_id=spec.interface_id, name=spec.name)
            .values_list("version", "status")
        )
        open_versions = sorted(v for v, status in versions if status != SpecStatus.APPROVED)
        if open_versions:
            raise ValidationError(
                {
                    "status": f"Version {open_versions[-1]} of {spec.name} is still open; edit that one."
                }
            )
        draft = MappingSpec(
            interface_id=spec.interface_id,
            name=spec.name,
            version=max(v for v, _ in versions) + 1,
            status=SpecStatus.DRAFT,
            based_on=spec,
            revision=1,
            updated_by=_user_or_none(actor),
            **{name: getattr(spec, name) for name in _COPIED_FIELDS},
        )
        draft = audit.save_with_audit(actor, draft)
        FieldRule.objects.bulk_create(
            FieldRule(
                spec=draft,
                position=rule.position,
                target_path=rule.target_path,
                source_paths=rule.source_paths,
                kind=rule.kind,
                params=rule.params,
                required=rule.required,
                target_type=rule.target_type,
                notes=rule.notes,
                example=rule.example,
            )
            for rule in spec.rules.all()
        )
        MappingTest.objects.bulk_create(
            MappingTest(
                spec=draft,
                name=test.name,
                source_payload=test.source_payload,
                source_text=test.source_text,
                expected_payload=test.expected_payload,
                notes=test.notes,
            )
            for test in spec.tests.all()
        )
    return draft


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def save_rule(actor, rule: FieldRule, expected_revision: int) -> FieldRule:
    """Adds or changes one row of a draft or in-review spec read at ``expected_revision``.

    The row is checked on its own (paths, kind, params) and against the unique target
    path; the whole mapping is checked by compiling it (engine.compile_spec).
    """
    spec = rule.spec
    policy.require_change(actor, spec)
    if rule.pk and FieldRule.objects.filter(pk=rule.pk).exclude(spec=spec).exists():
        raise ValidationError({"spec": "A row cannot move to another spec."})
    _require_editable(spec)
    rule.full_clean()
    with transaction.atomic():
        _claim(actor, spec, expected_revision)
        return audit.save_with_audit(actor, rule)


def delete_rule(actor, rule: FieldRule, expected_revision: int) -> None:
    spec = rule.spec
    policy.require_change(actor, spec)
    _require_editable(spec)
    with transaction.atomic():
        _claim(actor, spec, expected_revision)
        audit.delete_with_audit(actor, rule)


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


def save_mapping_test(actor, test: MappingTest) -> MappingTest:
    """Adds or changes a mapping test of a spec that is not approved yet."""
    policy.require_change(actor, test.spec)
    _require_editable(test.spec)
    if test.spec.source_format == "json" and test.source_text:
        raise ValidationError({"source_text": "A JSON source goes in source_payload."})
    if test.spec.source_format != "json" and test.source_payload is not None:
        raise ValidationError({"source_payload": "An XML or CSV source goes in source_text."})
    return audit.save_with_audit(actor, test)


def delete_mapping_test(actor, test: MappingTest) -> None:
    policy.require_change(actor, test.spec)
    _require_editable(test.spec)
    audit.delete_with_audit(actor, test)


def transform(spec: MappingSpec, source: Any, *, rows=None) -> engine.TransformResult:
    """Transforms one source (text in the spec's source format, or a parsed JSON tree)
    with the spec, or with ``rows`` standing in for its saved rows (a live preview).

    Never raises for bad rows or data: a spec that does not compile gives no output and
    its compile problems, each naming its row.
    """
    try:
        compiled = engine.compile_spec(spec, rows)
    except engine.CompileError as exc:
        return engine.TransformResult(None, exc.problems)
    return compiled.run(source)


def rows_with(spec: MappingSpec, edited: FieldRule) -> list[FieldRule]:
    """The spec's saved rows with one row replaced by an edited copy (or added, when new):
    what the preview of a row form transforms with."""
    rows = [rule for rule in spec.rules.all() if rule.pk is None or rule.pk != edited.pk]
    rows.append(edited)
    rows.sort(key=lambda rule: (rule.position, rule.pk or 0))
    return rows


@dataclass
class TestOutcome:
    """The result of one mapping test: passed when the output equals the expected payload
    and nothing went wrong."""

    __test__ = False

    test: MappingTest
    passed: bool
    output: Any
    problems: list[engine.Problem] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)


def run_mapping_tests(spec: MappingSpec) -> list[TestOutcome]:
    """Runs every mapping test of the spec (read-only; raises CompileError when the spec
    does not compile)."""
    compiled = engine.compile_spec(spec)
    outcomes = []
    for test in spec.tests.all():
        if spec.source_format == "json":
            output, problems = compiled.transform(test.source_payload)
            result = engine.TransformResult(output, problems)
        else:
            result = compiled.run(test.source_text)
        differences = structural_diff(test.expected_payload, result.output)
        outcomes.append(
            TestOutcome(
                test=test,
                passed=not differences and not result.problems,
                output=result.output,
                problems=result.problems,
                differences=differences,
            )
        )
    return outcomes


# --------------------------------------------------------------------------------------
# Mapping sheets
# --------------------------------------------------------------------------------------


def sheet_rows(spec: MappingSpec) -> list[sheets.RuleRow]:
    """The spec's rows as mapping-sheet rows, in row order (for export)."""
    return [
        sheets.RuleRow(
            target_path=rule.target_path,
            source_paths=list(rule.source_paths),
            kind=rule.kind,
            params=rule.params,
            required=rule.required,
            target_type=rule.target_type,
            notes=rule.notes,
            example=rule.example,
            row=rule.position,
        )
        for rule in spec.rules.all()
    ]


def rules_from_sheet(spec: MappingSpec, rows: list[sheets.RuleRow]) -> list[FieldRule]:
    """Unsaved rows of the spec from a sheet's rows, numbered in sheet order (1, 2, 3…)."""
    return [
        FieldRule(
            spec=spec,
            position=number,
            target_path=row.target_path,
            source_paths=row.source_paths,
            kind=row.kind,
            params=row.params,
            required=row.required,
            target_type=row.target_type,
            notes=row.notes,
            example=row.example,
        )
        for number, row in enumerate(rows, start=1)
    ]


@dataclass
class SheetImport:
    """What an import did: the rows now in the spec, and header cells that were ignored."""

    spec: MappingSpec
    rows: int
    replaced: int
    ignored_columns: list[str]


def import_sheet(
    actor, spec: MappingSpec, data: bytes, filename: str, expected_revision: int
) -> SheetImport:
    """Replaces every row of a draft or in-review spec with the rows of a mapping sheet.

    The sheet is read and checked whole first (sheets.read_sheet raises SheetError naming
    each problem's row and column); then the old rows go and the new ones are saved in one
    transaction with the revision claim, so a failure anywhere changes nothing. Row
    numbers become the sheet's order (1, 2, 3…).
    """
    policy.require_change(actor, spec)
    _require_editable(spec)
    read = sheets.read_sheet(data, filename)
    new_rules = rules_from_sheet(spec, read.rows)
    with transaction.atomic():
        before = audit.snapshot(MappingSpec.objects.get(pk=spec.pk))
        _claim(actor, spec, expected_revision)
        replaced, _ = FieldRule.objects.filter(spec=spec).delete()
        FieldRule.objects.bulk_create(new_rules)
        audit.record(
            actor,
            spec,
            AuditAction.UPDATE,
            before,
            also={f"rows (imported from {filename[:100]})": [replaced, len(new_rules)]},
        )
    return SheetImport(
        spec=spec,
        rows=len(new_rules),
        replaced=replaced,
        ignored_columns=read.ignored_columns,
    )


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------

_COMPARED_RULE_FIELDS = (
    "source_paths",
    "kind",
    "params",
    "required",
    "target_type",
    "notes",
    "example",
)


@dataclass
class RowChange:
    """A row of one version next to the same target path in another. ``change``: added,
    removed or changed; ``fields`` names what changed (position aside)."""

    target_path: str
    change: str
    old: FieldRule | None = None
    new: FieldRule | None = None
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def row(rule):
            if rule is None:
                return None
            return {
                "row": rule.position,
                **{name: getattr(rule, name) for name in _COMPARED_RULE_FIELDS},
            }

        return {
            "target_path": self.target_path,
            "change": self.change,
            "fields": self.fields,
            "old": row(self.old),
            "new": row(self.new),
        }


@dataclass
class VersionDiff:
    """What changed from one version of a mapping to another: spec fields and rows (rows
    are matched by target path)."""

    old: MappingSpec
    new: MappingSpec
    spec_fields: list[str]
    rows: list[RowChange]

    @property
    def unchanged(self) -> bool:
        return not self.spec_fields and not self.rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": {"id": self.old.pk, "version": self.old.version},
            "new": {"id": self.new.pk, "version": self.new.version},
            "spec_fields": [
                {
                    "field": name,
                    "old": _field_value(self.old, name),
                    "new": _field_value(self.new, name),
                }
                for name in self.spec_fields
            ],
            "rows": [change.as_dict() for change in self.rows],
        }


def _field_value(spec: MappingSpec, name: str) -> Any:
    """A spec field as JSON holds it (a registered API spec by its id)."""
    if name in ("source_spec", "target_spec"):
        return getattr(spec, f"{name}_id")
    return getattr(spec, name)


def diff_versions(old: MappingSpec, new: MappingSpec) -> VersionDiff:
    """The differences between two specs (usually two versions of one mapping); two
    queries for the rows, however many there are."""
    spec_fields = [
        name.removesuffix("_id")
        for name in _COPIED_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]
    old_rows = {rule.target_path: rule for rule in old.rules.all()}
    new_rows = {rule.target_path: rule for rule in new.rules.all()}
    changes = []
    for rule in new_rows.values():
        before = old_rows.get(rule.target_path)
        if before is None:
            changes.append(RowChange(rule.target_path, "added", new=rule))
            continue
        changed = [
            name for name in _COMPARED_RULE_FIELDS if getattr(before, name) != getattr(rule, name)
        ]
        if changed:
            changes.append(RowChange(rule.target_path, "changed", before, rule, changed))
    for path, rule in old_rows.items():
        if path not in new_rows:
            changes.append(RowChange(path, "removed", old=rule))
    order = {"changed": 0, "added": 1, "removed": 2}
    changes.sort(key=lambda c: ((c.new or c.old).position, order[c.change]))
    return VersionDiff(old, new, spec_fields, changes)


# --------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------


def save_lookup_table(actor, table: LookupTable) -> LookupTable:
    """Adds or changes a lookup table. Team tables are changed by the team's writers;
    estate-wide tables (no owner team) by admins."""
    if table.pk is None:
        if not policy.can_create_for_team(actor, table.owner_team_id):
            raise PermissionDenied("You may not add lookup tables for this team.")
    else:
        policy.require_change(actor, LookupTable.objects.get(pk=table.pk))
        policy.require_change(actor, table)
    return audit.save_with_audit(actor, table)


def rules_using_table(table: LookupTable):
    """Rows of any spec that look values up in the table (by its name)."""
    return FieldRule.objects.filter(kind="lookup", params__table=table.name).select_related(
        "spec__interface"
    )


def delete_lookup_table(actor, table: LookupTable) -> None:
    """Deletes a table no mapping row reads; otherwise says which specs read it."""
    policy.require_change(actor, table)
    users = sorted({str(rule.spec) for rule in rules_using_table(table)})
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise ValidationError(f"{table} is read by {shown}; change those rows first.")
    audit.delete_with_audit(actor, table)


def save_lookup_entry(actor, entry: LookupEntry) -> LookupEntry:
    policy.require_change(actor, entry.table)
    return audit.save_with_audit(actor, entry)


def delete_lookup_entry(actor, entry: LookupEntry) -> None:
    policy.require_change(actor, entry.table)
    audit.delete_with_audit(actor, entry)


# --------------------------------------------------------------------------------------
# Suggestions
# --------------------------------------------------------------------------------------


def accept_suggestions(actor, spec: MappingSpec, pairs, expected_revision: int) -> list[FieldRule]:
    """Adds one row per accepted suggestion (apps.mappings.suggest) to a draft or in-review
    spec read at ``expected_revision``, all or none, with one revision claim.

    ``pairs``: mappings (or objects) with ``target_path`` and ``source_path``, and optionally
    ``rule_kind`` (or ``kind``, default copy), ``rule_params`` (or ``params``) and
    ``target_type``. The new rows follow the last row, in the order given. Each row is checked
    as save_rule checks it; ValidationError names the target path of every bad one (a target
    path the spec already maps, or given twice, is one).
    """

    def value(pair, *names, default=None):
        for name in names:
            found = pair.get(name) if isinstance(pair, dict) else getattr(pair, name, None)
            if found is not None:
                return found
        return default

    policy.require_change(actor, spec)
    _require_editable(spec)
    pairs = list(pairs)
    if not pairs:
        raise ValidationError({"pairs": "Choose at least one suggestion."})
    existing = set(spec.rules.values_list("target_path", flat=True))
    last = spec.rules.aggregate(last=Max("position"))["last"] or 0
    rules, errors, seen = [], [], set()
    for offset, pair in enumerate(pairs, start=1):
        target = value(pair, "target_path", default="")
        rule = FieldRule(
            spec=spec,
            position=last + offset,
            target_path=target,
            source_paths=[value(pair, "source_path", default="")],
            kind=value(pair, "rule_kind", "kind", default="copy"),
            params=value(pair, "rule_params", "params", default={}),
            target_type=value(pair, "target_type", default="")[:100],
        )
        if target in existing or target in seen:
            errors.append(f"{target}: the spec already has a row for this target field.")
        seen.add(target)
        try:
            rule.full_clean(exclude=["spec"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for messages in exc.message_dict.values():
                errors.extend(f"{target}: {message}" for message in messages)
        rules.append(rule)
    if errors:
        raise ValidationError({"pairs": errors})
    with transaction.atomic():
        _claim(actor, spec, expected_revision)
        for rule in rules:
            audit.save_with_audit(actor, rule)
    return rules
