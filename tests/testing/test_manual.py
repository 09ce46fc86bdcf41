"""Manual test cases: a tester records the outcome with evidence files."""

import hashlib
import io
import json
import zipfile

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEntry
from apps.testing import manual
from apps.testing.models import EvidenceFile, TestCase, TestResult, TestRun

pytestmark = pytest.mark.django_db

SCREENSHOT = b"\x89PNG\r\n\x1a\n" + b"pixels" * 200
LOG = b"2025-01-01 invoice INV-1 posted\n" * 50


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


@pytest.fixture
def manual_case(interface_a):
    return TestCase.objects.create(
        interface=interface_a,
        name="invoice shows in the ERP",
        kind="manual",
        path="",
        manual_steps="1. Post an invoice in the CRM\n2. Open it in the **ERP**",
        expected_result="The invoice appears with status *posted*.",
    )


def uploads():
    return [
        SimpleUploadedFile("screen shot.png", SCREENSHOT, content_type="image/png"),
        SimpleUploadedFile("erp.log", LOG, content_type="text/plain"),
    ]


def record(actor, case, environment, outcome="passed", notes="", files=()):
    return manual.record_manual_result(actor, case, environment, outcome, notes, files)


def assert_nothing_saved(media_root):
    assert TestRun.objects.count() == 0
    assert TestResult.objects.count() == 0
    assert EvidenceFile.objects.count() == 0
    assert AuditEntry.objects.count() == 0
    assert stored_files(media_root) == []


# ------------------------------------------------------------------ recording


def test_a_passed_result_keeps_two_files_with_their_hashes_and_sizes(
    engineer, manual_case, environment, media_root
):
    run = record(engineer, manual_case, environment, "passed", "Seen as posted.", uploads())

    run.refresh_from_db()
    assert (run.is_manual, run.status, run.requested_by, run.case_ids) == (
        True,
        "succeeded",
        engineer,
        [manual_case.pk],
    )
    assert (run.passed, run.failed, run.errored, run.progress_done, run.progress_total) == (
        1,
        0,
        0,
        1,
        1,
    )
    assert run.started_at is not None and run.finished_at == run.started_at
    result = run.results.get()
    assert result.case == manual_case and result.outcome == "passed"
    assert result.notes == "Seen as posted." and result.recorded_by == engineer
    assert result.request == {} and result.response == {} and len(result.correlation_id) == 32
    assert result.checks == [
        {
            "name": "manual verification",
            "passed": True,
            "message": "Expected: The invoice appears with status *posted*.\n"
            "Observed: Seen as posted.",
            "details": [],
        }
    ]
    files = {f.name: f for f in result.files.all()}
    assert sorted(files) == ["erp.log", "screen_shot.png"]
    for name, content, content_type in [
        ("screen_shot.png", SCREENSHOT, "image/png"),
        ("erp.log", LOG, "text/plain"),
    ]:
        evidence = files[name]
        assert evidence.size == len(content)
        assert evidence.sha256 == hashlib.sha256(content).hexdigest()
        assert evidence.content_type == content_type and evidence.uploaded_by == engineer
        on_disk = media_root / evidence.file.name
        assert on_disk.read_bytes() == content
        assert evidence.file.name.startswith(f"evidence/{run.pk}/{evidence.sha256[:16]}-")
    assert len(stored_files(media_root)) == 2
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.actor) == ("create", str(run.pk), engineer)


def test_a_blocked_result_is_stored_as_errored(engineer, manual_case, environment):
    run = record(engineer, manual_case, environment, "blocked", "The ERP was down.")
    result = run.results.get()
    assert (run.status, run.errored, result.outcome) == ("failed", 1, "errored")
    assert result.checks[0]["passed"] is None


def test_a_failed_result_counts_as_a_failure(engineer, manual_case, environment):
    run = record(engineer, manual_case, environment, "failed", "Status was draft.")
    assert (run.status, run.passed, run.failed, run.results.get().outcome) == (
        "failed",
        0,
        1,
        "failed",
    )
    assert run.results.get().checks[0]["passed"] is False


