from django.urls import path

from apps.testing import (
    baseline_views,
    case_views,
    manual_views,
    postman_views,
    schedule_views,
    views,
)

app_name = "testing"

urlpatterns = [
    path("interfaces/<str:code>/contracts/", views.contracts, name="contracts"),
    path("interfaces/<str:code>/test-cases/", case_views.CaseList.as_view(), name="case_list"),
    path(
        "interfaces/<str:code>/test-cases/new/",
        case_views.CaseCreate.as_view(),
        name="case_create",
    ),
    path(
        "interfaces/<str:code>/test-cases/import/",
        postman_views.postman_import,
        name="postman_import",
    ),
    path("test-cases/<int:pk>/", case_views.CaseDetail.as_view(), name="case_detail"),
    path("test-cases/<int:pk>/edit/", case_views.CaseUpdate.as_view(), name="case_update"),
    path("test-cases/<int:pk>/delete/", case_views.CaseDelete.as_view(), name="case_delete"),
    path("interfaces/<str:code>/test-runs/new/", views.start_run, name="run_start"),
    path("test-runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("test-runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("test-runs/<int:pk>/cancel/", views.cancel_run, name="run_cancel"),
    path("test-runs/<int:pk>/evidence.zip", views.evidence_pack, name="run_evidence"),
    path("test-results/<int:pk>/defect/", views.raise_defect, name="defect_raise"),
    path("test-results/<int:pk>/compare/", views.compare_with_last_pass, name="result_compare"),
    path("defects/", views.DefectList.as_view(), name="defect_list"),
    path("defects/<int:pk>/", views.DefectDetail.as_view(), name="defect_detail"),
    path("interfaces/<str:code>/baseline/", baseline_views.baseline_page, name="baseline"),
    path(
        "interfaces/<str:code>/baseline/new/",
        baseline_views.KnownFindingCreate.as_view(),
        name="known_finding_create",
    ),
    path(
        "known-findings/<int:pk>/revoke/",
        baseline_views.KnownFindingRevoke.as_view(),
        name="known_finding_revoke",
    ),
    path(
        "test-cases/<int:pk>/record/",
        manual_views.RecordManualResult.as_view(),
        name="manual_record",
    ),
    path("evidence-files/<int:pk>/", manual_views.evidence_file, name="evidence_file"),
    path("interfaces/<str:code>/schedules/", schedule_views.schedule_list, name="schedule_list"),
    path(
        "interfaces/<str:code>/schedules/new/",
        schedule_views.ScheduleCreate.as_view(),
        name="schedule_create",
    ),
    path(
        "test-schedules/<int:pk>/edit/",
        schedule_views.ScheduleUpdate.as_view(),
        name="schedule_update",
    ),
    path(
        "test-schedules/<int:pk>/enabled/",
        schedule_views.schedule_enable,
        name="schedule_enabled_update",
    ),
    path(
        "test-schedules/<int:pk>/delete/",
        schedule_views.ScheduleDelete.as_view(),
        name="schedule_delete",
    ),
]
