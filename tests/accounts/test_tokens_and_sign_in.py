"""API tokens (shown once, hashed, expiring, revocable) and sign-in rate limiting."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, hash_token

pytestmark = pytest.mark.django_db


def bearer(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_token_is_shown_once_and_stored_hashed(engineer, client):
    client.force_login(engineer)
    response = client.post(
        "/api/v1/tokens/", {"name": "CI pipeline", "days": 30}, content_type="application/json"
    )
    assert response.status_code == 201
    key = response.json()["key"]
    assert key.startswith("pnt_") and len(key) > 40
    token = ApiToken.objects.get(name="CI pipeline")
    assert token.key_hash == hash_token(key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert all(key not in str(row) for row in cursor.fetchall())
    listing = client.get("/api/v1/tokens/").json()["results"]
    assert listing[0]["name"] == "CI pipeline" and "key" not in listing[0]
    assert (token.expires_at - timezone.now()).days in (29, 30)


def test_token_acts_with_the_users_rights(engineer, viewer):
    _, key = ApiToken.issue(user=viewer, name="read")
    client = bearer(key)
    assert client.get("/api/v1/me/").json()["username"] == "viewer"
    assert client.post("/api/v1/systems/", {"name": "x"}, format="json").status_code == 403


def test_expired_token_is_refused(engineer):
    token, key = ApiToken.issue(user=engineer, name="old")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(key).get("/api/v1/interfaces/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has expired."


def test_revoked_token_is_refused(engineer, api_as):
    token, key = ApiToken.issue(user=engineer, name="to revoke")
    client = bearer(key)
    assert client.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 200
    response = client.get("/api/v1/interfaces/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has been revoked."


def test_wrong_token_is_refused(db):
    assert bearer("pnt_" + "x" * 43).get("/api/v1/interfaces/").status_code == 401
    assert bearer("not-a-pontis-token").get("/api/v1/interfaces/").status_code == 401


def test_users_see_only_their_own_tokens(engineer, engineer_b):
    other, _ = ApiToken.issue(user=engineer_b, name="b's")
    _, key = ApiToken.issue(user=engineer, name="mine")
    client = bearer(key)
    assert [t["name"] for t in client.get("/api/v1/tokens/").json()["results"]] == ["mine"]
    assert client.post(f"/api/v1/tokens/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_duplicate_token_name_is_a_field_error(engineer, api_as):
    client = api_as(engineer)
    assert client.post("/api/v1/tokens/", {"name": "dup"}, format="json").status_code == 201
    response = client.post("/api/v1/tokens/", {"name": "dup"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "name", "message": "You already have a token with this name.", "code": "invalid"}
    ]


def test_token_expiry_is_bounded(engineer, api_as):
    response = api_as(engineer).post(
        "/api/v1/tokens/", {"name": "forever", "days": 100000}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "days"


def test_api_throttles_per_token(engineer, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    _, key = ApiToken.issue(user=engineer, name="busy")
    client = bearer(key)
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "token": "5/min"}
    try:
        statuses = [client.get("/api/v1/me/").status_code for _ in range(7)]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]


def test_ui_token_page_shows_key_once(engineer, client):
    client.force_login(engineer)
    page = client.post("/accounts/tokens/", {"name": "Jira", "days": 30}).content.decode()
    token = ApiToken.objects.get(name="Jira")
    assert "Copy your new token now" in page
    assert token.key_prefix in page
    again = client.get("/accounts/tokens/").content.decode()
    assert "Copy your new token now" not in again


def test_sign_in_and_out(engineer, client):
    response = client.post(
        "/accounts/login/", {"username": "engineer", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_sign_in_is_locked_after_repeated_failures(engineer, client):
    for _ in range(4):
        response = client.post("/accounts/login/", {"username": "engineer", "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    assert (
        client.post("/accounts/login/", {"username": "engineer", "password": "wrong"}).status_code
        == 429
    )
    locked = client.post(
        "/accounts/login/", {"username": "engineer", "password": "correct horse battery staple"}
    )
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
