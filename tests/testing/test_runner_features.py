"""Chained steps, XML bodies, the circuit breaker, the baseline of known findings, imported
scripts, manual cases and CA bundles — each against a real server on loopback."""

import datetime
import functools
import gzip
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from apps.catalog import services as catalog_services
from apps.catalog.models import Endpoint
from apps.core import jobs
from apps.testing import services
from apps.testing.models import KnownFinding, TestCase, TestResult, TestRun
from apps.testing.runner import run_suite

pytestmark = pytest.mark.django_db


class App:
    """Routes (method, path) to a function returning (status, headers, body)."""

    def __init__(self):
        self.routes = {}
        self.hits = {}
        self.received = []

    def route(self, method, path, answer):
        self.routes[(method, path)] = answer


def _serve(app, wrap_tls=None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            self.server_app.hits[path] = self.server_app.hits.get(path, 0) + 1
            self.server_app.received.append((self.command, self.path, dict(self.headers), body))
            answer = self.server_app.routes.get((self.command, path))
            if answer is None:
                status, headers, payload = 404, {}, b'{"detail": "not found"}'
            else:
                status, headers, payload = answer(self, body)
            if status == "drip":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(10):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(2)
                return
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args):
            pass

    Handler.server_app = app
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if wrap_tls is not None:
        httpd.socket = wrap_tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    app.port = httpd.server_address[1]
    return httpd


@pytest.fixture
def app():
    app = App()
    httpd = _serve(app)
    yield app
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def endpoint(app, interface_a, environment):
    return Endpoint.objects.create(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{app.port}/",
        timeout_seconds=1,
    )


def json_answer(status, payload, headers=None):
    return lambda handler, body: (status, headers or {}, json.dumps(payload).encode())


def run_all(interface, environment):
    run = TestRun.objects.create(interface=interface, environment=environment)
    jobs.execute(TestRun, run.pk, run_suite)
    run.refresh_from_db()
    return run, {r.case_name: r for r in TestResult.objects.filter(run=run)}


def case(interface, name, path, **fields):
    fields.setdefault("validate_schema", False)
    return TestCase.objects.create(interface=interface, name=name, path=path, **fields)


# --- chained steps ------------------------------------------------------------------------


def test_a_chained_case_creates_then_reads_back_by_the_returned_id(
    app, endpoint, interface_a, environment
):
    store = {}

    def create(handler, body):
        order = json.loads(body)
        store["O-77"] = {**order, "id": "O-77"}
        return 201, {}, json.dumps(store["O-77"]).encode()

    app.route("POST", "/orders", create)
    app.route("GET", "/orders/O-77", lambda h, b: (200, {}, json.dumps(store["O-77"]).encode()))
    case(
        interface_a,
        "create and read back",
        "orders",
        method="POST",
        body={"sku": "A-1", "qty": 2},
        expected_statuses=[201],
        extract={"order_id": "$.id"},
        steps=[
            {
                "name": "read back",
                "method": "GET",
                "path": "orders/{{order_id}}",
                "expected_statuses": [200],
                "assertions": [{"path": "$.qty", "op": "equals", "value": 2}],
            }
        ],
    )
    run, results = run_all(interface_a, environment)
    result = results["create and read back"]
    assert result.outcome == "passed", result.checks
    assert [step["name"] for step in result.steps] == ["request", "read back"]
    assert result.steps[1]["request"]["url"].endswith("/orders/O-77")
    assert result.request["method"] == "GET"  # the evidence ends with the last step sent
    assert {check["step"] for check in result.checks} == {"request", "read back"}
    assert app.hits == {"/orders": 1, "/orders/O-77": 1}
    # One correlation id follows the case through every step.
    ids = {headers["X-Correlation-ID"] for _, _, headers, _ in app.received}
    assert ids == {result.correlation_id}


