from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from apps.core.api_docs import SwaggerUIView

urlpatterns = [
    path("", include("apps.core.urls")),
    path("", include("apps.catalog.urls")),
    path("", include("apps.testing.urls")),
    path("", include("apps.mappings.urls")),
    path("", include("apps.reconciliation.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("api/v1/", include(("config.api_urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerUIView.as_view(url_name="api-schema"), name="api-docs"),
    path("demo-partner/", include("apps.demo_partner.urls")),
]