@pytest.mark.parametrize("outcome", ["failed", "blocked"])
def test_a_result_other_than_a_pass_needs_notes(
    engineer, manual_case, environment, media_root, outcome
):
    with pytest.raises(ValidationError) as caught:
        record(engineer, manual_case, environment, outcome, "   ", uploads())
    assert caught.value.message_dict == {
        "notes": [f"Say what you saw: a {outcome} result needs notes."]
    }
    assert_nothing_saved(media_root)


def test_an_unknown_outcome_is_refused(engineer, manual_case, environment, media_root):
    with pytest.raises(ValidationError) as caught:
        record(engineer, manual_case, environment, "errored", "x")
    assert caught.value.message_dict == {"outcome": ["Choose passed, failed or blocked."]}
    assert_nothing_saved(media_root)


def test_a_too_big_file_saves_nothing(engineer, manual_case, environment, media_root, settings):
    settings.PONTIS_EVIDENCE_MAX_UPLOAD_BYTES = 1000
    files = [
        SimpleUploadedFile("small.txt", b"x" * 1000),
        SimpleUploadedFile("big.txt", b"x" * 1001),
    ]
    with pytest.raises(ValidationError) as caught:
        record(engineer, manual_case, environment, "passed", "", files)
    assert caught.value.message_dict == {
        "files": ["big.txt is larger than the limit of 1000 bytes per file."]
    }
    assert_nothing_saved(media_root)


def test_more_than_ten_files_are_refused(engineer, manual_case, environment, media_root):
    files = [SimpleUploadedFile(f"f{i}.txt", b"x") for i in range(11)]
    with pytest.raises(ValidationError) as caught:
        record(engineer, manual_case, environment, "passed", "", files)
    assert caught.value.message_dict == {"files": ["At most 10 files per result; 11 were sent."]}
    assert_nothing_saved(media_root)


def test_a_failure_after_files_were_stored_removes_them(
    engineer, manual_case, environment, media_root, monkeypatch
):
    def broken_audit(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(manual.audit, "record", broken_audit)
    with pytest.raises(RuntimeError):
        record(engineer, manual_case, environment, "passed", "", uploads())
    assert_nothing_saved(media_root)


def test_a_non_manual_case_is_refused(engineer, interface_a, environment, media_root):
    case = TestCase.objects.create(interface=interface_a, name="list", path="customers/")
    with pytest.raises(ValidationError) as caught:
        record(engineer, case, environment, "passed")
    assert caught.value.message_dict == {"case": ["list is not a manual test case."]}
    assert_nothing_saved(media_root)


def test_file_names_are_sanitised(engineer, manual_case, environment):
    files = [SimpleUploadedFile("../../etc/pass wd?.txt", b"secret-free")]
    run = record(engineer, manual_case, environment, "passed", "", files)
    evidence = EvidenceFile.objects.get(result__run=run)
    assert evidence.name == "pass_wd.txt"
    assert evidence.file.name.startswith(f"evidence/{run.pk}/")


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewer_and_other_team_cannot_record(
    request, persona, manual_case, environment, media_root
):
    with pytest.raises(PermissionDenied):
        record(request.getfixturevalue(persona), manual_case, environment, "passed", "", uploads())
    assert_nothing_saved(media_root)


# ------------------------------------------------------------------ API


def post_result(client, case, **data):
    payload = {"environment": "uat", "outcome": "passed", "notes": "", **data}
    return client.post(f"/api/v1/test-cases/{case.pk}/manual-results/", payload, format="multipart")


def test_api_records_a_result_with_files(engineer, api_as, manual_case, environment):
    response = post_result(
        api_as(engineer), manual_case, outcome="failed", notes="Draft, not posted.", files=uploads()
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    run = TestRun.objects.get()
    result = run.results.get()
    assert body["run"]["id"] == run.pk and body["run"]["status"] == "failed"
    assert body["run"]["environment"] == "uat" and body["run"]["failed"] == 1
    assert body["result"]["id"] == result.pk
    assert body["result"]["outcome"] == "failed"
    assert body["result"]["notes"] == "Draft, not posted."
    assert body["result"]["recorded_by"] == "engineer"
    assert sorted(
        (f["name"], f["size"], f["sha256"], f["download"]) for f in body["result"]["files"]
    ) == sorted(
        (
            f.name,
            f.size,
            f.sha256,
            f"/api/v1/evidence-files/{f.pk}/",
        )
        for f in result.files.all()
    )
    assert {f["size"] for f in body["result"]["files"]} == {len(SCREENSHOT), len(LOG)}


def test_api_refuses_a_too_big_file_and_saves_nothing(
    engineer, api_as, manual_case, environment, media_root, settings
):
    settings.PONTIS_EVIDENCE_MAX_UPLOAD_BYTES = 100
    response = post_result(api_as(engineer), manual_case, files=uploads())
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "files",
            "message": "screen_shot.png is larger than the limit of 100 bytes per file.",
            "code": "invalid",
        }
    ]
    assert_nothing_saved(media_root)


