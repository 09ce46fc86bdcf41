"""Mapping sheets into a spec and out of it: validated whole, saved in one transaction,
with the revision claim; and the diff between two versions of a mapping."""

import pytest
from django.core.exceptions import PermissionDenied

from apps.core.models import AuditEntry
from apps.mappings import services, sheets
from apps.mappings.models import FieldRule, MappingSpec
from apps.mappings.services import SpecConflict, SpecFrozen

pytestmark = pytest.mark.django_db

GOOD_SHEET = (
    b"target field,target type,required,source field,transformation rule,lookup table,default,notes,example\n"
    b"order.id,string,yes,orderNumber,,,,The order number,SO-1\n"
    b"order.status,string,yes,state,map: N=new; S=shipped,,,,\n"
    b"order.country,string,no,country,lookup,countries,XX,,\n"
    b"order.total,number,no,total,arithmetic: * 1 places 2,,,,\n"
)


def fresh(spec):
    return MappingSpec.objects.get(pk=spec.pk)


def add_rule(actor, spec, position, target, sources, kind="copy", params=None):
    rule = FieldRule(
        spec=spec,
        position=position,
        target_path=target,
        source_paths=sources,
        kind=kind,
        params=params or {},
    )
    return services.save_rule(actor, rule, spec.revision)


def test_an_import_replaces_every_row_in_sheet_order(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "old.field", ["x"])
    result = services.import_sheet(engineer, spec_a, GOOD_SHEET, "orders.csv", spec_a.revision)

    assert (result.rows, result.replaced) == (4, 1)
    rules = list(fresh(spec_a).rules.all())
    assert [(r.position, r.target_path, r.kind) for r in rules] == [
        (1, "order.id", "copy"),
        (2, "order.status", "code_map"),
        (3, "order.country", "lookup"),
        (4, "order.total", "arithmetic"),
    ]
    assert rules[0].required and rules[0].target_type == "string"
    assert rules[0].notes == "The order number" and rules[0].example == "SO-1"
    assert rules[2].params == {"table": "countries", "default": "XX"}
    assert fresh(spec_a).revision == spec_a.revision == 3
    entry = AuditEntry.objects.get(object_id=str(spec_a.pk), action="update")
    assert entry.changes == {"rows (imported from orders.csv)": [1, 4]}


def test_a_bad_sheet_names_row_and_column_and_changes_nothing(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "kept.field", ["x"])
    bad = GOOD_SHEET + b"order.id,string,maybe,other,,,,,\n"
    with pytest.raises(sheets.SheetError) as info:
        services.import_sheet(engineer, spec_a, bad, "orders.csv", spec_a.revision)
    text = " ".join(info.value.messages)
    assert 'Row 6, column "required"' in text
    assert "order.id" in text  # the duplicate target path is named too
    assert [r.target_path for r in fresh(spec_a).rules.all()] == ["kept.field"]
    assert fresh(spec_a).revision == 2


def test_an_import_over_an_older_revision_is_a_conflict(spec_a, engineer, lead):
    add_rule(lead, spec_a, 1, "theirs", ["x"])
    with pytest.raises(SpecConflict):
        services.import_sheet(engineer, spec_a, GOOD_SHEET, "orders.csv", 1)
    assert [r.target_path for r in fresh(spec_a).rules.all()] == ["theirs"]


def test_an_approved_spec_takes_no_import(spec_a, engineer, lead):
    add_rule(engineer, spec_a, 1, "id", ["id"])
    services.submit_for_review(engineer, spec_a, spec_a.revision)
    services.approve_spec(lead, spec_a, spec_a.revision)
    with pytest.raises(SpecFrozen):
        services.import_sheet(engineer, spec_a, GOOD_SHEET, "orders.csv", spec_a.revision)
    assert [r.target_path for r in fresh(spec_a).rules.all()] == ["id"]


def test_viewers_and_other_teams_cannot_import(spec_a, viewer, engineer_b):
    for user in (viewer, engineer_b):
        with pytest.raises(PermissionDenied):
            services.import_sheet(user, spec_a, GOOD_SHEET, "orders.csv", spec_a.revision)
    assert not fresh(spec_a).rules.exists()


