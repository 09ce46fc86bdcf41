"""The mapping editor in a real browser: the live preview follows the sample as it is typed
and a row as it is edited, saves refresh the rows and the preview, and the tests run."""

from pathlib import Path

import pytest

from apps.accounts.models import Role
from apps.mappings import services
from apps.mappings.models import FieldRule, MappingSpec, MappingTest
from tests.browser.conftest import sign_in
from tests.factories import InterfaceFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/mui-shots")  # noqa: S108 - where the brief asks for them


def wait_text(page, selector, text):
    """Waits until the element's text holds ``text`` (which may hold quotes)."""
    page.wait_for_function(
        "([selector, text]) => (document.querySelector(selector)?.innerText || '').includes(text)",
        arg=[selector, text],
    )


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def spec(db):
    team = TeamFactory(name="ERP Integration", slug="erp-integration")
    engineer = UserFactory(username="engineer", role=Role.ENGINEER, teams=[team])
    interface = InterfaceFactory(code="INT-007", name="Orders to ERP", owner_team=team)
    spec = services.create_spec(
        engineer,
        MappingSpec(
            interface=interface,
            name="Order intake",
            source_schema={
                "type": "object",
                "properties": {"number": {"type": "string"}, "state": {"type": "string"}},
            },
            target_schema={
                "type": "object",
                "required": ["id", "status"],
                "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
            },
        ),
    )
    for position, target, source, kind, params in (
        (1, "id", "number", "copy", {}),
        (2, "status", "state", "code_map", {"map": {"N": "new", "S": "shipped"}}),
    ):
        rule = FieldRule(
            spec=spec,
            position=position,
            target_path=target,
            source_paths=[source],
            kind=kind,
            params=params,
            required=True,
        )
        services.save_rule(engineer, rule, spec.revision)
    services.save_mapping_test(
        engineer,
        MappingTest(
            spec=spec,
            name="new order",
            source_payload={"number": "SO-1", "state": "N"},
            expected_payload={"id": "SO-1", "status": "new"},
        ),
    )
    return spec


def test_the_preview_follows_the_sample_and_the_row_being_edited(page, spec):
    sign_in(page, "engineer")
    page.goto(f"/mappings/{spec.pk}/")
    result = page.locator("#preview-result")
    # The first mapping test is the starting sample; the preview loads with the page.
    wait_text(page, "#preview-result", '"id": "SO-1"')
    assert "No problems." in result.inner_text()

    # Typing a sample updates the preview (after a pause).
    sample = page.locator("#preview-sample")
    sample.fill("")
    sample.press_sequentially('{"number": "SO-99", "state": "S"}', delay=5)
    wait_text(page, "#preview-result", '"status": "shipped"')
    assert '"id": "SO-99"' in result.inner_text()

    # Bad JSON is a clear message, not an error page.
    sample.press("End")
    sample.press_sequentially(",")
    page.wait_for_selector("#preview-result >> text=The sample cannot be read:")
    sample.press("Backspace")
    wait_text(page, "#preview-result", '"status": "shipped"')

    # Editing a row previews its unsaved values before they are saved.
    page.click("#row-2 >> text=Edit")
    page.wait_for_selector("#row-form >> text=Edit row 2")
    page.fill("#id_row-params", '{"map": {"N": "new", "S": "sent"}}')
    wait_text(page, "#preview-result", '"status": "sent"')
    assert "With your unsaved row 2" in result.inner_text()
    assert FieldRule.objects.get(spec=spec, position=2).params["map"]["S"] == "shipped"
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "editor")

    # Saving refreshes the rows and the preview, and the page takes the new revision.
    page.click("#row-form button:has-text('Save row')")
    page.wait_for_selector("#row-editor >> text=Saved row 2 (status).")
    page.wait_for_selector("#rows-table >> text=map: N=new; S=sent")
    page.wait_for_function(
        "() => !document.querySelector('#preview-result').innerText.includes('unsaved')"
    )
    assert '"status": "sent"' in result.inner_text()
    assert page.locator("[data-revision-text]").inner_text() == "4"
    assert FieldRule.objects.get(spec=spec, position=2).params["map"]["S"] == "sent"

    # A second edit saves at the new revision: the user's own saves never conflict.
    page.click("#row-1 >> text=Edit")
    page.wait_for_selector("#row-form >> text=Edit row 1")
    page.fill("#id_row-notes", "The order number")
    page.click("#row-form button:has-text('Save row')")
    page.wait_for_selector("#row-editor >> text=Saved row 1 (id).")
    assert FieldRule.objects.get(spec=spec, position=1).notes == "The order number"

    # A bad row is refused with its errors, and nothing is saved.
    page.click("#row-1 >> text=Edit")
    page.fill("#id_row-target_path", "status")
    page.click("#row-form button:has-text('Save row')")
    page.wait_for_selector("#row-form >> text=Row 2 already maps status.")

    # The mapping tests run in place; the changed map makes no difference to "new order".
    page.click("#row-form >> text=Cancel")
    page.wait_for_selector("#row-editor >> text=Row editor")
    page.click("text=Run all tests")
    page.wait_for_selector("#test-results >> text=1 of 1 passed")
    # A test that expects the old value fails, with its structural difference.
    services.save_mapping_test(
        spec.updated_by,
        MappingTest(
            spec=MappingSpec.objects.get(pk=spec.pk),
            name="shipped order",
            source_payload={"number": "SO-2", "state": "S"},
            expected_payload={"id": "SO-2", "status": "shipped"},
        ),
    )
    page.click("text=Run all tests")
    page.wait_for_selector("#test-results >> text=1 of 2 passed")
    row = page.locator("#test-results table.differences tbody tr")
    assert row.count() == 1
    assert "status" in row.inner_text() and "changed" in row.inner_text()
    assert '"shipped"' in row.inner_text() and '"sent"' in row.inner_text()
    shot(page, "editor-tests")
