from django.urls import path

from apps.reconciliation import job_views, run_views, views

app_name = "reconciliation"

urlpatterns = [
    # Data sources
    path("data-sources/", views.SourceList.as_view(), name="source_list"),
    path("data-sources/new/", views.SourceCreate.as_view(), name="source_create"),
    path("data-sources/<int:pk>/", views.SourceDetail.as_view(), name="source_detail"),
    path("data-sources/<int:pk>/edit/", views.SourceUpdate.as_view(), name="source_update"),
    path("data-sources/<int:pk>/delete/", views.SourceDelete.as_view(), name="source_delete"),
    path(
        "data-sources/<int:pk>/test/",
        views.source_connection_check,
        name="source_connection_check",
    ),
    # Jobs of an interface
    path("interfaces/<str:code>/reconciliation/", job_views.job_list, name="job_list"),
    path(
        "interfaces/<str:code>/reconciliation/new/",
        job_views.JobCreate.as_view(),
        name="job_create",
    ),
    path("reconciliation-jobs/<int:pk>/", job_views.job_detail, name="job_detail"),
    path("reconciliation-jobs/<int:pk>/edit/", job_views.JobUpdate.as_view(), name="job_update"),
    path("reconciliation-jobs/<int:pk>/delete/", job_views.JobDelete.as_view(), name="job_delete"),
    path("reconciliation-jobs/<int:pk>/run/", job_views.run_create, name="run_create"),
    # Runs
    path("reconciliation-runs/<int:pk>/", run_views.run_detail, name="run_detail"),
    path("reconciliation-runs/<int:pk>/progress/", run_views.run_progress, name="run_progress"),
    path("reconciliation-runs/<int:pk>/cancel/", run_views.run_cancel, name="run_cancel"),
    path("reconciliation-runs/<int:pk>/report.csv", run_views.run_report, name="run_report"),
    path(
        "reconciliation-runs/<int:pk>/defect/",
        run_views.run_defect_create,
        name="run_defect_create",
    ),
]