def test_a_failed_step_ends_the_chain_and_says_how_far_it_got(
    app, endpoint, interface_a, environment
):
    app.route("POST", "/orders", json_answer(500, {"error": "boom"}))
    case(
        interface_a,
        "chain",
        "orders",
        method="POST",
        body={},
        expected_statuses=[201],
        extract={"order_id": "$.id"},
        steps=[{"name": "read back", "path": "orders/{{order_id}}"}],
    )
    run, results = run_all(interface_a, environment)
    result = results["chain"]
    assert result.outcome == "failed"
    assert [step["outcome"] for step in result.steps] == ["failed", "not run"]
    assert app.hits == {"/orders": 1}


def test_an_extract_that_finds_nothing_fails_the_step(app, endpoint, interface_a, environment):
    app.route("POST", "/orders", json_answer(201, {"number": 5}))
    case(
        interface_a,
        "chain",
        "orders",
        method="POST",
        body={},
        expected_statuses=[201],
        extract={"order_id": "$.id"},
        steps=[{"path": "orders/{{order_id}}"}],
    )
    run, results = run_all(interface_a, environment)
    result = results["chain"]
    assert result.outcome == "failed"
    failed = [c for c in result.checks if c["passed"] is False]
    assert failed[0]["name"] == "extract order_id"
    assert failed[0]["message"] == "$.id found nothing to extract"


@pytest.mark.parametrize(
    "steps, field, message",
    [
        ("not a list", "steps", "Steps are a list of step objects."),
        (["x"], "steps", "step 2: must be an object"),
        ([{"path": "a", "colour": 1}], "steps", "step 2: unknown key(s) colour"),
        ([{"method": "GET"}], "steps", "step 2: path is missing"),
        ([{"path": "a", "method": "FETCH"}], "steps", "step 2: unknown method 'FETCH'"),
        ([{"path": "a/{{nope}}"}], "variables", "step 2: never defined: nope."),
        (
            [{"path": "a", "assertions": [{"path": "$[", "op": "exists"}]}],
            "steps",
            "step 2: assertion 1:",
        ),
        ([{"path": "a", "extract": {"x": 5}}], "steps", "step 2: extract maps variable names"),
        (
            [{"path": "a", "body_format": "xml", "body_text": "<a><b></a>"}],
            "steps",
            "step 2: the body is not well-formed XML",
        ),
        ([{"path": "a", "expected_statuses": [99]}], "steps", "step 2: status codes are"),
    ],
)
def test_chained_steps_are_validated_when_saved(interface_a, steps, field, message):
    bad = TestCase(interface=interface_a, name="bad", path="orders", steps=steps)
    with pytest.raises(ValidationError) as caught:
        services.validate_case(bad)
    assert message in " ".join(caught.value.message_dict[field])


def test_a_variable_extracted_by_an_earlier_step_counts_as_defined(interface_a):
    good = TestCase(
        interface=interface_a,
        name="good",
        path="orders",
        extract={"order_id": "$.id"},
        steps=[{"path": "orders/{{order_id}}"}],
    )
    services.validate_case(good)
    used_before = TestCase(interface=interface_a, name="bad", path="orders/{{order_id}}")
    with pytest.raises(ValidationError, match="never defined: order_id"):
        services.validate_case(used_before)


# --- XML bodies ---------------------------------------------------------------------------


