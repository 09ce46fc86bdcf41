"""The job-run machinery: claim once, heartbeat, cancel, finish, reap."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from apps.catalog.models import EndpointCheck
from apps.core import jobs
from apps.core.models import JobStatus
from tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return EndpointCheck.objects.create(endpoint=EndpointFactory())


def test_claim_succeeds_once(run):
    first = jobs.claim(EndpointCheck, run.pk)
    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert first.worker == jobs.worker_name() and first.heartbeat_at is not None
    assert jobs.claim(EndpointCheck, run.pk) is None


def test_execute_twice_runs_work_once(run):
    calls = []
    assert jobs.execute(EndpointCheck, run.pk, lambda r: calls.append(r.pk)) == "succeeded"
    assert jobs.execute(EndpointCheck, run.pk, lambda r: calls.append(r.pk)) == "not-claimed"
    assert calls == [run.pk]
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.finished_at is not None


def test_work_returning_an_error_fails_the_run(run):
    assert jobs.execute(EndpointCheck, run.pk, lambda r: "the endpoint answered 503") == "failed"
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.error == "the endpoint answered 503"


def test_work_raising_fails_the_run_with_the_error(run):
    def work(r):
        raise ValueError("bad payload")

    assert jobs.execute(EndpointCheck, run.pk, work) == "failed"
    run.refresh_from_db()
    assert run.error == "ValueError: bad payload"


def test_heartbeat_records_progress(run):
    claimed = jobs.claim(EndpointCheck, run.pk)
    jobs.heartbeat(claimed, done=3, total=10, note="case 3 of 10")
    run.refresh_from_db()
    assert (run.progress_done, run.progress_total, run.progress_note) == (3, 10, "case 3 of 10")
    assert run.progress_percent == 30


def test_cancel_queued_run_is_immediate(run):
    assert jobs.cancel(run)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.finished_at is not None
    assert jobs.claim(EndpointCheck, run.pk) is None


def test_cancel_running_run_stops_at_next_heartbeat(run):
    def work(claimed):
        jobs.cancel(claimed)
        jobs.heartbeat(claimed, done=1)
        raise AssertionError("work went on after cancel")

    assert jobs.execute(EndpointCheck, run.pk, work) == "cancelled"
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED


def test_reaper_requeues_stale_run_and_sends_it_again(run, django_capture_on_commit_callbacks):
    claimed = jobs.claim(EndpointCheck, run.pk)
    EndpointCheck.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    sent = []
    with (
        mock.patch.dict(jobs._registry, {EndpointCheck: sent.append}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert jobs.reap_stale(lease_seconds=60) == {"requeued": 1, "failed": 0, "resent": 0}
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED and run.worker == ""
    assert sent == [run.pk]
    # The lost worker wakes up: it no longer holds the run and cannot write to it.
    with pytest.raises(jobs.JobCancelled):
        jobs.heartbeat(claimed, done=5)
    assert not jobs.finish(claimed, JobStatus.SUCCEEDED)


def test_reaper_fails_run_out_of_attempts(run):
    jobs.claim(EndpointCheck, run.pk)
    EndpointCheck.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10), attempts=EndpointCheck.MAX_ATTEMPTS
    )
    assert jobs.reap_stale(lease_seconds=60) == {"requeued": 0, "failed": 1, "resent": 0}
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert run.error.startswith("Worker lost: no heartbeat for 60 s")


def test_reaper_leaves_fresh_runs_alone(run):
    jobs.claim(EndpointCheck, run.pk)
    assert jobs.reap_stale(lease_seconds=60) == {"requeued": 0, "failed": 0, "resent": 0}
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING


def test_reap_task_reports_outcome(run):
    from apps.core.tasks import reap_stale_jobs

    assert reap_stale_jobs() == "requeued=0 failed=0 resent=0"


def test_broker_down_keeps_the_run_queued_and_the_sweeper_sends_it_later(
    engineer, api_as, interface_a, environment, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    endpoint = EndpointFactory(interface=interface_a, environment=environment)

    def broker_down(run_id):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with (
        mock.patch.dict(jobs._registry, {EndpointCheck: broker_down}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_as(engineer).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 202
    run = EndpointCheck.objects.get()
    assert run.status == JobStatus.QUEUED

    sent = []
    EndpointCheck.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    with mock.patch.dict(jobs._registry, {EndpointCheck: sent.append}):
        assert jobs.reap_stale(lease_seconds=60) == {"requeued": 0, "failed": 0, "resent": 1}
        # Just re-sent: not again on the next tick.
        assert jobs.reap_stale(lease_seconds=60)["resent"] == 0
    assert sent == [run.pk]
