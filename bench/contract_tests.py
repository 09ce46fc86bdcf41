"""Contract-test benchmark: how many contract cases Pontis runs per second, next to the floors.

1. Starts the benchmark API (``contract_server.py``) in a process of its own on 127.0.0.1: about
   1 KB of JSON at ``/small/{id}``, about 50 KB at ``/large/{id}``, both described by an OpenAPI
   3.1 document (nested objects, additionalProperties false, a pattern, an enum, an array, a
   date-time format).
2. Seeds a throwaway database (SQLite in a temporary ``PONTIS_VAR_DIR``, or the PostgreSQL
   database of ``common.prepare_database``): an environment whose egress allowlist permits
   127.0.0.1, one interface per body size with the document uploaded as its spec and a bearer-
   token endpoint at the server, and ``PONTIS_BENCH_CASES`` (default 5,000) test cases each.
3. Measures, in 3 passes, for each body size:
   - Pontis, 1 worker: ``jobs.execute(TestRun, …, runner.run_suite)`` in this process over all
     the cases (request through egress, checks with schema validation, masked evidence stored);
   - Pontis, 2 workers: the cases split in two runs (by tag) executed by two processes at once;
   - the floors, on the same requests: aiohttp with 16 requests in flight (raw; then with
     jsonschema-rs validation; then with pure-Python jsonschema, on fewer requests), and one
     synchronous urllib3 client with keep-alive, one request after the other;
   - Schemathesis (``schemathesis run`` against ``/openapi.json``, one operation, a fixed number
     of examples and seed): checks per second, counted from its NDJSON event report.
   A figure is the median of the 3 passes, next to its anchor measured in the same run.
4. Watches the server's CPU time during every measurement: a share near 1.0 (one core) would
   mean the server, not the client, set the pace.

``python bench/contract_tests.py --profile cprofile`` instead profiles one Pontis run of 1,000
small cases (``--size large`` for 50 KB bodies, ``PONTIS_BENCH_PROFILE_CASES`` for another
count; cProfile in the run's thread and in the thread of its event loop) and prints where the
time goes; ``--profile plain`` runs the same without a profiler, for a sampling profiler
(py-spy) outside.

Run it with ``make bench`` (all benchmarks), ``.venv/bin/python bench/run.py contract_tests`` or
``.venv/bin/python bench/contract_tests.py``. It writes ``bench/results/contract_tests.json``.
"""

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import common
import contract_server

CASES = int(os.environ.get("PONTIS_BENCH_CASES", "5000"))
PASSES = 3
SIZES = {"small": "1 KB", "large": "50 KB"}
SCHEMA_OF = {"small": "Order", "large": "OrderPage"}
CONCURRENCY = 16  # requests in flight for the aiohttp floors
# Pure-Python jsonschema is slow on 50 KB bodies (~100/s): a context figure on fewer requests.
PURE_PYTHON_REQUESTS = {"small": 1000, "large": 200}
SCHEMATHESIS_EXAMPLES = int(os.environ.get("PONTIS_BENCH_SCHEMATHESIS_EXAMPLES", "500"))
SCHEMATHESIS_SEED = 1
WARMUP_CASES = 50
PROFILE_CASES = int(os.environ.get("PONTIS_BENCH_PROFILE_CASES", "1000"))
WORKER_TAGS = ("worker-1", "worker-2")  # the 2-worker measurement runs one tag per process
BEARER_TOKEN = "bench-contract-token-7d1f0c2a9e"  # noqa: S105 - a dummy credential, masked in evidence

# Goals from the issue: Pontis cases/s as a share of the aiohttp raw floor on the same bodies;
# more than 10x Schemathesis' checks/s; a second worker process raises throughput.
FLOOR_GOALS = {"small": 0.40, "large": 0.15}
SCHEMATHESIS_GOAL = 10.0
SECOND_WORKER_GOAL = 1.0

SERVER_SCRIPT = Path(__file__).resolve().with_name("contract_server.py")


# ---------------------------------------------------------------- the server


