from django.urls import path

from apps.testing import views

app_name = "testing"

urlpatterns = [
    path("interfaces/<str:code>/contracts/", views.contracts, name="contracts"),
    path("interfaces/<str:code>/test-runs/new/", views.start_run, name="run_start"),
    path("test-runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("test-runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("test-runs/<int:pk>/cancel/", views.cancel_run, name="run_cancel"),
    path("test-runs/<int:pk>/evidence.zip", views.evidence_pack, name="run_evidence"),
    path("test-results/<int:pk>/defect/", views.raise_defect, name="defect_raise"),
    path("test-results/<int:pk>/compare/", views.compare_with_last_pass, name="result_compare"),
    path("defects/", views.DefectList.as_view(), name="defect_list"),
    path("defects/<int:pk>/", views.DefectDetail.as_view(), name="defect_detail"),
]
