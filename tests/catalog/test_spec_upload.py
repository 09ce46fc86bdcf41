"""Spec versions through the API and the UI: validated on upload, nothing saved on bad input, diffs."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.catalog.models import ApiSpec

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"


def upload(client, interface, content):
    return client.post(
        "/api/v1/specs/", {"interface": interface.code, "content": content}, format="json"
    )


def test_upload_versions_and_diff(engineer, api_as, interface_a):
    client = api_as(engineer)
    first = upload(client, interface_a, (FIXTURES / "crm_customers_v1.yaml").read_text())
    assert first.status_code == 201, first.json()
    assert first.json()["version"] == 1 and first.json()["kind"] == "openapi-3.0"
    assert first.json()["operation_count"] > 0
    second = upload(client, interface_a, (FIXTURES / "crm_customers_v2.yaml").read_text())
    assert second.status_code == 201 and second.json()["version"] == 2
    detail = client.get(f"/api/v1/specs/{second.json()['id']}/").json()
    assert detail["operations"][0]["key"].split(" ")[0] in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    diff = client.get(
        f"/api/v1/specs/{second.json()['id']}/diff/?against={first.json()['id']}"
    ).json()
    assert diff["from_version"] == 1 and diff["to_version"] == 2
    assert diff["breaking"], "v2 of the fixture has breaking changes"
    assert {"kind", "location", "message"} <= set(diff["breaking"][0])


def test_same_document_twice_is_refused(engineer, api_as, interface_a):
    client = api_as(engineer)
    content = (FIXTURES / "crm_customers_v1.yaml").read_text()
    assert upload(client, interface_a, content).status_code == 201
    response = upload(client, interface_a, content)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "This is the same document as version 1."


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: []\n", "/paths"),
        (
            "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c]\n"
            * 1,
            "",
        ),
        ("{not yaml or json", ""),
        (
            "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n"
            "        '200':\n          description: ok\n          content:\n            application/json:\n"
            "              schema: {$ref: 'http://127.0.0.1:9/evil.json'}\n",
            "$ref",
        ),
    ],
)
def test_bad_specs_are_refused_and_nothing_is_saved(
    engineer, api_as, interface_a, content, fragment
):
    response = upload(api_as(engineer), interface_a, content)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors and all(e["field"] == "content" for e in errors)
    assert fragment in " ".join(e["message"] for e in errors)
    assert not ApiSpec.objects.exists()


def test_large_spec_file_is_refused(engineer, api_as, interface_a, settings):
    settings.PONTIS_SPEC_MAX_BYTES = 1024
    big = SimpleUploadedFile(
        "big.json", b'{"x": "' + b"a" * 4096 + b'"}', content_type="application/json"
    )
    response = api_as(engineer).post(
        "/api/v1/specs/", {"interface": interface_a.code, "file": big}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "file",
        "message": "The file is 4 KB; the limit is 1 KB.",
        "code": "invalid",
    }
    assert not ApiSpec.objects.exists()


def test_binary_upload_is_refused(engineer, api_as, interface_a):
    binary = SimpleUploadedFile(
        "spec.json", bytes(range(256)) * 10, content_type="application/octet-stream"
    )
    response = api_as(engineer).post(
        "/api/v1/specs/", {"interface": interface_a.code, "file": binary}, format="multipart"
    )
    assert response.status_code == 400
    assert not ApiSpec.objects.exists()


def test_ui_upload_shows_errors_then_the_operations(client, engineer, interface_a):
    client.force_login(engineer)
    bad = client.post(
        f"/interfaces/{interface_a.code}/specs/new/", {"content": "openapi: 3.0.3\npaths: {}\n"}
    )
    assert bad.status_code == 200 and "form-errors" in bad.content.decode()
    good = client.post(
        f"/interfaces/{interface_a.code}/specs/new/",
        {"content": (FIXTURES / "crm_customers_v1.yaml").read_text(), "notes": "first cut"},
        follow=True,
    )
    page = good.content.decode()
    assert "Uploaded version 1" in page and "Operations" in page
    client.post(
        f"/interfaces/{interface_a.code}/specs/new/",
        {"content": (FIXTURES / "crm_customers_v2.yaml").read_text()},
    )
    diff = client.get(f"/interfaces/{interface_a.code}/specs/2/diff/?against=1").content.decode()
    assert "Changes from v1 to v2" in diff and "Breaking" in diff


def test_viewer_cannot_upload(client, viewer, interface_a):
    client.force_login(viewer)
    response = client.post(f"/interfaces/{interface_a.code}/specs/new/", {"content": "{}"})
    assert response.status_code == 403
