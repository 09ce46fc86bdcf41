"""Running a suite of test cases against an environment: the work of a TestRun job.

Each case sends one request through the egress door with the endpoint's
credentials and a correlation id, runs its named checks, and stores a result
whose request and response are masked before they are written. A run that is
picked up again (its worker died) skips the cases that already have a result,
so no result is recorded twice.
"""

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from urllib.parse import urlencode, urljoin

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from apps.catalog.connectivity import EndpointAuthError, authorised_request
from apps.catalog.models import Endpoint
from apps.core import egress, jobs, masking
from apps.testing import checks
from apps.testing.models import Outcome, TestCase, TestKind, TestResult, TestRun


def selected_cases(run: TestRun):
    cases = TestCase.objects.filter(interface_id=run.interface_id, is_active=True).order_by("name")
    if run.case_ids:
        cases = cases.filter(pk__in=run.case_ids)
    cases = list(cases)
    if run.tag:
        cases = [case for case in cases if run.tag in (case.tags or [])]
    return cases


def run_suite(run: TestRun) -> str | None:
    """Work of a TestRun: every selected case, in name order. Returns an error text or None."""
    endpoint = (
        Endpoint.objects.select_related("environment", "interface")
        .filter(interface_id=run.interface_id, environment_id=run.environment_id)
        .first()
    )
    if endpoint is None:
        return f"{run.interface.code} has no endpoint in {run.environment.name}."
    spec = run.interface.specs.order_by("-version").first()
    TestRun.objects.filter(pk=run.pk).update(endpoint=endpoint, spec=spec)
    cases = selected_cases(run)
    finished = set(run.results.values_list("case_id", flat=True))
    jobs.heartbeat(run, done=len(finished), total=len(cases))
    secrets = list(endpoint.get_credentials().values())
    pending = [case for case in cases if case.pk not in finished]
    strict = run.interface.strict_contracts
    # Cases run concurrently (network only in the threads); this thread alone writes
    # results, so the database sees one writer and the counters stay exact.
    with ThreadPoolExecutor(max_workers=settings.PONTIS_TEST_CONCURRENCY) as pool:
        futures = {
            pool.submit(execute_case, case, endpoint, spec, strict, secrets): case
            for case in pending
        }
        try:
            for future in as_completed(futures):
                case = futures[future]
                record_result(run, case, future.result())
                finished.add(case.pk)
                jobs.heartbeat(run, done=len(finished), note=f"finished {case.name}")
        except jobs.JobCancelled:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    run.refresh_from_db(fields=["passed", "failed", "errored"])
    if run.failed or run.errored:
        return f"{run.failed} failed and {run.errored} errored of {len(cases)} cases."
    return None


def record_result(run: TestRun, case: TestCase, result: dict) -> None:
    """Writes one result and bumps its counter; a result recorded by an earlier attempt is kept."""
    try:
        with transaction.atomic():
            TestResult.objects.create(run=run, case=case, case_name=case.name, **result)
    except IntegrityError:
        return
    counter = {Outcome.PASSED: "passed", Outcome.FAILED: "failed", Outcome.ERRORED: "errored"}[
        result["outcome"]
    ]
    TestRun.objects.filter(pk=run.pk).update(**{counter: F(counter) + 1})


def _json_bytes(body) -> bytes | None:
    return None if body is None else json.dumps(body).encode()


