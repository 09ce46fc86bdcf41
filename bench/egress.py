"""What one request through the egress door costs: a micro-benchmark of ``egress.request``.

``python bench/egress.py`` starts a threaded HTTP/1.1 server on 127.0.0.1 in a process of its
own (so that it does not compete for this process' GIL), answering every ``GET`` with a 1 KB
body and keeping connections alive, then times 2,000 sequential GETs (after 100 untimed ones),
in 3 passes, through:

- urllib3 with one keep-alive connection: the floor of a synchronous client;
- ``egress.request`` as it is (a new connection per request, ``Connection: close``);
- ``egress.request(..., keep_alive=True)``: pooled connections;
- with ``--before PATH``, the same rows for another copy of ``apps/core/egress.py`` (for
  example the one before a change: ``git show HEAD:apps/core/egress.py > /tmp/egress_before.py``).

The egress log line is written at INFO to ``os.devnull`` through a formatter, as a deployment
with INFO logging pays for it. Django is not set up: the PONTIS_EGRESS_* defaults apply.
The table gives per-request microseconds: the median of the 3 pass means, and the best pass.
Not part of ``bench/run.py``: it writes no results file.
"""

import argparse
import http.server
import importlib.util
import inspect
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
BODY = b"x" * 1024
REQUESTS = 2000
WARM_UP = 100
PASSES = 3


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, sent at once: head and body in separate small writes
    # meet Nagle and delayed ACKs on a kept-alive connection (40 ms a request).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def serve() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def load_egress(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def log_at_info(module) -> None:
    logger = logging.getLogger(module.__name__)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def time_per_request(send) -> list[float]:
    """Microseconds per request of each pass."""
    for _ in range(WARM_UP):
        send()
    passes = []
    for _ in range(PASSES):
        started = time.perf_counter()
        for _ in range(REQUESTS):
            send()
        passes.append((time.perf_counter() - started) / REQUESTS * 1e6)
    return passes


def egress_sender(module, url: str, **options):
    def send():
        response = module.request("GET", url, allowlist=["127.0.0.1"], **options)
        assert response.status == 200 and response.body == BODY, response

    return send


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another copy of apps/core/egress.py to time")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0

    sys.path.insert(0, str(REPO_DIR))
    import urllib3

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/small/1"
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)

        def urllib3_send():
            response = pool.request("GET", "/small/1")
            assert response.status == 200 and response.data == BODY

        from apps.core import egress

        modules = [("now", egress)]
        if args.before:
            modules.insert(0, ("before", load_egress(args.before, "egress_before")))
        rows = [("urllib3, one keep-alive connection (floor)", time_per_request(urllib3_send))]
        for label, module in modules:
            log_at_info(module)
            rows.append(
                (
                    f"egress {label}, new connection each",
                    time_per_request(egress_sender(module, url)),
                )
            )
            if "keep_alive" in inspect.signature(module.request).parameters:
                rows.append(
                    (
                        f"egress {label}, keep_alive=True",
                        time_per_request(egress_sender(module, url, keep_alive=True)),
                    )
                )
    finally:
        server.terminate()
        server.wait()

    print(f"{REQUESTS:,} sequential GETs of a {len(BODY)} B body, 127.0.0.1, {PASSES} passes")
    print(f"{'':46} {'µs/request':>10} {'best':>8} {'vs floor':>9}")
    floor = statistics.median(rows[0][1])
    for label, passes in rows:
        median = statistics.median(passes)
        print(f"{label:46} {median:10.0f} {min(passes):8.0f} {median / floor:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