def test_an_xml_request_body_is_sent_and_an_xml_answer_asserted_by_xpath(
    app, endpoint, interface_a, environment
):
    xml = {"Content-Type": "application/xml; charset=utf-8"}
    app.route(
        "POST",
        "/invoices",
        lambda h, body: (
            201,
            xml,
            b'<Invoice currency="EUR"><Number>INV-9</Number><Status>PAID</Status>'
            b"<Line><Sku>A</Sku></Line><Line><Sku>B</Sku></Line></Invoice>",
        ),
    )
    case(
        interface_a,
        "xml invoice",
        "invoices",
        method="POST",
        body_format="xml",
        body_text="<Invoice><Number>{{number}}</Number><Email>ann@example.com</Email></Invoice>",
        variables={"number": "INV-9"},
        expected_statuses=[201],
        assertions=[
            {"path": "xpath:/Invoice/Status", "op": "equals", "value": "PAID"},
            {"path": "xpath:/Invoice/@currency", "op": "equals", "value": "EUR"},
            {"path": "xpath://Sku", "op": "matches", "value": "^[AB]$"},
            {"path": "xpath:/Invoice/Missing", "op": "absent"},
        ],
    )
    run, results = run_all(interface_a, environment)
    result = results["xml invoice"]
    assert result.outcome == "passed", result.checks
    method, path, headers, body = app.received[0]
    assert body == b"<Invoice><Number>INV-9</Number><Email>ann@example.com</Email></Invoice>"
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    # Evidence of XML bodies is masked text.
    assert "ann@example.com" not in result.request["body"]
    assert "<Status>PAID</Status>" in result.response["body"]


def test_a_malformed_or_hostile_xml_answer_fails_clearly(app, endpoint, interface_a, environment):
    xml = {"Content-Type": "application/xml"}
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><a>&lol2;</a>'
    )
    app.route("GET", "/broken", lambda h, b: (200, xml, b"<a><b></a>"))
    app.route("GET", "/bomb", lambda h, b: (200, xml, bomb))
    for name in ("broken", "bomb"):
        case(
            interface_a,
            name,
            name,
            assertions=[{"path": "xpath:/a", "op": "exists"}],
        )
    run, results = run_all(interface_a, environment)
    broken = [c for c in results["broken"].checks if c["passed"] is False]
    assert results["broken"].outcome == "failed"
    assert "not well-formed XML" in broken[0]["message"]
    assert results["bomb"].outcome == "failed"
    assert "refused construct" in results["bomb"].checks[-2]["message"]


def test_a_case_with_malformed_xml_is_refused_when_saved(interface_a):
    bad = TestCase(
        interface=interface_a, name="x", path="a", body_format="xml", body_text="<a><b></a>"
    )
    with pytest.raises(ValidationError, match="not well-formed XML"):
        services.validate_case(bad)
    bad_xpath = TestCase(
        interface=interface_a,
        name="y",
        path="a",
        assertions=[{"path": "xpath:/a[", "op": "exists"}],
    )
    with pytest.raises(ValidationError, match="invalid XPath"):
        services.validate_case(bad_xpath)


# --- circuit breaker ----------------------------------------------------------------------


def test_503_forever_opens_the_circuit_and_the_rest_of_the_run_is_not_sent(
    app, endpoint, interface_a, environment, settings
):
    settings.PONTIS_TEST_CONCURRENCY = 1
    settings.PONTIS_TEST_CIRCUIT_THRESHOLD = 3
    app.route("GET", "/down", json_answer(503, {}))
    for number in range(10):
        case(interface_a, f"case {number:02}", "down", expected_statuses=[200])
    started = time.monotonic()
    run, results = run_all(interface_a, environment)
    assert run.status == "failed"
    assert app.hits["/down"] == 3 * 4  # three cases, each with its four attempts
    not_sent = [r for r in results.values() if r.error.startswith("Not sent: the circuit opened")]
    assert len(not_sent) == 7 and all(r.outcome == "errored" for r in not_sent)
    assert "after 3 requests in a row found the endpoint unavailable (last: answered 503)" in (
        not_sent[0].error
    )
    assert (run.failed, run.errored) == (3, 7)
    assert time.monotonic() - started < 30


def test_an_answer_in_between_keeps_the_circuit_closed(
    app, endpoint, interface_a, environment, settings
):
    settings.PONTIS_TEST_CONCURRENCY = 1
    settings.PONTIS_TEST_CIRCUIT_THRESHOLD = 2
    app.route("GET", "/down", json_answer(503, {}))
    app.route("GET", "/up", json_answer(200, {}))
    for number in range(6):
        case(interface_a, f"case {number}", "down" if number % 2 else "up")
    run, results = run_all(interface_a, environment)
    assert not any(r.error.startswith("Not sent") for r in results.values())


