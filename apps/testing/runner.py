"""Running a suite of test cases against an environment: the work of a TestRun job.

Each case sends its request — or its chain of steps, later ones using values
extracted from earlier answers — through the egress door with the endpoint's
credentials and a correlation id, runs its named checks, and stores a result
whose request and response are masked before they are written. Failures the
interface's baseline accepts are marked as known findings instead of failing.
An endpoint that keeps failing opens a circuit breaker for the rest of the run;
one that asks for a long pause defers the whole run through the database. A run that is
picked up again (its worker died) skips the cases that already have a result,
so no result is recorded twice.
"""

import asyncio
import json
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from urllib.parse import urlencode, urljoin

import orjson
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.catalog.connectivity import EndpointAuthError, authorised_request
from apps.catalog.models import AuthType, Endpoint
from apps.core import egress, jobs, masking
from apps.core.async_egress import AsyncEgress
from apps.testing import checks, xml_bodies
from apps.testing.models import (
    BodyFormat,
    KnownFinding,
    Outcome,
    TestCase,
    TestKind,
    TestResult,
    TestRun,
)


def selected_cases(run: TestRun):
    """The automated cases of the run, in name order (manual cases are recorded by people)."""
    cases = (
        TestCase.objects.filter(interface_id=run.interface_id, is_active=True)
        .exclude(kind=TestKind.MANUAL)
        .order_by("name")
    )
    if run.case_ids:
        cases = cases.filter(pk__in=run.case_ids)
    cases = list(cases)
    if run.tag:
        cases = [case for case in cases if run.tag in (case.tags or [])]
    return cases


@dataclass
class RunContext:
    """What every case of one run shares: where it goes, the contract, the baseline, the breaker."""

    endpoint: Endpoint
    spec: object
    strict: bool
    credentials: dict
    masker: masking.Masker
    findings: list
    breaker: "CircuitBreaker"
    ca_bundle: str | None = None
    door: AsyncEgress | None = None  # set while the cases are sent
    operations: dict = field(default_factory=dict)

    def operation(self, method: str, path: str):
        """The spec's operation for a request, looked up once per run and path."""
        key = (method, path)
        if key not in self.operations:
            self.operations[key] = checks.find_operation(self.spec.document, method, path)
        return self.operations[key]


def run_suite(run: TestRun) -> str | None:
    """Work of a TestRun: every selected case, in name order. Returns an error text or None.

    Raises JobDeferred when the endpoint asked (with a long Retry-After) to be called
    again later: the cases already done keep their results and the run resumes then.
    """
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
    credentials = endpoint.get_credentials()
    context = RunContext(
        endpoint=endpoint,
        spec=spec,
        strict=run.interface.strict_contracts,
        credentials=credentials,
        masker=masking.Masker(credentials.values()),
        findings=list(baseline_for(run.interface_id)),
        breaker=CircuitBreaker(settings.PONTIS_TEST_CIRCUIT_THRESHOLD),
        ca_bundle=endpoint.environment.ca_bundle_path(),
    )
    pending = [case for case in cases if case.pk not in finished]
    deferred: dict[TestCase, RetryLater] = {}
    writer = ResultWriter(run, done=len(finished))
    # The cases are sent from an event loop in a thread of their own, many at a time;
    # this thread alone writes their results, in batches, so the database sees one
    # writer and few statements, and the event loop never waits for it.
    sender = SuiteSender(run, pending, context)
    sender.start()
    try:
        for case, result in sender.results(idle=writer.BATCH_SECONDS, on_idle=writer.tick):
            if isinstance(result, RetryLater):
                deferred[case] = result
            else:
                writer.add_row(case, result)
        writer.flush()
    finally:
        sender.stop()
    if deferred:
        defer_or_give_up(run, deferred)
    run.refresh_from_db(fields=["passed", "failed", "errored"])
    if run.failed or run.errored:
        return f"{run.failed} failed and {run.errored} errored of {len(cases)} cases."
    return None