def test_api_refuses_a_failure_without_notes(engineer, api_as, manual_case, environment):
    response = post_result(api_as(engineer), manual_case, outcome="failed")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "notes"
    assert TestRun.objects.count() == 0


def test_api_refuses_a_non_manual_case(engineer, api_as, interface_a, environment):
    case = TestCase.objects.create(interface=interface_a, name="list", path="customers/")
    response = post_result(api_as(engineer), case)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "list is not a manual test case."


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_api_refuses_viewer_and_other_team(
    request, persona, api_as, manual_case, environment, media_root
):
    response = post_result(api_as(request.getfixturevalue(persona)), manual_case, files=uploads())
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert_nothing_saved(media_root)


def test_api_other_team_is_told_why(engineer_b, api_as, manual_case, environment):
    response = post_result(api_as(engineer_b), manual_case)
    assert response.json()["detail"] == (
        "You may only record results of your own teams' interfaces."
    )


# ------------------------------------------------------------------ browser pages


def test_record_page_shows_steps_and_expected_result_as_markdown(client, engineer, manual_case):
    client.force_login(engineer)
    response = client.get(f"/test-cases/{manual_case.pk}/record/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>ERP</strong>" in page and "<em>posted</em>" in page
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="files" multiple' in page


def test_record_page_saves_and_redirects_to_the_run(client, engineer, manual_case, environment):
    client.force_login(engineer)
    response = client.post(
        f"/test-cases/{manual_case.pk}/record/",
        {
            "environment": environment.pk,
            "outcome": "failed",
            "notes": "Status stayed draft.",
            "files": uploads(),
        },
    )
    run = TestRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/test-runs/{run.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Status stayed draft." in page and "Recorded by engineer" in page
    for evidence in EvidenceFile.objects.all():
        assert f'href="/evidence-files/{evidence.pk}/"' in page
        assert evidence.name in page


def test_record_page_shows_a_refusal_as_a_form_error(
    client, engineer, manual_case, environment, media_root
):
    client.force_login(engineer)
    response = client.post(
        f"/test-cases/{manual_case.pk}/record/",
        {"environment": environment.pk, "outcome": "failed", "notes": ""},
    )
    assert response.status_code == 200
    assert "Say what you saw: a failed result needs notes." in response.content.decode()
    assert_nothing_saved(media_root)


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_record_page_refuses_viewer_and_other_team(
    request, persona, client, manual_case, environment, media_root
):
    client.force_login(request.getfixturevalue(persona))
    url = f"/test-cases/{manual_case.pk}/record/"
    assert client.get(url).status_code == 403
    response = client.post(
        url, {"environment": environment.pk, "outcome": "passed", "files": uploads()}
    )
    assert response.status_code == 403
    assert_nothing_saved(media_root)


def test_record_page_is_not_found_for_a_non_manual_case(client, engineer, interface_a):
    case = TestCase.objects.create(interface=interface_a, name="list", path="customers/")
    client.force_login(engineer)
    assert client.get(f"/test-cases/{case.pk}/record/").status_code == 404


def test_record_page_sends_anonymous_users_to_sign_in(client, manual_case):
    response = client.get(f"/test-cases/{manual_case.pk}/record/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_contracts_page_offers_record_result_only_to_writers(client, engineer, viewer, manual_case):
    url = f"/interfaces/{manual_case.interface.code}/contracts/"
    record_url = f"/test-cases/{manual_case.pk}/record/"
    client.force_login(engineer)
    assert record_url in client.get(url).content.decode()
    client.force_login(viewer)
    assert record_url not in client.get(url).content.decode()


# ------------------------------------------------------------------ downloads


@pytest.fixture
def recorded_run(engineer, manual_case, environment):
    return record(engineer, manual_case, environment, "passed", "Seen as posted.", uploads())


@pytest.fixture
def screenshot(recorded_run):
    return EvidenceFile.objects.get(result__run=recorded_run, name="screen_shot.png")


def download_body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("persona", ["engineer", "engineer_b", "viewer"])
def test_everyone_who_may_see_the_run_downloads_its_files(request, persona, client, screenshot):
    # TestRun.objects.for_user(user, "view") lets every signed-in, active user read runs.
    client.force_login(request.getfixturevalue(persona))
    response = client.get(f"/evidence-files/{screenshot.pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="screen_shot.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "image/png"
    assert download_body(response) == SCREENSHOT


def test_a_download_is_never_inline_even_for_html(engineer, client, manual_case, environment):
    files = [SimpleUploadedFile("page.html", b"<script>alert(1)</script>", "text/html")]
    run = record(engineer, manual_case, environment, "passed", "", files)
    client.force_login(engineer)
    response = client.get(f"/evidence-files/{EvidenceFile.objects.get(result__run=run).pk}/")
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_anonymous_download_is_sent_to_sign_in(client, screenshot):
    response = client.get(f"/evidence-files/{screenshot.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_inactive_user_cannot_download(client, engineer, screenshot):
    client.force_login(engineer)
    engineer.is_active = False
    engineer.save()
    # An inactive user's session no longer signs them in.
    response = client.get(f"/evidence-files/{screenshot.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_unknown_evidence_file_is_not_found(client, engineer, db):
    client.force_login(engineer)
    assert client.get("/evidence-files/999999/").status_code == 404


def test_api_download(engineer_b, api_as, screenshot):
    response = api_as(engineer_b).get(f"/api/v1/evidence-files/{screenshot.pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="screen_shot.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert download_body(response) == SCREENSHOT


def test_api_download_refuses_anonymous(screenshot):
    from rest_framework.test import APIClient

    response = APIClient().get(f"/api/v1/evidence-files/{screenshot.pk}/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


# ------------------------------------------------------------------ evidence pack


def test_evidence_pack_holds_the_files_notes_and_who_recorded(client, engineer, recorded_run):
    client.force_login(engineer)
    response = client.get(f"/test-runs/{recorded_run.pk}/evidence.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    result = recorded_run.results.get()
    assert archive.read(f"files/{result.pk}/screen_shot.png") == SCREENSHOT
    assert archive.read(f"files/{result.pk}/erp.log") == LOG
    summary = archive.read("summary.html").decode()
    assert "Seen as posted." in summary and "Recorded by engineer" in summary
    assert f"files/{result.pk}/screen_shot.png" in summary
    assert f"files/{result.pk}/erp.log" in summary
    (document_name,) = [n for n in archive.namelist() if n.startswith("results/")]
    document = json.loads(archive.read(document_name))
    assert document["notes"] == "Seen as posted." and document["recorded_by"] == "engineer"
    assert sorted(f["path"] for f in document["files"]) == [
        f"files/{result.pk}/erp.log",
        f"files/{result.pk}/screen_shot.png",
    ]


def test_evidence_pack_keeps_two_files_of_the_same_name(engineer, manual_case, environment):
    from apps.testing import evidence

    files = [SimpleUploadedFile("a.txt", b"one"), SimpleUploadedFile("a.txt", b"two")]
    run = record(engineer, manual_case, environment, "passed", "", files)
    archive = zipfile.ZipFile(io.BytesIO(evidence.evidence_pack(run)))
    result = run.results.get()
    names = sorted(n for n in archive.namelist() if n.startswith("files/"))
    assert len(names) == 2 and f"files/{result.pk}/a.txt" in names
    assert sorted(archive.read(n) for n in names) == [b"one", b"two"]
