"""The demo partner API: plain Django JSON views over the generated data set.

A machine API with its own token (``Authorization: Bearer <token>`` or
``X-API-Key: <token>``, the token being ``settings.PONTIS_DEMO_PARTNER_TOKEN``);
no sessions, no CSRF, no database. Errors are ``{"error": "..."}`` (validation
errors add ``"errors": {"<field path>": ["..."]}``). ``openapi.yaml`` beside this
module describes exactly these endpoints.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.demo_partner import data

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_ORDER_LINES = 50
MAX_QTY = 10_000
NEW_ORDER_FIELDS = {
    "customer_id",
    "currency",
    "lines",
    "external_reference",
    "requested_delivery_date",
}
NEW_LINE_FIELDS = {"sku", "qty", "unit_price", "description"}
SKU_PATTERN = re.compile(r"^SKU-\d{5}$")
PRICE_PATTERN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def error(status: int, message: str, *, errors: dict | None = None, headers=None) -> JsonResponse:
    body: dict = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status, headers=headers)


# ------------------------------------------------------------------------- token


def _presented_tokens(request: HttpRequest) -> list[str]:
    tokens = []
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        tokens.append(credentials.strip())
    api_key = request.headers.get("X-API-Key", "").strip()
    if api_key:
        tokens.append(api_key)
    return tokens


def authorised(request: HttpRequest) -> bool:
    expected = str(getattr(settings, "PONTIS_DEMO_PARTNER_TOKEN", "") or "")
    if not expected:
        return False
    return any(
        hmac.compare_digest(token.encode(), expected.encode())
        for token in _presented_tokens(request)
    )


def partner_api(*methods: str) -> Callable:
    """Token check first, then the allowed methods (HEAD follows GET)."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not authorised(request):
                message = (
                    "Missing credentials: send 'Authorization: Bearer <token>' "
                    "or 'X-API-Key: <token>'."
                    if not _presented_tokens(request)
                    else "Invalid token."
                )
                return error(401, message, headers={"WWW-Authenticate": "Bearer"})
            if request.method not in allowed:
                return error(
                    405,
                    f"Method {request.method} is not allowed here.",
                    headers={"Allow": ", ".join(sorted(allowed))},
                )
            return view(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorator


# -------------------------------------------------------------------- pagination


class BadQuery(ValueError):
    pass


def _positive_int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"Query parameter {name} must be a positive integer, not {raw!r}.")
    if value < 1:
        raise BadQuery(f"Query parameter {name} must be a positive integer, not {raw!r}.")
    return value


def _page_url(request: HttpRequest, page: int, page_size: int) -> str:
    params = [
        (key, value)
        for key, values in request.GET.lists()
        if key not in ("page", "page_size")
        for value in values
    ]
    params += [("page", str(page)), ("page_size", str(page_size))]
    return request.build_absolute_uri(f"{request.path}?{urlencode(params)}")


