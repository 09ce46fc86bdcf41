"""RFC 9457 problem details for every API error.

``{"type", "title", "status", "detail", "instance", "errors": [{"field", "message", "code"}]}``
served as ``application/problem+json``.
"""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://pontis.dev/problems/"


def _flatten(detail, prefix: str = "") -> list[dict]:
    """Turns DRF's nested error detail into a flat list of field errors."""
    errors = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = str(key) if key != "non_field_errors" else ""
            path = f"{prefix}.{field}" if prefix and field else (field or prefix)
            errors.extend(_flatten(value, path))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list) and not isinstance(item, exceptions.ErrorDetail):
                errors.extend(_flatten(item, f"{prefix}[{index}]"))
            else:
                errors.extend(_flatten(item, prefix))
    else:
        errors.append(
            {"field": prefix or None, "message": str(detail), "code": getattr(detail, "code", None)}
        )
    return errors


def problem_response(
    status: int, detail: str, *, errors=None, type_slug=None, instance=None, headers=None
):
    """A problem+json response outside DRF (middleware, plain Django views)."""
    body = _problem_body(status, detail, errors=errors, type_slug=type_slug, instance=instance)
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _problem_body(status, detail, *, errors=None, type_slug=None, instance=None) -> dict:
    title = HTTPStatus(status).phrase
    body = {
        "type": PROBLEM_TYPE_BASE + (type_slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def problem_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.APIException("The request body is larger than this server accepts.")
        exc.status_code = 413
    elif isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None

    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "The request has invalid fields." if errors else "The request is invalid."
        if len(errors) == 1 and not errors[0]["field"]:
            detail = errors[0]["message"]
    elif isinstance(exc.detail, dict | list):
        errors = _flatten(exc.detail)
        detail = errors[0]["message"] if errors else str(exc)
    else:
        detail = str(exc.detail)

    body = _problem_body(
        response.status_code,
        detail,
        errors=errors,
        type_slug=getattr(exc, "default_code", None)
        if not isinstance(exc, exceptions.ValidationError)
        else "validation-error",
        instance=request.get_full_path() if request is not None else None,
    )
    problem = Response(body, status=response.status_code, headers=dict(response.items()))
    problem.content_type = PROBLEM_CONTENT_TYPE
    return problem
