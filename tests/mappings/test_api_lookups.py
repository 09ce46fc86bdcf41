"""Lookup tables over the API: tables, their entries, CSV and XLSX imports that replace
every entry or none, CSV exports escaped against formulas, and tables rows read kept."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from apps.core.models import AuditEntry
from apps.mappings.models import LookupEntry, LookupTable
from tests.mappings.api_support import count_queries, make_spec

pytestmark = pytest.mark.django_db

TABLES = "/api/v1/lookup-tables/"


@pytest.fixture
def table(team_a):
    table = LookupTable.objects.create(name="countries", owner_team=team_a, description="ISO")
    LookupEntry.objects.bulk_create(
        [
            LookupEntry(table=table, key="Germany", value="DE"),
            LookupEntry(table=table, key="France", value="FR"),
        ]
    )
    return table


def entries_of(table):
    return list(table.entries.order_by("key").values_list("key", "value"))


def xlsx(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def test_tables_are_listed_with_their_entry_counts(api_as, viewer, table):
    LookupTable.objects.create(name="currencies", description="estate-wide")
    response = api_as(viewer).get(TABLES)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(t["name"], t["owner_team"], t["entry_count"]) for t in results] == [
        ("countries", "team-a", 2),
        ("currencies", None, 0),
    ]


def test_tables_are_filtered_by_team_and_text(api_as, viewer, table, team_b):
    LookupTable.objects.create(name="currencies", owner_team=team_b, description="ISO 4217")
    client = api_as(viewer)

    def names(query):
        return [t["name"] for t in client.get(TABLES + query).json()["results"]]

    assert names("?owner_team=team-b") == ["currencies"]
    assert names("?q=iso") == ["countries", "currencies"]
    assert names("?q=4217") == ["currencies"]
    assert names("?q=countr") == ["countries"]


def test_listing_tables_costs_the_same_queries(api_as, viewer, team_a):
    client = api_as(viewer)
    client.get(TABLES)
    LookupTable.objects.create(name="t0", owner_team=team_a)
    few, _ = count_queries(lambda: client.get(TABLES))
    for n in range(1, 15):
        table = LookupTable.objects.create(name=f"t{n}", owner_team=team_a)
        LookupEntry.objects.create(table=table, key="k", value="v")
    many, response = count_queries(lambda: client.get(TABLES))
    assert response.json()["count"] == 15
    # The token with its user, the count, one page of tables with teams and entry counts.
    assert few == many == 3


def test_a_team_table_is_created_changed_and_deleted(api_as, engineer, team_a):
    client = api_as(engineer)
    created = client.post(
        TABLES, {"name": "uoms", "owner_team": "team-a", "description": "units"}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["owner_team"], body["entry_count"]) == ("uoms", "team-a", 0)
    table_id = body["id"]
    patched = client.patch(f"{TABLES}{table_id}/", {"description": "Units"}, format="json")
    assert patched.status_code == 200 and patched.json()["description"] == "Units"
    put = client.put(
        f"{TABLES}{table_id}/", {"name": "units", "owner_team": "team-a"}, format="json"
    )
    assert put.status_code == 200 and put.json()["name"] == "units"
    assert client.delete(f"{TABLES}{table_id}/").status_code == 204
    assert not LookupTable.objects.exists()
    assert AuditEntry.objects.filter(object_id=str(table_id), action="delete").exists()


def test_a_bad_table_names_the_field(api_as, engineer, table):
    client = api_as(engineer)
    duplicate = client.post(TABLES, {"name": "countries", "owner_team": "team-a"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"][0]["field"] == "name"
    unknown = client.post(TABLES, {"name": "x", "owner_team": "nobody"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "owner_team"
    assert LookupTable.objects.count() == 1


def test_only_admins_make_estate_wide_tables(api_as, engineer, admin_user):
    refused = api_as(engineer).post(TABLES, {"name": "currencies"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You may not add lookup tables for this team."
    created = api_as(admin_user).post(TABLES, {"name": "currencies"}, format="json")
    assert created.status_code == 201 and created.json()["owner_team"] is None


def test_a_team_table_cannot_be_given_to_another_team(api_as, engineer, table, team_b):
    response = api_as(engineer).patch(
        f"{TABLES}{table.pk}/", {"owner_team": "team-b"}, format="json"
    )
    assert response.status_code == 403
    table.refresh_from_db()
    assert table.owner_team.slug == "team-a"


def test_a_table_that_rows_read_is_not_deleted(api_as, engineer, table, interface_a):
    make_spec(interface_a, rows=[("countryCode", ["country"], "lookup", {"table": "countries"})])
    response = api_as(engineer).delete(f"{TABLES}{table.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "countries is read by INT-042 Orders to ERP v1; change those rows first."
    )
    assert LookupTable.objects.filter(pk=table.pk).exists()


# --------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------


def test_entries_are_listed_and_searched(api_as, viewer, table):
    client = api_as(viewer)
    response = client.get(f"{TABLES}{table.pk}/entries/")
    assert response.status_code == 200
    assert [(e["key"], e["value"]) for e in response.json()["results"]] == [
        ("France", "FR"),
        ("Germany", "DE"),
    ]
    searched = client.get(f"{TABLES}{table.pk}/entries/?q=de").json()["results"]
    assert [e["key"] for e in searched] == ["Germany"]
    assert client.get(f"{TABLES}999999/entries/").status_code == 404


def test_listing_entries_costs_the_same_queries(api_as, viewer, table):
    client = api_as(viewer)
    url = f"{TABLES}{table.pk}/entries/"
    client.get(url)
    few, _ = count_queries(lambda: client.get(url))
    LookupEntry.objects.bulk_create(
        LookupEntry(table=table, key=f"k{n}", value="v") for n in range(60)
    )
    many, response = count_queries(lambda: client.get(url))
    assert response.json()["count"] == 62 and len(response.json()["results"]) == 50
    # The token with its user, the table, the count, one page of entries.
    assert few == many == 4


def test_entries_are_added_changed_and_deleted(api_as, engineer, table):
    client = api_as(engineer)
    created = client.post(
        f"{TABLES}{table.pk}/entries/", {"key": "Spain", "value": "ES"}, format="json"
    )
    assert created.status_code == 201, created.json()
    entry_id = created.json()["id"]
    assert created.json() == {"id": entry_id, "key": "Spain", "value": "ES"}
    url = f"{TABLES}{table.pk}/entries/{entry_id}/"
    assert client.get(url).json()["value"] == "ES"
    patched = client.patch(url, {"value": "ESP"}, format="json")
    assert patched.status_code == 200 and patched.json()["value"] == "ESP"
    assert client.delete(url).status_code == 204
    assert entries_of(table) == [("France", "FR"), ("Germany", "DE")]


def test_an_entry_of_another_table_is_not_found_here(api_as, engineer, table, team_a):
    other = LookupTable.objects.create(name="other", owner_team=team_a)
    entry = LookupEntry.objects.create(table=other, key="k", value="v")
    response = api_as(engineer).patch(
        f"{TABLES}{table.pk}/entries/{entry.pk}/", {"value": "x"}, format="json"
    )
    assert response.status_code == 404
    entry.refresh_from_db()
    assert entry.value == "v"


def test_a_repeated_or_empty_key_is_refused(api_as, engineer, table):
    client = api_as(engineer)
    repeated = client.post(
        f"{TABLES}{table.pk}/entries/", {"key": "Germany", "value": "X"}, format="json"
    )
    assert repeated.status_code == 400
    assert repeated.json()["errors"] == [
        {"field": "key", "message": "countries already has the key 'Germany'.", "code": "invalid"}
    ]
    empty = client.post(f"{TABLES}{table.pk}/entries/", {"key": "", "value": "X"}, format="json")
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "key"
    assert entries_of(table) == [("France", "FR"), ("Germany", "DE")]


# --------------------------------------------------------------------------------------
# Import and export
# --------------------------------------------------------------------------------------


def test_a_csv_import_replaces_every_entry(api_as, engineer, table):
    response = api_as(engineer).post(
        f"{TABLES}{table.pk}/import/",
        {"file": SimpleUploadedFile("countries.csv", b"key,value\nItaly,IT\nSpain,ES\n")},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"entries": 2}
    assert entries_of(table) == [("Italy", "IT"), ("Spain", "ES")]


def test_an_xlsx_import_replaces_every_entry(api_as, engineer, table):
    content = xlsx([["Key", "Value"], ["Italy", "IT"]])
    response = api_as(engineer).post(
        f"{TABLES}{table.pk}/import/",
        {"file": SimpleUploadedFile("countries.xlsx", content)},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert entries_of(table) == [("Italy", "IT")]


def test_a_bad_import_lists_every_problem_and_changes_nothing(api_as, engineer, table):
    content = b"key,value\nItaly,IT\n,empty\nItaly,again\n"
    response = api_as(engineer).post(
        f"{TABLES}{table.pk}/import/",
        {"file": SimpleUploadedFile("countries.csv", content)},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "file", "message": "Line 3: the key is empty.", "code": "invalid"},
        {"field": "file", "message": "Line 4: the key 'Italy' repeats line 2.", "code": "invalid"},
    ]
    assert entries_of(table) == [("France", "FR"), ("Germany", "DE")]


@pytest.mark.parametrize(
    ("name", "content"),
    [("countries.xls", b"\xd0\xcf\x11\xe0"), ("countries.xlsm", b"PK\x03\x04"), ("c.pdf", b"%PDF")],
)
def test_files_that_are_not_csv_or_xlsx_are_refused(api_as, engineer, table, name, content):
    response = api_as(engineer).post(
        f"{TABLES}{table.pk}/import/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"
    assert entries_of(table) == [("France", "FR"), ("Germany", "DE")]


def test_an_import_needs_a_file(api_as, engineer, table):
    response = api_as(engineer).post(f"{TABLES}{table.pk}/import/", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"


def test_the_export_is_csv_escaped_against_formulas(api_as, viewer, table):
    LookupEntry.objects.create(table=table, key="=cmd", value="@SUM(A1)")
    response = api_as(viewer).get(f"{TABLES}{table.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="countries.csv"'
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text == "\ufeffkey,value\r\n'=cmd,'@SUM(A1)\r\nFrance,FR\r\nGermany,DE\r\n"
