"""Spec operations: optimistic concurrency, review and approval, frozen approved versions,
new drafts from them, permissions, and running mapping tests."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.models import AuditEntry
from apps.mappings import services
from apps.mappings.models import FieldRule, MappingSpec, MappingTest, SpecStatus
from apps.mappings.services import SpecConflict, SpecFrozen

pytestmark = pytest.mark.django_db


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


def fresh(spec):
    return MappingSpec.objects.get(pk=spec.pk)


def test_a_new_spec_is_a_draft_version_1_at_revision_1(spec_a, engineer):
    assert (spec_a.version, spec_a.status, spec_a.revision) == (1, SpecStatus.DRAFT, 1)
    assert spec_a.updated_by == engineer
    entry = AuditEntry.objects.get(object_id=str(spec_a.pk), action="create")
    assert entry.actor == engineer


def test_only_writers_of_the_team_create_specs(interface_a, viewer, engineer_b):
    for user in (viewer, engineer_b):
        with pytest.raises(PermissionDenied):
            services.create_spec(user, MappingSpec(interface=interface_a, name="x"))
    assert not MappingSpec.objects.exists()


def test_the_second_of_two_editors_is_told_of_the_conflict(spec_a, engineer, lead):
    mine = fresh(spec_a)
    theirs = fresh(spec_a)
    mine.description = "Mine"
    services.save_spec(engineer, mine, expected_revision=1)
    assert mine.revision == 2

    theirs.description = "Theirs"
    with pytest.raises(SpecConflict) as info:
        services.save_spec(lead, theirs, expected_revision=1)
    stored = fresh(spec_a)
    when = timezone.localtime(stored.updated_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert str(info.value) == (
        f"INT-042 Orders to ERP v1 was changed by engineer at {when} (revision 2; "
        "you edited revision 1). Reload it and apply your changes again."
    )
    assert (info.value.changed_by, info.value.current_revision) == ("engineer", 2)
    assert (stored.description, stored.revision) == ("Mine", 2)


def test_row_edits_take_revisions_too(spec_a, engineer, lead):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    assert fresh(spec_a).revision == 2
    stale = FieldRule(spec=fresh(spec_a), position=2, target_path="name", source_paths=["name"])
    stale.spec.revision = 1
    with pytest.raises(SpecConflict):
        services.save_rule(lead, stale, expected_revision=1)
    assert list(FieldRule.objects.values_list("target_path", flat=True)) == ["id"]


def test_a_bad_row_is_refused_field_by_field(spec_a, engineer):
    rule = FieldRule(
        spec=spec_a,
        position=1,
        target_path="a[",
        source_paths=["x", "y"],
        kind="upper",
        params={"z": 1},
    )
    with pytest.raises(ValidationError) as info:
        services.save_rule(engineer, rule, spec_a.revision)
    assert info.value.message_dict == {
        "target_path": ["at character 2: expected [*], [number] or [\"name\"] in 'a['"],
        "source_paths": ["upper takes exactly 1 source path, not 2"],
        "params": ["unknown parameter 'z' (this kind takes: none)"],
    }
    assert fresh(spec_a).revision == 1, "a refused row takes no revision"


def test_two_rows_cannot_share_a_target_path(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    with pytest.raises(ValidationError) as info:
        add_rule(engineer, spec_a, 2, "id", ["other"])
    assert info.value.messages == ["Field rule with this Spec and Target path already exists."]


def test_review_needs_a_spec_that_compiles(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "id", ["number"], "lookup", {"table": "missing_table"})
    with pytest.raises(ValidationError) as info:
        services.submit_for_review(engineer, spec_a, spec_a.revision)
    assert info.value.message_dict == {"rules": ["row 1, id: unknown lookup table 'missing_table'"]}
    assert fresh(spec_a).status == SpecStatus.DRAFT


def approved(spec, engineer, lead):
    add_rule(engineer, spec, 1, "id", ["number"])
    services.submit_for_review(engineer, spec, spec.revision)
    return services.approve_spec(lead, spec, spec.revision)


def test_leads_approve_and_the_approval_is_recorded(spec_a, engineer, lead):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    services.submit_for_review(engineer, spec_a, spec_a.revision)
    with pytest.raises(PermissionDenied):
        services.approve_spec(engineer, spec_a, spec_a.revision)
    services.approve_spec(lead, spec_a, spec_a.revision)
    stored = fresh(spec_a)
    assert (stored.status, stored.approved_by) == (SpecStatus.APPROVED, lead)
    assert stored.approved_at is not None
    entry = AuditEntry.objects.filter(object_id=str(spec_a.pk), action="update").first()
    assert entry.changes["status"] == ["in_review", "approved"]
    assert entry.actor == lead


def test_a_draft_cannot_be_approved_without_review(spec_a, engineer, lead):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    with pytest.raises(ValidationError) as info:
        services.approve_spec(lead, spec_a, spec_a.revision)
    assert info.value.message_dict == {
        "status": ["INT-042 Orders to ERP v1 is draft; this needs another status."]
    }


def test_an_approved_spec_is_frozen(spec_a, engineer, lead):
    approved(spec_a, engineer, lead)
    spec = fresh(spec_a)
    message = (
        "INT-042 Orders to ERP v1 is approved and frozen; start a new draft from it to change it."
    )
    spec.description = "changed"
    with pytest.raises(SpecFrozen) as info:
        services.save_spec(engineer, spec, spec.revision)
    assert info.value.messages == [message]
    with pytest.raises(SpecFrozen):
        add_rule(engineer, spec, 2, "name", ["name"])
    with pytest.raises(SpecFrozen):
        services.delete_rule(engineer, spec.rules.get(), spec.revision)
    with pytest.raises(SpecFrozen):
        services.save_mapping_test(engineer, MappingTest(spec=spec, name="t", source_payload={}))
    with pytest.raises(SpecFrozen):
        services.return_to_draft(lead, spec, spec.revision)
    assert fresh(spec_a).description == ""
    assert spec.rules.count() == 1


def test_a_new_draft_starts_from_an_approved_version(spec_a, engineer, lead):
    approved(spec_a, engineer, lead)
    MappingTest.objects.create(spec=spec_a, name="t", source_payload={"number": 1})
    draft = services.start_new_draft(engineer, fresh(spec_a))
    assert (draft.version, draft.status, draft.based_on, draft.revision) == (2, "draft", spec_a, 1)
    assert list(draft.rules.values_list("target_path", "source_paths")) == [("id", ["number"])]
    assert list(draft.tests.values_list("name", flat=True)) == ["t"]
    add_rule(engineer, draft, 2, "name", ["name"])
    assert fresh(spec_a).rules.count() == 1, "the approved version is untouched"
    with pytest.raises(ValidationError) as info:
        services.start_new_draft(engineer, fresh(spec_a))
    assert info.value.message_dict == {
        "status": ["Version 2 of Orders to ERP is still open; edit that one."]
    }


def test_viewers_and_other_teams_change_nothing(spec_a, engineer, viewer, engineer_b):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    rule = spec_a.rules.get()
    for user in (viewer, engineer_b):
        spec = fresh(spec_a)
        spec.description = "x"
        with pytest.raises(PermissionDenied):
            services.save_spec(user, spec, spec.revision)
        with pytest.raises(PermissionDenied):
            add_rule(user, spec, 2, "name", ["name"])
        with pytest.raises(PermissionDenied):
            services.delete_rule(user, rule, spec.revision)
        with pytest.raises(PermissionDenied):
            services.submit_for_review(user, spec, spec.revision)
        with pytest.raises(PermissionDenied):
            services.approve_spec(user, spec, spec.revision)
    assert fresh(spec_a).revision == 2
    assert list(MappingSpec.objects.for_user(viewer, "change")) == []
    assert list(MappingSpec.objects.for_user(engineer_b, "change")) == []
    assert list(MappingSpec.objects.for_user(engineer, "change")) == [spec_a]
    assert list(FieldRule.objects.for_user(engineer_b, "change")) == []
    assert list(FieldRule.objects.for_user(viewer, "view")) == [rule]


def test_mapping_tests_run_with_a_structural_diff(spec_a, engineer):
    add_rule(engineer, spec_a, 1, "id", ["number"])
    add_rule(engineer, spec_a, 2, "items[*].code", ["lines[*].sku"], "upper")
    spec = fresh(spec_a)
    services.save_mapping_test(
        engineer,
        MappingTest(
            spec=spec,
            name="passes",
            source_payload={"number": 1, "lines": [{"sku": "a"}]},
            expected_payload={"id": 1, "items": [{"code": "A"}]},
        ),
    )
    services.save_mapping_test(
        engineer,
        MappingTest(
            spec=spec,
            name="fails",
            source_payload={"number": 2, "lines": [{"sku": "a"}, {"sku": "b"}]},
            expected_payload={"id": "2", "items": [{"code": "A"}], "extra": True},
        ),
    )
    outcomes = {outcome.test.name: outcome for outcome in services.run_mapping_tests(spec)}
    assert outcomes["passes"].passed
    assert not outcomes["fails"].passed
    assert [d.as_dict() for d in outcomes["fails"].differences] == [
        {"path": "extra", "change": "removed", "expected": True, "actual": None},
        {"path": "id", "change": "changed", "expected": "2", "actual": 2},
        {"path": "items[1]", "change": "added", "expected": None, "actual": {"code": "B"}},
    ]
