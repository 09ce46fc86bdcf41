"""The demo partner API (apps.demo_partner): data, token, pagination, orders, and the spec."""

import copy
import re
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from django.test import Client
from django.urls import reverse
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from apps.demo_partner import data, urls

TOKEN = "test-partner-token-1234"
BASE = "/demo-partner/"
SPEC_URI = "urn:pontis:demo-partner:openapi"


@pytest.fixture(autouse=True)
def partner_token(settings):
    settings.PONTIS_DEMO_PARTNER_TOKEN = TOKEN


@pytest.fixture
def api(client):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


# ----------------------------------------------------------------- spec helpers


def _openapi_to_jsonschema(node):
    """OpenAPI 3.0 ``nullable`` becomes a JSON Schema null type; the rest is kept."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi_to_jsonschema(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value):
        if not isinstance(value, str):
            return True
        if not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value
        ):
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None

    @checker.checks("date", raises=ValueError)
    def _date(value):
        if isinstance(value, str):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError(f"{value!r} is not a date")
            date.fromisoformat(value)
        return True

    @checker.checks("uri")
    def _uri(value):
        if not isinstance(value, str):
            return True
        parsed = urlparse(value)
        return bool(parsed.scheme in ("http", "https") and parsed.netloc)

    return checker


@pytest.fixture(scope="module")
def spec():
    with data.SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def validator_for(spec):
    document = _openapi_to_jsonschema(spec)
    # Local references only: the registry holds the spec and retrieves nothing else.
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(document, default_specification=DRAFT7)
    )
    checker = _format_checker()

    def make(schema_name: str):
        return jsonschema.Draft7Validator(
            {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"},
            registry=registry,
            format_checker=checker,
        )

    return make


def assert_valid(validator_for, schema_name, instance):
    errors = sorted(validator_for(schema_name).iter_errors(instance), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


# ------------------------------------------------------------------------ data


def test_data_set_sizes_and_ids():
    dataset = data.dataset()
    assert len(dataset.customers) == data.CUSTOMER_COUNT == 240
    assert len(dataset.orders) == data.ORDER_COUNT == 600
    assert len(dataset.invoices) == data.INVOICE_COUNT == 500
    assert len(dataset.customers_by_id) == 240
    assert len(dataset.orders_by_number) == 600
    assert len(dataset.invoices_by_number) == 500
    assert "C-10042" in dataset.customers_by_id
    assert [c["id"] for c in dataset.customers] == sorted(c["id"] for c in dataset.customers)
    assert [o["number"] for o in dataset.orders] == sorted(o["number"] for o in dataset.orders)
    assert [i["number"] for i in dataset.invoices] == sorted(i["number"] for i in dataset.invoices)


def test_data_is_deterministic():
    first = data.dataset.__wrapped__()
    second = data.dataset.__wrapped__()
    assert first.customers == second.customers
    assert first.orders == second.orders
    assert first.invoices == second.invoices
    assert data.dataset().orders == first.orders


def test_data_is_internally_consistent():
    dataset = data.dataset()
    statuses = {o["status"] for o in dataset.orders}
    assert statuses == set(data.ORDER_STATUSES)
    assert {i["status"] for i in dataset.invoices} == set(data.INVOICE_STATUSES)
    for order in dataset.orders:
        customer = dataset.customers_by_id[order["customer_id"]]
        assert order["currency"] == customer["currency"]
        assert 1 <= len(order["lines"]) <= 5
        for line in order["lines"]:
            assert Decimal(line["line_total"]) == Decimal(line["unit_price"]) * line["qty"]
        subtotal = sum(Decimal(line["line_total"]) for line in order["lines"])
        assert Decimal(order["subtotal"]) == subtotal
        assert Decimal(order["total"]) == subtotal + Decimal(order["tax_amount"])
    as_of = data.AS_OF.date()
    for invoice in dataset.invoices:
        order = dataset.orders_by_number[invoice["order_number"]]
        assert order["status"] in ("confirmed", "shipped", "delivered")
        assert invoice["customer_id"] == order["customer_id"]
        assert invoice["total"] == order["total"]
        assert Decimal(invoice["amount_paid"]) + Decimal(invoice["amount_due"]) == Decimal(
            invoice["total"]
        )
        due = date.fromisoformat(invoice["due_date"])
        assert due > date.fromisoformat(invoice["issue_date"])
        if invoice["status"] == "paid":
            assert invoice["amount_due"] == "0.00" and invoice["paid_at"]
        else:
            assert invoice["paid_at"] is None
            assert (invoice["status"] == "overdue") == (due < as_of)


# ----------------------------------------------------------------------- token


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_X_API_KEY": "wrong-token"},
        {"HTTP_X_API_KEY": TOKEN[:-1]},
    ],
)
@pytest.mark.parametrize(
    "path", ["customers/", "customers/C-10042/", "orders/", "invoices/INV-2024-00001/"]
)
def test_missing_or_wrong_token_is_401(client, headers, path):
    response = client.get(BASE + path, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
    assert TOKEN not in response.content.decode()


def test_post_without_token_is_401(client):
    response = client.post(BASE + "orders/", {}, content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
        {"HTTP_AUTHORIZATION": f"bearer {TOKEN}"},
        {"HTTP_X_API_KEY": TOKEN},
        {"HTTP_AUTHORIZATION": "Bearer wrong", "HTTP_X_API_KEY": TOKEN},
    ],
)
def test_valid_token_is_accepted(client, headers):
    assert client.get(BASE + "customers/", **headers).status_code == 200


def test_token_follows_settings(client, settings):
    settings.PONTIS_DEMO_PARTNER_TOKEN = "rotated-token-5678"
    assert client.get(BASE + "customers/", HTTP_X_API_KEY=TOKEN).status_code == 401
    assert client.get(BASE + "customers/", HTTP_X_API_KEY="rotated-token-5678").status_code == 200


def test_empty_configured_token_rejects_everything(client, settings):
    settings.PONTIS_DEMO_PARTNER_TOKEN = ""
    assert client.get(BASE + "customers/", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get(BASE + "customers/", HTTP_X_API_KEY="").status_code == 401


# ------------------------------------------------------------------ pagination


def test_url_names_are_namespaced():
    assert urls.app_name == "demo_partner"
    assert reverse("demo_partner:customer-list") == "/demo-partner/customers/"
    assert reverse("demo_partner:order-detail", args=["SO-200001"]) == (
        "/demo-partner/orders/SO-200001/"
    )


def test_first_page(api):
    response = api.get(BASE + "customers/")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 240
    assert len(body["results"]) == 20
    assert body["results"][0]["id"] == "C-10001"
    assert body["previous"] is None
    assert body["next"] == "http://testserver/demo-partner/customers/?page=2&page_size=20"
    assert response["Link"] == f'<{body["next"]}>; rel="next"'


def test_middle_page_links(api):
    response = api.get(BASE + "customers/?page=2&page_size=50")
    body = response.json()
    assert [c["id"] for c in body["results"]][:2] == ["C-10051", "C-10052"]
    assert body["next"].endswith("/demo-partner/customers/?page=3&page_size=50")
    assert body["previous"].endswith("/demo-partner/customers/?page=1&page_size=50")
    assert response["Link"] == (f'<{body["next"]}>; rel="next", <{body["previous"]}>; rel="prev"')


def test_last_page(api):
    response = api.get(BASE + "customers/?page=3&page_size=100")
    body = response.json()
    assert len(body["results"]) == 40
    assert body["next"] is None
    assert response["Link"] == f'<{body["previous"]}>; rel="prev"'


def test_page_size_is_capped_at_100(api):
    body = api.get(BASE + "orders/?page_size=500").json()
    assert len(body["results"]) == 100
    assert "page_size=100" in body["next"]


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=abc", "page_size=0", "page_size=x", "page=1.5"]
)
def test_bad_paging_parameters_are_400(api, query):
    response = api.get(BASE + "customers/?" + query)
    assert response.status_code == 400
    assert "must be a positive integer" in response.json()["error"]


def test_page_past_the_end_is_404(api):
    response = api.get(BASE + "invoices/?page=99")
    assert response.status_code == 404
    assert response.json() == {"error": "Page 99 does not exist; the last page is 25."}


@pytest.mark.parametrize(
    ("path", "key", "count"),
    [("customers/", "id", 240), ("orders/", "number", 600), ("invoices/", "number", 500)],
)
def test_following_next_links_visits_everything_once(api, path, key, count):
    seen = []
    url = BASE + path + "?page_size=37"
    while url:
        body = api.get(url).json()
        seen += [item[key] for item in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == count


# ------------------------------------------------------------------- filters


@pytest.mark.parametrize("status", data.ORDER_STATUSES)
def test_order_status_filter(api, status):
    expected = [o["number"] for o in data.dataset().orders if o["status"] == status]
    body = api.get(BASE + f"orders/?status={status}&page_size=100").json()
    assert body["count"] == len(expected)
    assert [o["number"] for o in body["results"]] == expected[:100]
    assert all(o["status"] == status for o in body["results"])


def test_order_customer_filter_and_links_keep_filters(api):
    customer_id = data.dataset().orders[0]["customer_id"]
    expected = [o["number"] for o in data.dataset().orders if o["customer_id"] == customer_id]
    body = api.get(BASE + f"orders/?customer_id={customer_id}&page_size=1").json()
    assert body["count"] == len(expected) >= 1
    assert body["results"][0]["number"] == expected[0]
    if len(expected) > 1:
        assert f"customer_id={customer_id}" in body["next"]


def test_order_filters_combine(api):
    order = data.dataset().orders[0]
    body = api.get(
        BASE + f"orders/?customer_id={order['customer_id']}&status={order['status']}"
    ).json()
    assert body["count"] >= 1
    assert all(
        o["customer_id"] == order["customer_id"] and o["status"] == order["status"]
        for o in body["results"]
    )


def test_unknown_customer_filter_is_empty(api):
    body = api.get(BASE + "orders/?customer_id=C-99999").json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("status", data.INVOICE_STATUSES)
def test_invoice_status_filter(api, status):
    expected = sum(1 for i in data.dataset().invoices if i["status"] == status)
    body = api.get(BASE + f"invoices/?status={status}").json()
    assert body["count"] == expected > 0
    assert all(i["status"] == status for i in body["results"])


@pytest.mark.parametrize("path", ["orders/?status=shipping", "invoices/?status=PAID"])
def test_unknown_status_filter_is_400(api, path):
    response = api.get(BASE + path)
    assert response.status_code == 400
    assert "must be one of" in response.json()["error"]


# ---------------------------------------------------------------------- details


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ("customers/C-10042/", "id", "C-10042"),
        ("orders/SO-200562/", "number", "SO-200562"),
        ("invoices/INV-2024-00465/", "number", "INV-2024-00465"),
    ],
)
def test_detail(api, path, key, value):
    response = api.get(BASE + path)
    assert response.status_code == 200
    assert response.json()[key] == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("customers/C-99999/", "Customer C-99999 not found."),
        ("orders/SO-999999/", "Order SO-999999 not found."),
        ("invoices/INV-1999-00001/", "Invoice INV-1999-00001 not found."),
        ("customers/../", None),
    ],
)
def test_unknown_ids_are_404_json(api, path, message):
    response = api.get(BASE + path)
    assert response.status_code == 404
    if message:
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"error": message}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", "orders/", "GET, HEAD, POST"),
        ("delete", "orders/SO-200001/", "GET, HEAD"),
        ("post", "customers/", "GET, HEAD"),
        ("patch", "invoices/INV-2024-00001/", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405(api, method, path, allow):
    response = getattr(api, method)(BASE + path, {}, content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == allow
    assert "not allowed" in response.json()["error"]


# ------------------------------------------------------------------ POST orders

NEW_ORDER = {
    "customer_id": "C-10042",
    "external_reference": "PO-48213",
    "requested_delivery_date": "2025-02-03",
    "lines": [
        {"sku": "SKU-10050", "qty": 2, "unit_price": "24.42"},
        {"sku": "SKU-99999", "qty": 1, "unit_price": "1661.6", "description": "Custom part"},
    ],
}


def test_create_order_echoes_the_order(api):
    response = api.post(BASE + "orders/", NEW_ORDER, content_type="application/json")
    assert response.status_code == 201
    order = response.json()
    assert order["number"] == "SO-200601"
    assert order["status"] == "pending"
    assert order["customer_id"] == "C-10042"
    assert order["currency"] == "EUR"  # the customer's currency by default
    assert order["external_reference"] == "PO-48213"
    assert order["requested_delivery_date"] == "2025-02-03"
    assert order["lines"] == [
        {
            "line_number": 1,
            "sku": "SKU-10050",
            "description": "Standard cable tray 3m",
            "qty": 2,
            "unit_price": "24.42",
            "line_total": "48.84",
        },
        {
            "line_number": 2,
            "sku": "SKU-99999",
            "description": "Custom part",
            "qty": 1,
            "unit_price": "1661.60",
            "line_total": "1661.60",
        },
    ]
    # C-10042 is Dutch: 21 % VAT.
    assert (order["subtotal"], order["tax_rate"], order["tax_amount"], order["total"]) == (
        "1710.44",
        "0.21",
        "359.19",
        "2069.63",
    )


def test_create_order_is_not_persisted(api):
    assert api.post(BASE + "orders/", NEW_ORDER, content_type="application/json").status_code == 201
    assert api.get(BASE + "orders/SO-200601/").status_code == 404
    assert api.get(BASE + "orders/").json()["count"] == 600


def test_create_order_needs_no_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        BASE + "orders/", NEW_ORDER, content_type="application/json", HTTP_X_API_KEY=TOKEN
    )
    assert response.status_code == 201


def test_create_order_accepts_integral_float_qty_and_explicit_currency(api):
    body = {**NEW_ORDER, "currency": "USD", "lines": [{**NEW_ORDER["lines"][0], "qty": 3.0}]}
    order = api.post(BASE + "orders/", body, content_type="application/json").json()
    assert order["currency"] == "USD"
    assert order["lines"][0]["qty"] == 3


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


def _line(**changes):
    line = {"sku": "SKU-10050", "qty": 2, "unit_price": "24.42"}
    line.update(changes)
    return {k: v for k, v in line.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_without(NEW_ORDER, "customer_id"), "customer_id", "This field is required."),
        ({**NEW_ORDER, "customer_id": 10042}, "customer_id", "Must be a string such as C-10042."),
        ({**NEW_ORDER, "customer_id": "C-99999"}, "customer_id", "Unknown customer C-99999."),
        (_without(NEW_ORDER, "lines"), "lines", "This field is required."),
        ({**NEW_ORDER, "lines": []}, "lines", "Must be a list of 1 to 50 order lines."),
        ({**NEW_ORDER, "lines": {"sku": "x"}}, "lines", "Must be a list of 1 to 50 order lines."),
        ({**NEW_ORDER, "lines": [_line()] * 51}, "lines", "Must be a list of 1 to 50 order lines."),
        ({**NEW_ORDER, "lines": ["SKU-1"]}, "lines[0]", "Must be an object"),
        ({**NEW_ORDER, "lines": [_line(sku=...)]}, "lines[0].sku", "This field is required."),
        ({**NEW_ORDER, "lines": [_line(sku="ABC")]}, "lines[0].sku", "Must look like SKU-12345."),
        (
            {**NEW_ORDER, "lines": [_line(), _line(sku="SKU-1\n")]},
            "lines[1].sku",
            "Must look like SKU-12345.",
        ),
        ({**NEW_ORDER, "lines": [_line(qty=...)]}, "lines[0].qty", "This field is required."),
        ({**NEW_ORDER, "lines": [_line(qty=0)]}, "lines[0].qty", "Must be an integer"),
        ({**NEW_ORDER, "lines": [_line(qty=10001)]}, "lines[0].qty", "Must be an integer"),
        ({**NEW_ORDER, "lines": [_line(qty="2")]}, "lines[0].qty", "Must be an integer"),
        ({**NEW_ORDER, "lines": [_line(qty=True)]}, "lines[0].qty", "Must be an integer"),
        ({**NEW_ORDER, "lines": [_line(qty=1.5)]}, "lines[0].qty", "Must be an integer"),
        (
            {**NEW_ORDER, "lines": [_line(unit_price=...)]},
            "lines[0].unit_price",
            "This field is required.",
        ),
        ({**NEW_ORDER, "lines": [_line(unit_price=24.42)]}, "lines[0].unit_price", "decimal"),
        ({**NEW_ORDER, "lines": [_line(unit_price="1.234")]}, "lines[0].unit_price", "decimal"),
        ({**NEW_ORDER, "lines": [_line(unit_price="-1")]}, "lines[0].unit_price", "decimal"),
        (
            {**NEW_ORDER, "lines": [_line(unit_price="0.00")]},
            "lines[0].unit_price",
            "Must be greater than zero.",
        ),
        ({**NEW_ORDER, "lines": [_line(colour="red")]}, "lines[0].colour", "Unknown field."),
        (
            {**NEW_ORDER, "lines": [_line(description=5)]},
            "lines[0].description",
            "at most 200",
        ),
        ({**NEW_ORDER, "currency": "BTC"}, "currency", "Must be one of"),
        ({**NEW_ORDER, "external_reference": ""}, "external_reference", "1 to 35"),
        ({**NEW_ORDER, "external_reference": "x" * 36}, "external_reference", "1 to 35"),
        ({**NEW_ORDER, "requested_delivery_date": "03/02/2025"}, "requested_delivery_date", "YYYY"),
        ({**NEW_ORDER, "requested_delivery_date": "2025-02-30"}, "requested_delivery_date", "YYYY"),
        ({**NEW_ORDER, "requested_delivery_date": "2025-W05-1"}, "requested_delivery_date", "YYYY"),
        ({**NEW_ORDER, "status": "shipped"}, "status", "Unknown field."),
    ],
)
def test_create_order_field_errors(api, validator_for, body, field, message):
    response = api.post(BASE + "orders/", body, content_type="application/json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "The order is invalid."
    assert field in payload["errors"], payload
    assert any(message in text for text in payload["errors"][field]), payload
    assert_valid(validator_for, "Error", payload)


def test_create_order_reports_all_errors_at_once(api):
    body = {"customer_id": "C-1", "lines": [_line(qty=0, unit_price="x")], "extra": 1}
    errors = api.post(BASE + "orders/", body, content_type="application/json").json()["errors"]
    assert set(errors) == {"customer_id", "lines[0].qty", "lines[0].unit_price", "extra"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("", "must be a JSON object"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_create_order_malformed_body_is_400(api, raw, message):
    response = api.post(BASE + "orders/", raw, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_create_order_needs_json_content_type(api):
    response = api.post(BASE + "orders/", {"customer_id": "C-10042"})  # multipart form
    assert response.status_code == 415
    assert response.json() == {"error": "Send the order as application/json."}


def test_create_order_accepts_json_with_charset(api):
    response = api.post(
        BASE + "orders/",
        NEW_ORDER,
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 201


# -------------------------------------------------------------------- the spec


def test_spec_is_valid_openapi_303(spec):
    assert spec["openapi"] == "3.0.3"
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)


def test_spec_describes_exactly_these_endpoints(spec):
    routes = {}
    for pattern in urls.urlpatterns:
        route = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        routes[route] = pattern.callback
    assert set(spec["paths"]) == set(routes)
    for route, operations in spec["paths"].items():
        methods = {m for m in operations if m in ("get", "post", "put", "patch", "delete")}
        assert methods == ({"get", "post"} if route == "/orders/" else {"get"}), route


def test_spec_security_schemes(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert (schemes["apiKeyAuth"]["in"], schemes["apiKeyAuth"]["name"]) == ("header", "X-API-Key")
    assert spec["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]


def test_spec_enums_match_the_data(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["OrderStatus"]["enum"] == list(data.ORDER_STATUSES)
    assert schemas["InvoiceStatus"]["enum"] == list(data.INVOICE_STATUSES)
    assert schemas["Segment"]["enum"] == list(data.SEGMENTS)
    assert schemas["Currency"]["enum"] == list(data.CURRENCIES)
    assert schemas["CountryCode"]["enum"] == sorted(data.COUNTRIES)


def test_spec_examples_validate(spec, validator_for):
    for name, schema in spec["components"]["schemas"].items():
        if "example" in schema:
            assert_valid(validator_for, name, schema["example"])


def test_spec_required_lists_cover_every_property(spec):
    """Responses always carry every field (null where documented), so all are required."""
    schemas = spec["components"]["schemas"]
    for name in ("Customer", "Address", "Order", "OrderLine", "Invoice", "OrderPage"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("customers/?page_size=100", "CustomerPage"),
        ("customers/?page=3&page_size=100", "CustomerPage"),
        ("customers/C-10042/", "Customer"),
        ("orders/?page_size=100&page=6", "OrderPage"),
        ("orders/?status=pending", "OrderPage"),
        ("orders/SO-200562/", "Order"),
        ("invoices/?status=overdue&page_size=100", "InvoicePage"),
        ("invoices/INV-2024-00465/", "Invoice"),
    ],
)
def test_responses_match_the_spec(api, validator_for, path, schema):
    response = api.get(BASE + path)
    assert response.status_code == 200
    assert_valid(validator_for, schema, response.json())


def test_every_record_matches_the_spec(validator_for):
    dataset = data.dataset()
    for name, records in (
        ("Customer", dataset.customers),
        ("Order", dataset.orders),
        ("Invoice", dataset.invoices),
    ):
        validator = validator_for(name)
        for record in records:
            errors = list(validator.iter_errors(record))
            assert not errors, (record, [e.message for e in errors[:3]])


def test_created_order_and_errors_match_the_spec(api, validator_for):
    created = api.post(BASE + "orders/", NEW_ORDER, content_type="application/json").json()
    assert_valid(validator_for, "Order", created)
    assert_valid(validator_for, "NewOrder", NEW_ORDER)
    assert_valid(validator_for, "Error", Client().get(BASE + "orders/").json())
    assert_valid(validator_for, "Error", api.get(BASE + "orders/SO-1/").json())
    assert_valid(validator_for, "Error", api.get(BASE + "orders/?page=0").json())


def test_schema_validation_catches_drift(api, validator_for):
    """The helper is not vacuous: a response that drifts from the spec fails."""
    order = copy.deepcopy(api.get(BASE + "orders/SO-200562/").json())
    order["total"] = 6061.16
    del order["currency"]
    order["status"] = "lost"
    order["created_at"] = "yesterday"
    messages = [e.message for e in validator_for("Order").iter_errors(order)]
    assert len(messages) == 4, messages
