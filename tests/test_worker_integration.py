"""A real Celery worker process runs jobs queued through the API (broker: filesystem or Redis)."""

import time

import pytest
from django.conf import settings

from apps.catalog.models import Endpoint, EndpointCheck
from apps.core.models import JobStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until_finished(check_id: int, timeout: float = 45) -> EndpointCheck:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check = EndpointCheck.objects.get(pk=check_id)
        if not check.is_active:
            return check
        time.sleep(0.2)
    raise AssertionError(f"check {check_id} still {check.status} after {timeout} s")


def demo_partner_endpoint(live_server, interface, environment, token):
    # The live server listens on loopback, which the environment's allowlist permits explicitly.
    port = live_server.url.rsplit(":", 1)[1]
    endpoint = Endpoint(
        interface=interface,
        environment=environment,
        base_url=f"http://127.0.0.1:{port}/demo-partner/customers/",
        auth_type="bearer",
        timeout_seconds=10,
    )
    endpoint.set_credentials({"token": token})
    endpoint.save()
    return endpoint


def test_worker_runs_a_connectivity_check_against_the_demo_partner(
    celery_worker_process, live_server, engineer, api_as, interface_a, environment
):
    endpoint = demo_partner_endpoint(
        live_server, interface_a, environment, settings.PONTIS_DEMO_PARTNER_TOKEN
    )
    response = api_as(engineer).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    check = wait_until_finished(response.json()["id"])
    assert check.status == JobStatus.SUCCEEDED, check.error
    assert check.status_code == 200
    assert check.worker and check.attempts == 1
    assert check.detail.startswith("200 in ") and check.detail.endswith("from 127.0.0.1")


def test_worker_reports_refused_credentials(
    celery_worker_process, live_server, engineer, api_as, interface_a, environment
):
    endpoint = demo_partner_endpoint(live_server, interface_a, environment, "wrong-token")
    response = api_as(engineer).post(
        "/api/v1/endpoint-checks/", {"endpoint": endpoint.pk}, format="json"
    )
    check = wait_until_finished(response.json()["id"])
    assert check.status == JobStatus.FAILED
    assert check.error == "The endpoint refused the credentials (401)."


def test_worker_refuses_loopback_without_allowlist(
    celery_worker_process, live_server, engineer, api_as, interface_a, environment
):
    environment.egress_allowlist = []
    environment.save()
    port = live_server.url.rsplit(":", 1)[1]
    # Registered while allowed, then the allowlist was narrowed: refused again at run time.
    endpoint = Endpoint.objects.create(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{port}/demo-partner/",
    )
    response = api_as(engineer).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    check = wait_until_finished(response.json()["id"])
    assert check.status == JobStatus.FAILED
    assert "loopback" in check.error and "allowlist" in check.error
