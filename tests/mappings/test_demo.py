"""The demo mapping: it compiles against the demo partner's spec, its mapping tests pass,
and version 2 differs from the approved version 1 by two rows."""

import pytest
from django.core.management import call_command

from apps.mappings import engine, services
from apps.mappings.models import FieldRule, MappingSpec, SpecStatus

pytestmark = pytest.mark.django_db


def test_the_demo_mapping_passes_its_tests_and_has_a_draft_to_compare():
    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)  # idempotent
    approved, draft = MappingSpec.objects.order_by("version")
    assert (approved.status, draft.status) == (SpecStatus.APPROVED, SpecStatus.DRAFT)
    assert approved.source_spec is not None and approved.approved_by.username == "lead"
    assert FieldRule.objects.filter(spec=approved).count() == 18

    for spec in (approved, draft):
        engine.compile_spec(spec)
        outcomes = services.run_mapping_tests(spec)
        assert [o.passed for o in outcomes] == [True, True]

    diff = services.diff_versions(approved, draft)
    assert [(c.target_path, c.change) for c in diff.rows] == [
        ("to_Item[*].MaterialText", "changed"),
        ("to_Item[*].ProfitCenter", "added"),
    ]