# --- baseline of known findings ----------------------------------------------------------

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Orders", "version": "1"},
    "paths": {
        "/orders/{id}": {
            "get": {
                "responses": {
                    "200": {
                        "description": "an order",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "qty"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "qty": {"type": "integer"},
                                        "email": {"type": "string", "format": "email"},
                                    },
                                }
                            }
                        },
                    }
                }
            }
        }
    },
}


@pytest.fixture
def with_spec(interface_a, engineer):
    catalog_services.upload_spec(engineer, interface_a, json.dumps(SPEC), filename="orders.json")


def test_a_known_finding_is_marked_and_a_new_failure_still_fails(
    app, endpoint, with_spec, interface_a, environment, lead
):
    app.route("GET", "/orders/1", json_answer(200, {"id": "1", "qty": 1, "email": "abc"}))
    app.route("GET", "/orders/2", json_answer(200, {"id": "2", "qty": "two", "email": "abc"}))
    known = case(interface_a, "known only", "orders/1", validate_schema=True)
    case(interface_a, "known and new", "orders/2", validate_schema=True)
    finding = KnownFinding.objects.create(
        interface=interface_a,
        check_name="response schema conforms",
        contains="is not an e-mail address",
        reason="CRM-123: legacy e-mails until the March release",
        accepted_by=lead,
    )
    run, results = run_all(interface_a, environment)
    assert results["known only"].outcome == "passed"
    schema = next(
        c for c in results["known only"].checks if c["name"] == "response schema conforms"
    )
    assert schema["passed"] is False
    assert (
        schema["known_finding"] == f"#{finding.pk}: CRM-123: legacy e-mails until the March release"
    )
    assert results["known and new"].outcome == "failed"
    schema = next(
        c for c in results["known and new"].checks if c["name"] == "response schema conforms"
    )
    assert schema["known_finding"] == ""

    # An expired finding no longer hides anything; one for another case does not apply.
    KnownFinding.objects.filter(pk=finding.pk).update(
        expires_on=datetime.date.today() - datetime.timedelta(days=1)
    )
    run, results = run_all(interface_a, environment)
    assert results["known only"].outcome == "failed"
    other = case(interface_a, "another", "orders/1", validate_schema=True, is_active=False)
    KnownFinding.objects.create(interface=interface_a, case=other, reason="only there")
    run, results = run_all(interface_a, environment)
    assert results["known only"].outcome == "failed"
    assert known.pk


# --- imported scripts and manual cases --------------------------------------------------


def test_imported_scripts_are_reported_as_not_executed_never_as_passed(
    app, endpoint, interface_a, environment
):
    app.route("GET", "/ping", json_answer(200, {}))
    case(
        interface_a, "ping", "ping", scripts="pm.test('ok', () => pm.response.to.have.status(200))"
    )
    run, results = run_all(interface_a, environment)
    scripts = next(c for c in results["ping"].checks if c["name"] == "Postman scripts")
    assert scripts["passed"] is None
    assert scripts["message"] == "imported scripts are kept as text and not executed"


def test_manual_cases_are_left_to_testers(app, endpoint, interface_a, environment):
    app.route("GET", "/ping", json_answer(200, {}))
    case(interface_a, "ping", "ping")
    case(
        interface_a,
        "look at the invoice PDF",
        "ping",
        kind="manual",
        manual_steps="Open it",
        expected_result="It shows the logo",
    )
    run, results = run_all(interface_a, environment)
    assert list(results) == ["ping"] and run.progress_total == 1


def test_a_manual_case_needs_steps_and_an_expected_result(interface_a):
    with pytest.raises(ValidationError) as caught:
        services.validate_case(TestCase(interface=interface_a, name="m", path="", kind="manual"))
    assert set(caught.value.message_dict) == {"manual_steps", "expected_result"}


