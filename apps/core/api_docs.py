from drf_spectacular.views import SpectacularSwaggerSplitView

from apps.core.middleware import ContentSecurityPolicyMiddleware


class SwaggerUIView(SpectacularSwaggerSplitView):
    """Swagger UI from the sidecar package. Its script is a file like every other one;
    only its styles are applied inline by the library, so this page alone allows them."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = ContentSecurityPolicyMiddleware.POLICY.replace(
            "style-src 'self';", "style-src 'self' 'unsafe-inline';"
        )
        return response
