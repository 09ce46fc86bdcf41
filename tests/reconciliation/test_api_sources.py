"""REST API of data sources: JSON and multipart writes, write-only credentials that no
response, history entry or error ever shows, connection checks, the team policy."""

import hashlib
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEntry
from apps.reconciliation import services
from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind
from tests.reconciliation.test_runs import SOURCE_CSV, file_source

pytestmark = pytest.mark.django_db

PASSWORD = "Canary-pw-7f3a9!"
URL = "/api/v1/data-sources/"
PG = {"kind": "postgresql", "dsn": "postgresql://reader@127.0.0.1:1/erp"}


def never_shows_password(response) -> None:
    """The password appears nowhere in the answer, its headers included."""
    body = response.content.decode() if not response.streaming else ""
    assert PASSWORD not in body
    assert PASSWORD not in str(dict(response.items()))


def stored_files() -> set[str]:
    folder = Path(settings.MEDIA_ROOT) / "reconciliation" / "files"
    return {path.name for path in folder.glob("*")} if folder.exists() else set()


@pytest.fixture
def pg_source(engineer, team_a):
    return services.save_data_source(
        engineer,
        DataSource(owner_team=team_a, name="erp", **PG),
        {"password": PASSWORD},
    )


@pytest.fixture
def csv_source(engineer, team_a):
    return services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV))


# --------------------------------------------------------------------------------------
# Create, update, credentials
# --------------------------------------------------------------------------------------


