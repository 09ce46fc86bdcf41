"""Outbound faults during a run, each against a real server on loopback: the run finishes, each case says why."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.catalog.models import Endpoint
from apps.core import jobs
from apps.testing.models import TestCase, TestResult, TestRun
from apps.testing.runner import run_suite

pytestmark = pytest.mark.django_db


class Script:
    """Answers per path from a list of (status, headers, body) steps; the last step repeats."""

    def __init__(self, steps):
        self.steps = dict(steps)
        self.hits = {}


@pytest.fixture
def server():
    script = Script({})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            count = script.hits.get(path, 0)
            script.hits[path] = count + 1
            steps = script.steps.get(path, [(404, {}, b"")])
            status, headers, body = steps[min(count, len(steps) - 1)]
            if status == "hang":
                time.sleep(3)
                return
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # the token URL is posted to  # noqa: N815

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    script.port = httpd.server_address[1]
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def target(server, interface_a, environment):
    endpoint = Endpoint.objects.create(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{server.port}/",
        timeout_seconds=1,
    )
    return endpoint


def run_cases(interface, environment, *names_and_paths, statuses=(200,)):
    for name, path in names_and_paths:
        TestCase.objects.create(
            interface=interface,
            name=name,
            path=path,
            expected_statuses=list(statuses),
            validate_schema=False,
        )
    run = TestRun.objects.create(interface=interface, environment=environment)
    assert jobs.execute(TestRun, run.pk, run_suite) in {"succeeded", "failed"}
    run.refresh_from_db()
    return run, {r.case_name: r for r in TestResult.objects.filter(run=run)}


def test_503_then_200_is_retried_and_passes(server, target, interface_a, environment):
    server.steps["/flaky"] = [(503, {}, b"{}"), (503, {}, b"{}"), (200, {}, b'{"ok": true}')]
    run, results = run_cases(interface_a, environment, ("flaky", "flaky"))
    assert results["flaky"].outcome == "passed"
    assert results["flaky"].request["attempts"] == 3
    assert server.hits["/flaky"] == 3


def test_429_with_short_retry_after_waits_then_passes(server, target, interface_a, environment):
    server.steps["/limited"] = [(429, {"Retry-After": "1"}, b"{}"), (200, {}, b"{}")]
    started = time.monotonic()
    run, results = run_cases(interface_a, environment, ("limited", "limited"))
    assert results["limited"].outcome == "passed"
    assert time.monotonic() - started >= 1


def test_429_with_long_retry_after_defers_the_run_instead_of_sleeping(
    server, target, interface_a, environment
):
    from django.utils import timezone

    server.steps["/later"] = [(429, {"Retry-After": "3600"}, b"{}"), (200, {}, b"{}")]
    server.steps["/now"] = [(200, {}, b"{}")]
    for name in ("later", "now"):
        TestCase.objects.create(
            interface=interface_a, name=name, path=name, expected_statuses=[200]
        )
    run = TestRun.objects.create(interface=interface_a, environment=environment)
    started = time.monotonic()
    assert jobs.execute(TestRun, run.pk, run_suite) == "deferred"
    assert time.monotonic() - started < 5
    run.refresh_from_db()
    assert run.status == "queued" and run.deferrals == 1 and run.attempts == 0
    wait = (run.not_before - timezone.now()).total_seconds()
    assert 3500 < wait <= 3600
    assert "retry after 3600 s" in run.progress_note
    assert list(run.results.values_list("case_name", flat=True)) == ["now"]

    # Not claimed before its time, even when a message arrives early.
    assert jobs.execute(TestRun, run.pk, run_suite) == "not-claimed"
    assert server.hits["/later"] == 1
    # Once the time has come the sweeper sends it; the resumed run records each case once.
    TestRun.objects.filter(pk=run.pk).update(not_before=timezone.now())
    assert jobs.reap_stale()["resent"] == 1
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert sorted(run.results.values_list("case_name", flat=True)) == ["later", "now"]
    assert (run.passed, run.failed, run.errored) == (2, 0, 0)
    assert server.hits == {"/later": 2, "/now": 1}


def test_a_run_deferred_too_often_gives_up_with_a_clear_error(
    server, target, interface_a, environment, settings
):
    settings.PONTIS_TEST_MAX_DEFERRALS = 0
    server.steps["/later"] = [(429, {"Retry-After": "3600"}, b"{}")]
    run, results = run_cases(interface_a, environment, ("later", "later"))
    assert run.status == "failed"
    assert results["later"].outcome == "errored"
    assert results["later"].error.startswith(
        "429 with Retry-After 3600 s, longer than the 10 s a worker waits; the run was already "
        "deferred 0 time(s), so it gives up"
    )


def test_503_forever_gives_up_after_bounded_attempts(server, target, interface_a, environment):
    server.steps["/down"] = [(503, {}, b"{}")]
    run, results = run_cases(interface_a, environment, ("down", "down"))
    assert results["down"].outcome == "failed"
    assert server.hits["/down"] == 4


def test_a_hanging_endpoint_times_out_and_the_run_goes_on(server, target, interface_a, environment):
    server.steps["/hang"] = [("hang", {}, b"")]
    server.steps["/fine"] = [(200, {}, b"{}")]
    run, results = run_cases(interface_a, environment, ("a hang", "hang"), ("b fine", "fine"))
    assert results["a hang"].outcome == "errored" and "timed out" in results["a hang"].error
    assert results["b fine"].outcome == "passed"
    assert run.status == "failed" and (run.passed, run.errored) == (1, 1)


def test_html_error_page_with_200_is_not_json(server, target, interface_a, environment):
    server.steps["/html"] = [(200, {"Content-Type": "text/html"}, b"<html>oops</html>")]
    TestCase.objects.create(
        interface=interface_a,
        name="html",
        path="html",
        assertions=[{"path": "$.id", "op": "exists"}],
        validate_schema=False,
    )
    run = TestRun.objects.create(interface=interface_a, environment=environment)
    jobs.execute(TestRun, run.pk, run_suite)
    result = TestResult.objects.get(run=run)
    assert result.outcome == "failed"
    assert result.response["body"] == "<html>oops</html>"


def test_results_are_immutable(server, target, interface_a, environment):
    from apps.testing.models import EvidenceImmutable

    server.steps["/ok"] = [(200, {}, b"{}")]
    run, results = run_cases(interface_a, environment, ("ok", "ok"))
    result = results["ok"]
    result.outcome = "failed"
    with pytest.raises(EvidenceImmutable):
        result.save()


def test_rerun_failed_only(server, target, engineer, api_as, interface_a, environment):
    server.steps["/ok"] = [(200, {}, b"{}")]
    server.steps["/bad"] = [(500, {}, b"{}")]
    run, results = run_cases(interface_a, environment, ("ok", "ok"), ("bad", "bad"))
    response = api_as(engineer).post(f"/api/v1/test-runs/{run.pk}/rerun-failed/")
    assert response.status_code == 202
    new_run = TestRun.objects.get(pk=response.json()["id"])
    assert new_run.case_ids == [TestCase.objects.get(name="bad").pk]


def test_oauth2_token_is_fetched_once_and_reused(server, interface_a, environment):
    import json as jsonlib

    from apps.catalog import services as catalog_services

    server.steps["/token"] = [
        (200, {}, jsonlib.dumps({"access_token": "tok-123", "expires_in": 3600}).encode())
    ]
    server.steps["/data"] = [(200, {}, b"{}")]

    endpoint = Endpoint(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{server.port}/",
        auth_type="oauth2_cc",
        token_url=f"http://127.0.0.1:{server.port}/token",
        timeout_seconds=2,
    )
    catalog_services.save_endpoint(
        None, endpoint, {"client_id": "pontis", "client_secret": "s3cret-value"}
    )
    run, results = run_cases(
        interface_a, environment, ("one", "data"), ("two", "data"), ("three", "data")
    )
    assert [r.outcome for r in results.values()] == ["passed"] * 3
    assert server.hits["/token"] == 1
    assert results["one"].request["headers"]["Authorization"] == "Bearer [masked]"
