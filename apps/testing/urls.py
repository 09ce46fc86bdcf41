from django.urls import path

from apps.testing import views

app_name = "testing"

urlpatterns = [
    path("interfaces/<str:code>/contracts/", views.contracts, name="contracts"),
    path("interfaces/<str:code>/test-runs/new/", views.start_run, name="run_start"),
    path("test-runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("test-runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
]