def paginated(request: HttpRequest, items: list | tuple) -> JsonResponse:
    try:
        page = _positive_int(request, "page", 1)
        page_size = min(_positive_int(request, "page_size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    except BadQuery as exc:
        return error(400, str(exc))
    count = len(items)
    last_page = max(1, -(-count // page_size))
    if page > last_page:
        return error(404, f"Page {page} does not exist; the last page is {last_page}.")
    start = (page - 1) * page_size
    next_url = _page_url(request, page + 1, page_size) if page < last_page else None
    previous_url = _page_url(request, page - 1, page_size) if page > 1 else None
    response = JsonResponse(
        {
            "count": count,
            "next": next_url,
            "previous": previous_url,
            "results": list(items[start : start + page_size]),
        }
    )
    links = []
    if next_url:
        links.append(f'<{next_url}>; rel="next"')
    if previous_url:
        links.append(f'<{previous_url}>; rel="prev"')
    if links:
        response["Link"] = ", ".join(links)
    return response


def _enum_filter(request: HttpRequest, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.GET.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadQuery(
            f"Query parameter {name} must be one of {', '.join(allowed)}, not {value!r}."
        )
    return value


# ---------------------------------------------------------------------- customers


@partner_api("GET")
def index(request):
    """The API root: what it serves, so that a connectivity check has a 200 to find."""
    return JsonResponse(
        {
            "name": "Demo Partner API",
            "resources": {
                "customers": request.build_absolute_uri("customers/"),
                "orders": request.build_absolute_uri("orders/"),
                "invoices": request.build_absolute_uri("invoices/"),
            },
        }
    )


@partner_api("GET")
def customer_list(request):
    return paginated(request, data.dataset().customers)


@partner_api("GET")
def customer_detail(request, customer_id: str):
    customer = data.dataset().customers_by_id.get(customer_id)
    if customer is None:
        return error(404, f"Customer {customer_id} not found.")
    return JsonResponse(customer)


# ------------------------------------------------------------------------- orders


@partner_api("GET", "POST")
def order_list(request):
    if request.method == "POST":
        return create_order(request)
    try:
        status = _enum_filter(request, "status", data.ORDER_STATUSES)
    except BadQuery as exc:
        return error(400, str(exc))
    customer_id = request.GET.get("customer_id") or None
    orders = data.dataset().orders
    if status or customer_id:
        orders = [
            o
            for o in orders
            if (status is None or o["status"] == status)
            and (customer_id is None or o["customer_id"] == customer_id)
        ]
    return paginated(request, orders)


@partner_api("GET")
def order_detail(request, number: str):
    order = data.dataset().orders_by_number.get(number)
    if order is None:
        return error(404, f"Order {number} not found.")
    return JsonResponse(order)


def _validate_line(line, index: int, errors: dict) -> dict | None:
    prefix = f"lines[{index}]"
    if not isinstance(line, dict):
        errors[prefix] = ["Must be an object with sku, qty and unit_price."]
        return None
    for name in sorted(set(line) - NEW_LINE_FIELDS):
        errors[f"{prefix}.{name}"] = ["Unknown field."]
    sku, qty, price = line.get("sku"), line.get("qty"), line.get("unit_price")
    description = line.get("description")
    if sku is None:
        errors[f"{prefix}.sku"] = ["This field is required."]
    elif not isinstance(sku, str) or not SKU_PATTERN.fullmatch(sku):
        errors[f"{prefix}.sku"] = ["Must look like SKU-12345."]
    if isinstance(qty, float) and qty.is_integer():
        qty = int(qty)  # 3.0 is the integer 3 in JSON
    if qty is None:
        errors[f"{prefix}.qty"] = ["This field is required."]
    elif isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
        errors[f"{prefix}.qty"] = [f"Must be an integer from 1 to {MAX_QTY}."]
    unit_price = None
    if price is None:
        errors[f"{prefix}.unit_price"] = ["This field is required."]
    elif not isinstance(price, str) or not PRICE_PATTERN.fullmatch(price):
        errors[f"{prefix}.unit_price"] = [
            'Must be a decimal string with at most two decimals, such as "12.50".'
        ]
    else:
        try:
            unit_price = Decimal(price)
        except InvalidOperation:  # pragma: no cover - the pattern already guarantees it
            unit_price = None
        if unit_price is None or unit_price <= 0:
            errors[f"{prefix}.unit_price"] = ["Must be greater than zero."]
    if description is not None and (not isinstance(description, str) or len(description) > 200):
        errors[f"{prefix}.description"] = ["Must be a string of at most 200 characters."]
    if any(key.startswith(prefix + ".") or key == prefix for key in errors):
        return None
    return {
        "line_number": index + 1,
        "sku": sku,
        "description": description,
        "qty": qty,
        "unit_price": data.money(unit_price),
        "line_total": data.money(unit_price * qty),
    }


def create_order(request):
    if not request.body.strip():
        return error(400, "The request body is empty: it must be a JSON object.")
    if request.content_type != "application/json":
        return error(415, "Send the order as application/json.")
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError) as exc:
        return error(400, f"The request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "The request body must be a JSON object.")

    errors: dict[str, list[str]] = {}
    for name in sorted(set(body) - NEW_ORDER_FIELDS):
        errors[name] = ["Unknown field."]

    dataset = data.dataset()
    customer_id = body.get("customer_id")
    customer = None
    if customer_id is None:
        errors["customer_id"] = ["This field is required."]
    elif not isinstance(customer_id, str):
        errors["customer_id"] = ["Must be a string such as C-10042."]
    else:
        customer = dataset.customers_by_id.get(customer_id)
        if customer is None:
            errors["customer_id"] = [f"Unknown customer {customer_id}."]

    currency = body.get("currency")
    if currency is not None and currency not in data.CURRENCIES:
        errors["currency"] = [f"Must be one of {', '.join(data.CURRENCIES)}."]

    reference = body.get("external_reference")
    if reference is not None and (not isinstance(reference, str) or not 1 <= len(reference) <= 35):
        errors["external_reference"] = ["Must be a string of 1 to 35 characters."]

    delivery = body.get("requested_delivery_date")
    if delivery is not None:
        try:
            if not isinstance(delivery, str) or not DATE_PATTERN.fullmatch(delivery):
                raise ValueError
            date.fromisoformat(delivery)
        except ValueError:
            errors["requested_delivery_date"] = ["Must be a date in YYYY-MM-DD form."]

    lines_in = body.get("lines")
    lines: list[dict] = []
    if lines_in is None:
        errors["lines"] = ["This field is required."]
    elif not isinstance(lines_in, list) or not 1 <= len(lines_in) <= MAX_ORDER_LINES:
        errors["lines"] = [f"Must be a list of 1 to {MAX_ORDER_LINES} order lines."]
    else:
        for index, line in enumerate(lines_in):
            validated = _validate_line(line, index, errors)
            if validated is not None:
                lines.append(validated)

    if errors:
        return error(400, "The order is invalid.", errors=errors)

    country = data.COUNTRIES[customer["country"]]
    now = timezone.now().replace(microsecond=0)
    order = {
        "number": f"SO-{data.FIRST_ORDER_NUMBER + data.ORDER_COUNT}",
        "customer_id": customer["id"],
        "status": "pending",
        "currency": currency or customer["currency"],
        "order_date": now.date().isoformat(),
        "requested_delivery_date": delivery,
        "external_reference": reference,
        "lines": [
            {**line, "description": line["description"] or _product_description(line["sku"])}
            for line in lines
        ],
        **data.order_totals(lines, country.vat_rate),
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    return JsonResponse(order, status=201)


def _product_description(sku: str) -> str:
    for product in data.dataset().products:
        if product["sku"] == sku:
            return product["description"]
    return sku


# ----------------------------------------------------------------------- invoices


@partner_api("GET")
def invoice_list(request):
    try:
        status = _enum_filter(request, "status", data.INVOICE_STATUSES)
    except BadQuery as exc:
        return error(400, str(exc))
    invoices = data.dataset().invoices
    if status:
        invoices = [i for i in invoices if i["status"] == status]
    return paginated(request, invoices)


@partner_api("GET")
def invoice_detail(request, number: str):
    invoice = data.dataset().invoices_by_number.get(number)
    if invoice is None:
        return error(404, f"Invoice {number} not found.")
    return JsonResponse(invoice)
