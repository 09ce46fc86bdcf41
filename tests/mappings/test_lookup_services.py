"""Lookup tables and spec deletion through the services: who may change what, and what
is refused."""

import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEntry
from apps.mappings import services
from apps.mappings.models import FieldRule, LookupEntry, LookupTable, MappingSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_table(team_a):
    return LookupTable.objects.create(name="countries", owner_team=team_a)


@pytest.fixture
def estate_table(db):
    return LookupTable.objects.create(name="currencies")


@pytest.fixture
def users(viewer, engineer, lead, admin_user, engineer_b):
    return {
        "viewer": viewer,
        "engineer": engineer,
        "lead": lead,
        "admin": admin_user,
        "other team": engineer_b,
    }


TEAM_WRITERS = {"engineer", "lead", "admin"}
ESTATE_WRITERS = {"admin"}


@pytest.mark.parametrize("who", ["viewer", "engineer", "lead", "admin", "other team"])
@pytest.mark.parametrize("estate_wide", [False, True])
def test_who_changes_lookup_tables_and_their_entries(
    who, estate_wide, users, team_a, team_table, estate_table
):
    user = users[who]
    table = estate_table if estate_wide else team_table
    allowed = who in (ESTATE_WRITERS if estate_wide else TEAM_WRITERS)
    counter = itertools.count()

    def attempt(action):
        if allowed:
            action()
            return
        with pytest.raises(PermissionDenied):
            action()

    new_table = LookupTable(name=f"new-{who}", owner_team=None if estate_wide else team_a)
    attempt(lambda: services.save_lookup_table(user, new_table))
    attempt(
        lambda: services.save_lookup_entry(user, LookupEntry(table=table, key=f"k{next(counter)}"))
    )
    table.description = "changed"
    attempt(lambda: services.save_lookup_table(user, table))
    entry = LookupEntry.objects.create(table=table, key="DE", value="Germany")
    attempt(lambda: services.delete_lookup_entry(user, entry))
    attempt(lambda: services.delete_lookup_table(user, table))

    assert LookupTable.objects.filter(pk=table.pk).exists() is not allowed
    assert LookupTable.objects.filter(name=f"new-{who}").exists() is allowed


def test_a_team_table_cannot_be_given_away_to_another_team(engineer, team_b, team_table):
    team_table.owner_team = team_b
    with pytest.raises(PermissionDenied):
        services.save_lookup_table(engineer, team_table)
    assert LookupTable.objects.get(pk=team_table.pk).owner_team_id != team_b.pk


def test_a_table_that_rows_read_is_not_deleted(spec_a, engineer, team_table):
    rule = FieldRule(spec=spec_a, position=1, target_path="c", source_paths=["c"], kind="lookup")
    rule.params = {"table": "countries"}
    services.save_rule(engineer, rule, spec_a.revision)
    with pytest.raises(ValidationError) as info:
        services.delete_lookup_table(engineer, team_table)
    assert info.value.messages == [
        "countries is read by INT-042 Orders to ERP v1; change those rows first."
    ]
    assert LookupTable.objects.filter(pk=team_table.pk).exists()


def test_entries_are_audited_and_keys_unique(engineer, team_table):
    services.save_lookup_entry(engineer, LookupEntry(table=team_table, key="DE", value="Germany"))
    assert AuditEntry.objects.filter(action="create", object_repr="countries: DE").exists()
    with pytest.raises(ValidationError):
        services.save_lookup_entry(engineer, LookupEntry(table=team_table, key="DE", value="x"))
    assert team_table.entries.count() == 1


def test_drafts_are_deleted_and_approved_versions_kept(spec_a, engineer, lead, viewer):
    with pytest.raises(PermissionDenied):
        services.delete_spec(viewer, spec_a)
    rule = FieldRule(spec=spec_a, position=1, target_path="id", source_paths=["id"])
    services.save_rule(engineer, rule, spec_a.revision)
    services.submit_for_review(engineer, spec_a, spec_a.revision)
    services.approve_spec(lead, spec_a, spec_a.revision)
    with pytest.raises(ValidationError):
        services.delete_spec(lead, spec_a)
    draft = services.start_new_draft(engineer, spec_a)
    draft_id = draft.pk
    services.delete_spec(engineer, draft)
    assert list(MappingSpec.objects.values_list("version", flat=True)) == [1]
    assert AuditEntry.objects.filter(action="delete", object_id=str(draft_id)).exists()