class ApiServer:
    """The benchmark API in a process of its own; its CPU time tells whether it kept up."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = _read_line(self.process.stdout, timeout=30)
        found = re.match(r"listening on (\d+)", line or "")
        if not found:
            self.stop()
            raise common.BenchError(f"the benchmark API did not start (it said {line!r})")
        self.port = int(found.group(1))
        self.banner = line.strip()
        self.base_url = f"http://127.0.0.1:{self.port}/"

    def cpu_seconds(self) -> float | None:
        """CPU time of the server process so far (Linux /proc), else None.

        From ``schedstat`` (nanoseconds, every thread), else from ``stat`` (clock ticks).
        """
        proc = Path(f"/proc/{self.process.pid}")
        try:
            return sum(
                int((task / "schedstat").read_text().split()[0]) / 1e9
                for task in (proc / "task").iterdir()
            )
        except (OSError, ValueError, IndexError):
            pass
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _read_line(stream, timeout: float) -> str | None:
    """One line from a child's stdout, or None after ``timeout`` seconds."""
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


# ---------------------------------------------------------------- samples


@dataclass
class Sample:
    """One timed measurement: ``count`` cases, requests or checks in ``seconds``."""

    count: int
    seconds: float
    server_cpu_seconds: float | None
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def server_share(self) -> float | None:
        """Server CPU seconds per second of the measurement (1.0 = one core busy all along)."""
        if self.server_cpu_seconds is None:
            return None
        return self.server_cpu_seconds / self.seconds


class Stopwatch:
    """Wall time and the server's CPU time between ``start()`` and ``stop()``."""

    def __init__(self, server: ApiServer):
        self.server = server

    def start(self) -> None:
        self.cpu = self.server.cpu_seconds()
        self.started = time.perf_counter()

    def stop(self, count: int, **extra) -> Sample:
        seconds = time.perf_counter() - self.started
        cpu = self.server.cpu_seconds()
        used = None if cpu is None or self.cpu is None else cpu - self.cpu
        return Sample(count=count, seconds=seconds, server_cpu_seconds=used, extra=extra)


def request_paths(size: str, count: int) -> list[str]:
    """The same paths the test cases ask for: ``/small/1``…"""
    return [f"/{size}/{number}" for number in range(1, count + 1)]


# ---------------------------------------------------------------- floors


def body_validator(size: str, backend: str):
    """A function telling whether a body conforms to its schema (jsonschema-rs or pure Python)."""
    document = contract_server.spec_document()
    schema = {
        "$ref": f"#/components/schemas/{SCHEMA_OF[size]}",
        "components": document["components"],
    }
    if backend == "rs":
        import jsonschema_rs

        validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    else:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return lambda body: validator.is_valid(json.loads(body))


def aiohttp_floor(server: ApiServer, paths: list[str], conforms=None) -> Sample:
    """The paths through one aiohttp session, ``CONCURRENCY`` in flight, keep-alive; each body
    read (and, with ``conforms``, parsed and validated in the event loop)."""
    return asyncio.run(_aiohttp_requests(server, paths, conforms))


async def _aiohttp_requests(server: ApiServer, paths: list[str], conforms) -> Sample:
    import aiohttp

    pending = iter(paths)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(server.base_url, connector=connector) as session:

        async def client() -> int:
            done = 0
            for path in pending:  # shared: each coroutine takes the next path
                async with session.get(path) as response:
                    body = await response.read()
                if response.status != 200:
                    raise common.BenchError(f"aiohttp GET {path}: HTTP {response.status}")
                if conforms is not None and not conforms(body):
                    raise common.BenchError(f"aiohttp GET {path}: the body does not conform")
                done += 1
            return done

        await session.get("/openapi.json")  # one connection up before the clock starts
        watch = Stopwatch(server)
        watch.start()
        counts = await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return watch.stop(sum(counts))


