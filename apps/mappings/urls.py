from django.urls import path

from apps.mappings import lookup_views, row_views, spec_views

app_name = "mappings"

urlpatterns = [
    # Specs of an interface
    path("interfaces/<str:code>/mappings/", spec_views.SpecList.as_view(), name="spec_list"),
    path(
        "interfaces/<str:code>/mappings/new/",
        spec_views.SpecCreate.as_view(),
        name="spec_create",
    ),
    # One spec: the editor and what hangs off it
    path("mappings/<int:pk>/", spec_views.spec_detail, name="spec_detail"),
    path("mappings/<int:pk>/edit/", spec_views.SpecUpdate.as_view(), name="spec_update"),
    path("mappings/<int:pk>/delete/", spec_views.spec_delete, name="spec_delete"),
    path("mappings/<int:pk>/status/", spec_views.spec_status_update, name="spec_status_update"),
    path("mappings/<int:pk>/new-draft/", spec_views.spec_draft_create, name="spec_draft_create"),
    path("mappings/<int:pk>/export/csv/", spec_views.spec_export_csv, name="spec_export_csv"),
    path("mappings/<int:pk>/export/xlsx/", spec_views.spec_export_xlsx, name="spec_export_xlsx"),
    path("mappings/<int:pk>/import/", spec_views.spec_import, name="spec_import"),
    path("mappings/<int:pk>/diff/", spec_views.spec_diff, name="spec_diff"),
    path("mappings/<int:pk>/coverage/", spec_views.spec_coverage, name="spec_coverage"),
    path("mappings/<int:pk>/suggestions/", spec_views.spec_suggestions, name="spec_suggestions"),
    path("mappings/<int:pk>/preview/", row_views.spec_preview, name="spec_preview"),
    # Rows
    path("mappings/<int:pk>/rows/new/", row_views.rule_create, name="rule_create"),
    path("mapping-rows/<int:pk>/edit/", row_views.rule_update, name="rule_update"),
    path("mapping-rows/<int:pk>/delete/", row_views.rule_delete, name="rule_delete"),
    # Mapping tests
    path("mappings/<int:pk>/tests/run/", row_views.mapping_tests_run, name="mapping_tests_run"),
    path("mappings/<int:pk>/tests/new/", row_views.mapping_test_create, name="mapping_test_create"),
    path("mapping-tests/<int:pk>/edit/", row_views.mapping_test_update, name="mapping_test_update"),
    path(
        "mapping-tests/<int:pk>/delete/",
        row_views.mapping_test_delete,
        name="mapping_test_delete",
    ),
    # Lookup tables
    path("lookup-tables/", lookup_views.LookupTableList.as_view(), name="lookup_table_list"),
    path(
        "lookup-tables/new/", lookup_views.LookupTableCreate.as_view(), name="lookup_table_create"
    ),
    path("lookup-tables/<int:pk>/", lookup_views.lookup_table_detail, name="lookup_table_detail"),
    path(
        "lookup-tables/<int:pk>/edit/",
        lookup_views.LookupTableUpdate.as_view(),
        name="lookup_table_update",
    ),
    path(
        "lookup-tables/<int:pk>/delete/",
        lookup_views.lookup_table_delete,
        name="lookup_table_delete",
    ),
    path(
        "lookup-tables/<int:pk>/import/",
        lookup_views.lookup_table_import,
        name="lookup_table_import",
    ),
    path(
        "lookup-tables/<int:pk>/export/",
        lookup_views.lookup_table_export,
        name="lookup_table_export",
    ),
    path(
        "lookup-tables/<int:pk>/entries/new/",
        lookup_views.lookup_entry_create,
        name="lookup_entry_create",
    ),
    path(
        "lookup-entries/<int:pk>/edit/",
        lookup_views.lookup_entry_update,
        name="lookup_entry_update",
    ),
    path(
        "lookup-entries/<int:pk>/delete/",
        lookup_views.lookup_entry_delete,
        name="lookup_entry_delete",
    ),
]
