"""Data source pages: the list, a source's page, create and edit (write-only password, file
upload), delete, and the Test connection button, with the permission policy."""

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEntry
from apps.reconciliation import services
from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind
from tests.factories import TeamFactory
from tests.reconciliation.test_runs import SOURCE_CSV, TARGET_CSV, file_source

pytestmark = pytest.mark.django_db

CANARY = "canary-s3cret-pw"
HTMX = {"HTTP_HX_REQUEST": "true"}


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT) / "reconciliation" / "files"
    return {path.name for path in root.glob("*")} if root.exists() else set()


@pytest.fixture(autouse=True)
def _own_media_root(settings, tmp_path):
    """Uploaded files of each test land in its own directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


def csv_upload(name="orders.csv", text=SOURCE_CSV):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.fixture
def erp(engineer, team_a):
    return services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV))


@pytest.fixture
def crm(engineer, team_a):
    return services.save_data_source(engineer, file_source(team_a, "crm-orders", TARGET_CSV))


@pytest.fixture
def warehouse(engineer, team_a):
    return services.save_data_source(
        engineer,
        DataSource(
            owner_team=team_a,
            name="warehouse",
            kind=SourceKind.POSTGRESQL,
            dsn="postgresql://reader@db.example:5432/dwh",
        ),
        {"password": CANARY},
    )


@pytest.fixture
def job(engineer, interface_a, erp, crm):
    return services.save_job(
        engineer,
        ReconciliationJob(
            interface=interface_a,
            name="orders",
            source=erp,
            target=crm,
            key_columns=["order_id"],
            column_mapping={"order_id": "ID"},
        ),
    )


# ---------------------------------------------------------------- list


def test_the_empty_list_explains_data_sources(client, engineer, viewer):
    client.force_login(engineer)
    html = page(client, "/data-sources/")
    assert "No data sources yet." in html
    assert html.count('href="/data-sources/new/"') == 2
    client.force_login(viewer)
    assert "/data-sources/new/" not in page(client, "/data-sources/")


def test_the_list_shows_kind_what_it_reads_and_jobs_and_filters(
    client, viewer, erp, warehouse, job, team_b
):
    DataSource.objects.create(owner_team=team_b, name="b-files", kind=SourceKind.SQLITE)
    client.force_login(viewer)
    html = page(client, "/data-sources/")
    assert f'href="/data-sources/{erp.pk}/"><strong>erp-orders</strong>' in html
    assert '<span class="badge kind-file">Uploaded file (CSV or XLSX)</span>' in html
    assert "<code>postgresql://reader@db.example:5432/dwh</code>" in html
    assert '<td class="num">1</td>' in html  # erp-orders is read by one job
    assert CANARY not in html
    assert "warehouse" in page(client, "/data-sources/?kind=postgresql")
    assert "erp-orders" not in page(client, "/data-sources/?kind=postgresql")
    assert "b-files" in page(client, "/data-sources/?owner_team=team-b")
    assert "erp-orders" not in page(client, "/data-sources/?owner_team=team-b")
    assert "warehouse" in page(client, "/data-sources/?q=dwh")
    assert "No data source matches these filters." in page(client, "/data-sources/?q=nothing")


def test_the_list_answers_htmx_with_its_table(client, viewer, erp):
    client.force_login(viewer)
    response = client.get("/data-sources/?q=erp", HTTP_HX_TARGET="list-table", **HTMX)
    html = response.content.decode()
    assert "<html" not in html and "erp-orders" in html


def test_the_csv_export_never_holds_a_password(client, viewer, warehouse):
    client.force_login(viewer)
    body = b"".join(client.get("/data-sources/?format=csv").streaming_content).decode()
    assert "warehouse" in body and "password_set" in body
    assert CANARY not in body and warehouse.credentials_ciphertext not in body


def test_the_list_has_constant_queries(client, engineer, team_a, django_assert_num_queries):
    client.force_login(engineer)

    def add_sources(count, offset):
        for index in range(count):
            DataSource.objects.create(
                owner_team=team_a, name=f"db-{offset + index}", kind=SourceKind.SQLITE
            )

    add_sources(3, 0)
    # session + user + count + the team filter's choices + the page (with team, endpoint
    # and the job count subquery)
    with django_assert_num_queries(5):
        assert client.get("/data-sources/").status_code == 200
    add_sources(20, 100)
    with django_assert_num_queries(5):
        assert client.get("/data-sources/").status_code == 200


# ---------------------------------------------------------------- detail


def test_the_page_of_a_file_source_shows_its_file_and_hash_and_jobs(client, viewer, erp, job):
    client.force_login(viewer)
    html = page(client, f"/data-sources/{erp.pk}/")
    assert "erp-orders.csv" in html
    assert "Jobs that read it" in html and f'href="/reconciliation-jobs/{job.pk}/"' in html
    assert "Test connection" not in html and "/edit/" not in html and "Delete" not in html


def test_the_page_of_a_database_source_says_password_set_only(client, engineer, warehouse):
    client.force_login(engineer)
    html = page(client, f"/data-sources/{warehouse.pk}/")
    assert '<span class="badge secret-set">password set</span>' in html
    assert CANARY not in html and warehouse.credentials_ciphertext not in html
    assert "Test connection" in html and f'href="/data-sources/{warehouse.pk}/edit/"' in html
    assert "No job reads this source yet." in html
    assert "History" in html


# ---------------------------------------------------------------- create and edit


def test_an_engineer_creates_a_file_source_by_upload(client, engineer, team_a):
    client.force_login(engineer)
    response = client.post(
        "/data-sources/new/",
        {
            "name": "erp export",
            "owner_team": team_a.pk,
            "kind": "file",
            "description": "Nightly export",
            "upload": csv_upload("ERP orders.csv"),
        },
    )
    source = DataSource.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data-sources/{source.pk}/"
    assert source.file_name == "ERP_orders.csv"
    assert source.file_sha256 == hashlib.sha256(SOURCE_CSV.encode()).hexdigest()
    assert source.file.read().decode() == SOURCE_CSV
    assert AuditEntry.objects.filter(object_repr="erp export", action="create").exists()
    html = page(client, f"/data-sources/{source.pk}/")
    assert "ERP_orders.csv" in html and source.file_sha256 in html


def test_a_database_password_is_write_only(client, engineer, team_a):
    client.force_login(engineer)
    form = {
        "name": "warehouse",
        "owner_team": team_a.pk,
        "kind": "postgresql",
        "dsn": "postgresql://reader@db.example:5432/dwh",
        "password": CANARY,
    }
    assert client.post("/data-sources/new/", form).status_code == 302
    source = DataSource.objects.get()
    assert source.get_credentials() == {"password": CANARY}
    assert CANARY not in source.credentials_ciphertext
    edit = page(client, f"/data-sources/{source.pk}/edit/")
    assert CANARY not in edit and source.credentials_ciphertext not in edit
    assert "A password is set (stored encrypted). Leave blank to keep it." in edit
    assert 'name="password"' in edit and 'value="' + CANARY not in edit
    assert "Remove the stored password" in edit
    for url in ("/data-sources/", f"/data-sources/{source.pk}/"):
        assert CANARY not in page(client, url)
    assert CANARY not in str(list(AuditEntry.objects.values_list("changes", flat=True)))

    # Blank keeps the stored password.
    form.update(password="", description="changed")
    assert client.post(f"/data-sources/{source.pk}/edit/", form).status_code == 302
    source.refresh_from_db()
    assert source.description == "changed" and source.get_credentials() == {"password": CANARY}
    # A typed one replaces it.
    form.update(password="another-one")
    client.post(f"/data-sources/{source.pk}/edit/", form)
    source.refresh_from_db()
    assert source.get_credentials() == {"password": "another-one"}
    # Remove drops it.
    form.update(password="", remove_password="on")
    client.post(f"/data-sources/{source.pk}/edit/", form)
    source.refresh_from_db()
    assert source.get_credentials() == {} and source.credential_fields_set == []


def test_the_live_validation_never_sends_the_password(client, engineer, team_a):
    client.force_login(engineer)
    html = page(client, "/data-sources/new/")
    password_input = html[html.index('name="password"') - 200 : html.index('name="password"')]
    assert "hx-post" not in password_input
    assert 'hx-post="/data-sources/new/"' in html  # the other fields are checked as typed


def test_bad_input_gets_errors_by_field_and_saves_nothing(client, engineer, team_a):
    client.force_login(engineer)
    cases = [
        (
            {"kind": "postgresql", "dsn": "postgresql://reader:pw@db:5432/erp"},
            "dsn",
        ),
        ({"kind": "file"}, "upload"),
        ({"kind": "sqlite", "dsn": "sqlite:///orders.db", "password": "x"}, "password"),
        ({"kind": "file", "upload": csv_upload("orders.json", "{}")}, "upload"),
        ({"kind": "file", "upload": csv_upload("empty.csv", "")}, "upload"),
        ({"kind": "http"}, "endpoint"),
        (
            {"kind": "postgresql", "dsn": "postgresql://db:5432/erp", "upload": csv_upload()},
            "upload",
        ),
        ({"kind": ""}, "kind"),
    ]
    for fields, field in cases:
        response = client.post(
            "/data-sources/new/", {"name": "x", "owner_team": team_a.pk, **fields}
        )
        assert response.status_code == 200, fields
        errors = response.context["form"].errors
        assert field in errors, (fields, errors)
    assert not DataSource.objects.exists()
    assert not AuditEntry.objects.exists()
    assert media_files() == set()


def test_a_refused_save_leaves_no_uploaded_file_behind(client, engineer, team_a):
    client.force_login(engineer)
    before = media_files()
    response = client.post(
        "/data-sources/new/",
        {
            "name": "x",
            "owner_team": team_a.pk,
            "kind": "file",
            "dsn": "postgresql://db/erp",  # the service refuses: a file source has no DSN
            "upload": csv_upload("refused.csv"),
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["dsn"] == ["Only SQL sources have a DSN."]
    assert not DataSource.objects.exists()
    assert media_files() == before


def test_the_error_messages_are_exact(client, engineer, team_a):
    client.force_login(engineer)
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team_a.pk, "kind": "sqlite", "password": "x"},
    )
    assert response.context["form"].errors["password"] == [
        "SQLite sources take no password; leave it empty."
    ]
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team_a.pk, "kind": "file", "upload": csv_upload("a.pdf")},
    )
    assert response.context["form"].errors["upload"] == [
        "a.pdf: only CSV (.csv, .tsv, .txt) and XLSX (.xlsx) files can be read."
    ]


def test_a_too_big_file_is_refused(client, engineer, team_a, settings):
    settings.PONTIS_MAX_UPLOAD_BYTES = 10
    client.force_login(engineer)
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team_a.pk, "kind": "file", "upload": csv_upload()},
    )
    assert response.context["form"].errors["upload"] == [
        "orders.csv is larger than the limit of 10 bytes; read large exports from a database "
        "source instead."
    ]
    assert not DataSource.objects.exists()


def test_a_duplicate_name_in_the_team_is_refused(client, engineer, team_a, erp):
    client.force_login(engineer)
    response = client.post(
        "/data-sources/new/",
        {"name": "erp-orders", "owner_team": team_a.pk, "kind": "file", "upload": csv_upload()},
    )
    assert response.status_code == 200
    assert DataSource.objects.count() == 1


def test_replacing_the_file_keeps_one_file(
    client, engineer, team_a, erp, django_capture_on_commit_callbacks
):
    client.force_login(engineer)
    old_name = Path(erp.file.name).name
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/data-sources/{erp.pk}/edit/",
            {
                "name": "erp-orders",
                "owner_team": team_a.pk,
                "kind": "file",
                "upload": csv_upload("new.csv", TARGET_CSV),
            },
        )
    assert response.status_code == 302
    erp.refresh_from_db()
    assert erp.file_name == "new.csv"
    assert erp.file_sha256 == hashlib.sha256(TARGET_CSV.encode()).hexdigest()
    assert old_name not in media_files() and Path(erp.file.name).name in media_files()


def test_an_edit_without_a_new_file_keeps_the_file(client, engineer, team_a, erp):
    client.force_login(engineer)
    response = client.post(
        f"/data-sources/{erp.pk}/edit/",
        {"name": "erp-orders", "owner_team": team_a.pk, "kind": "file", "description": "x"},
    )
    assert response.status_code == 302
    stored = DataSource.objects.get(pk=erp.pk)
    assert stored.file.name == erp.file.name and stored.description == "x"


def test_the_team_choice_offers_only_the_users_teams(client, engineer, team_a, team_b):
    client.force_login(engineer)
    html = page(client, "/data-sources/new/")
    assert "Team A" in html and "Team B" not in html
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team_b.pk, "kind": "file", "upload": csv_upload()},
    )
    assert "owner_team" in response.context["form"].errors
    assert not DataSource.objects.exists()


# ---------------------------------------------------------------- delete


def test_deleting_a_source_asks_then_removes_it_and_its_file(
    client, engineer, erp, django_capture_on_commit_callbacks
):
    client.force_login(engineer)
    name = Path(erp.file.name).name
    html = page(client, f"/data-sources/{erp.pk}/delete/")
    assert "Delete data source erp-orders?" in html and "Yes, delete" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/data-sources/{erp.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    assert not DataSource.objects.filter(pk=erp.pk).exists()
    assert name not in media_files()
    assert AuditEntry.objects.filter(action="delete", object_repr="erp-orders").exists()


def test_a_source_that_jobs_read_is_not_deleted(client, engineer, erp, job):
    client.force_login(engineer)
    html = page(client, f"/data-sources/{erp.pk}/delete/")
    assert "erp-orders cannot be deleted: it is read by" in html and "Yes, delete" not in html
    response = client.post(f"/data-sources/{erp.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/data-sources/{erp.pk}/"
    assert messages_of(response) == [
        "erp-orders is read by INT-042 orders; change those jobs first."
    ]
    assert DataSource.objects.filter(pk=erp.pk).exists()


# ---------------------------------------------------------------- test connection


def test_test_connection_says_what_it_read(client, engineer, erp):
    client.force_login(engineer)
    response = client.post(f"/data-sources/{erp.pk}/test/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Connection works" in html
    assert "Read erp-orders.csv (CSV): 4 columns: order_id, amount, booked_at, status" in html


def test_test_connection_says_exactly_what_failed(client, engineer, team_a, settings, tmp_path):
    settings.PONTIS_RECON_SQLITE_DIR = str(tmp_path)
    source = services.save_data_source(
        engineer,
        DataSource(
            owner_team=team_a,
            name="gone",
            kind=SourceKind.SQLITE,
            dsn=f"sqlite:///{tmp_path / 'gone.db'}",
        ),
    )
    client.force_login(engineer)
    html = client.post(f"/data-sources/{source.pk}/test/", **HTMX).content.decode()
    assert "Connection failed" in html and "gone.db" in html


def test_test_connection_without_htmx_answers_with_a_message(client, engineer, erp):
    client.force_login(engineer)
    response = client.post(f"/data-sources/{erp.pk}/test/")
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("Connection works: Read erp-orders.csv (CSV)")


def test_a_failed_connection_never_shows_the_password(client, engineer, team_a):
    source = services.save_data_source(
        engineer,
        DataSource(
            owner_team=team_a,
            name="nowhere",
            kind=SourceKind.POSTGRESQL,
            dsn="postgresql://reader@127.0.0.1:9/erp",
        ),
        {"password": CANARY},
    )
    client.force_login(engineer)
    html = client.post(f"/data-sources/{source.pk}/test/", **HTMX).content.decode()
    assert "Connection failed" in html and CANARY not in html


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_cannot_change_a_source(request, client, persona, erp, team_a):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for url in (f"/data-sources/{erp.pk}/edit/", f"/data-sources/{erp.pk}/delete/"):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "hijacked"}).status_code == 403, url
    assert client.post(f"/data-sources/{erp.pk}/test/", **HTMX).status_code == 403
    html = page(client, f"/data-sources/{erp.pk}/")
    assert "Test connection" not in html and "Delete" not in html
    erp.refresh_from_db()
    assert erp.name == "erp-orders"
    assert not AuditEntry.objects.exclude(action="create").exists()


def test_a_viewer_gets_no_create_form(client, viewer, team_a):
    client.force_login(viewer)
    assert client.get("/data-sources/new/").status_code == 403
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team_a.pk, "kind": "file", "upload": csv_upload()},
    )
    assert response.status_code == 403
    assert not DataSource.objects.exists()


def test_an_admin_may_create_for_any_team(client, admin_user):
    team = TeamFactory(name="Team C", slug="team-c")
    client.force_login(admin_user)
    response = client.post(
        "/data-sources/new/",
        {"name": "x", "owner_team": team.pk, "kind": "file", "upload": csv_upload()},
    )
    assert response.status_code == 302
    assert DataSource.objects.get().owner_team == team
