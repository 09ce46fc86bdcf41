"""The portal in a real browser: sign in, search, browse, create with live validation, history, map."""

from pathlib import Path

import pytest

from apps.accounts.models import Role
from apps.catalog.models import Interface, Tag
from tests.browser.conftest import sign_in
from tests.factories import (
    EnvironmentFactory,
    InterfaceFactory,
    SystemFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def estate(db):
    team = TeamFactory(name="CRM Integration", slug="crm-integration")
    other = TeamFactory(name="ERP Integration", slug="erp-integration")
    crm = SystemFactory(name="Salesforce CRM", owner_team=team)
    erp = SystemFactory(name="SAP S/4HANA", kind="on_prem", owner_team=other)
    hr = SystemFactory(name="Workday HRIS", owner_team=other)
    finance = Tag.objects.create(name="finance")
    InterfaceFactory(
        code="INT-042",
        name="Invoice status to CRM",
        source_system=erp,
        target_system=crm,
        owner_team=team,
        status="live",
        tags=[finance],
        runbook="## Restart\n\nRe-run the **batch**.",
    )
    InterfaceFactory(
        code="INT-043",
        name="Accounts to ERP",
        source_system=crm,
        target_system=erp,
        owner_team=team,
        status="build",
        pattern="async_event",
    )
    InterfaceFactory(
        code="INT-044",
        name="Employees to CRM",
        source_system=hr,
        target_system=crm,
        owner_team=other,
        status="design",
        pattern="batch_file",
    )
    EnvironmentFactory(name="UAT", slug="uat", position=3)
    UserFactory(username="engineer", role=Role.ENGINEER, teams=[team])
    UserFactory(username="viewer", role=Role.VIEWER)
    return {"crm": crm, "erp": erp, "team": team}


def test_engineer_signs_in_searches_and_browses(page, estate):
    sign_in(page, "engineer")
    assert page.locator("h1").inner_text() == "Integration estate"
    page.fill("input[name=q]", "invoice")
    page.wait_for_selector("#search-results a:has-text('INT-042')")
    shot(page, "search")
    page.click("#search-results a:has-text('INT-042')")
    page.wait_for_url("**/interfaces/INT-042/")
    assert "Invoice status to CRM" in page.locator("h1").inner_text()
    assert page.locator(".markdown strong").inner_text() == "batch"
    shot(page, "interface-detail")
    page.click("nav >> text=Interfaces")
    page.wait_for_selector("table >> text=INT-044")
    page.select_option("select[name=status]", "build")
    page.wait_for_function(
        "() => !document.querySelector('#list-table').innerText.includes('INT-044')"
    )
    assert "INT-043" in page.locator("#list-table").inner_text()
    shot(page, "interface-list")


def test_create_interface_with_live_validation_and_history(page, estate):
    sign_in(page, "engineer")
    page.goto("/interfaces/new/")
    page.fill("#id_code", "INT-042")
    page.wait_for_selector("#errors-code >> text=Interface with this Code already exists.")
    shot(page, "form-validation")
    page.fill("#id_code", "INT-050")
    page.wait_for_function("() => document.querySelector('#errors-code').innerText.trim() === ''")
    page.fill("#id_name", "Orders to ERP")
    page.select_option("#id_source_system", label="Salesforce CRM")
    page.select_option("#id_target_system", label="Salesforce CRM")
    page.wait_for_selector(
        "#errors-target_system >> text=Source and target must be different systems."
    )
    page.select_option("#id_target_system", label="SAP S/4HANA")
    page.select_option("#id_pattern", "sync_api")
    page.select_option("#id_platform", "boomi")
    page.select_option("#id_owner_team", label="CRM Integration")
    page.fill("#id_tags", "orders, finance")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/interfaces/INT-050/")
    assert Interface.objects.filter(code="INT-050").exists()
    history = page.locator("#history").inner_text()
    assert "engineer created this" in history and "Orders to ERP" in history
    page.click("text=Edit")
    page.fill("#id_name", "Sales orders to ERP")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/interfaces/INT-050/")
    history = page.locator("#history").inner_text()
    assert "engineer updated this" in history and "Sales orders to ERP" in history
    shot(page, "history")


def test_data_flow_map_draws_systems_and_interfaces(page, estate):
    sign_in(page, "engineer")
    page.goto("/map/")
    page.wait_for_selector("#flow-map g.node")
    assert page.locator("#flow-map g.node").count() == 3
    assert page.locator("#flow-map a.edge").count() == 3
    assert page.locator("#flow-map a.edge[data-status=live]").count() == 1
    shot(page, "flow-map")
    page.select_option("select[name=team]", "erp-integration")
    page.wait_for_function("() => document.querySelectorAll('#flow-map a.edge').length === 1")


def test_viewer_sees_no_edit_controls(page, estate):
    sign_in(page, "viewer")
    page.goto("/interfaces/INT-042/")
    for label in ("Edit", "Delete", "Add endpoint", "Upload spec"):
        assert page.locator(f".actions >> text={label}").count() == 0
    page.goto("/interfaces/")
    assert page.locator("text=New interface").count() == 0
    page.goto("/")
    assert page.locator("text=New interface").count() == 0
    shot(page, "viewer")


def test_api_docs_render_offline(page, estate):
    sign_in(page, "engineer")
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag")
    # Swagger UI renders the tags as they scroll into view.
    seen = set()
    for _ in range(400):
        seen.update(page.locator(".swagger-ui .opblock-tag").all_inner_texts())
        if {"interfaces", "mapping-specs", "users"} <= {name.strip() for name in seen}:
            break
        page.mouse.wheel(0, 500)
        page.wait_for_timeout(50)
    assert {"interfaces", "mapping-specs", "users"} <= {name.strip() for name in seen}
    shot(page, "api-docs")