def execute_case(case: TestCase, endpoint: Endpoint, spec, strict: bool, secrets: list) -> dict:
    """Sends the case's request and checks the answer. Never raises: failures become results."""
    correlation_id = uuid.uuid4().hex
    evidence = {"correlation_id": correlation_id, "request": {}, "response": {}, "elapsed_ms": None}
    variables = {"base_url": endpoint.base_url, **(case.variables or {})}
    try:
        path = checks.render(case.path, variables)
        query = checks.render(case.query or {}, variables)
        headers = checks.render(case.headers or {}, variables)
        body = checks.render(case.body, variables)
    except ValueError as exc:
        return {
            **evidence,
            "outcome": Outcome.ERRORED,
            "checks": [],
            "error": f"Variable problem: {exc}",
        }

    url = urljoin(endpoint.base_url, str(path).lstrip("/"))
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    try:
        if case.send_credentials:
            url, auth_headers = authorised_request(endpoint, url)
        else:
            auth_headers = dict(endpoint.default_headers or {})
    except (EndpointAuthError, egress.EgressError) as exc:
        return {
            **evidence,
            "outcome": Outcome.ERRORED,
            "checks": [],
            "error": f"Authentication failed: {exc}",
        }
    request_headers = {**auth_headers, **headers, "Accept": "application/json"}
    payload = _json_bytes(body)
    if payload is not None:
        request_headers.setdefault("Content-Type", "application/json")
    evidence["request"] = {
        "method": case.method,
        "url": masking.mask_text(url, secrets),
        "headers": masking.mask_headers(request_headers, secrets),
        "body": masking.mask_payload(body, secrets=secrets),
    }

    started = time.perf_counter()
    try:
        response, attempts = send_with_retries(
            endpoint,
            case.method,
            url,
            headers=request_headers,
            body=payload,
            correlation_id=correlation_id,
        )
    except egress.EgressError as exc:
        evidence["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return {**evidence, "outcome": Outcome.ERRORED, "checks": [], "error": exc.message}
    evidence["request"]["attempts"] = attempts
    evidence["elapsed_ms"] = round(response.elapsed_ms, 1)

    content_type = response.headers.get("content-type", "")
    parsed, parse_error = _parse_body(response.body, content_type)
    results = run_checks(case, spec, strict, response, parsed, parse_error)
    evidence["response"] = {
        "status": response.status,
        "headers": masking.mask_headers(response.headers, secrets),
        "body": _evidence_body(response.body, parsed, parse_error, secrets),
        "truncated": response.truncated,
    }
    failed = any(result.passed is False for result in results)
    return {
        **evidence,
        "outcome": Outcome.FAILED if failed else Outcome.PASSED,
        "checks": [asdict(result) for result in results],
        "error": "",
    }


RETRY_STATUSES = (429, 503)
BACKOFF_SECONDS = (0.5, 1.0, 2.0)  # before the 2nd, 3rd and 4th attempt


class RetryLater(egress.EgressError):
    """The endpoint asked for a pause longer than a worker may sleep."""


def send_with_retries(endpoint: Endpoint, method: str, url: str, *, headers, body, correlation_id):
    """One request with bounded retries on connection errors (not timeouts), 429 and 503.

    ``Retry-After`` is honoured up to PONTIS_TEST_MAX_RETRY_AFTER seconds; a longer
    one ends the case at once as "retry later" instead of holding the worker.
    Returns (response, attempts).
    """
    max_wait = settings.PONTIS_TEST_MAX_RETRY_AFTER
    for attempt in range(1, len(BACKOFF_SECONDS) + 2):
        if endpoint.rate_limit_per_second:
            egress.rate_limiter.acquire(f"endpoint-{endpoint.pk}", endpoint.rate_limit_per_second)
        last_try = attempt > len(BACKOFF_SECONDS)
        try:
            response = egress.request(
                method,
                url,
                headers=headers,
                body=body,
                allowlist=endpoint.environment.egress_allowlist,
                ca_bundle=endpoint.environment.ca_bundle_path(),
                read_timeout=endpoint.timeout_seconds,
                total_timeout=endpoint.timeout_seconds * 2,
                max_bytes=max(settings.PONTIS_EVIDENCE_MAX_BODY_BYTES, 1024 * 1024),
                correlation_id=correlation_id,
            )
        except egress.EgressError as exc:
            # Connection failures are retried; a timeout already cost the full wait once.
            if not isinstance(exc, egress.EgressConnectionError) or exc.permanent or last_try:
                raise
            time.sleep(BACKOFF_SECONDS[attempt - 1] * random.uniform(0.8, 1.2))
            continue
        if response.status not in RETRY_STATUSES or last_try:
            return response, attempt
        wait = response.retry_after
        if wait is not None and wait > max_wait:
            raise RetryLater(
                f"{response.status} with Retry-After {wait:.0f} s, longer than the {max_wait:.0f} s a "
                "worker waits: run the case again later",
                permanent=True,
            )
        time.sleep(
            wait if wait is not None else BACKOFF_SECONDS[attempt - 1] * random.uniform(0.8, 1.2)
        )
    raise AssertionError("unreachable")


def _parse_body(body: bytes, content_type: str):
    if not body:
        return None, ""
    if "json" not in content_type.lower():
        return None, f"the response is {content_type or 'without a content type'}, not JSON"
    try:
        return json.loads(body), ""
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the response body is not valid JSON ({exc})"


def _evidence_body(raw: bytes, parsed, parse_error: str, secrets):
    limit = settings.PONTIS_EVIDENCE_MAX_BODY_BYTES
    if parsed is not None and not parse_error and len(raw) <= limit:
        return masking.mask_payload(parsed, secrets=secrets)
    text = raw[:limit].decode("utf-8", errors="replace")
    return masking.mask_text(text, secrets) + ("…[truncated]" if len(raw) > limit else "")


def run_checks(case: TestCase, spec, strict: bool, response, parsed, parse_error: str) -> list:
    """The named checks of one response, in a fixed order."""
    results = []
    operation = None
    template = ""
    if spec is not None and spec.kind.startswith("openapi"):
        found = checks.find_operation(spec.document, case.method, request_path(case))
        if found:
            template, operation = found

    documented = sorted(str(code) for code in (operation or {}).get("responses", {}))
    expected = [int(code) for code in case.expected_statuses] if case.expected_statuses else None
    if expected:
        ok = response.status in expected
        results.append(
            checks.CheckResult(
                checks.STATUS_CODE,
                ok,
                f"{response.status}, expected {', '.join(map(str, expected))}",
            )
        )
    elif operation is not None:
        ok = (
            str(response.status) in documented
            or any(code.upper() == f"{str(response.status)[0]}XX" for code in documented)
            or (not strict and "default" in documented)
        )
        results.append(
            checks.CheckResult(
                checks.STATUS_CODE,
                ok,
                f"{response.status}; the spec documents {', '.join(documented) or 'none'}",
            )
        )
    else:
        results.append(
            checks.CheckResult(
                checks.STATUS_CODE, None, "no expected status and no spec operation to compare with"
            )
        )

    results.append(
        checks.CheckResult(checks.NOT_SERVER_ERROR, response.status < 500, f"{response.status}")
    )

    if case.validate_schema and operation is not None:
        content_type = response.headers.get("content-type", "")
        schema, reason = checks.response_schema(
            spec.document, operation, response.status, content_type
        )
        if schema is None:
            results.append(
                checks.CheckResult(
                    checks.RESPONSE_SCHEMA, False if "no contract" in reason else None, reason
                )
            )
        elif parse_error:
            results.append(checks.CheckResult(checks.CONTENT_TYPE, False, parse_error))
            results.append(
                checks.CheckResult(
                    checks.RESPONSE_SCHEMA, False, "the body could not be read as JSON"
                )
            )
        else:
            results.append(checks.CheckResult(checks.CONTENT_TYPE, True, content_type))
            try:
                validator = checks.cached_validator(
                    (
                        spec.content_sha256,
                        template,
                        case.method,
                        response.status,
                        content_type.split(";")[0],
                    ),
                    spec.document,
                    schema,
                    openapi_version=spec.spec_version,
                    strict=strict,
                )
                violations = validator.violations(parsed)
            except checks.ContractError as exc:
                results.append(
                    checks.CheckResult(checks.RESPONSE_SCHEMA, False, f"the spec is broken: {exc}")
                )
            else:
                results.append(
                    checks.CheckResult(
                        checks.RESPONSE_SCHEMA,
                        not violations,
                        "valid" if not violations else f"{len(violations)} violation(s)",
                        [v.message for v in violations],
                    )
                )

    if case.kind == TestKind.NEGATIVE:
        if case.send_credentials:
            ok = 400 <= response.status < 500
            results.append(
                checks.CheckResult(checks.INVALID_INPUT_REJECTED, ok, f"{response.status}")
            )
        else:
            ok = response.status in (401, 403)
            results.append(
                checks.CheckResult(checks.NO_CREDENTIALS_REJECTED, ok, f"{response.status}")
            )

    if case.max_latency_ms:
        ok = response.elapsed_ms <= case.max_latency_ms
        results.append(
            checks.CheckResult(
                checks.MAX_LATENCY,
                ok,
                f"{response.elapsed_ms:.0f} ms of at most {case.max_latency_ms} ms",
            )
        )

    for assertion in case.assertions or []:
        results.append(checks.evaluate_assertion(assertion, parsed, response.headers))
    return results


def request_path(case: TestCase) -> str:
    """The path of the case as the spec sees it: variables filled, relative to the base URL."""
    try:
        path = str(checks.render(case.path, {"base_url": "", **(case.variables or {})}))
    except ValueError:
        path = case.path
    return "/" + path.lstrip("/")
