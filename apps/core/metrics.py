"""Prometheus metrics for /metrics."""

import time

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "pontis_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "pontis_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS_FINISHED = Counter("pontis_jobs_finished_total", "Jobs finished", ["job", "status"])
JOBS_REAPED = Counter("pontis_jobs_reaped_total", "Stale jobs reaped", ["job", "outcome"])


def observe_request(method: str, route: str, status: int, started: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(time.perf_counter() - started)
