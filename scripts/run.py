"""Serves the portal with a Celery worker and beat beside it; Ctrl-C stops all three.

Used by `make run`. Each process gets its own process group so one Ctrl-C reaches
this supervisor only, which then stops the children in order and waits for them.
"""

import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)
HOST = os.environ.get("PONTIS_HOST", "127.0.0.1")
PORT = os.environ.get("PONTIS_PORT", "8000")

COMMANDS = {
    "web": [
        os.path.join(BIN, "gunicorn"),
        "config.wsgi",
        "--bind",
        f"{HOST}:{PORT}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
    ],
    "worker": [
        os.path.join(BIN, "celery"),
        "-A",
        "config",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        os.environ.get("PONTIS_WORKER_CONCURRENCY", "2"),
    ],
    "beat": [os.path.join(BIN, "celery"), "-A", "config", "beat", "--loglevel", "INFO"],
}


def main() -> int:
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in COMMANDS.items():
        children[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603 - fixed argv
    print(
        f"\nPontis is serving at http://{HOST}:{PORT}/  (Ctrl-C stops web, worker and beat)\n",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the others.", flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
