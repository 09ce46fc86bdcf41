from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.accounts.api import ApiTokenViewSet, MeView, TeamViewSet, UserViewSet
from apps.catalog.api import (
    ApiSpecViewSet,
    EndpointCheckViewSet,
    EndpointViewSet,
    EnvironmentViewSet,
    InterfaceViewSet,
    SystemViewSet,
    TagViewSet,
)
from apps.testing.api import ComplianceView, DefectViewSet, TestCaseViewSet, TestRunViewSet  # noqa: E402

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("teams", TeamViewSet, basename="team")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("users", UserViewSet, basename="user")
router.register("systems", SystemViewSet, basename="system")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("interfaces", InterfaceViewSet, basename="interface")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("specs", ApiSpecViewSet, basename="spec")
router.register("endpoint-checks", EndpointCheckViewSet, basename="endpoint-check")
router.register("tags", TagViewSet, basename="tag")
router.register("test-cases", TestCaseViewSet, basename="test-case")
router.register("test-runs", TestRunViewSet, basename="test-run")
router.register("defects", DefectViewSet, basename="defect")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("compliance/<str:code>/", ComplianceView.as_view(), name="compliance"),
    *router.urls,
]