class ResultWriter:
    """Writes results in batches: one multi-row insert, then the counters and the heartbeat
    in one statement, every BATCH_SIZE results or BATCH_SECONDS, whichever comes first.

    The counters are counted from the stored rows, and a result an earlier attempt
    already stored is skipped by the unique (run, case) constraint, so a resumed run
    stays exact and records nothing twice.

    Results are written with one plain ``INSERT … ON CONFLICT DO NOTHING`` per batch
    rather than through model instances: a run writes thousands of them, and building
    and preparing a model instance per row cost more than sending the case.
    """

    BATCH_SIZE = 200
    BATCH_SECONDS = 0.5
    COLUMNS = (
        "run",
        "case",
        "case_name",
        "outcome",
        "checks",
        "request",
        "response",
        "elapsed_ms",
        "correlation_id",
        "error",
        "steps",
        "notes",
        "created_at",
    )
    JSON_COLUMNS = frozenset({"checks", "request", "response", "steps"})

    def __init__(self, run: TestRun, *, done: int):
        self.run = run
        self.done = done
        self.pending: list[tuple] = []
        self.last_flush = time.monotonic()
        self.last_case = ""

    def add(self, case: TestCase, result: dict) -> None:
        self.add_row(case, self.row(self.run.pk, case, result))

    @classmethod
    def row(cls, run_id: int, case: TestCase, result: dict) -> tuple:
        """The values of a result's row, JSON encoded: the sending thread builds them, so that
        this thread only sends statements."""
        values = {"run": run_id, "case": case.pk, "case_name": case.name, "notes": ""}
        values.update(result)
        values.setdefault("steps", [])
        values["created_at"] = timezone.now()
        return tuple(
            _json_text(values[name]) if name in cls.JSON_COLUMNS else values[name]
            for name in cls.COLUMNS
        )

    def add_row(self, case: TestCase, row: tuple) -> None:
        self.pending.append(row)
        self.last_case = case.name
        if len(self.pending) >= self.BATCH_SIZE:
            self.flush()
        else:
            self.tick()

    def tick(self) -> None:
        """Flushes when BATCH_SECONDS have passed since the last flush (a heartbeat even
        while every case in flight is still waiting for its answer)."""
        if time.monotonic() - self.last_flush >= self.BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._insert(self.pending)
            self.done += len(self.pending)
            self.pending = []
        counts = dict(
            self.run.results.order_by()
            .values_list("outcome")
            .annotate(count=Count("pk"))
            .values_list("outcome", "count")
        )
        jobs.heartbeat(
            self.run,
            done=self.done,
            note=f"finished {self.last_case}" if self.last_case else None,
            passed=counts.get(Outcome.PASSED, 0),
            failed=counts.get(Outcome.FAILED, 0),
            errored=counts.get(Outcome.ERRORED, 0),
        )
        self.last_flush = time.monotonic()

    @classmethod
    def _insert(cls, rows: list[tuple]) -> None:
        meta = TestResult._meta
        connection = connections[router.db_for_write(TestResult)]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(meta.get_field(name).column) for name in cls.COLUMNS)
        adapt = connection.ops.adapt_datetimefield_value
        when = cls.COLUMNS.index("created_at")
        row_marks = "(" + ", ".join(["%s"] * len(cls.COLUMNS)) + ")"
        # SQLite allows 32,766 parameters per statement: 13 columns x 200 rows is well under.
        # Table and column names come from the model, quoted; every value is a parameter.
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608
            + ", ".join([row_marks] * len(rows))
            + " ON CONFLICT DO NOTHING"
        )
        parameters = []
        for row in rows:
            row = list(row)
            row[when] = adapt(row[when])
            parameters.extend(row)
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(sql, parameters)


