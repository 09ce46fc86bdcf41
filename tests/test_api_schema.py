"""The API describes itself: OpenAPI 3 schema and Swagger UI, served by the app with no CDN."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_schema_is_served_and_covers_the_catalog(client, engineer):
    client.force_login(engineer)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/interfaces/",
        "/api/v1/endpoints/",
        "/api/v1/specs/",
        "/api/v1/tokens/",
        "/api/v1/teams/",
    ):
        assert path in schema["paths"]
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_swagger_ui_loads_only_local_assets(client, engineer):
    client.force_login(engineer)
    response = client.get("/api/docs/")
    assert "script-src 'self';" in response["Content-Security-Policy"]
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, page
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    assert "<script>" not in page.replace('<script src="', "")  # no inline script under the CSP


def test_form_with_too_many_fields_is_refused(client, engineer):
    client.force_login(engineer)
    body = "&".join(f"f{i}=x" for i in range(1001))
    response = client.post(
        "/interfaces/new/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