def test_a_sql_source_is_created_with_write_only_credentials(api_as, engineer):
    response = api_as(engineer).post(
        URL,
        {"name": "erp", "owner_team": "team-a", **PG, "credentials": {"password": PASSWORD}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    never_shows_password(response)
    body = response.json()
    assert "credentials" not in body and "credentials_ciphertext" not in body
    assert body["credential_fields_set"] == ["password"]
    assert {k: body[k] for k in ("name", "kind", "owner_team", "dsn", "endpoint")} == {
        "name": "erp",
        "kind": "postgresql",
        "owner_team": "team-a",
        "dsn": PG["dsn"],
        "endpoint": None,
    }
    source = DataSource.objects.get(pk=body["id"])
    assert source.get_credentials() == {"password": PASSWORD}
    assert PASSWORD not in source.credentials_ciphertext


def test_credentials_stay_when_left_out_are_replaced_when_sent_and_cleared_with_nothing(
    api_as, engineer, pg_source
):
    client = api_as(engineer)
    url = f"{URL}{pg_source.pk}/"
    response = client.patch(url, {"description": "ERP replica"}, format="json")
    assert response.status_code == 200
    never_shows_password(response)
    assert response.json()["credential_fields_set"] == ["password"]
    pg_source.refresh_from_db()
    assert pg_source.get_credentials() == {"password": PASSWORD}

    response = client.patch(url, {"credentials": {"password": "other-" + PASSWORD}}, format="json")
    assert response.status_code == 200
    never_shows_password(response)
    pg_source.refresh_from_db()
    assert pg_source.get_credentials() == {"password": "other-" + PASSWORD}

    response = client.patch(url, {"credentials": {}}, format="json")
    assert response.json()["credential_fields_set"] == []
    pg_source.refresh_from_db()
    assert pg_source.get_credentials() == {}


def test_the_history_shows_that_credentials_changed_never_their_value(api_as, engineer, pg_source):
    client = api_as(engineer)
    client.patch(
        f"{URL}{pg_source.pk}/", {"credentials": {"password": PASSWORD + "2"}}, format="json"
    )
    response = client.get(f"{URL}{pg_source.pk}/history/")
    assert response.status_code == 200
    never_shows_password(response)
    entries = response.json()
    assert [entry["action"] for entry in entries] == ["update", "create"]
    assert entries[0]["changes"] == {"credentials_ciphertext": ["(changed)", "(changed)"]}
    assert PASSWORD not in json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_no_response_or_error_ever_contains_the_password(
    api_as, engineer, admin_user, viewer, engineer_b, pg_source, team_a
):
    """Every route of a source with a password, for every persona, and errors that carry
    the password in the request: none answers with it."""
    url = f"{URL}{pg_source.pk}/"
    responses = []
    for user in (engineer, admin_user, viewer, engineer_b):
        client = api_as(user)
        responses += [
            client.get(URL),
            client.get(url),
            client.get(f"{url}history/"),
            client.post(f"{url}test-connection/"),
            client.patch(url, {"credentials": {"password": PASSWORD}}, format="json"),
            client.put(url, {"name": "erp", "owner_team": "team-a", **PG}, format="json"),
        ]
    client = api_as(engineer)
    responses += [
        # The password in the DSN, under an unknown credential name, too long, of a kind
        # that takes none, in a create for a duplicate name: refused without echoing it.
        client.post(
            URL,
            {
                "name": "x",
                "owner_team": "team-a",
                "kind": "postgresql",
                "dsn": f"postgresql://reader:{PASSWORD}@db.example/erp",
            },
            format="json",
        ),
        client.post(
            URL,
            {"name": "y", "owner_team": "team-a", **PG, "credentials": {PASSWORD[:3]: PASSWORD}},
            format="json",
        ),
        client.patch(url, {"credentials": {"password": PASSWORD * 300}}, format="json"),
        client.patch(url, {"credentials": {"password": [PASSWORD]}}, format="json"),
        client.patch(url, {"credentials": PASSWORD}, format="json"),
        client.post(
            URL,
            {
                "name": "erp",
                "owner_team": "team-a",
                **PG,
                "credentials": {"password": PASSWORD},
            },
            format="json",
        ),
        client.post(
            URL,
            {
                "name": "z",
                "owner_team": "team-a",
                "kind": "sqlite",
                "dsn": "sqlite:///nowhere.db",
                "credentials": {"password": PASSWORD},
            },
            format="json",
        ),
        client.post(f"{url}test-connection/"),
    ]
    statuses = [response.status_code for response in responses]
    assert 400 in statuses and 403 in statuses and 200 in statuses
    for response in responses:
        never_shows_password(response)
    assert PASSWORD not in json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert DataSource.objects.count() == 1


def test_a_failed_connection_check_says_what_failed_without_the_password(
    api_as, engineer, pg_source
):
    response = api_as(engineer).post(f"{URL}{pg_source.pk}/test-connection/")
    assert response.status_code == 200
    never_shows_password(response)
    body = response.json()
    assert body["ok"] is False
    assert "127.0.0.1" in body["message"]


def test_a_dsn_with_a_password_is_refused_naming_the_field(api_as, engineer):
    response = api_as(engineer).post(
        URL,
        {
            "name": "erp",
            "owner_team": "team-a",
            "kind": "postgresql",
            "dsn": f"postgresql://reader:{PASSWORD}@db.example/erp",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "dsn",
            "message": "the DSN holds a password; remove it from the DSN and store it in the "
            "credentials",
            "code": "invalid",
        }
    ]
    assert not DataSource.objects.exists() and not AuditEntry.objects.exists()


def test_credentials_a_kind_does_not_take_are_refused(api_as, engineer):
    response = api_as(engineer).post(
        URL,
        {
            "name": "local",
            "owner_team": "team-a",
            "kind": "sqlite",
            "dsn": f"sqlite:///{settings.PONTIS_RECON_SQLITE_DIR}/x.db",
            "credentials": {"password": PASSWORD},
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "credentials", "message": "SQLite takes no password.", "code": "invalid"}
    ]
    assert not DataSource.objects.exists()


def test_bad_input_names_each_field_and_saves_nothing(api_as, engineer, csv_source):
    client = api_as(engineer)
    cases = [
        ({"owner_team": "team-a", "kind": "postgresql"}, "name", "This field is required."),
        ({"name": "a", "owner_team": "nope", "kind": "file"}, "owner_team", None),
        ({"name": "a", "owner_team": "team-a", "kind": "oracle"}, "kind", None),
        ({"name": "a", "owner_team": "team-a", "kind": "file"}, "file", None),
        ({"name": "a", "owner_team": "team-a", "kind": "http"}, "endpoint", None),
        (
            {"name": "a", "owner_team": "team-a", "kind": "file", "dsn": "x"},
            "dsn",
            "Only SQL sources have a DSN.",
        ),
        (
            {"name": "erp-orders", "owner_team": "team-a", "kind": "file"},
            "name",
            "Team A already has a data source named erp-orders.",
        ),
        (
            {"name": "a", "owner_team": "team-a", "kind": "postgresql", "dsn": "mysql://x@y/z"},
            "dsn",
            None,
        ),
    ]
    for body, field, message in cases:
        response = client.post(URL, body, format="json")
        assert response.status_code == 400, body
        errors = response.json()["errors"]
        assert field in {error["field"] for error in errors}, (body, errors)
        if message:
            assert message in [error["message"] for error in errors]
    assert list(DataSource.objects.values_list("name", flat=True)) == ["erp-orders"]
    assert AuditEntry.objects.filter(action="create").count() == 1


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def test_a_file_source_is_uploaded_with_its_name_and_sha256_and_reads(api_as, engineer):
    content = SOURCE_CSV.encode()
    client = api_as(engineer)
    response = client.post(
        URL,
        {
            "name": "erp export",
            "owner_team": "team-a",
            "kind": "file",
            "file": SimpleUploadedFile("orders.csv", content, content_type="text/csv"),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["file_name"] == "orders.csv"
    assert body["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert "file" not in body
    source = DataSource.objects.get(pk=body["id"])
    assert source.file.read() == content

    check = client.post(f"{URL}{source.pk}/test-connection/")
    assert check.status_code == 200
    assert check.json() == {
        "ok": True,
        "message": "Read orders.csv (CSV): 4 columns: order_id, amount, booked_at, status",
    }

    replaced = client.patch(
        f"{URL}{source.pk}/",
        {"file": SimpleUploadedFile("orders-2.csv", b"id\n1\n")},
        format="multipart",
    )
    assert replaced.status_code == 200
    assert replaced.json()["file_name"] == "orders-2.csv"
    source.refresh_from_db()
    assert source.file.read() == b"id\n1\n"
    assert source.file_sha256 == hashlib.sha256(b"id\n1\n").hexdigest()


def test_a_file_that_is_not_csv_or_xlsx_is_refused_and_not_stored(api_as, engineer):
    before = stored_files()
    response = api_as(engineer).post(
        URL,
        {
            "name": "erp export",
            "owner_team": "team-a",
            "kind": "file",
            "file": SimpleUploadedFile("orders.pdf", b"%PDF-1.4"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "file",
            "message": "orders.pdf: only CSV (.csv, .tsv, .txt) and XLSX (.xlsx) files can be read.",
            "code": "invalid",
        }
    ]
    assert not DataSource.objects.exists()
    assert stored_files() == before


def test_a_refused_source_stores_no_file(api_as, engineer_b, team_a):
    before = stored_files()
    response = api_as(engineer_b).post(
        URL,
        {
            "name": "erp export",
            "owner_team": "team-a",
            "kind": "file",
            "file": SimpleUploadedFile("orders.csv", SOURCE_CSV.encode()),
        },
        format="multipart",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not add data sources for this team."
    assert stored_files() == before and not DataSource.objects.exists()


def test_a_file_over_the_size_limit_is_refused(api_as, engineer, settings):
    settings.PONTIS_MAX_UPLOAD_BYTES = 100
    response = api_as(engineer).post(
        URL,
        {
            "name": "big",
            "owner_team": "team-a",
            "kind": "file",
            "file": SimpleUploadedFile("big.csv", b"x" * 101),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "file",
        "message": "big.csv is larger than the limit of 100 bytes; read large exports from a database source instead.",
        "code": "invalid",
    }
    assert not DataSource.objects.exists()


def test_the_default_size_limit_is_50_mb():
    from django.conf import settings

    assert settings.PONTIS_MAX_UPLOAD_BYTES == 50 * 1024 * 1024


def test_only_file_sources_take_a_file(api_as, engineer):
    response = api_as(engineer).post(
        URL,
        {**PG, "name": "erp", "owner_team": "team-a", "file": SimpleUploadedFile("a.csv", b"a\n")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Only file sources take a file."


def test_an_empty_file_is_refused(api_as, engineer):
    response = api_as(engineer).post(
        URL,
        {
            "name": "e",
            "owner_team": "team-a",
            "kind": "file",
            "file": SimpleUploadedFile("e.csv", b""),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"


def test_a_connection_check_of_a_broken_file_is_an_answer_not_an_error(api_as, engineer, team_a):
    source = services.save_data_source(engineer, file_source(team_a, "bad", "a,b\n1,2,3\n"))
    source.file.storage.delete(source.file.name)
    response = api_as(engineer).post(f"{URL}{source.pk}/test-connection/")
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert response.json()["message"]


# --------------------------------------------------------------------------------------
# Delete, list
# --------------------------------------------------------------------------------------


def test_a_source_a_job_reads_is_not_deleted(api_as, engineer, csv_source, interface_a):
    ReconciliationJob.objects.create(
        interface=interface_a,
        name="orders",
        source=csv_source,
        target=csv_source,
        key_columns=["x"],
    )
    client = api_as(engineer)
    response = client.delete(f"{URL}{csv_source.pk}/")
    assert response.status_code == 400
    assert (
        response.json()["detail"]
        == "erp-orders is read by INT-042 orders; change those jobs first."
    )
    assert DataSource.objects.filter(pk=csv_source.pk).exists()

    ReconciliationJob.objects.all().delete()
    assert client.delete(f"{URL}{csv_source.pk}/").status_code == 204
    assert not DataSource.objects.exists()
    assert AuditEntry.objects.filter(action="delete").count() == 1


def test_list_filters_by_kind_team_and_text(
    api_as, engineer, engineer_b, team_b, pg_source, csv_source
):
    services.save_data_source(engineer_b, file_source(team_b, "crm-orders", "a\n1\n"))
    client = api_as(engineer)

    def names(query):
        response = client.get(URL + query)
        assert response.status_code == 200
        return [row["name"] for row in response.json()["results"]]

    assert names("") == ["crm-orders", "erp", "erp-orders"]
    assert names("?kind=file") == ["crm-orders", "erp-orders"]
    assert names("?owner_team=team-b") == ["crm-orders"]
    assert names("?q=ERP") == ["erp", "erp-orders"]
    assert names("?q=127.0.0.1") == ["erp"]
    assert client.get(URL + "?kind=oracle").status_code == 400


def test_the_list_takes_the_same_queries_however_many_sources(
    api_as, engineer, team_a, django_assert_num_queries
):
    client = api_as(engineer)
    services.save_data_source(engineer, file_source(team_a, "s0", "a\n1\n"))
    assert client.get(URL).status_code == 200  # the token's first use is recorded once
    # The token with its user; the count; the page (owner teams joined).
    with django_assert_num_queries(3):
        assert len(client.get(URL).json()["results"]) == 1
    for number in range(1, 6):
        services.save_data_source(engineer, file_source(team_a, f"s{number}", "a\n1\n"))
    with django_assert_num_queries(3):
        assert len(client.get(URL).json()["results"]) == 6


# --------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_read_sources_but_change_nothing(
    request, persona, api_as, csv_source
):
    client = api_as(request.getfixturevalue(persona))
    url = f"{URL}{csv_source.pk}/"
    assert client.get(URL).status_code == 200
    assert client.get(url).status_code == 200
    assert client.get(f"{url}history/").status_code == 200
    refused = [
        client.patch(url, {"name": "hijacked"}, format="json"),
        client.put(
            url, {"name": "hijacked", "owner_team": "team-a", "kind": "file"}, format="json"
        ),
        client.delete(url),
        client.post(f"{url}test-connection/"),
        client.post(
            URL,
            {"name": "new", "owner_team": "team-a", **PG},
            format="json",
        ),
    ]
    assert [response.status_code for response in refused] == [403] * 5
    csv_source.refresh_from_db()
    assert csv_source.name == "erp-orders"
    assert DataSource.objects.count() == 1
    assert AuditEntry.objects.filter(action="update").count() == 0


def test_an_engineer_cannot_give_a_source_to_another_team(api_as, engineer, csv_source, team_b):
    response = api_as(engineer).patch(
        f"{URL}{csv_source.pk}/", {"owner_team": "team-b"}, format="json"
    )
    assert response.status_code == 403
    csv_source.refresh_from_db()
    assert csv_source.owner_team.slug == "team-a"


def test_the_teams_lead_and_admins_write(api_as, lead, admin_user, csv_source, team_b):
    response = api_as(lead).patch(
        f"{URL}{csv_source.pk}/", {"description": "by the lead"}, format="json"
    )
    assert response.status_code == 200
    assert api_as(lead).post(f"{URL}{csv_source.pk}/test-connection/").json()["ok"] is True
    admin = api_as(admin_user)
    response = admin.post(URL, {"name": "b", "owner_team": "team-b", **PG}, format="json")
    assert response.status_code == 201, response.json()
    assert admin.delete(f"{URL}{response.json()['id']}/").status_code == 204
    assert admin.post(f"{URL}{csv_source.pk}/test-connection/").json()["ok"] is True


def test_an_engineer_adds_a_source_for_their_team(api_as, engineer):
    response = api_as(engineer).post(
        URL, {"name": "crm", "owner_team": "team-a", **PG}, format="json"
    )
    assert response.status_code == 201
    assert DataSource.objects.get().kind == SourceKind.POSTGRESQL