# --- faults: each its own status and message; the run finishes -------------------------


@functools.cache
def huge_body():
    return b'{"pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'


@functools.cache
def gzip_bomb():
    return gzip.compress(b"0" * (200 * 1024 * 1024), compresslevel=9)  # ~200 KB on the wire


FAULTS = {
    "/boom": lambda h, b: (500, {}, b'{"error": "internal"}'),
    "/bad-json": lambda h, b: (200, {}, b'{"id": '),
    "/wrong-type": lambda h, b: (200, {"Content-Type": "text/html"}, b"<html>ok</html>"),
    "/huge": lambda h, b: (200, {}, huge_body()),
    "/gzip-bomb": lambda h, b: (200, {"Content-Encoding": "gzip"}, gzip_bomb()),
    "/loop": lambda h, b: (302, {"Location": "/loop"}, b""),
    "/metadata": lambda h, b: (302, {"Location": "http://169.254.169.254/latest/"}, b""),
    "/drip": lambda h, b: ("drip", {}, b""),
    "/bad-utf8": lambda h, b: (200, {}, b'{"id": "\xff\xfe"}'),
    "/xml-as-json": lambda h, b: (200, {}, b"<order><id>1</id></order>"),
}


def test_every_outbound_fault_gives_its_own_result_and_the_run_finishes(
    app, endpoint, interface_a, environment, settings
):
    settings.PONTIS_TEST_CIRCUIT_THRESHOLD = 0  # measured per fault here, not as a series
    Endpoint.objects.filter(pk=endpoint.pk).update(timeout_seconds=3)
    for path, answer in FAULTS.items():
        app.route("GET", path, answer)
        case(
            interface_a,
            path.strip("/"),
            path.strip("/"),
            expected_statuses=[200],
            assertions=[{"path": "$.id", "op": "exists"}],
        )
    run, results = run_all(interface_a, environment)
    assert run.status == "failed" and run.progress_done == len(FAULTS)
    by = {name: (r.outcome, r.error or _first_failure(r)) for name, r in results.items()}
    assert by["boom"][0] == "failed" and "500" in by["boom"][1]
    assert by["bad-json"][0] == "failed"
    assert by["bad-json"][1].startswith("the response body is not valid JSON")
    assert by["wrong-type"][0] == "failed" and "text/html, not JSON" in by["wrong-type"][1]
    assert by["bad-utf8"][0] == "failed"
    assert by["bad-utf8"][1].startswith("the response body is not valid JSON ('utf-8' codec")
    assert by["xml-as-json"][0] == "failed"
    assert by["xml-as-json"][1].startswith("the response body is not valid JSON (Expecting value")
    too_big = "the response body is larger than 10 MB (PONTIS_TEST_MAX_RESPONSE_BYTES)"
    assert by["huge"][0] == "errored" and by["huge"][1].startswith(too_big)
    assert by["gzip-bomb"][0] == "errored" and by["gzip-bomb"][1].startswith(too_big)
    assert by["loop"][0] == "errored" and "too many redirects" in by["loop"][1]
    assert by["metadata"][0] == "errored" and "169.254.169.254" in by["metadata"][1]
    assert by["drip"][0] == "errored" and "timed out" in by["drip"][1]

    # Nothing listens on the discard port: connection refused.
    Endpoint.objects.filter(pk=endpoint.pk).update(base_url="http://127.0.0.1:9/")
    TestCase.objects.exclude(name="boom").delete()
    run, results = run_all(interface_a, environment)
    assert results["boom"].outcome == "errored"
    assert "refused" in results["boom"].error


def _first_failure(result):
    failed = [c for c in result.checks if c["passed"] is False]
    return failed[0]["message"] if failed else ""


# --- a self-signed certificate and the environment's CA bundle ----------------------------


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pontis test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, cert_file, key_file