class SuiteSender:
    """Sends the cases of a run from an asyncio event loop in a thread of its own, at most
    PONTIS_TEST_CONCURRENCY at a time over one AsyncEgress session (keep-alive connections
    to the endpoint), and hands each (case, result) to the run's thread through a queue."""

    _DONE = object()

    def __init__(self, run: TestRun, cases: list[TestCase], context: RunContext):
        self.run_id = run.pk
        self.cases = cases
        self.context = context
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pontis-test-sender", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.started.wait()

    def results(self, *, idle: float, on_idle):
        """(case, result row or RetryLater) as the cases finish; calls on_idle every ``idle``
        seconds without one. Raises what the sending raised, if anything."""
        while True:
            try:
                item = self.queue.get(timeout=idle)
            except queue.Empty:
                on_idle()
                continue
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Cancels the cases still in flight (a cancelled or failed run) and waits for the
        thread; in-flight requests end at once, their cases are not recorded."""
        if self.loop is not None and self.task is not None and not self.task.done():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the run's thread, which raises it
            self.queue.put(exc)
        finally:
            self.started.set()
            self.queue.put(self._DONE)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.started.set()
        context = self.context
        concurrency = max(1, settings.PONTIS_TEST_CONCURRENCY)
        cases = iter(self.cases)
        async with AsyncEgress(
            allowlist=context.endpoint.environment.egress_allowlist,
            ca_bundle=context.ca_bundle,
            connections=concurrency,
        ) as door:
            context.door = door

            async def send_in_turn():
                for case in cases:
                    try:
                        result = await execute_case(case, context)
                    except RetryLater as later:
                        self.queue.put((case, later))
                    else:
                        self.queue.put((case, ResultWriter.row(self.run_id, case, result)))

            await asyncio.gather(*(send_in_turn() for _ in range(concurrency)))


def defer_or_give_up(run: TestRun, deferred: dict) -> None:
    """Hands the run back to the queue until the longest Retry-After has passed, or, once it
    has been deferred too often, records the waiting cases as errored."""
    wait = max(later.wait for later in deferred.values())
    if run.deferrals < settings.PONTIS_TEST_MAX_DEFERRALS:
        until = timezone.now() + timedelta(seconds=min(wait, MAX_DEFER_SECONDS))
        raise jobs.JobDeferred(
            until,
            f"{len(deferred)} case(s) asked to retry after {wait:.0f} s; "
            f"resumes at {until:%Y-%m-%d %H:%M:%S} UTC",
        )
    writer = ResultWriter(run, done=run.progress_done)
    for case, later in deferred.items():
        writer.add(
            case,
            {
                "outcome": Outcome.ERRORED,
                "checks": [],
                "request": {},
                "response": {},
                "elapsed_ms": None,
                "correlation_id": later.correlation_id,
                "error": f"{later.message}; the run was already deferred {run.deferrals} "
                "time(s), so it gives up",
            },
        )
    writer.flush()


def baseline_for(interface_id: int):
    today = timezone.localdate()
    return KnownFinding.objects.filter(interface_id=interface_id).filter(
        Q(expires_on__isnull=True) | Q(expires_on__gte=today)
    )


@dataclass
class Step:
    """One request of a case with its expectations; a chained case has several."""

    name: str
    method: str
    path: str
    query: dict
    headers: dict
    body: object
    body_format: str
    body_text: str
    expected_statuses: list
    assertions: list
    extract: dict


STEP_KEYS = {f.name for f in fields(Step)}


def steps_of(case: TestCase) -> list[Step]:
    """The case's own request first, then its chained steps in order."""
    steps = [
        Step(
            name="request",
            method=case.method,
            path=case.path,
            query=case.query or {},
            headers=case.headers or {},
            body=case.body,
            body_format=case.body_format,
            body_text=case.body_text,
            expected_statuses=case.expected_statuses or [],
            assertions=case.assertions or [],
            extract=case.extract or {},
        )
    ]
    for index, step in enumerate(case.steps or [], start=2):
        if not isinstance(step, dict):
            continue  # refused when the case is saved
        steps.append(
            Step(
                name=str(step.get("name") or f"step {index}"),
                method=str(step.get("method") or "GET").upper(),
                path=str(step.get("path") or ""),
                query=step.get("query") or {},
                headers=step.get("headers") or {},
                body=step.get("body"),
                body_format=step.get("body_format") or BodyFormat.JSON,
                body_text=step.get("body_text") or "",
                expected_statuses=step.get("expected_statuses") or [],
                assertions=step.get("assertions") or [],
                extract=step.get("extract") or {},
            )
        )
    return steps


