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


class HangFirstServer:
    """A loopback HTTP server whose first connection never gets an answer; later ones get 200."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.held = []
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):

        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.connections == 1:
                self.held.append(conn)  # read nothing, answer nothing
                continue
            conn.settimeout(2)
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            finally:
                conn.close()

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_killed_worker_leaves_no_run_running_and_the_rerun_completes_once(
    celery_worker_process, engineer, api_as, interface_a, environment
):
    from apps.core import jobs

    server = HangFirstServer()
    try:
        endpoint = Endpoint.objects.create(
            interface=interface_a,
            environment=environment,
            base_url=f"http://127.0.0.1:{server.port}/",
            timeout_seconds=60,
        )
        check_id = api_as(engineer).post(f"/api/v1/endpoints/{endpoint.pk}/check/").json()["id"]
        deadline = time.monotonic() + 30
        while server.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.connections == 1, "the worker never called the endpoint"
        assert EndpointCheck.objects.get(pk=check_id).status == JobStatus.RUNNING

        celery_worker_process.kill()  # SIGKILL to the worker and its pool, mid-request
        assert EndpointCheck.objects.get(pk=check_id).status == JobStatus.RUNNING
        time.sleep(1.1)
        assert jobs.reap_stale(lease_seconds=1) == {"requeued": 1, "failed": 0, "resent": 0}

        celery_worker_process.start()
        check = wait_until_finished(check_id)
        assert check.status == JobStatus.SUCCEEDED, check.error
        assert check.attempts == 2 and check.status_code == 200
        assert EndpointCheck.objects.filter(endpoint=endpoint).count() == 1
    finally:
        server.close()
