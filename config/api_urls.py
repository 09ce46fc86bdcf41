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
from apps.mappings.api import (
    FieldRuleViewSet,
    LookupEntryViewSet,
    LookupTableViewSet,
    MappingSpecViewSet,
    MappingTestViewSet,
)
from apps.reconciliation.api import (
    DataSourceViewSet,
    ReconciliationJobViewSet,
    ReconciliationRunViewSet,
)
from apps.testing.api import ComplianceView, DefectViewSet, TestCaseViewSet, TestRunViewSet  # noqa: E402
from apps.testing.baseline_api import KnownFindingViewSet
from apps.testing.manual_api import EvidenceFileView, ManualResultView
from apps.testing.postman_api import PostmanImportView
from apps.testing.schedule_api import TestScheduleViewSet
from apps.testing.trend_api import PassRateView

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
router.register("known-findings", KnownFindingViewSet, basename="known-finding")
router.register("test-schedules", TestScheduleViewSet, basename="test-schedule")
router.register("mapping-specs", MappingSpecViewSet, basename="mapping-spec")
router.register("mapping-rules", FieldRuleViewSet, basename="mapping-rule")
router.register("mapping-tests", MappingTestViewSet, basename="mapping-test")
router.register("lookup-tables", LookupTableViewSet, basename="lookup-table")
router.register("data-sources", DataSourceViewSet, basename="data-source")
router.register("reconciliation-jobs", ReconciliationJobViewSet, basename="reconciliation-job")
router.register("reconciliation-runs", ReconciliationRunViewSet, basename="reconciliation-run")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    # Before the router: its test-cases/<pk>/ route would take "import-postman" as a pk.
    path(
        "test-cases/import-postman/",
        PostmanImportView.as_view(),
        name="test-case-import-postman",
    ),
    path("compliance/<str:code>/", ComplianceView.as_view(), name="compliance"),
    path("interfaces/<str:code>/pass-rate/", PassRateView.as_view(), name="pass-rate"),
    path("test-cases/<int:id>/manual-results/", ManualResultView.as_view(), name="manual-results"),
    path("evidence-files/<int:id>/", EvidenceFileView.as_view(), name="evidence-file"),
    path(
        "lookup-tables/<int:table_id>/entries/",
        LookupEntryViewSet.as_view({"get": "list", "post": "create"}),
        name="lookup-entry-list",
    ),
    path(
        "lookup-tables/<int:table_id>/entries/<int:entry_id>/",
        LookupEntryViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="lookup-entry-detail",
    ),
    *router.urls,
]