async def execute_case(case: TestCase, context: RunContext) -> dict:
    """Sends the case's steps in order and checks each answer; a step that does not pass
    ends the chain. Never raises, except RetryLater: failures become results."""
    correlation_id = uuid.UUID(int=random.getrandbits(128), version=4).hex
    variables = {"base_url": context.endpoint.base_url, **(case.variables or {})}
    steps = steps_of(case)
    chained = len(steps) > 1
    evidence: list[dict] = []
    all_checks: list[dict] = []
    outcome, error = Outcome.PASSED, ""
    for step in steps:
        done = await execute_step(case, step, variables, context, correlation_id)
        step_checks = apply_baseline(context.findings, case.pk, done.pop("checks"))
        extracted, problems = extract_variables(step.extract, done.pop("parsed"))
        step_checks += problems
        checks_as_dicts = [check.as_dict() for check in step_checks]
        if chained:
            for check in checks_as_dicts:
                check["step"] = step.name
        all_checks += checks_as_dicts
        if done["outcome"] == Outcome.PASSED and any(
            check.passed is False and not check.known_finding for check in step_checks
        ):
            done["outcome"] = Outcome.FAILED
        evidence.append({"name": step.name, **done})
        if done["outcome"] != Outcome.PASSED:
            outcome, error = done["outcome"], done["error"]
            break
        variables.update(extracted)
    for step in steps[len(evidence) :]:
        evidence.append({"name": step.name, "outcome": "not run"})
    if case.scripts.strip():
        all_checks.append(
            checks.CheckResult(
                POSTMAN_SCRIPTS, None, "imported scripts are kept as text and not executed"
            ).as_dict()
        )
    last = [step for step in evidence if step.get("outcome") != "not run"][-1]
    elapsed = [step["elapsed_ms"] for step in evidence if step.get("elapsed_ms") is not None]
    return {
        "outcome": outcome,
        "checks": all_checks,
        "request": last["request"],
        "response": last["response"],
        "elapsed_ms": round(sum(elapsed), 1) if elapsed else None,
        "correlation_id": correlation_id,
        "error": error,
        "steps": evidence if chained else [],
    }


POSTMAN_SCRIPTS = "Postman scripts"


