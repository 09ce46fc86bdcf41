from django.urls import path

from apps.catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("map/", views.flow_map, name="flow_map"),
    path("map/data.json", views.flow_map_data, name="flow_map_data"),
    path("systems/", views.SystemList.as_view(), name="system_list"),
    path("systems/new/", views.SystemCreate.as_view(), name="system_create"),
    path("systems/<int:pk>/", views.SystemDetail.as_view(), name="system_detail"),
    path("systems/<int:pk>/edit/", views.SystemUpdate.as_view(), name="system_update"),
    path("systems/<int:pk>/delete/", views.SystemDelete.as_view(), name="system_delete"),
    path("environments/", views.EnvironmentList.as_view(), name="environment_list"),
    path("environments/new/", views.EnvironmentCreate.as_view(), name="environment_create"),
    path("environments/<int:pk>/", views.EnvironmentDetail.as_view(), name="environment_detail"),
    path(
        "environments/<int:pk>/edit/", views.EnvironmentUpdate.as_view(), name="environment_update"
    ),
    path(
        "environments/<int:pk>/delete/",
        views.EnvironmentDelete.as_view(),
        name="environment_delete",
    ),
    path("interfaces/", views.InterfaceList.as_view(), name="interface_list"),
    path("interfaces/new/", views.InterfaceCreate.as_view(), name="interface_create"),
    path("interfaces/<str:code>/", views.InterfaceDetail.as_view(), name="interface_detail"),
    path("interfaces/<str:code>/edit/", views.InterfaceUpdate.as_view(), name="interface_update"),
    path("interfaces/<str:code>/delete/", views.InterfaceDelete.as_view(), name="interface_delete"),
    path(
        "interfaces/<str:code>/endpoints/new/",
        views.EndpointCreate.as_view(),
        name="endpoint_create",
    ),
    path("interfaces/<str:code>/specs/new/", views.SpecUpload.as_view(), name="spec_upload"),
    path("interfaces/<str:code>/specs/<int:version>/", views.spec_detail, name="spec_detail"),
    path("interfaces/<str:code>/specs/<int:version>/diff/", views.spec_diff, name="spec_diff"),
    path("interfaces/<str:code>/specs/<int:version>/raw/", views.spec_raw, name="spec_raw"),
    path("endpoints/", views.EndpointList.as_view(), name="endpoint_list"),
    path("endpoints/<int:pk>/", views.EndpointDetail.as_view(), name="endpoint_detail"),
    path("endpoints/<int:pk>/edit/", views.EndpointUpdate.as_view(), name="endpoint_update"),
    path("endpoints/<int:pk>/delete/", views.EndpointDelete.as_view(), name="endpoint_delete"),
    path("endpoints/<int:pk>/check/", views.endpoint_check, name="endpoint_check"),
    path("endpoint-checks/<int:pk>/", views.endpoint_check_status, name="endpoint_check_status"),
]