def sync_floor(server: ApiServer, paths: list[str]) -> Sample:
    """The paths one after the other through one urllib3 connection (keep-alive)."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1, block=True)
    pool.request("GET", "/openapi.json")
    watch = Stopwatch(server)
    watch.start()
    for path in paths:
        response = pool.request("GET", path)
        if response.status != 200 or not response.data:
            raise common.BenchError(f"urllib3 GET {path}: HTTP {response.status}")
    sample = watch.stop(len(paths))
    pool.close()
    return sample


def schemathesis_pass(server: ApiServer, size: str, workdir: Path) -> Sample:
    """``schemathesis run`` on one operation; checks per second of its own running time.

    The count is every check result in its NDJSON event report; the time is the
    ``running_time`` of its JSON report (the CLI's start-up is left out, in its favour).
    """
    executable = Path(sys.executable).with_name("schemathesis")
    if not executable.exists():
        raise common.BenchError(
            f"Schemathesis is not installed in {Path(sys.executable).parent}; "
            "`make bench` installs requirements-bench.txt"
        )
    workdir.mkdir(parents=True)
    events, report = workdir / "events.ndjson", workdir / "report.json"
    command = [
        str(executable),
        "run",
        f"{server.base_url}openapi.json",
        "--include-path",
        f"/{size}/{{id}}",
        "--max-examples",
        str(SCHEMATHESIS_EXAMPLES),
        "--seed",
        str(SCHEMATHESIS_SEED),
        "--report",
        "ndjson,json",
        "--report-ndjson-path",
        str(events),
        "--report-json-path",
        str(report),
    ]
    watch = Stopwatch(server)
    watch.start()
    completed = subprocess.run(
        command,
        cwd=workdir,  # its .hypothesis and .schemathesis folders go there
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    whole = watch.stop(0)
    if completed.returncode != 0 or not report.exists():
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-15:])
        raise common.BenchError(f"schemathesis exited {completed.returncode}:\n{tail}")
    checks = cases = requests = 0
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished.get("recorder", {})
        checks += sum(len(results) for results in recorder.get("checks", {}).values())
        cases += len(recorder.get("cases", {}))
        requests += len(recorder.get("interactions", {}))
    summary = json.loads(report.read_text())
    if checks == 0 or summary["test_cases"]["with_failures"]:
        raise common.BenchError(
            f"schemathesis on /{size}: {checks} checks, "
            f"{summary['test_cases']['with_failures']} test cases with failures"
        )
    return Sample(
        count=checks,
        seconds=summary["running_time"],
        server_cpu_seconds=whole.server_cpu_seconds,
        extra={
            "test_cases": cases,
            "requests": requests,
            "process_seconds": round(whole.seconds, 2),
            "command": " ".join(["schemathesis", *command[1:9]]),  # less the report options
        },
    )


# ---------------------------------------------------------------- Pontis


@dataclass
class Dataset:
    """What was seeded: one interface per body size, ``CASES`` test cases each."""

    environment: object
    interfaces: dict  # size -> Interface
    case_ids: dict  # size -> the ids of its cases, in name order
    seed_seconds: float


def quiet_logging(log_file: Path) -> None:
    """Sends the console log (egress logs every request at INFO) to a file, not the terminal.

    The records are still formatted and written, as a worker's would be.
    """
    import logging

    stream = log_file.open("a")
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(stream)


def seed(server: ApiServer) -> Dataset:
    """The environment, the two interfaces with spec and endpoint, and their test cases."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import Role, Team, User
    from apps.catalog import services as catalog_services
    from apps.catalog.models import (
        AuthType,
        Endpoint,
        Environment,
        Interface,
        Pattern,
        Platform,
        System,
        SystemKind,
    )
    from apps.testing import services as testing_services
    from apps.testing.models import TestCase

    if Interface.objects.exists():
        raise common.BenchError("the database already holds interfaces; it must be empty")
    started = time.perf_counter()
    team = Team.objects.create(name="Bench", slug="bench")
    user = User.objects.create(username="bench", role=Role.ENGINEER, password=make_password(None))
    user.teams.add(team)
    environment = Environment.objects.create(
        name="Bench", slug="bench", position=1, egress_allowlist=["127.0.0.1"]
    )
    source = System.objects.create(name="Bench client", kind=SystemKind.SAAS, owner_team=team)
    target = System.objects.create(name="Bench API", kind=SystemKind.PARTNER, owner_team=team)
    document = json.dumps(contract_server.spec_document(), indent=2)
    interfaces, case_ids = {}, {}
    for number, size in enumerate(SIZES, start=1):
        interface = Interface.objects.create(
            code=f"BEN-{number:03d}",
            name=f"Orders ({SIZES[size]} bodies)",
            source_system=source,
            target_system=target,
            pattern=Pattern.values[0],
            platform=Platform.values[0],
            owner_team=team,
        )
        catalog_services.upload_spec(user, interface, document, filename="openapi.json")
        endpoint = Endpoint(
            interface=interface,
            environment=environment,
            base_url=server.base_url,
            auth_type=AuthType.BEARER,
        )
        catalog_services.save_endpoint(user, endpoint, {"token": BEARER_TOKEN})
        TestCase.objects.bulk_create(
            (
                TestCase(
                    interface=interface,
                    name=f"{size} order {n:05d}",
                    path=f"{size}/{n}",
                    tags=[WORKER_TAGS[n % 2]],
                )
                for n in range(1, CASES + 1)
            ),
            batch_size=1000,
        )
        cases = TestCase.objects.filter(interface=interface).order_by("name")
        testing_services.validate_case(cases.first())  # the path is an operation of the spec
        interfaces[size] = interface
        case_ids[size] = list(cases.values_list("pk", flat=True))
    return Dataset(environment, interfaces, case_ids, time.perf_counter() - started)


def new_run(dataset: Dataset, size: str, *, tag: str = "", case_ids=()):
    from apps.testing.models import TestRun

    return TestRun.objects.create(
        interface=dataset.interfaces[size],
        environment=dataset.environment,
        tag=tag,
        case_ids=list(case_ids),
    )


def check_run(run_id: int, expected: int) -> dict:
    """Refuses a run that is not what is measured: every case passed, its evidence masked."""
    from apps.core.models import JobStatus
    from apps.testing.models import TestRun

    run = TestRun.objects.get(pk=run_id)
    where = f"run #{run.pk} ({run.interface.code}, tag {run.tag or '-'})"
    if run.status != JobStatus.SUCCEEDED or (run.passed, run.failed, run.errored) != (
        expected,
        0,
        0,
    ):
        first = run.results.exclude(outcome="passed").first()
        why = (
            f"; first not passed: {first.case_name}: {first.error or first.checks}" if first else ""
        )
        raise common.BenchError(
            f"{where}: {run.status}, {run.passed} passed, {run.failed} failed, {run.errored} "
            f"errored of {expected} cases ({run.error}){why}"
        )
    result = run.results.order_by("pk").first()
    checks = {check["name"]: check["passed"] for check in result.checks}
    evidence = json.dumps([result.request, result.response])
    problems = []
    if checks.get("response schema conforms") is not True:
        problems.append(f"the schema was not validated ({checks})")
    if result.request["headers"].get("Authorization") != "Bearer [masked]":
        problems.append("the Authorization header is not masked")
    if BEARER_TOKEN in evidence:
        problems.append("the bearer token is in the evidence")
    if "[masked]@example.com" not in evidence or "buyer" in evidence:
        problems.append("the e-mail addresses in the body are not masked")
    if problems:
        raise common.BenchError(f"{where}, result {result.case_name}: {'; '.join(problems)}")
    return {"checks_per_case": len(result.checks), "evidence_bytes": len(evidence)}


def drop_run(run_id: int) -> None:
    """Deletes a measured run and its results, so the database does not grow pass after pass.

    Raw SQL for the results: the ORM's cascade would first load every result (50 KB bodies).
    """
    from django.db import connection

    from apps.testing.models import TestResult, TestRun

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TestResult._meta.db_table} WHERE run_id = %s", [run_id])  # noqa: S608
    TestRun.objects.filter(pk=run_id).delete()