def test_a_self_signed_certificate_fails_unless_the_environment_trusts_its_ca(
    tmp_path, interface_a, environment
):
    pem, cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    app = App()
    app.route("GET", "/secure", json_answer(200, {"id": 1}))
    httpd = _serve(app, wrap_tls=context)
    try:
        Endpoint.objects.create(
            interface=interface_a,
            environment=environment,
            base_url=f"https://127.0.0.1:{app.port}/",
            timeout_seconds=2,
        )
        case(interface_a, "secure", "secure", expected_statuses=[200])
        run, results = run_all(interface_a, environment)
        assert results["secure"].outcome == "errored"
        assert "certificate" in results["secure"].error

        environment.ca_bundle = pem
        environment.full_clean()
        environment.save()
        run, results = run_all(interface_a, environment)
        assert results["secure"].outcome == "passed", results["secure"].error
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_environment_refuses_a_ca_bundle_that_is_not_pem(environment):
    environment.ca_bundle = "not a certificate"
    with pytest.raises(ValidationError) as caught:
        environment.full_clean()
    assert "PEM certificates" in caught.value.message_dict["ca_bundle"][0]


# --- a suite by tag from the contracts page ----------------------------------------------


def test_the_contracts_page_runs_all_cases_or_one_tag(
    app, endpoint, interface_a, environment, engineer, client, django_capture_on_commit_callbacks
):
    app.route("GET", "/ping", json_answer(200, {}))
    case(interface_a, "smoke one", "ping", tags=["smoke"])
    case(interface_a, "full one", "ping", tags=["nightly"])
    client.force_login(engineer)
    page = client.get(f"/interfaces/{interface_a.code}/contracts/").content.decode()
    assert '<option value="smoke">tag smoke</option>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/interfaces/{interface_a.code}/test-runs/new/",
            {"environment": environment.pk, "tag": "smoke"},
        )
    run = TestRun.objects.get()
    assert response.status_code == 302 and run.tag == "smoke"
    assert list(run.results.values_list("case_name", flat=True)) == ["smoke one"]


# ---------------------------------------------------------------- the result writer


def test_the_result_writer_keeps_the_first_result_of_a_case_and_counts_from_the_rows(
    interface_a, environment
):
    """A resumed run may send a case whose result an earlier attempt stored: the stored one
    stays, nothing is recorded twice, and the run's counters are counted from the rows."""
    from apps.testing.runner import ResultWriter

    one = TestCase.objects.create(interface=interface_a, name="one", path="a/")
    two = TestCase.objects.create(interface=interface_a, name="two", path="b/")
    run = jobs.claim(
        TestRun, TestRun.objects.create(interface=interface_a, environment=environment).pk
    )
    result = {
        "outcome": "passed",
        "checks": [{"name": "status code conforms", "passed": True, "message": "200"}],
        "request": {"method": "GET", "url": "http://partner.test/a/"},
        "response": {"status": 200, "body": {"note": "Zürich", "big": 2**70}},
        "elapsed_ms": 1.5,
        "correlation_id": "c1",
        "error": "",
    }
    first = ResultWriter(run, done=0)
    first.add(one, result)
    first.flush()
    again = ResultWriter(run, done=1)
    again.add(one, {**result, "outcome": "failed", "correlation_id": "c2"})
    again.add(two, {**result, "outcome": "failed", "error": "500 answered"})
    again.flush()

    rows = {row.case_name: row for row in TestResult.objects.filter(run=run)}
    assert sorted(rows) == ["one", "two"]
    assert (rows["one"].outcome, rows["one"].correlation_id) == ("passed", "c1")
    assert rows["one"].response == {"status": 200, "body": {"note": "Zürich", "big": 2**70}}
    assert rows["one"].checks == result["checks"] and rows["one"].steps == []
    assert rows["one"].created_at is not None and rows["one"].case_id == one.pk
    assert (rows["two"].outcome, rows["two"].error) == ("failed", "500 answered")
    run.refresh_from_db()
    assert (run.passed, run.failed, run.errored) == (1, 1, 0)