@pytest.mark.parametrize("writer", [sheets.write_csv, sheets.write_xlsx])
def test_an_export_reads_back_to_the_same_rows(spec_a, engineer, writer):
    services.import_sheet(engineer, spec_a, GOOD_SHEET, "orders.csv", spec_a.revision)
    exported = writer(services.sheet_rows(fresh(spec_a)))
    name = "sheet.csv" if writer is sheets.write_csv else "sheet.xlsx"
    assert sheets.read_sheet(exported, name).rows == services.sheet_rows(fresh(spec_a))

    other = services.create_spec(engineer, MappingSpec(interface=spec_a.interface, name="Copy"))
    services.import_sheet(engineer, other, exported, name, other.revision)
    assert services.diff_versions(fresh(spec_a), fresh(other)).rows == []


def test_the_export_escapes_formulas(spec_a, engineer):
    rule = FieldRule(spec=spec_a, position=1, target_path="note", kind="constant")
    rule.params, rule.notes, rule.example = {"value": "x"}, "=HYPERLINK(1)", "@SUM(A1)"
    services.save_rule(engineer, rule, spec_a.revision)
    exported = sheets.write_csv(services.sheet_rows(fresh(spec_a))).decode("utf-8-sig")
    assert ",'=HYPERLINK(1),'@SUM(A1)" in exported


def test_the_diff_of_two_versions_lists_rows_added_removed_and_changed(
    spec_a, engineer, lead, django_assert_num_queries
):
    add_rule(engineer, spec_a, 1, "id", ["id"])
    add_rule(engineer, spec_a, 2, "name", ["name"], "upper")
    add_rule(engineer, spec_a, 3, "gone", ["x"])
    services.submit_for_review(engineer, spec_a, spec_a.revision)
    services.approve_spec(lead, spec_a, spec_a.revision)
    draft = services.start_new_draft(engineer, spec_a)

    name = draft.rules.get(target_path="name")
    name.kind, name.notes = "lower", "now lower"
    services.save_rule(engineer, name, draft.revision)
    services.delete_rule(engineer, draft.rules.get(target_path="gone"), draft.revision)
    add_rule(engineer, draft, 4, "added", ["y"])
    draft = fresh(draft)
    draft.description = "v2"
    services.save_spec(engineer, draft, draft.revision)

    old = fresh(spec_a)
    with django_assert_num_queries(2):
        diff = services.diff_versions(old, draft)
    assert diff.spec_fields == ["description"]
    assert [(c.target_path, c.change, c.fields) for c in diff.rows] == [
        ("name", "changed", ["kind", "notes"]),
        ("gone", "removed", []),
        ("added", "added", []),
    ]
    data = diff.as_dict()
    assert data["rows"][0]["old"]["kind"] == "upper" and data["rows"][0]["new"]["kind"] == "lower"
    assert data["spec_fields"] == [{"field": "description", "old": "", "new": "v2"}]
    assert services.diff_versions(draft, draft).unchanged


def test_transform_reports_problems_by_row_instead_of_raising(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "id", ["id"])
    add_rule(engineer, spec_a, 2, "total", ["amount"], "arithmetic", {"op": "/", "operand": 0})
    result = services.transform(fresh(spec_a), {"id": "A1", "amount": 5})
    assert result.output == {"id": "A1"}
    assert [str(p) for p in result.problems] == ["row 2, total: division by zero (5 / 0)"]

    add_rule(engineer, spec_a, 3, "country", ["c"], "lookup", {"table": "nowhere"})
    result = services.transform(fresh(spec_a), {"id": "A1", "amount": 5})
    assert result.output is None
    assert [(p.row, p.kind) for p in result.problems] == [(3, "compile")]
    assert "nowhere" in result.problems[0].message


def test_a_preview_transforms_with_the_row_being_edited(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "id", ["id"])
    add_rule(engineer, spec_a, 2, "name", ["name"])
    spec = fresh(spec_a)
    edited = spec.rules.get(target_path="name")
    edited.kind = "upper"
    result = services.transform(
        spec, '{"id": "A1", "name": "ada"}', rows=services.rows_with(spec, edited)
    )
    assert (result.output, result.problems) == ({"id": "A1", "name": "ADA"}, [])
    new_row = FieldRule(spec=spec, position=3, target_path="copy_of_id", source_paths=["id"])
    result = services.transform(
        spec, {"id": "A1", "name": "x"}, rows=services.rows_with(spec, new_row)
    )
    assert result.output == {"id": "A1", "name": "x", "copy_of_id": "A1"}
    assert FieldRule.objects.filter(spec=spec).count() == 2
