"""Shared fixtures: personas (viewer, engineers of two teams, lead, admin), API clients, a worker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Role
from tests.factories import (
    EnvironmentFactory,
    InterfaceFactory,
    SystemFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttles and sign-in lockouts live in the cache; every test starts clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def team_a(db):
    return TeamFactory(name="Team A", slug="team-a")


@pytest.fixture
def team_b(db):
    return TeamFactory(name="Team B", slug="team-b")


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", role=Role.VIEWER)


@pytest.fixture
def engineer(team_a):
    return UserFactory(username="engineer", role=Role.ENGINEER, teams=[team_a])


@pytest.fixture
def engineer_b(team_b):
    return UserFactory(username="engineer_b", role=Role.ENGINEER, teams=[team_b])


@pytest.fixture
def lead(team_a):
    return UserFactory(username="lead", role=Role.LEAD, teams=[team_a])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=Role.ADMIN)


def api_client_for(user) -> APIClient:
    """An API client authenticated with a fresh API token of the user."""
    _, key = ApiToken.issue(user=user, name=f"test-{uuid.uuid4().hex[:8]}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api_as():
    return api_client_for


@pytest.fixture
def environment(db):
    return EnvironmentFactory(name="UAT", slug="uat", position=3, egress_allowlist=["127.0.0.1"])


@pytest.fixture
def interface_a(team_a):
    return InterfaceFactory(code="INT-042", name="Invoice status", owner_team=team_a)


@pytest.fixture
def interface_b(team_b):
    return InterfaceFactory(code="INT-043", name="Orders", owner_team=team_b)


@pytest.fixture
def system_a(team_a):
    return SystemFactory(name="CRM", owner_team=team_a)


class WorkerHandle:
    """A real Celery worker process (``celery -A config worker``) that tests may kill and restart."""

    def __init__(self, env: dict, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        with open(log, "w") as log_file:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    "2",
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "INFO",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the worker did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self, sig=signal.SIGKILL) -> None:
        """Sends the signal to the worker and all its pool processes, and waits for them."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory):
    """A real Celery worker process sharing the test database and broker.

    Tests using it must use ``transactional_db`` so their rows are committed
    where the worker can read them.
    """
    from config.celery import app

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PONTIS_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PONTIS_TESTING": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    worker = WorkerHandle(env, tmp_path_factory.mktemp("worker"))
    worker.start()
    app.conf.task_always_eager = False
    try:
        yield worker
    finally:
        app.conf.task_always_eager = True
        worker.kill(signal.SIGTERM)