def pontis_one_worker(server: ApiServer, dataset: Dataset, size: str) -> Sample:
    """Every case of the size in one run, executed in this process as a Celery worker would."""
    from apps.core import jobs
    from apps.testing import runner
    from apps.testing.models import TestRun

    run = new_run(dataset, size)
    watch = Stopwatch(server)
    watch.start()
    outcome = jobs.execute(TestRun, run.pk, runner.run_suite)
    sample = watch.stop(CASES, outcome=outcome)
    sample.extra.update(check_run(run.pk, CASES))
    drop_run(run.pk)
    return sample


def pontis_two_workers(server: ApiServer, dataset: Dataset, size: str, log_file: Path) -> Sample:
    """The cases in two runs (one per tag), executed by two worker processes at the same time.

    The clock starts once both processes have set Django up and stops when both are done.
    """
    runs = [new_run(dataset, size, tag=tag) for tag in WORKER_TAGS]
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    messages = context.Queue()
    processes = [
        context.Process(target=worker_process, args=(run.pk, str(log_file), start, messages))
        for run in runs
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            _expect(messages, "ready", timeout=120)
        watch = Stopwatch(server)
        watch.start()
        start.set()
        outcomes = [_expect(messages, "done", timeout=1800)[2] for _ in processes]
        sample = watch.stop(CASES, outcomes=outcomes)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    expected = dict.fromkeys(WORKER_TAGS, 0)
    for number in range(1, CASES + 1):
        expected[WORKER_TAGS[number % 2]] += 1
    for run in runs:
        sample.extra.update(check_run(run.pk, expected[run.tag]))
        drop_run(run.pk)
    return sample


def _expect(messages, kind: str, timeout: float) -> tuple:
    try:
        message = messages.get(timeout=timeout)
    except queue.Empty:
        raise common.BenchError(f"a worker process sent no {kind!r} within {timeout:.0f} s")
    if message[0] != kind:
        raise common.BenchError(f"a worker process failed: {message}")
    return message


def worker_process(run_id: int, log_file: str, start, messages) -> None:
    """A second-process worker: Django set up, then one run executed when ``start`` is set."""
    try:
        import django

        if str(common.REPO_DIR) not in sys.path:
            sys.path.insert(0, str(common.REPO_DIR))
        django.setup()
        quiet_logging(Path(log_file))
        from apps.core import jobs
        from apps.testing import runner
        from apps.testing.models import TestRun

        messages.put(("ready", run_id))
        start.wait()
        outcome = jobs.execute(TestRun, run_id, runner.run_suite)
        messages.put(("done", run_id, outcome))
    except BaseException as exc:
        messages.put(("error", run_id, f"{type(exc).__name__}: {exc}"))
        raise


def warm_up(dataset: Dataset) -> None:
    """A short untimed run per size: imports, validator compilation, connections."""
    from apps.core import jobs
    from apps.testing import runner
    from apps.testing.models import TestRun

    for size in SIZES:
        run = new_run(dataset, size, case_ids=dataset.case_ids[size][:WARMUP_CASES])
        jobs.execute(TestRun, run.pk, runner.run_suite)
        check_run(run.pk, min(WARMUP_CASES, CASES))
        drop_run(run.pk)


# ---------------------------------------------------------------- the run


MEASURES = [  # key, label, unit
    ("pontis_1", "Pontis, 1 worker", "cases/s"),
    ("pontis_2", "Pontis, 2 worker processes", "cases/s"),
    ("aiohttp_raw", f"aiohttp, {CONCURRENCY} in flight, raw", "requests/s"),
    ("aiohttp_rs", f"aiohttp, {CONCURRENCY} in flight + jsonschema-rs", "requests/s"),
    ("aiohttp_py", f"aiohttp, {CONCURRENCY} in flight + jsonschema (pure Python)", "requests/s"),
    ("sync", "one synchronous client (urllib3, keep-alive)", "requests/s"),
    ("schemathesis", "Schemathesis", "checks/s"),
]


def measure(server: ApiServer, dataset: Dataset, work_dir: Path) -> dict:
    """Every measure of every size, in ``PASSES`` passes: {size: {key: [Sample, …]}}."""
    validators = {
        (size, backend): body_validator(size, backend) for size in SIZES for backend in ("rs", "py")
    }
    samples = {size: {key: [] for key, _, _ in MEASURES} for size in SIZES}
    log_file = work_dir / "workers.log"
    for number in range(1, PASSES + 1):
        for size in SIZES:
            print(f"Pass {number} of {PASSES}, {SIZES[size]} bodies…", flush=True)
            paths = request_paths(size, CASES)
            taken = samples[size]
            taken["aiohttp_raw"].append(aiohttp_floor(server, paths))
            taken["aiohttp_rs"].append(aiohttp_floor(server, paths, validators[(size, "rs")]))
            pure = paths[: min(CASES, PURE_PYTHON_REQUESTS[size])]
            taken["aiohttp_py"].append(aiohttp_floor(server, pure, validators[(size, "py")]))
            taken["sync"].append(sync_floor(server, paths))
            taken["pontis_1"].append(pontis_one_worker(server, dataset, size))
            taken["pontis_2"].append(pontis_two_workers(server, dataset, size, log_file))
            taken["schemathesis"].append(
                schemathesis_pass(server, size, work_dir / f"schemathesis-{size}-{number}")
            )
            print(
                "  "
                + ", ".join(
                    f"{key} {taken[key][-1].rate:,.0f}/s" for key, _, _ in MEASURES if taken[key]
                ),
                flush=True,
            )
    return samples


def median_of(samples: list[Sample]) -> dict:
    rates = [sample.rate for sample in samples]
    shares = [sample.server_share for sample in samples if sample.server_share is not None]
    ceilings = [
        sample.count / sample.server_cpu_seconds for sample in samples if sample.server_cpu_seconds
    ]
    return {
        "median": statistics.median(rates),
        "pass_values": [round(rate, 1) for rate in rates],
        "count_per_pass": samples[0].count,
        "server_cpu_share": round(statistics.median(shares), 3) if shares else None,
        "server_ceiling": statistics.median(ceilings) if ceilings else None,
    }


def build_figures(samples: dict) -> list[dict]:
    """One figure per measure and size, each next to its anchor from the same run, and one
    comparing Pontis with Schemathesis."""
    figures = []
    for size, label in SIZES.items():
        taken = {key: median_of(samples[size][key]) for key, _, _ in MEASURES}
        raw = taken["aiohttp_raw"]["median"]
        raw_name = f"aiohttp raw floor, {CONCURRENCY} in flight [{label}], same run"
        anchors = {  # key -> (anchor text, anchor value, goal ratio, goal kind)
            "pontis_1": (raw_name, raw, FLOOR_GOALS[size], "at least"),
            "pontis_2": (
                f"Pontis, 1 worker [{label}], same run",
                taken["pontis_1"]["median"],
                SECOND_WORKER_GOAL,
                "over",
            ),
            "aiohttp_raw": (
                "the server's ceiling: requests per CPU-second of the server process during "
                "this measurement",
                taken["aiohttp_raw"]["server_ceiling"],
                None,
                None,
            ),
            "aiohttp_rs": (raw_name, raw, None, None),
            "aiohttp_py": (raw_name, raw, None, None),
            "sync": (raw_name, raw, None, None),
            "schemathesis": (raw_name, raw, None, None),
        }
        for key, name, unit in MEASURES:
            anchor, anchor_value, goal, goal_kind = anchors[key]
            figure = _figure(
                f"{name} [{label}]", unit, taken[key], anchor, anchor_value, goal, goal_kind
            )
            extra = samples[size][key][0].extra
            if key.startswith("pontis"):
                figure["checks_per_case"] = extra["checks_per_case"]
                figure["evidence_bytes_per_case"] = extra["evidence_bytes"]
            if key == "schemathesis":
                figure.update(
                    {
                        "test_cases_per_second": round(
                            statistics.median(
                                sample.extra["test_cases"] / sample.seconds
                                for sample in samples[size][key]
                            ),
                            1,
                        ),
                        "test_cases_per_pass": extra["test_cases"],
                        "requests_per_pass": extra["requests"],
                        "examples": SCHEMATHESIS_EXAMPLES,
                        "seed": SCHEMATHESIS_SEED,
                        "time": "Schemathesis' own running_time (its start-up left out)",
                        "command": extra["command"],
                    }
                )
            figures.append(figure)
        figures.append(
            _figure(
                f"Pontis, 1 worker [{label}], against Schemathesis",
                "cases/s",
                taken["pontis_1"],
                f"Schemathesis checks/s [{label}], same run",
                taken["schemathesis"]["median"],
                SCHEMATHESIS_GOAL,
                "over",
            )
        )
        # The same comparison in Schemathesis' own unit: every case runs several named checks.
        per_case = samples[size]["pontis_1"][0].extra["checks_per_case"]
        pontis_checks = {
            **taken["pontis_1"],
            "median": taken["pontis_1"]["median"] * per_case,
            "pass_values": [round(rate * per_case, 1) for rate in taken["pontis_1"]["pass_values"]],
        }
        figures.append(
            _figure(
                f"Pontis, 1 worker [{label}], checks against Schemathesis",
                "checks/s",
                pontis_checks,
                f"Schemathesis checks/s [{label}], same run",
                taken["schemathesis"]["median"],
                SCHEMATHESIS_GOAL,
                "over",
            )
        )
    return figures


def _figure(metric, unit, figure, anchor, anchor_value, goal, goal_kind) -> dict:
    value = figure["median"]
    ratio = value / anchor_value if anchor_value else None
    result = {
        "metric": metric,
        "unit": unit,
        "value": round(value, 1),
        "anchor": anchor,
        "anchor_value": round(anchor_value, 1) if anchor_value is not None else None,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "pass_values": figure["pass_values"],
        "count_per_pass": figure["count_per_pass"],
        "server_cpu_share": figure["server_cpu_share"],
    }
    if goal is not None:
        result["goal"] = f"ratio {'>=' if goal_kind == 'at least' else '>'} {goal:g}"
        met = ratio is not None and (ratio >= goal if goal_kind == "at least" else ratio > goal)
        result["meets_goal"] = met
    return result


def _row(figure: dict) -> list[str]:
    ratio = figure["ratio"]
    goal = figure.get("goal", "")
    if goal and not figure["meets_goal"]:
        goal += " MISS"
    share = figure["server_cpu_share"]
    return [
        figure["metric"],
        f"{figure['value']:,.0f}",
        figure["unit"],
        f"{figure['anchor_value']:,.0f}" if figure["anchor_value"] is not None else "-",
        f"{ratio:.2f}" if ratio is not None else "-",
        goal,
        f"{share:.2f}" if share is not None else "-",
    ]


def results_document(database, notes, dataset: Dataset, banner: str, figures) -> dict:
    from django.conf import settings

    return {
        "benchmark": "contract_tests",
        "machine": common.machine_info(),
        "database": database.description,
        "notes": notes,
        "dataset": {
            "cases_per_size": CASES,
            "sizes": SIZES,
            "server": banner,
            "seed_seconds": round(dataset.seed_seconds, 2),
        },
        "method": {
            "passes": PASSES,
            "value": "median of the per-pass rates",
            "pontis_1": "jobs.execute(TestRun, id, runner.run_suite) in the benchmark process "
            f"(PONTIS_TEST_CONCURRENCY={settings.PONTIS_TEST_CONCURRENCY} cases in flight on the "
            "run's event loop, results written in batches by the run's thread); timed from "
            "claim to finish, results checked afterwards (all passed, evidence masked)",
            "pontis_2": "the same cases in two runs (by tag), one per spawned worker process, "
            "started together once both had set Django up; wall time until both finished",
            "floors": "the same GET requests with no validation or storage: aiohttp "
            f"{CONCURRENCY} in flight over keep-alive connections, and urllib3 with one "
            "keep-alive connection, sequential; +jsonschema-rs / +jsonschema parse and validate "
            "each body in the event loop; pure Python on "
            f"{PURE_PYTHON_REQUESTS['small']} / {PURE_PYTHON_REQUESTS['large']} requests only",
            "schemathesis": f"schemathesis run --include-path /<size>/{{id}} --max-examples "
            f"{SCHEMATHESIS_EXAMPLES} --seed {SCHEMATHESIS_SEED}, default checks and phases; "
            "checks counted from its NDJSON report, time from its JSON report",
            "server_cpu_share": "server process CPU seconds per wall second during the "
            "measurement (median of the passes); near 1.0 the server would be the bottleneck",
        },
        "figures": figures,
    }


def print_report(dataset: Dataset, banner: str, figures: list[dict]) -> None:
    print()
    print(
        f"{CASES:,} cases per body size, {PASSES} passes, medians; server: {banner}; "
        f"seeded in {dataset.seed_seconds:.1f} s."
    )
    print()
    headers = ["figure", "value", "unit", "anchor", "ratio", "goal", "server cpu"]
    print(common.format_table(headers, [_row(figure) for figure in figures]))
    print()
    missed = [figure for figure in figures if figure.get("meets_goal") is False]
    if missed:
        print(f"{len(missed)} goal(s) missed:")
        for figure in missed:
            print(f"  {figure['metric']}: ratio {figure['ratio']} ({figure['goal']})")
    else:
        print("Every goal is met.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=list(SIZES),
        default="small",
        help="the body size of the --profile run (default small)",
    )
    parser.add_argument(
        "--profile",
        choices=["cprofile", "plain"],
        help=f"instead of benchmarking, one Pontis run of {PROFILE_CASES:,} small cases: under "
        "cProfile (the run's thread and its event loop's), or plain, for an outside sampler "
        "such as py-spy",
    )
    arguments = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="pontis-bench-contract-"))
    server = database = None
    try:
        database = common.prepare_database(work_dir / "var")
        notes = [f"Database: {database.description}.", *common.setup_django()]
        notes.append(
            f"Console logging goes to {work_dir / 'pontis.log'} (egress logs every request)."
        )
        quiet_logging(work_dir / "pontis.log")
        for note in notes:
            print(note)
        server = ApiServer()
        print(f"Benchmark API: {server.banner}, at {server.base_url}")
        if arguments.profile:
            return profile(
                server, with_cprofile=arguments.profile == "cprofile", size=arguments.size
            )
        dataset = seed(server)
        print(f"Seeded {CASES:,} cases per body size in {dataset.seed_seconds:.1f} s.")
        warm_up(dataset)
        samples = measure(server, dataset, work_dir)
        figures = build_figures(samples)
        document = results_document(database, notes, dataset, server.banner, figures)
        path = common.write_results("contract_tests", document)
        print_report(dataset, server.banner, figures)
        print(f"\nResults written to {path.relative_to(common.REPO_DIR)}")
        return 0
    except common.BenchError as exc:
        print(f"contract_tests benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            database.finish()
        shutil.rmtree(work_dir, ignore_errors=True)


# ---------------------------------------------------------------- profile


def profile(server: ApiServer, *, with_cprofile: bool, size: str = "small") -> int:
    """One run of ``PROFILE_CASES`` cases of one size; with cProfile in the run's thread and in
    the thread of its event loop, printing the functions that take the most time in each.

    ``with_cprofile=False`` runs the same without a profiler, for a sampling profiler outside
    (``py-spy record --gil … -- python bench/contract_tests.py --profile plain``).
    """
    global CASES
    from apps.core import jobs
    from apps.testing import runner
    from apps.testing.models import TestRun

    CASES = max(CASES, PROFILE_CASES + WARMUP_CASES)
    dataset = seed(server)
    warm_up(dataset)
    run = new_run(dataset, size, case_ids=dataset.case_ids[size][-PROFILE_CASES:])
    if not with_cprofile:
        watch = Stopwatch(server)
        watch.start()
        jobs.execute(TestRun, run.pk, runner.run_suite)
        sample = watch.stop(PROFILE_CASES)
        check_run(run.pk, PROFILE_CASES)
        print(f"\n{PROFILE_CASES:,} {size} cases in {sample.seconds:.2f} s ({sample.rate:,.0f}/s).")
        return 0

    # cProfile only sees the thread that enables it: one for the run's thread, one for the
    # thread whose event loop sends the cases.
    sender = cProfile.Profile()
    original = runner.SuiteSender._run

    def profiled_run(self):
        sender.enable()
        try:
            return original(self)
        finally:
            sender.disable()

    runner.SuiteSender._run = profiled_run
    writer = cProfile.Profile()
    try:
        started = time.perf_counter()
        writer.enable()
        jobs.execute(TestRun, run.pk, runner.run_suite)
        writer.disable()
        seconds = time.perf_counter() - started
    finally:
        runner.SuiteSender._run = original
    check_run(run.pk, PROFILE_CASES)
    print(
        f"\n{PROFILE_CASES:,} {size} cases in {seconds:.2f} s ({PROFILE_CASES / seconds:,.0f} "
        "cases/s) under cProfile, which slows Python calls down: compare shares, not times."
    )
    for title, profiles in (
        ("The run's thread (run_suite: selecting cases, recording results, heartbeats)", [writer]),
        ("The sending thread (the event loop: requests, checks, masking)", [sender]),
    ):
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            stats = pstats.Stats(*profiles, stream=text)
            stats.strip_dirs().sort_stats(order).print_stats(30)
            print(f"\n== {title}, by {order}\n")
            print(text.getvalue().split("\n", 4)[-1].rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
