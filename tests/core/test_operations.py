"""Health, readiness, metrics, request ids, structured logs and production security settings."""

import json
import logging
import os
import subprocess
import sys
from unittest import mock

import pytest

from apps.core import health

pytestmark = pytest.mark.django_db


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_ok(client):
    with mock.patch.object(health, "check_broker", return_value=None):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_names_the_unreachable_broker(client):
    with mock.patch.object(
        health, "check_broker", return_value="OperationalError: connection refused"
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "Not ready: broker unreachable."
    assert body["checks"]["database"] == "ok"


def test_readyz_names_the_unreachable_database(client):
    with (
        mock.patch.object(health, "check_database", return_value="OperationalError: no such host"),
        mock.patch.object(health, "check_broker", return_value=None),
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "Not ready: database unreachable."


def test_readyz_against_a_real_unreachable_broker(client, settings):
    from kombu import Connection

    from config.celery import app

    # Nothing listens on port 1: a real connection attempt that is refused.
    with mock.patch.object(
        app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0")
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "broker" in response.json()["detail"]


def test_metrics_exposes_request_counters(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert (
        'pontis_http_requests_total{method="GET",route="healthz",status="200"}'
        in response.content.decode()
    )


def test_request_id_is_returned_and_kept_when_sane(client):
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123-def")["X-Request-ID"] == "abc-123-def"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"] != "<script>"


def test_json_logs_carry_the_request_id(client, settings):
    from pythonjsonlogger.json import JsonFormatter

    from apps.core.logging import RequestIdFilter

    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Capture()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s"))
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = client.get("/api/no-such-page/", HTTP_X_REQUEST_ID="req-00000001")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404
    entry = json.loads(records[-1])
    assert entry["request_id"] == "req-00000001"
    assert entry["levelname"] == "WARNING" and entry["message"] == "Not Found: /api/no-such-page/"


def test_content_security_policy_forbids_inline_scripts(client):
    policy = client.get("/healthz")["Content-Security-Policy"]
    assert (
        "script-src 'self';" in policy
        and "unsafe-inline" not in policy
        and "unsafe-eval" not in policy
    )


def production_env(**extra) -> dict:
    env = {**os.environ, **extra}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' event loop only
    return env


def test_check_deploy_with_production_settings_is_clean(tmp_path):
    env = {
        **os.environ,
        "PONTIS_ENV": "production",
        "DJANGO_SECRET_KEY": "p" * 20 + "x9F!k2#Lq8@Zr5$Tw7^Yb3&Nc6*Vm1(Hd4)Gj0-Ks",
        "PONTIS_SECRET_KEYS": "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=",
        "DJANGO_ALLOWED_HOSTS": "pontis.example.com",
        "PONTIS_VAR_DIR": str(tmp_path),
        "PONTIS_TESTING": "false",
    }
    env = production_env(**env)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secrets(tmp_path):
    env = {
        **os.environ,
        "PONTIS_ENV": "production",
        "PONTIS_VAR_DIR": str(tmp_path),
        "PONTIS_TESTING": "false",
    }
    env.pop("DJANGO_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required in production" in result.stderr


def test_production_cookies_are_secure(tmp_path):
    code = (
        "import django, os; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT)"
    )
    env = {
        **os.environ,
        "PONTIS_ENV": "production",
        "DJANGO_SECRET_KEY": "k" * 60,
        "PONTIS_SECRET_KEYS": "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=",
        "PONTIS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PONTIS_TESTING": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["True", "True", "True", "True"], result.stderr
