"""Browser views: lists with filters, sorting, pagination and CSV; forms with live validation; history."""

import csv
import io

import pytest

from apps.catalog.models import Interface, System
from apps.core.models import AuditEntry
from tests.factories import InterfaceFactory, SystemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, engineer):
    client.force_login(engineer)
    return client


def test_home_shows_the_estate(signed_in, interface_a):
    page = signed_in.get("/").content.decode()
    assert (
        "Integration estate" in page and "Lifecycle" in page and "API contract compliance" in page
    )


def test_search_answers_htmx_with_a_partial(signed_in, interface_a):
    response = signed_in.get("/search/?q=INT-04", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "<html" not in page
    assert "INT-042" in page


@pytest.mark.parametrize("query", ["invoice", "INT-042", "CRM-side"])
def test_search_by_code_name_system_and_tag(signed_in, team_a, query):
    from apps.catalog.models import Tag

    source = SystemFactory(name="CRM-side system", owner_team=team_a)
    InterfaceFactory(
        code="INT-042",
        name="Invoice status",
        owner_team=team_a,
        source_system=source,
        tags=[Tag.objects.create(name="billing")],
    )
    assert (
        "INT-042" in signed_in.get(f"/search/?q={query}", HTTP_HX_REQUEST="true").content.decode()
    )
    assert "INT-042" in signed_in.get("/search/?q=billing", HTTP_HX_REQUEST="true").content.decode()


def test_search_says_when_nothing_matches(signed_in):
    assert (
        "Nothing matches"
        in signed_in.get("/search/?q=zzzz", HTTP_HX_REQUEST="true").content.decode()
    )


def test_interface_list_filters_and_sorts(signed_in, team_a):
    InterfaceFactory(code="INT-001", name="Alpha", owner_team=team_a, status="live")
    InterfaceFactory(code="INT-002", name="Beta", owner_team=team_a, status="design")
    page = signed_in.get("/interfaces/?status=live").content.decode()
    assert "INT-001" in page and "INT-002" not in page
    page = signed_in.get("/interfaces/?sort=-code").content.decode()
    assert page.index("INT-002") < page.index("INT-001")


def test_list_htmx_request_renders_only_the_table(signed_in, interface_a):
    response = signed_in.get("/interfaces/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="list-table")
    page = response.content.decode()
    assert "<html" not in page and "INT-042" in page and "<table>" in page


def test_list_paginates(signed_in, team_a):
    for _ in range(30):
        InterfaceFactory(owner_team=team_a)
    page = signed_in.get("/interfaces/").content.decode()
    assert "1–25 of 30" in page and "Next →" in page
    assert "26–30 of 30" in signed_in.get("/interfaces/?page=2").content.decode()


def test_list_empty_state(signed_in):
    assert "The catalog is empty" in signed_in.get("/interfaces/").content.decode()
    assert (
        "No interface matches these filters"
        in signed_in.get("/interfaces/?q=nothing").content.decode()
    )


def test_csv_export_escapes_formulas_and_round_trips(signed_in, team_a):
    InterfaceFactory(code="INT-001", name='=HYPERLINK("http://evil")', owner_team=team_a)
    InterfaceFactory(code="INT-002", name='Comma, "quoted"\nnewline', owner_team=team_a)
    response = signed_in.get("/interfaces/?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["code", "name", "business_process"]
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'
    assert rows[2][1] == 'Comma, "quoted"\nnewline'


@pytest.mark.parametrize(
    "url", ["/systems/?format=csv", "/environments/?format=csv", "/endpoints/?format=csv"]
)
def test_every_list_exports_csv(signed_in, interface_a, url):
    response = signed_in.get(url)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")


def test_create_interface_through_the_form(signed_in, team_a):
    source = SystemFactory(name="CRM", owner_team=team_a)
    target = SystemFactory(name="ERP", owner_team=team_a)
    response = signed_in.post(
        "/interfaces/new/",
        {
            "code": "int-050",
            "name": "Orders to ERP",
            "source_system": source.pk,
            "target_system": target.pk,
            "pattern": "sync_api",
            "platform": "boomi",
            "owner_team": team_a.pk,
            "status": "proposed",
            "criticality": "high",
            "tags": "orders, Finance",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/interfaces/INT-050/"
    interface = Interface.objects.get(code="INT-050")
    assert sorted(t.name for t in interface.tags.all()) == ["finance", "orders"]
    page = signed_in.get("/interfaces/INT-050/").content.decode()
    assert "History" in page and "engineer</strong> created this" in page


def test_form_errors_keep_nothing(signed_in, team_a):
    system = SystemFactory(owner_team=team_a)
    response = signed_in.post(
        "/interfaces/new/",
        {
            "code": "INT-051",
            "name": "Loop",
            "source_system": system.pk,
            "target_system": system.pk,
            "pattern": "sync_api",
            "platform": "boomi",
            "owner_team": team_a.pk,
            "status": "proposed",
            "criticality": "low",
        },
    )
    assert response.status_code == 200
    assert "Source and target must be different systems." in response.content.decode()
    assert not Interface.objects.exists() and not AuditEntry.objects.exists()


def test_live_validation_returns_the_fields_errors_only(signed_in, team_a, interface_a):
    response = signed_in.post(
        "/interfaces/new/",
        {"code": interface_a.code, "_validate": "1"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="code",
    )
    assert response.status_code == 200
    assert response.content.decode().strip() == (
        '<ul class="errors"><li>Interface with this Code already exists.</li></ul>'
    )
    assert Interface.objects.count() == 1


def test_live_validation_of_a_valid_field_is_empty(signed_in, team_a):
    response = signed_in.post(
        "/interfaces/new/",
        {"code": "INT-777", "_validate": "1"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="code",
    )
    assert response.content.decode().strip() == ""


def test_engineer_cannot_open_another_teams_edit_form(signed_in, interface_b):
    assert signed_in.get(f"/interfaces/{interface_b.code}/edit/").status_code == 403
    assert signed_in.post(f"/interfaces/{interface_b.code}/delete/").status_code == 403
    assert Interface.objects.filter(pk=interface_b.pk).exists()


def test_delete_asks_for_confirmation_then_deletes(signed_in, interface_a):
    page = signed_in.get(f"/interfaces/{interface_a.code}/delete/").content.decode()
    assert "This cannot be undone" in page
    assert Interface.objects.filter(pk=interface_a.pk).exists()
    response = signed_in.post(f"/interfaces/{interface_a.code}/delete/")
    assert response.status_code == 302
    assert not Interface.objects.filter(pk=interface_a.pk).exists()
    assert AuditEntry.objects.filter(action="delete", object_repr__startswith="INT-042").exists()


def test_system_in_use_cannot_be_deleted(signed_in, interface_a):
    system = interface_a.source_system
    response = signed_in.post(f"/systems/{system.pk}/delete/", follow=True)
    assert "is still used by" in response.content.decode()
    assert System.objects.filter(pk=system.pk).exists()


def test_runbook_markdown_is_rendered_and_sanitised(signed_in, interface_a):
    interface_a.runbook = "## Steps\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    interface_a.save()
    page = signed_in.get(f"/interfaces/{interface_a.code}/").content.decode()
    assert "<h2>Steps</h2>" in page and "<strong>bold</strong>" in page
    assert "<script>alert" not in page and "javascript:alert" not in page and "onerror" not in page


def test_flow_map_data(signed_in, team_a, team_b):
    InterfaceFactory(code="INT-001", owner_team=team_a, status="live", pattern="sync_api")
    InterfaceFactory(code="INT-002", owner_team=team_b, status="design", pattern="batch_file")
    InterfaceFactory(code="INT-003", owner_team=team_b, status="retired")
    data = signed_in.get("/map/data.json").json()
    assert sorted(e["code"] for e in data["edges"]) == ["INT-001", "INT-002"]
    assert len(data["nodes"]) == 4
    assert [e["code"] for e in signed_in.get("/map/data.json?team=team-a").json()["edges"]] == [
        "INT-001"
    ]
    assert [
        e["code"] for e in signed_in.get("/map/data.json?pattern=batch_file").json()["edges"]
    ] == ["INT-002"]
    assert [e["code"] for e in signed_in.get("/map/data.json?status=retired").json()["edges"]] == [
        "INT-003"
    ]


@pytest.mark.parametrize("url", ["/interfaces/", "/systems/", "/endpoints/", "/environments/"])
def test_list_pages_have_constant_queries(signed_in, team_a, django_assert_max_num_queries, url):
    for _ in range(30):
        InterfaceFactory(owner_team=team_a)
    # session + user + count + page + tag prefetch (+ team ids)
    with django_assert_max_num_queries(7):
        assert signed_in.get(url + "?page_size=100").status_code == 200
