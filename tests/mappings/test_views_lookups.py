"""Lookup table pages: list, detail with inline entries (htmx), create, edit, delete,
import and export, with the permission policy."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from apps.core.models import AuditEntry
from apps.mappings.models import LookupEntry, LookupTable
from tests.mappings import views_support
from tests.mappings.views_support import HTMX, add_row, htmx

pytestmark = pytest.mark.django_db

order_spec = views_support.order_spec


@pytest.fixture
def countries(team_a):
    table = LookupTable.objects.create(name="countries", owner_team=team_a, description="ISO")
    LookupEntry.objects.bulk_create(
        [
            LookupEntry(table=table, key="DE", value="Germany"),
            LookupEntry(table=table, key="FR", value="France"),
        ]
    )
    return table


def entries(table):
    return dict(table.entries.values_list("key", "value"))


# ---------------------------------------------------------------- list and detail


def test_the_list_searches_and_filters_by_team(client, viewer, countries, team_b):
    LookupTable.objects.create(name="currencies", owner_team=team_b)
    LookupTable.objects.create(name="estate-units")
    client.force_login(viewer)
    response = client.get("/lookup-tables/")
    html = response.content.decode()
    assert [t.name for t in response.context["object_list"]] == [
        "countries",
        "currencies",
        "estate-units",
    ]
    assert '<td class="num">2</td>' in html and '<span class="muted">estate-wide</span>' in html
    assert "New lookup table" not in html
    names = [t.name for t in client.get("/lookup-tables/?q=curr").context["object_list"]]
    assert names == ["currencies"]
    filtered = client.get(f"/lookup-tables/?owner_team={team_b.pk}").context["object_list"]
    assert [t.name for t in filtered] == ["currencies"]


def test_the_nav_links_the_lookup_tables(client, viewer):
    client.force_login(viewer)
    html = client.get("/lookup-tables/").content.decode()
    assert '<a href="/lookup-tables/" class="active">Lookup tables</a>' in html
    assert "No lookup tables yet." in html


def test_the_detail_shows_entries_and_the_rows_reading_it(client, engineer, countries, order_spec):
    add_row(engineer, order_spec, 3, "country", ["country"], "lookup", {"table": "countries"})
    client.force_login(engineer)
    html = client.get(f"/lookup-tables/{countries.pk}/").content.decode()
    assert "owned by Team A · 2 entries" in html
    assert '<tr id="entry-' in html and "<code>DE</code>" in html and "Germany" in html
    assert f'href="/mappings/{order_spec.pk}/#row-3">INT-042 Orders to ERP v1</a>' in html
    assert f'hx-post="/lookup-tables/{countries.pk}/entries/new/"' in html
    assert 'hx-confirm="Delete the key DE?"' in html


def test_entries_are_paginated_and_searched_as_a_partial(client, viewer, countries):
    LookupEntry.objects.bulk_create(
        LookupEntry(table=countries, key=f"K{n:03d}", value=f"v{n}") for n in range(120)
    )
    client.force_login(viewer)
    url = f"/lookup-tables/{countries.pk}/"
    response = client.get(url)
    assert len(response.context["entries"]) == 50
    assert "1–50 of 122" in response.content.decode()
    response = client.get(url + "?page=3", **htmx(target="list-table"))
    html = response.content.decode()
    assert "<html" not in html and "101–122 of 122" in html
    response = client.get(url + "?q=k11", **htmx(target="list-table"))
    assert [e.key for e in response.context["entries"]] == [f"K11{n}" for n in range(10)]
    html = client.get(url + "?q=zzz", **htmx(target="list-table")).content.decode()
    assert "No entry matches “zzz”." in html
    assert "Add entry" not in html  # viewers get no add form


def test_the_detail_queries_do_not_grow_with_entries(
    client, engineer, countries, django_assert_num_queries
):
    client.force_login(engineer)
    url = f"/lookup-tables/{countries.pk}/"
    # session, user, table with its team, count, page, rows reading it, team ids
    with django_assert_num_queries(7):
        assert client.get(url).status_code == 200
    LookupEntry.objects.bulk_create(
        LookupEntry(table=countries, key=f"K{n:03d}", value="v") for n in range(200)
    )
    with django_assert_num_queries(7):
        html = client.get(url).content.decode()
    assert html.count('<tr id="entry-') == 50


# ---------------------------------------------------------------- inline entries


def test_an_entry_is_added_inline(client, engineer, countries):
    client.force_login(engineer)
    url = f"/lookup-tables/{countries.pk}/entries/new/"
    response = client.post(url, {"key": " AT ", "value": "Austria"}, **HTMX)
    html = response.content.decode()
    assert "Added <code>AT</code>." in html and "<code>AT</code>" in html
    assert entries(countries)["AT"] == "Austria"
    response = client.post(url, {"key": "AT", "value": "again"}, **HTMX)
    assert "countries already has the key &#x27;AT&#x27;." in response.content.decode()
    response = client.post(url, {"key": "", "value": "x"}, **HTMX)
    assert "This field is required." in response.content.decode()
    assert entries(countries)["AT"] == "Austria" and len(entries(countries)) == 3


def test_an_entry_is_edited_inline(client, engineer, countries):
    client.force_login(engineer)
    entry = countries.entries.get(key="DE")
    url = f"/lookup-entries/{entry.pk}/edit/"
    html = client.get(url, **HTMX).content.decode()
    assert html.startswith(f'<tr id="entry-{entry.pk}" class="editing">')
    assert 'value="Germany"' in html
    html = client.post(url, {"key": "DE", "value": "Deutschland"}, **HTMX).content.decode()
    assert html.startswith(f'<tr id="entry-{entry.pk}">') and "Deutschland" in html
    html = client.post(url, {"key": "FR", "value": "x"}, **HTMX).content.decode()
    assert 'class="editing"' in html and "already has the key" in html
    assert entries(countries) == {"DE": "Deutschland", "FR": "France"}
    html = client.get(url + "?show=1", **HTMX).content.decode()
    assert "Deutschland" in html and "editing" not in html
    entry_audit = AuditEntry.objects.get(object_id=str(entry.pk), action="update")
    assert entry_audit.changes == {"value": ["Germany", "Deutschland"]}


def test_an_entry_is_deleted_after_confirmation(client, engineer, countries):
    client.force_login(engineer)
    entry = countries.entries.get(key="DE")
    html = client.get(f"/lookup-entries/{entry.pk}/delete/").content.decode()
    assert "Delete the key DE from countries?" in html
    response = client.post(f"/lookup-entries/{entry.pk}/delete/", **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert entries(countries) == {"FR": "France"}


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_entries_are_changed_by_the_owner_team_only(request, client, persona, countries):
    client.force_login(request.getfixturevalue(persona))
    entry = countries.entries.get(key="DE")
    new_url = f"/lookup-tables/{countries.pk}/entries/new/"
    assert client.post(new_url, {"key": "AT", "value": "x"}).status_code == 403
    assert client.get(f"/lookup-entries/{entry.pk}/edit/").status_code == 403
    assert client.post(f"/lookup-entries/{entry.pk}/edit/", {"key": "DE"}).status_code == 403
    assert client.post(f"/lookup-entries/{entry.pk}/delete/").status_code == 403
    html = client.get(f"/lookup-tables/{countries.pk}/").content.decode()
    assert "Add entry" not in html and "/edit/" not in html and "Import" not in html
    assert entries(countries) == {"DE": "Germany", "FR": "France"}


def test_admins_change_estate_wide_tables(client, engineer, admin_user):
    table = LookupTable.objects.create(name="units")
    client.force_login(engineer)
    url = f"/lookup-tables/{table.pk}/entries/new/"
    assert client.post(url, {"key": "KG", "value": "kilogram"}).status_code == 403
    client.force_login(admin_user)
    client.post(url, {"key": "KG", "value": "kilogram"})
    assert entries(table) == {"KG": "kilogram"}


# ---------------------------------------------------------------- tables


def test_an_engineer_creates_a_table_for_their_team(client, engineer, team_a, team_b):
    client.force_login(engineer)
    response = client.get("/lookup-tables/new/")
    choices = [label for _, label in response.context["form"].fields["owner_team"].choices]
    assert choices == ["— estate-wide (admins) —", "Team A"]
    response = client.post(
        "/lookup-tables/new/", {"name": "x", "owner_team": team_b.pk, "description": ""}
    )
    assert "owner_team" in response.context["form"].errors
    response = client.post("/lookup-tables/new/", {"name": "", "description": ""})
    assert response.context["form"].errors == {
        "name": ["This field is required."],
        "owner_team": ["This field is required."],
    }
    response = client.post(
        "/lookup-tables/new/", {"name": "regions", "owner_team": team_a.pk, "description": "d"}
    )
    table = LookupTable.objects.get(name="regions")
    assert response["Location"] == f"/lookup-tables/{table.pk}/"
    assert AuditEntry.objects.filter(object_id=str(table.pk), action="create").exists()


def test_a_table_is_renamed_by_its_team(client, engineer, engineer_b, countries):
    client.force_login(engineer_b)
    assert client.get(f"/lookup-tables/{countries.pk}/edit/").status_code == 403
    client.force_login(engineer)
    response = client.post(
        f"/lookup-tables/{countries.pk}/edit/",
        {"name": "iso-countries", "owner_team": countries.owner_team_id, "description": "ISO"},
    )
    assert response.status_code == 302
    countries.refresh_from_db()
    assert countries.name == "iso-countries"


def test_a_table_rows_read_is_not_deleted(client, engineer, countries, order_spec):
    add_row(engineer, order_spec, 3, "country", ["country"], "lookup", {"table": "countries"})
    client.force_login(engineer)
    html = client.get(f"/lookup-tables/{countries.pk}/delete/").content.decode()
    assert "It cannot be deleted while mapping rows read it:" in html
    assert "Yes, delete" not in html
    response = client.post(f"/lookup-tables/{countries.pk}/delete/", follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "countries is read by INT-042 Orders to ERP v1; change those rows first."
    ]
    assert LookupTable.objects.filter(pk=countries.pk).exists()


def test_an_unused_table_is_deleted_after_confirmation(client, engineer, viewer, countries):
    client.force_login(viewer)
    assert client.get(f"/lookup-tables/{countries.pk}/delete/").status_code == 403
    client.force_login(engineer)
    html = client.get(f"/lookup-tables/{countries.pk}/delete/").content.decode()
    assert "Its 2 entries go with it." in html
    response = client.post(f"/lookup-tables/{countries.pk}/delete/")
    assert response["Location"] == "/lookup-tables/"
    assert not LookupTable.objects.exists()


# ---------------------------------------------------------------- import and export


def test_a_csv_import_replaces_the_entries(client, engineer, countries):
    client.force_login(engineer)
    upload = SimpleUploadedFile("c.csv", b"key,value\nAT,Austria\nCH,Switzerland\n")
    response = client.post(f"/lookup-tables/{countries.pk}/import/", {"file": upload})
    assert response.status_code == 302
    assert entries(countries) == {"AT": "Austria", "CH": "Switzerland"}


def test_an_xlsx_import_replaces_the_entries(client, engineer, countries):
    book = Workbook()
    book.active.append(["Key", "Value"])
    book.active.append(["IT", "Italy"])
    data = io.BytesIO()
    book.save(data)
    client.force_login(engineer)
    upload = SimpleUploadedFile("c.xlsx", data.getvalue())
    client.post(f"/lookup-tables/{countries.pk}/import/", {"file": upload})
    assert entries(countries) == {"IT": "Italy"}


def test_a_bad_import_lists_its_problems_and_changes_nothing(client, engineer, countries):
    client.force_login(engineer)
    upload = SimpleUploadedFile("c.csv", b"key,value\n,empty\nAT,a\nAT,b\n")
    response = client.post(f"/lookup-tables/{countries.pk}/import/", {"file": upload})
    html = response.content.decode()
    assert "The file was not imported: 2 problems" in html
    assert "<li>Line 2: the key is empty.</li>" in html
    assert "<li>Line 4: the key &#x27;AT&#x27; repeats line 3.</li>" in html
    assert entries(countries) == {"DE": "Germany", "FR": "France"}
    upload = SimpleUploadedFile("c.xls", b"whatever")
    html = client.post(f"/lookup-tables/{countries.pk}/import/", {"file": upload}).content
    assert b".xls files are not read; save the table as .xlsx or .csv." in html


def test_importing_is_for_the_owner_team(client, viewer, engineer_b, countries):
    for user in (viewer, engineer_b):
        client.force_login(user)
        upload = SimpleUploadedFile("c.csv", b"key,value\nAT,Austria\n")
        assert client.get(f"/lookup-tables/{countries.pk}/import/").status_code == 403
        response = client.post(f"/lookup-tables/{countries.pk}/import/", {"file": upload})
        assert response.status_code == 403
    assert entries(countries) == {"DE": "Germany", "FR": "France"}


def test_the_entries_export_as_csv(client, viewer, countries):
    client.force_login(viewer)
    response = client.get(f"/lookup-tables/{countries.pk}/export/")
    assert response["Content-Disposition"] == 'attachment; filename="countries.csv"'
    body = b"".join(response.streaming_content).decode()
    assert body == "\ufeffkey,value\r\nDE,Germany\r\nFR,France\r\n"