async def execute_step(case, step: Step, variables: dict, context: RunContext, correlation_id: str):
    """One request: a dict with outcome, error, request, response, elapsed_ms, checks and the
    parsed body (for extract)."""
    endpoint, masker = context.endpoint, context.masker
    done = {
        "outcome": Outcome.ERRORED,
        "error": "",
        "request": {},
        "response": {},
        "elapsed_ms": None,
        "checks": [],
        "parsed": None,
    }
    try:
        path = checks.render(step.path, variables)
        query = checks.render(step.query, variables)
        headers = checks.render(step.headers, variables)
        if step.body_format == BodyFormat.JSON:
            payload = _json_bytes(checks.render(step.body, variables))
        else:
            payload = checks.render(step.body_text, variables).encode() or None
    except ValueError as exc:
        return {**done, "error": f"Variable problem: {exc}"}

    url = urljoin(endpoint.base_url, str(path).lstrip("/"))
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    if context.breaker.is_open:
        return {**done, "error": context.breaker.reason}
    try:
        if case.send_credentials and endpoint.auth_type == AuthType.OAUTH2_CLIENT_CREDENTIALS:
            # A cached token costs nothing; a fetch goes through the synchronous door.
            url, auth_headers = await asyncio.to_thread(
                authorised_request, endpoint, url, context.credentials
            )
        elif case.send_credentials:
            url, auth_headers = authorised_request(endpoint, url, context.credentials)
        else:
            auth_headers = dict(endpoint.default_headers or {})
    except (EndpointAuthError, egress.EgressError) as exc:
        return {**done, "error": f"Authentication failed: {exc}"}
    media = BODY_MEDIA_TYPES[step.body_format]
    request_headers = {**auth_headers, **headers, "Accept": ACCEPT[step.body_format]}
    if payload is not None and not any(name.lower() == "content-type" for name in headers):
        request_headers["Content-Type"] = media
    done["request"] = {
        "method": step.method,
        "url": masker.text(url),
        "headers": masker.headers(request_headers),
        "body": _evidence_request_body(step, payload, masker),
    }

    started = time.perf_counter()
    try:
        response, attempts = await send_with_retries(
            context.door,
            endpoint,
            step.method,
            url,
            headers=request_headers,
            body=payload,
            correlation_id=correlation_id,
        )
    except RetryLater:
        raise
    except egress.EgressError as exc:
        done["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
        context.breaker.record(unavailable=_is_unavailable(exc), what=exc.message)
        return {**done, "error": exc.message}
    context.breaker.record(
        unavailable=response.status in UNAVAILABLE_STATUSES, what=f"answered {response.status}"
    )
    done["request"]["attempts"] = attempts
    done["elapsed_ms"] = round(response.elapsed_ms, 1)
    if response.truncated:
        limit = settings.PONTIS_TEST_MAX_RESPONSE_BYTES
        done["response"] = {
            "status": response.status,
            "headers": masker.headers(response.headers),
            "body": None,
            "truncated": True,
        }
        return {
            **done,
            "error": f"the response body is larger than {limit / 1024 / 1024:g} MB "
            "(PONTIS_TEST_MAX_RESPONSE_BYTES), the most a case reads; it was not checked",
        }

    content_type = response.headers.get("content-type", "")
    parsed, parse_error = _parse_body(response.body, content_type)
    done["checks"] = run_checks(case, step, context, response, parsed, parse_error)
    done["response"] = {
        "status": response.status,
        "headers": masker.headers(response.headers),
        "body": _evidence_body(response.body, parsed, parse_error, masker),
        "truncated": response.truncated,
    }
    done["parsed"] = parsed
    done["outcome"] = Outcome.PASSED  # execute_case turns it into FAILED when a check failed
    return done


BODY_MEDIA_TYPES = {
    BodyFormat.JSON: "application/json",
    BodyFormat.XML: "application/xml; charset=utf-8",
    BodyFormat.TEXT: "text/plain; charset=utf-8",
}
ACCEPT = {
    BodyFormat.JSON: "application/json",
    BodyFormat.XML: "application/xml, text/xml;q=0.9",
    BodyFormat.TEXT: "*/*",
}


def _json_bytes(body) -> bytes | None:
    return None if body is None else json.dumps(body).encode()


def _evidence_request_body(step: Step, payload: bytes | None, masker: masking.Masker):
    if payload is None:
        return None
    if step.body_format == BodyFormat.JSON:
        return masker.json(json.loads(payload), payload.decode())
    return masker.text(payload.decode("utf-8", errors="replace"))


def extract_variables(extract: dict, parsed) -> tuple[dict, list]:
    """Variables for the later steps, read from a response body by JSONPath (or xpath:).
    A path that finds nothing is a failed check: the next step could not be built."""
    values, problems = {}, []
    for name, path in (extract or {}).items():
        probe = checks.evaluate_assertion({"path": path, "op": "exists"}, parsed, {})
        found = checks.first_value(path, parsed) if probe.passed else None
        if probe.passed and found is not None:
            values[name] = found
        else:
            problems.append(
                checks.CheckResult(f"extract {name}", False, f"{path} found nothing to extract")
            )
    return values, problems


UNAVAILABLE_STATUSES = (502, 503, 504)


def _is_unavailable(exc: egress.EgressError) -> bool:
    return isinstance(exc, egress.EgressConnectionError | egress.EgressTimeout)


class CircuitBreaker:
    """Stops calling an endpoint that keeps answering 503 (or not at all) within one run.

    After ``threshold`` cases in a row found the endpoint unavailable, even after their
    retries, the remaining cases are recorded as errored without a request.
    """

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.consecutive = 0
        self.reason = ""
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return bool(self.reason)

    def record(self, *, unavailable: bool, what: str) -> None:
        with self._lock:
            if not unavailable:
                self.consecutive = 0
                return
            self.consecutive += 1
            if self.threshold and self.consecutive >= self.threshold and not self.reason:
                self.reason = (
                    f"Not sent: the circuit opened after {self.consecutive} requests in a row "
                    f"found the endpoint unavailable (last: {what})"
                )


def apply_baseline(findings: list, case_id: int, results: list) -> list:
    """Marks failed checks that the interface's baseline accepts; a check with any
    violation the baseline does not cover stays a plain failure."""
    if not findings:
        return results
    marked = []
    for result in results:
        if result.passed is not False:
            marked.append(result)
            continue
        candidates = [
            finding
            for finding in findings
            if finding.case_id in (None, case_id)
            and (not finding.check_name or finding.check_name == result.name)
        ]
        texts = [
            detail.get("message", "") if isinstance(detail, dict) else str(detail)
            for detail in result.details
        ] or [result.message]
        covering = []
        for text in texts:
            match = next((f for f in candidates if not f.contains or f.contains in text), None)
            if match is None:
                break
            covering.append(match)
        if candidates and len(covering) == len(texts):
            finding = covering[0]
            marked.append(replace(result, known_finding=f"#{finding.pk}: {finding.reason}"))
        else:
            marked.append(result)
    return marked


RETRY_STATUSES = (429, 503)
BACKOFF_SECONDS = (0.5, 1.0, 2.0)  # before the 2nd, 3rd and 4th attempt
MAX_DEFER_SECONDS = 24 * 3600


class RetryLater(egress.EgressError):
    """The endpoint asked for a pause longer than a worker may sleep: the run is deferred."""

    def __init__(self, message: str, *, wait: float, correlation_id: str = ""):
        super().__init__(message, permanent=True)
        self.wait = wait
        self.correlation_id = correlation_id


async def send_with_retries(
    door: AsyncEgress, endpoint: Endpoint, method: str, url: str, *, headers, body, correlation_id
):
    """One request with bounded retries on connection errors (not timeouts), 429 and 503.

    ``Retry-After`` is honoured up to PONTIS_TEST_MAX_RETRY_AFTER seconds; a longer
    one raises RetryLater instead of holding the worker.
    Returns (response, attempts).
    """
    max_wait = settings.PONTIS_TEST_MAX_RETRY_AFTER
    for attempt in range(1, len(BACKOFF_SECONDS) + 2):
        if endpoint.rate_limit_per_second:
            await asyncio.sleep(
                egress.rate_limiter.reserve(
                    f"endpoint-{endpoint.pk}", endpoint.rate_limit_per_second
                )
            )
        last_try = attempt > len(BACKOFF_SECONDS)
        try:
            response = await door.request(
                method,
                url,
                headers=headers,
                body=body,
                read_timeout=endpoint.timeout_seconds,
                total_timeout=endpoint.timeout_seconds * 2,
                max_bytes=settings.PONTIS_TEST_MAX_RESPONSE_BYTES,
                correlation_id=correlation_id,
            )
        except egress.EgressError as exc:
            # Connection failures are retried; a timeout already cost the full wait once.
            if not isinstance(exc, egress.EgressConnectionError) or exc.permanent or last_try:
                raise
            await asyncio.sleep(BACKOFF_SECONDS[attempt - 1] * random.uniform(0.8, 1.2))
            continue
        if response.status not in RETRY_STATUSES or last_try:
            return response, attempt
        wait = response.retry_after
        if wait is not None and wait > max_wait:
            raise RetryLater(
                f"{response.status} with Retry-After {wait:.0f} s, longer than the "
                f"{max_wait:.0f} s a worker waits",
                wait=wait,
                correlation_id=correlation_id,
            )
        await asyncio.sleep(
            wait if wait is not None else BACKOFF_SECONDS[attempt - 1] * random.uniform(0.8, 1.2)
        )
    raise AssertionError("unreachable")


def _parse_body(body: bytes, content_type: str):
    """The body as JSON (or an XML root element for XML media), and a parse problem if any."""
    if not body:
        return None, ""
    if xml_bodies.is_xml_media(content_type):
        try:
            return xml_bodies.parse(body), ""
        except xml_bodies.XmlProblem as exc:
            return None, str(exc)
    if "json" not in content_type.lower():
        return None, f"the response is {content_type or 'without a content type'}, not JSON"
    try:
        return orjson.loads(body), ""
    except orjson.JSONDecodeError:
        pass  # what orjson refuses and json reads (NaN, integers beyond 64 bits), or an error
    try:
        return json.loads(body), ""
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the response body is not valid JSON ({exc})"


def _json_text(value) -> str:
    """JSON text as the JSONField column stores it; orjson, or json for what orjson
    refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _evidence_body(raw: bytes, parsed, parse_error: str, masker: masking.Masker):
    limit = settings.PONTIS_EVIDENCE_MAX_BODY_BYTES
    if isinstance(parsed, dict | list) and not parse_error and len(raw) <= limit:
        return masker.json(parsed, raw.decode("utf-8", errors="replace"))
    text = raw[:limit].decode("utf-8", errors="replace")
    return masker.text(text) + ("…[truncated]" if len(raw) > limit else "")


def run_checks(case: TestCase, step: Step, context: RunContext, response, parsed, parse_error):
    """The named checks of one response, in a fixed order."""
    spec, strict = context.spec, context.strict
    operation, template = None, ""
    if spec is not None and spec.kind.startswith("openapi"):
        found = context.operation(step.method, step_path(step, case))
        if found:
            template, operation = found
    status = response.status
    content_type = response.headers.get("content-type", "")
    results = [
        checks.check_status_code(operation, status, step.expected_statuses, strict=strict),
        checks.check_not_server_error(status),
    ]
    if operation is not None:
        document = spec.document
        results.append(
            checks.check_content_type(
                document, operation, status, content_type, has_body=bool(response.body)
            )
        )
        if case.validate_schema:
            if parse_error:
                results.append(
                    checks.CheckResult(
                        checks.RESPONSE_SCHEMA, False, f"the body could not be read: {parse_error}"
                    )
                )
            elif isinstance(parsed, xml_bodies.ET.Element):
                results.append(
                    checks.CheckResult(
                        checks.RESPONSE_SCHEMA,
                        None,
                        "an XML body is not checked against a JSON schema; use xpath: assertions",
                    )
                )
            else:
                results.append(
                    checks.check_response_schema(
                        document,
                        operation,
                        status,
                        content_type,
                        parsed,
                        openapi_version=spec.spec_version,
                        strict=strict,
                        cache_key=(spec.content_sha256, template, step.method),
                    )
                )
        results.append(
            checks.check_response_headers(
                document, operation, status, response.headers, openapi_version=spec.spec_version
            )
        )
    elif parse_error and (step.assertions or step.extract):
        results.append(checks.CheckResult(checks.CONTENT_TYPE, False, parse_error))

    if case.kind == TestKind.NEGATIVE:
        if case.send_credentials:
            results.append(checks.check_invalid_input_rejected(status))
        else:
            results.append(checks.check_no_credentials_rejected(status))
    if case.max_latency_ms:
        results.append(checks.check_max_latency(response.elapsed_ms, case.max_latency_ms))
    for assertion in step.assertions:
        results.append(checks.evaluate_assertion(assertion, parsed, response.headers))
    return results


def step_path(step: Step, case: TestCase) -> str:
    """The path of a step as the spec sees it: variables filled, relative to the base URL.
    Variables extracted from earlier responses are unknown here and stay placeholders,
    which the spec's path templates match."""
    try:
        path = str(checks.render(step.path, {"base_url": "", **(case.variables or {})}))
    except ValueError:
        path = step.path
    return "/" + path.lstrip("/")


def request_path(case: TestCase) -> str:
    """The path of the case's first request as the spec sees it."""
    return step_path(steps_of(case)[0], case)
