"""Contract-test checks (apps.testing.checks): plain functions, no database, no HTTP.

Two realistic specs drive most tests: a Shop API in OpenAPI 3.0 (customers and orders with
nested objects, a pattern, enums, arrays, date-times, nullable, allOf, oneOf + discriminator, a
`default` response and a `4XX` range) and a Ledger API in OpenAPI 3.1. Validator tests run on
both backends (jsonschema-rs and pure-Python jsonschema) and expect the same answers. The demo
partner's own spec is checked against pages built from its real data in strict mode.
"""

from __future__ import annotations

import copy
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.catalog.specs import load_document
from apps.demo_partner import data as demo_data
from apps.testing import checks
from apps.testing.checks import (
    CheckResult,
    ContractError,
    UndefinedVariable,
    Violation,
    cached_validator,
    compile_response_validator,
    evaluate_assertion,
    find_operation,
    render,
    response_schema,
    validate_assertion,
    variables_in,
)

BACKENDS = ["rs", "python"] if checks._rs is not None else ["python"]

SHOP_30 = r"""
openapi: 3.0.3
info:
  title: Shop API
  version: 1.0.0
servers:
  - url: https://shop.example.com/api/v1
paths:
  /customers/:
    get:
      operationId: listCustomers
      responses:
        '200':
          description: A page of customers.
          headers:
            X-Total-Count:
              required: true
              schema: {type: integer, minimum: 0}
            X-Rate-Limit:
              $ref: '#/components/headers/RateLimit'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/CustomerPage'
        4XX:
          $ref: '#/components/responses/Problem'
        default:
          $ref: '#/components/responses/Error'
  /customers/search/:
    get:
      operationId: searchCustomers
      responses:
        '200':
          description: Matching customers.
          content:
            application/json:
              schema:
                type: array
                items:
                  $ref: '#/components/schemas/Customer'
  /customers/{customer_id}/:
    parameters:
      - name: customer_id
        in: path
        required: true
        schema:
          $ref: '#/components/schemas/CustomerId'
    get:
      operationId: getCustomer
      responses:
        '200':
          description: The customer.
          content:
            application/json; charset=utf-8:
              schema:
                $ref: '#/components/schemas/Customer'
        '404':
          $ref: '#/components/responses/NotFound'
        4XX:
          $ref: '#/components/responses/Problem'
        default:
          $ref: '#/components/responses/Error'
    delete:
      operationId: deleteCustomer
      responses:
        '204':
          description: Deleted.
  /orders/:
    post:
      operationId: createOrder
      responses:
        '201':
          description: The order.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Order'
        '422':
          description: The order is invalid.
          content:
            application/problem+json:
              schema:
                $ref: '#/components/schemas/Problem'
  /orders/{number}/:
    get:
      operationId: getOrder
      responses:
        '200':
          description: The order.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Order'
  /exports/{name}.{ext}:
    get:
      operationId: getExport
      responses:
        '200':
          description: The export.
          content:
            text/csv:
              schema:
                type: string
components:
  headers:
    RateLimit:
      schema:
        type: integer
  responses:
    NotFound:
      description: No such customer.
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    Problem:
      description: A client error.
      content:
        application/problem+json:
          schema:
            $ref: '#/components/schemas/Problem'
    Error:
      description: Anything else.
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
  schemas:
    CustomerId:
      type: string
      pattern: '^C-\d{5}$'
      example: C-10001
    Address:
      type: object
      required: [line1, city, country]
      properties:
        line1: {type: string, minLength: 1}
        city: {type: string}
        country: {type: string, enum: [NL, DE, BE]}
    Customer:
      type: object
      required: [id, name, email, status, address, created_at, password]
      properties:
        id:
          $ref: '#/components/schemas/CustomerId'
        name: {type: string, minLength: 1, example: Acme B.V.}
        email: {type: string, format: email}
        status: {type: string, enum: [open, paid, overdue]}
        vat_number: {type: string, nullable: true}
        tier: {type: string, enum: [gold, silver], nullable: true}
        address:
          $ref: '#/components/schemas/Address'
        tags:
          type: array
          items: {type: string}
        created_at: {type: string, format: date-time}
        birthday: {type: string, format: date}
        uid: {type: string, format: uuid}
        website: {type: string, format: uri}
        last_ip: {type: string, format: ipv4}
        last_ip6: {type: string, format: ipv6}
        password: {type: string, writeOnly: true}
        metadata:
          type: object
          additionalProperties: true
          properties:
            source: {type: string}
      example:
        id: C-10001
        name: Acme B.V.
    CustomerPage:
      type: object
      required: [count, next, results]
      properties:
        count: {type: integer, minimum: 0}
        next: {type: string, format: uri, nullable: true}
        results:
          type: array
          items:
            $ref: '#/components/schemas/Customer'
    Resource:
      type: object
      required: [id, created_at]
      properties:
        id: {type: string, format: uuid}
        created_at: {type: string, format: date-time}
    Order:
      allOf:
        - $ref: '#/components/schemas/Resource'
        - type: object
          required: [number, customer_id, status, total, items, payment]
          properties:
            number: {type: string, pattern: '^SO-\d{6}$'}
            customer_id:
              $ref: '#/components/schemas/CustomerId'
            customer:
              $ref: '#/components/schemas/Customer'
              nullable: true
            status: {type: string, enum: [open, paid, overdue]}
            total: {type: number, minimum: 0}
            discount: {type: number, minimum: 0, maximum: 100, exclusiveMaximum: true}
            items:
              type: array
              minItems: 1
              items:
                $ref: '#/components/schemas/OrderItem'
            payment:
              $ref: '#/components/schemas/Payment'
            note:
              nullable: true
              allOf:
                - $ref: '#/components/schemas/Note'
    Note:
      type: object
      required: [text]
      properties:
        text: {type: string}
    OrderItem:
      type: object
      required: [sku, qty]
      properties:
        sku: {type: string}
        qty: {type: integer, minimum: 1}
    Payment:
      oneOf:
        - $ref: '#/components/schemas/CardPayment'
        - $ref: '#/components/schemas/TransferPayment'
      discriminator:
        propertyName: method
        mapping:
          card: '#/components/schemas/CardPayment'
          transfer: '#/components/schemas/TransferPayment'
    CardPayment:
      type: object
      required: [method, last4]
      properties:
        method: {type: string, enum: [card]}
        last4: {type: string, pattern: '^\d{4}$'}
    TransferPayment:
      type: object
      required: [method, iban]
      properties:
        method: {type: string, enum: [transfer]}
        iban: {type: string}
    Problem:
      type: object
      required: [title, status]
      properties:
        title: {type: string}
        status: {type: integer}
        detail: {type: string}
    Error:
      type: object
      additionalProperties: false
      required: [error]
      properties:
        error: {type: string}
"""

LEDGER_31 = r"""
openapi: 3.1.0
info:
  title: Ledger API
  version: 2.0.0
servers:
  - url: /ledger
paths:
  /entries/{id}:
    get:
      responses:
        '200':
          description: One entry.
          content:
            application/vnd.ledger+json:
              schema:
                $ref: '#/components/schemas/Entry'
components:
  schemas:
    Money:
      type: object
      required: [amount, currency]
      properties:
        amount: {type: string, pattern: '^-?\d+\.\d{2}$'}
        currency: {const: EUR}
    Base:
      type: object
      properties:
        version: {type: integer}
    Entry:
      $ref: '#/components/schemas/Base'
      type: object
      required: [id, kind, amount]
      properties:
        id: {type: integer, exclusiveMinimum: 0}
        kind: {enum: [debit, credit]}
        memo: {type: [string, 'null'], maxLength: 20}
        legacy: {type: string, nullable: true}
        amount:
          $ref: '#/components/schemas/Money'
          description: The amount, in euros.
        tags:
          type: array
          prefixItems:
            - {type: string}
          items: false
        booked_at: {type: string, format: date-time}
      examples:
        - id: 1
          kind: debit
"""


@pytest.fixture(scope="module")
def shop() -> dict:
    return load_document(SHOP_30, "shop.yaml")


@pytest.fixture(scope="module")
def ledger() -> dict:
    return load_document(LEDGER_31, "ledger.yaml")


@pytest.fixture(autouse=True)
def _fresh_validator_cache():
    checks.clear_validator_cache()
    yield
    checks.clear_validator_cache()


def customer(**changes) -> dict:
    body = {
        "id": "C-10001",
        "name": "Acme B.V.",
        "email": "jane@acme.example",
        "status": "open",
        "vat_number": "NL123456789B01",
        "tier": "gold",
        "address": {"line1": "Oudegracht 92", "city": "Utrecht", "country": "NL"},
        "tags": ["key account"],
        "created_at": "2024-01-15T03:24:37+01:00",
        "birthday": "1990-02-28",
        "uid": "123e4567-e89b-12d3-a456-426614174000",
        "website": "https://acme.example/about?lang=en",
        "last_ip": "10.0.0.1",
        "last_ip6": "::1",
        "metadata": {"source": "crm", "anything": ["goes"]},
    }
    body.update(changes)
    return body


def order(**changes) -> dict:
    body = {
        "id": "0b6f1c0e-6a8e-4c53-9b1c-2a3f4d5e6f70",
        "created_at": "2024-12-21T09:27:49+01:00",
        "number": "SO-200562",
        "customer_id": "C-10001",
        "customer": customer(),
        "status": "paid",
        "total": 99.5,
        "discount": 10,
        "items": [
            {"sku": "SKU-1", "qty": 1},
            {"sku": "SKU-2", "qty": 2},
            {"sku": "SKU-3", "qty": 3},
        ],
        "payment": {"method": "card", "last4": "4242"},
        "note": {"text": "leave at the door"},
    }
    body.update(changes)
    return body


def schema_of(document: dict, method: str, path: str, status: int = 200, content_type=None):
    found = find_operation(document, method, path)
    assert found is not None, f"{method} {path} not found"
    schema, reason = response_schema(document, found[1], status, content_type)
    assert schema is not None, reason
    return schema


def validator(document, method, path, *, strict=False, backend="rs", status=200, content_type=None):
    schema = schema_of(document, method, path, status, content_type)
    return compile_response_validator(
        document, schema, openapi_version=document["openapi"], strict=strict, backend=backend
    )


def messages(violations: list[Violation]) -> list[str]:
    return [v.message for v in violations]


# --------------------------------------------------------------------------------------
# Check names and results
# --------------------------------------------------------------------------------------


def test_check_names_are_the_documented_strings():
    assert checks.STATUS_CODE == "status code conforms"
    assert checks.CONTENT_TYPE == "content type conforms"
    assert checks.RESPONSE_HEADERS == "response headers conform"
    assert checks.RESPONSE_SCHEMA == "response schema conforms"
    assert checks.NOT_SERVER_ERROR == "not a server error"
    assert checks.MAX_LATENCY == "within max latency"
    assert checks.INVALID_INPUT_REJECTED == "invalid input rejected"
    assert checks.NO_CREDENTIALS_REJECTED == "request without credentials rejected"


def test_check_result_defaults_to_no_details_and_does_not_share_them():
    first = CheckResult("x", None, "not applicable")
    second = CheckResult("y", True, "ok")
    first.details.append("a")
    assert second.details == []
    assert first.passed is None


# --------------------------------------------------------------------------------------
# find_operation
# --------------------------------------------------------------------------------------


def test_find_operation_matches_a_template_and_ignores_the_query_string(shop):
    template, operation = find_operation(shop, "GET", "/customers/C-10001/?expand=address#top")
    assert template == "/customers/{customer_id}/"
    assert operation["operationId"] == "getCustomer"
    assert find_operation(shop, "delete", "/customers/C-10001/")[1]["operationId"] == (
        "deleteCustomer"
    )


def test_find_operation_prefers_a_concrete_path_over_a_template(shop):
    template, operation = find_operation(shop, "GET", "/customers/search/")
    assert template == "/customers/search/"
    assert operation["operationId"] == "searchCustomers"


def test_find_operation_strips_the_base_path_of_the_servers(shop, ledger):
    # The path part of an absolute server URL ...
    assert find_operation(shop, "GET", "/api/v1/customers/")[0] == "/customers/"
    assert find_operation(shop, "GET", "https://shop.example.com/api/v1/orders/SO-1/")[0] == (
        "/orders/{number}/"
    )
    # ... and a relative server URL.
    assert find_operation(ledger, "GET", "/ledger/entries/42")[0] == "/entries/{id}"
    # Without the prefix the path still matches.
    assert find_operation(ledger, "GET", "/entries/42")[0] == "/entries/{id}"


def test_find_operation_decodes_segments_and_handles_partial_templates(shop):
    assert find_operation(shop, "GET", "/customers/C%2D10001/")[0] == "/customers/{customer_id}/"
    assert find_operation(shop, "GET", "/exports/report-2024.csv")[0] == "/exports/{name}.{ext}"


def test_find_operation_returns_none_for_what_the_spec_does_not_have(shop):
    assert find_operation(shop, "PATCH", "/customers/C-10001/") is None
    assert find_operation(shop, "GET", "/invoices/") is None
    assert find_operation(shop, "GET", "/customers") is None  # no trailing slash: not the same
    assert find_operation(shop, "GET", "/customers//") is None  # an empty parameter
    assert find_operation({"openapi": "3.0.3"}, "GET", "/") is None


def test_find_operation_on_the_demo_partner_spec():
    document = load_document(demo_data.SPEC_PATH.read_bytes(), "openapi.yaml")
    assert find_operation(document, "GET", "/demo-partner/customers/")[0] == "/customers/"
    assert find_operation(document, "GET", "/demo-partner/customers/C-10001/")[0] == (
        "/customers/{customer_id}/"
    )
    assert find_operation(document, "GET", "/demo-partner/")[0] == "/"
    assert find_operation(document, "POST", "/demo-partner/orders/")[1]["operationId"] == (
        "createOrder"
    )


# --------------------------------------------------------------------------------------
# response_schema
# --------------------------------------------------------------------------------------


def test_response_schema_falls_back_from_code_to_range_to_default(shop):
    _, operation = find_operation(shop, "GET", "/customers/C-10001/")
    exact = response_schema(shop, operation, 200, "application/json")
    assert exact == ({"$ref": "#/components/schemas/Customer"}, "")
    # 404 is declared exactly (NotFound: an Error body)
    assert response_schema(shop, operation, 404, "application/json") == (
        {"$ref": "#/components/schemas/Error"},
        "",
    )
    # 409 falls into 4XX (Problem, as application/problem+json)
    assert response_schema(shop, operation, 409, "application/problem+json") == (
        {"$ref": "#/components/schemas/Problem"},
        "",
    )
    # 503 is only covered by default
    assert response_schema(shop, operation, 503, None) == (
        {"$ref": "#/components/schemas/Error"},
        "",
    )


def test_response_schema_says_why_there_is_no_schema(shop):
    _, create = find_operation(shop, "POST", "/orders/")
    assert response_schema(shop, create, 418, "application/json") == (
        None,
        "no contract for status 418",
    )
    _, delete = find_operation(shop, "DELETE", "/customers/C-10001/")
    assert response_schema(shop, delete, 204, None) == (
        None,
        "the spec declares no JSON body for 204",
    )
    _, export = find_operation(shop, "GET", "/exports/a.csv")
    schema, reason = response_schema(shop, export, 200, "text/csv; charset=utf-8")
    assert schema is None
    assert "text/csv" in reason and "no contract" not in reason
    schema, reason = response_schema(shop, export, 200, "application/json")
    assert (schema, reason) == (None, "the spec declares no JSON body for 200")


def test_response_schema_ignores_media_type_parameters_and_accepts_json_suffixes(shop, ledger):
    _, get_customer = find_operation(shop, "GET", "/customers/C-10001/")
    # declared as "application/json; charset=utf-8", answered without the parameter
    assert response_schema(shop, get_customer, 200, "Application/JSON")[0] == {
        "$ref": "#/components/schemas/Customer"
    }
    _, entry = find_operation(ledger, "GET", "/entries/1")
    assert response_schema(ledger, entry, 200, "application/vnd.ledger+json; v=2")[0] == {
        "$ref": "#/components/schemas/Entry"
    }
    _, create = find_operation(shop, "POST", "/orders/")
    assert response_schema(shop, create, 422, "")[0] == {"$ref": "#/components/schemas/Problem"}


def test_response_schema_returns_the_json_schema_when_the_body_is_not_what_was_declared(shop):
    # HTML where JSON was promised: the schema comes back, so the body is checked (and fails).
    _, operation = find_operation(shop, "GET", "/customers/C-10001/")
    assert response_schema(shop, operation, 200, "text/html")[0] == {
        "$ref": "#/components/schemas/Customer"
    }


def test_response_schema_refuses_a_broken_response_ref(shop):
    document = copy.deepcopy(shop)
    document["paths"]["/orders/"]["post"]["responses"]["400"] = {
        "$ref": "#/components/responses/Missing"
    }
    _, operation = find_operation(document, "POST", "/orders/")
    with pytest.raises(ContractError, match="Missing"):
        response_schema(document, operation, 400, "application/json")


# --------------------------------------------------------------------------------------
# Schema validation: messages
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_valid_body_has_no_violations(shop, backend):
    for strict in (False, True):
        get_order = validator(shop, "GET", "/orders/SO-200562/", strict=strict, backend=backend)
        assert get_order.violations(order()) == []
        get_customer = validator(shop, "GET", "/customers/C-1/", strict=strict, backend=backend)
        assert get_customer.violations(customer()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_messages_are_human_and_name_a_jsonpath(shop, backend):
    check = validator(shop, "GET", "/orders/SO-200562/", backend=backend)
    body = order(status="shipped", customer=customer(email="abc"))
    body["items"][2]["qty"] = "3"
    del body["total"]
    assert messages(check.violations(body)) == [
        "`$.customer.email`: 'abc' is not an e-mail address",
        "`$.items[2].qty`: expected an integer, got a string ('3')",
        "`$.status`: 'shipped' is not one of 'open', 'paid', 'overdue'",
        "`$.total` is missing (required)",
    ]
    found = {v.path: v.keyword for v in check.violations(body)}
    assert found == {
        "$.customer.email": "format",
        "$.items[2].qty": "type",
        "$.status": "enum",
        "$.total": "required",
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_messages(shop, backend):
    check = validator(shop, "GET", "/orders/SO-200562/", backend=backend)
    body = order(number="X-1", total=-1, discount=100, items=[], customer=customer(name=""))
    assert messages(check.violations(body)) == [
        "`$.customer.name`: '' is shorter than 1 character",
        "`$.discount`: 100 is not less than 100",
        "`$.items`: has 0 items, at least 1 expected",
        "`$.number`: 'X-1' does not match the pattern '^SO-\\d{6}$'",
        "`$.total`: -1 is less than the minimum 0",
    ]
    body = order(customer=customer(name=None, tags="vip", address=None))
    assert messages(check.violations(body)) == [
        "`$.customer.address`: expected an object, got null",
        "`$.customer.name`: expected a string, got null",
        "`$.customer.tags`: expected an array, got a string ('vip')",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_paths_quote_keys_that_are_not_identifiers(shop, backend):
    check = validator(shop, "GET", "/customers/C-1/", strict=True, backend=backend)
    body = customer(**{"odd key": 1, "1": 2})
    assert messages(check.violations(body)) == [
        "`$['1']` is not declared in the schema (strict mode)",
        "`$['odd key']` is not declared in the schema (strict mode)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_values_are_cut_short(shop, backend):
    check = validator(shop, "GET", "/customers/C-1/", backend=backend)
    (violation,) = check.violations(customer(status="x" * 500))
    assert violation.message.startswith("`$.status`: '" + "x" * 59 + "…' is not one of")
    assert len(violation.message) < 140


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_number_of_violations_is_capped(shop, backend):
    check = validator(shop, "GET", "/customers/search/", backend=backend)
    body = [customer(email=f"bad {i}") for i in range(80)]
    found = check.violations(body)
    assert len(found) == checks.MAX_VIOLATIONS + 1
    assert found[0].message == "`$[0].email`: 'bad 0' is not an e-mail address"
    assert found[-1].keyword == "limit"
    assert found[-1].message == "… 30 more violation(s) not shown (first 50)"
    assert len(check.violations(body, limit=5)) == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_spec_own_additional_properties_false_is_not_called_strict_mode(shop, backend):
    check = validator(shop, "GET", "/customers/C-1/", status=404, backend=backend)
    (violation,) = check.violations({"error": "gone", "trace": "..."})
    assert violation == Violation(
        "$.trace", "additionalProperties", "`$.trace` is not declared in the schema"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_oneof_explains_the_alternative_the_discriminator_picks(shop, backend):
    check = validator(shop, "GET", "/orders/SO-200562/", backend=backend)
    body = order(payment={"method": "transfer", "last4": "4242"})
    assert messages(check.violations(body)) == [
        "`$.payment` matches none of the 2 alternatives (oneOf); "
        "closest: `$.payment.iban` is missing (required)"
    ]
    body = order(payment={"method": "card", "last4": "42"})
    assert messages(check.violations(body)) == [
        "`$.payment` matches none of the 2 alternatives (oneOf); "
        "closest: `$.payment.last4`: '42' does not match the pattern '^\\d{4}$'"
    ]


# --------------------------------------------------------------------------------------
# Schema validation: OpenAPI 3.0 semantics
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_nullable_allows_null(shop, backend):
    check = validator(shop, "GET", "/orders/SO-200562/", strict=True, backend=backend)
    body = order(note=None, customer=customer(vat_number=None, tier=None))
    assert check.violations(body) == []
    # nullable beside a $ref (siblings of $ref are otherwise ignored in 3.0)
    assert check.violations(order(customer=None)) == []
    page = validator(shop, "GET", "/customers/", strict=True, backend=backend)
    assert page.violations({"count": 0, "next": None, "results": []}) == []
    # nullable enum: null is fine, other values still are not
    assert messages(check.violations(order(customer=customer(tier="bronze")))) == [
        "`$.customer.tier`: 'bronze' is not one of 'gold', 'silver', null"
    ]
    # nullable without a type (allOf): the object is still checked
    assert messages(check.violations(order(note={"text": 5}))) == [
        "`$.note.text`: expected a string, got an integer (5)"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_only_properties_are_not_required_in_responses(shop, backend):
    check = validator(shop, "GET", "/customers/C-1/", backend=backend)
    assert "password" not in customer()
    assert check.violations(customer()) == []


def test_the_compiled_schema_is_self_contained_and_drops_examples(shop):
    check = validator(shop, "GET", "/orders/SO-1/", strict=True)
    compiled = check.schema
    refs, keys = [], set()

    def walk(node):
        if isinstance(node, dict):
            keys.update(node)
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(compiled)
    assert refs and all(ref.startswith("#/$defs/") for ref in refs)
    assert "example" not in keys
    assert "nullable" not in keys
    assert compiled["$schema"] == checks.DRAFT_2020_12
    # the discriminator stays, as an annotation
    assert "discriminator" in keys


# --------------------------------------------------------------------------------------
# Schema validation: strict mode
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_mode_refuses_an_undeclared_field_at_the_top(shop, backend):
    body = customer(extra_field=1)
    loose = validator(shop, "GET", "/customers/C-1/", backend=backend)
    assert loose.violations(body) == []
    strict = validator(shop, "GET", "/customers/C-1/", strict=True, backend=backend)
    assert strict.violations(body) == [
        Violation(
            "$.extra_field", "strict", "`$.extra_field` is not declared in the schema (strict mode)"
        )
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_mode_refuses_undeclared_fields_when_nested(shop, backend):
    strict = validator(shop, "GET", "/customers/", strict=True, backend=backend)
    body = {
        "count": 1,
        "next": None,
        "results": [customer(address={"line1": "x", "city": "y", "country": "NL", "floor": 3})],
    }
    assert messages(strict.violations(body)) == [
        "`$.results[0].address.floor` is not declared in the schema (strict mode)"
    ]
    # an object that says additionalProperties: true stays open
    body["results"][0] = customer(metadata={"source": "crm", "x": 1})
    assert strict.violations(body) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_mode_with_allof_allows_what_any_branch_declares(shop, backend):
    strict = validator(shop, "GET", "/orders/SO-200562/", strict=True, backend=backend)
    # id and created_at come from the Resource branch, number etc. from the other: all fine
    assert strict.violations(order()) == []
    body = order(extra_field=True)
    body["items"][0]["colour"] = "red"
    body["payment"]["cvv"] = "123"
    assert messages(strict.violations(body)) == [
        "`$.extra_field` is not declared in the schema (strict mode)",
        "`$.items[0].colour` is not declared in the schema (strict mode)",
        "`$.payment.cvv` is not declared in the schema (strict mode)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_mode_does_not_blame_declared_fields_when_a_branch_fails(shop, backend):
    strict = validator(shop, "GET", "/orders/SO-200562/", strict=True, backend=backend)
    body = order(extra_field=1)
    del body["total"]  # the second allOf branch fails: its properties go "unevaluated"
    body["items"][1]["qty"] = 0
    assert messages(strict.violations(body)) == [
        "`$.extra_field` is not declared in the schema (strict mode)",
        "`$.items[1].qty`: 0 is less than the minimum 1",
        "`$.total` is missing (required)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_mode_never_accepts_what_the_spec_refuses_under_oneof(backend):
    # Both alternatives match {"a": {"x": 1}} (their nested objects are open), so the spec
    # refuses it; closing the nested objects alone would let exactly one alternative match.
    document = {
        "openapi": "3.0.3",
        "components": {
            "schemas": {
                "Shape": {
                    "oneOf": [
                        {"type": "object", "properties": {"a": {"properties": {"x": {}}}}},
                        {"type": "object", "properties": {"a": {"properties": {"y": {}}}}},
                    ]
                }
            }
        },
    }
    schema = {"$ref": "#/components/schemas/Shape"}
    for strict in (False, True):
        check = compile_response_validator(
            document, schema, openapi_version="3.0.3", strict=strict, backend=backend
        )
        assert not check.is_valid({"a": {"x": 1}})
        assert "`$` matches more than one alternative ('oneOf' allows exactly one)" in messages(
            check.violations({"a": {"x": 1}})
        )


# --------------------------------------------------------------------------------------
# Schema validation: formats
# --------------------------------------------------------------------------------------

BAD_FORMATS = [
    ("created_at", "2024-13-01T00:00:00Z", "an RFC 3339 date-time"),
    ("created_at", "yesterday", "an RFC 3339 date-time"),
    ("created_at", "2024-01-15 03:24:37", "an RFC 3339 date-time"),
    ("created_at", "2024-01-15T03:24:37", "an RFC 3339 date-time"),
    ("birthday", "2024-02-30", "a date (YYYY-MM-DD)"),
    ("birthday", "20240115", "a date (YYYY-MM-DD)"),
    ("email", "abc", "an e-mail address"),
    ("email", "jane@", "an e-mail address"),
    ("email", "@acme.example", "an e-mail address"),
    ("email", "jane doe@acme.example", "an e-mail address"),
    ("uid", "not-a-uuid", "a UUID"),
    ("uid", "123e4567e89b12d3a456426614174000", "a UUID"),
    ("website", "not a uri", "a URI"),
    ("website", "/relative/path", "a URI"),
    ("last_ip", "256.1.1.1", "an IPv4 address"),
    ("last_ip", "1.2.3", "an IPv4 address"),
    ("last_ip6", "1::2::3", "an IPv6 address"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("field", "value", "what"), BAD_FORMATS)
def test_formats_fail_on_bad_values(shop, backend, field, value, what):
    check = validator(shop, "GET", "/customers/C-1/", backend=backend)
    assert messages(check.violations(customer(**{field: value}))) == [
        f"`$.{field}`: {value!r} is not {what}"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_good_format_values_pass(shop, backend):
    check = validator(shop, "GET", "/customers/C-1/", backend=backend)
    for changes in (
        {"created_at": "2024-01-15T03:24:37Z"},
        {"created_at": "2024-01-15T03:24:37.123456-05:00"},
        {"email": "o'brien+tag@sub.acme.example"},
        {"website": "mailto:jane@acme.example"},
        {"website": "http://[::1]:8080/x"},
        {"uid": "123E4567-E89B-12D3-A456-426614174000"},
        {"last_ip6": "2001:db8::8a2e:370:7334"},
    ):
        assert check.violations(customer(**changes)) == [], changes


def test_the_installed_format_dependencies_check_date_time():
    # jsonschema only checks date-time when rfc3339-validator is installed
    from jsonschema import Draft202012Validator

    assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
    assert not checks._py_format_checker().conforms("yesterday", "date-time")
    assert not checks._py_format_checker().conforms("jane@", "email")


@pytest.mark.skipif(checks._rs is None, reason="compares jsonschema-rs with jsonschema")
def test_both_backends_agree(shop):
    bodies = []
    for field, value, _ in BAD_FORMATS:
        bodies.append(order(customer=customer(**{field: value})))
    bodies += [
        order(payment={"method": "cash"}, extra=1, total="1"),
        order(items=[{"sku": 1, "qty": 1.5, "x": None}], status=None),
        {"id": 5},
        [],
        None,
    ]
    for strict in (False, True):
        fast = validator(shop, "GET", "/orders/SO-1/", strict=strict, backend="rs")
        slow = validator(shop, "GET", "/orders/SO-1/", strict=strict, backend="python")
        for body in bodies:
            assert fast.violations(body) == slow.violations(body), body
            assert fast.is_valid(body) == slow.is_valid(body)


# --------------------------------------------------------------------------------------
# Schema validation: OpenAPI 3.1
# --------------------------------------------------------------------------------------


def entry(**changes) -> dict:
    body = {
        "id": 7,
        "kind": "debit",
        "memo": None,
        "amount": {"amount": "12.50", "currency": "EUR"},
        "tags": ["a"],
        "booked_at": "2025-01-15T12:00:00Z",
        "version": 3,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("backend", BACKENDS)
def test_openapi_31_schemas_are_json_schema_2020_12(ledger, backend):
    check = validator(
        ledger, "GET", "/entries/7", content_type="application/vnd.ledger+json", backend=backend
    )
    assert check.violations(entry()) == []
    assert messages(check.violations(entry(id=0, kind="x", tags=["a", "b"]))) == [
        "`$.id`: 0 is not greater than 0",
        "`$.kind`: 'x' is not one of 'debit', 'credit'",
        "`$.tags[1]` is not allowed here (the schema allows no value)",
    ]
    assert messages(check.violations(entry(amount={"amount": "1", "currency": "USD"}))) == [
        "`$.amount.amount`: '1' does not match the pattern '^-?\\d+\\.\\d{2}$'",
        "`$.amount.currency`: expected 'EUR', got 'USD'",
    ]
    # nullable is not a 3.1 keyword: null is refused where the type says string
    assert messages(check.violations(entry(legacy=None))) == [
        "`$.legacy`: expected a string, got null"
    ]
    assert messages(check.violations(entry(memo="x" * 21))) == [
        "`$.memo`: '" + "x" * 21 + "' is longer than 20 characters"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_openapi_31_strict_mode_counts_a_ref_beside_properties(ledger, backend):
    check = validator(ledger, "GET", "/ledger/entries/7", strict=True, backend=backend)
    # "version" is declared by Base, pulled in by the $ref beside the properties
    assert check.violations(entry()) == []
    assert messages(check.violations(entry(extra=1, amount={**entry()["amount"], "x": 1}))) == [
        "`$.amount.x` is not declared in the schema (strict mode)",
        "`$.extra` is not declared in the schema (strict mode)",
    ]


# --------------------------------------------------------------------------------------
# Schema validation: broken specs
# --------------------------------------------------------------------------------------


def spec_with(schemas: dict) -> dict:
    return {"openapi": "3.0.3", "components": {"schemas": schemas}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unresolvable_ref_is_a_contract_error(backend):
    document = spec_with(
        {"Order": {"type": "object", "properties": {"x": {"$ref": "#/components/schemas/Nope"}}}}
    )
    with pytest.raises(ContractError) as raised:
        compile_response_validator(
            document,
            {"$ref": "#/components/schemas/Order"},
            openapi_version="3.0.3",
            strict=False,
            backend=backend,
        )
    assert str(raised.value) == (
        "cannot resolve $ref '#/components/schemas/Nope' at "
        "#/components/schemas/Order/properties/x: nothing named 'Nope' at /components/schemas"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_ref_cycle_without_content_is_a_contract_error(backend):
    document = spec_with(
        {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}
    )
    with pytest.raises(ContractError, match="cycle"):
        compile_response_validator(
            document,
            {"$ref": "#/components/schemas/A"},
            openapi_version="3.0.3",
            strict=True,
            backend=backend,
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_recursive_schemas_compile_and_validate(backend):
    document = spec_with(
        {
            "Node": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                },
            }
        }
    )
    check = compile_response_validator(
        document,
        {"$ref": "#/components/schemas/Node"},
        openapi_version="3.0.3",
        strict=True,
        backend=backend,
    )
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": 1, "x": 0}]}]}
    assert messages(check.violations(tree)) == [
        "`$.children[0].children[0].name`: expected a string, got an integer (1)",
        "`$.children[0].children[0].x` is not declared in the schema (strict mode)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"type": "strin"}, "invalid schema at #/components/schemas/Bad"),
        ({"type": "string", "pattern": "(("}, "invalid schema at #/components/schemas/Bad"),
        ({"type": "object", "properties": ["x"]}, "properties at #/components/schemas/Bad"),
        ({"allOf": []}, "allOf at #/components/schemas/Bad is not a non-empty list"),
    ],
)
def test_an_invalid_schema_is_a_contract_error(backend, bad, expected):
    document = spec_with({"Bad": bad})
    with pytest.raises(ContractError) as raised:
        compile_response_validator(
            document,
            {"$ref": "#/components/schemas/Bad"},
            openapi_version="3.0.3",
            strict=False,
            backend=backend,
        )
    assert expected in str(raised.value)


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        _Recorder.hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_remote_refs_are_refused_and_never_fetched(backend):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits.clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/schema.json"
        for ref in (url, url + "#/Thing", "file:///etc/passwd", "other.yaml#/Thing"):
            document = spec_with({"Order": {"type": "object", "properties": {"x": {"$ref": ref}}}})
            with pytest.raises(ContractError) as raised:
                compile_response_validator(
                    document,
                    {"$ref": "#/components/schemas/Order"},
                    openapi_version="3.0.3",
                    strict=False,
                    backend=backend,
                )
            assert "only local references" in str(raised.value)
        # A remote reference given as the response schema itself fails the same way.
        with pytest.raises(ContractError, match="remote reference"):
            compile_response_validator(
                spec_with({}), {"$ref": url}, openapi_version="3.1.0", strict=True, backend=backend
            )
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.hits == []


def test_the_python_backend_registry_refuses_retrieval():
    from referencing.exceptions import NoSuchResource

    with pytest.raises(NoSuchResource):
        checks._refuse_retrieval("https://example.com/schema.json")


# --------------------------------------------------------------------------------------
# The validator cache
# --------------------------------------------------------------------------------------


def test_cached_validator_compiles_once_per_key(shop):
    schema = schema_of(shop, "GET", "/orders/SO-1/")
    first = cached_validator(
        ("spec-1", "/orders/{number}/", 200), shop, schema, openapi_version="3.0.3", strict=True
    )
    again = cached_validator(
        ("spec-1", "/orders/{number}/", 200), shop, schema, openapi_version="3.0.3", strict=True
    )
    loose = cached_validator(
        ("spec-1", "/orders/{number}/", 200), shop, schema, openapi_version="3.0.3", strict=False
    )
    assert first is again
    assert loose is not first
    assert first.violations(order(extra_field=1)) and not loose.violations(order(extra_field=1))


def test_cached_validator_is_bounded_and_remembers_errors(shop, monkeypatch):
    monkeypatch.setattr(checks, "VALIDATOR_CACHE_SIZE", 2)
    schema = schema_of(shop, "GET", "/customers/C-1/")
    for key in range(5):
        cached_validator(key, shop, schema, openapi_version="3.0.3", strict=False)
    assert len(checks._cache) == 2
    broken = spec_with({})
    calls = []
    real = checks.compile_response_validator

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(checks, "compile_response_validator", counting)
    for _ in range(3):
        with pytest.raises(ContractError, match="Nope"):
            cached_validator(
                "broken",
                broken,
                {"$ref": "#/components/schemas/Nope"},
                openapi_version="3.0.3",
                strict=False,
            )
    assert len(calls) == 1


# --------------------------------------------------------------------------------------
# The demo partner's spec against its own data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_spec() -> dict:
    return load_document(demo_data.SPEC_PATH.read_bytes(), "openapi.yaml")


def demo_page(items, path: str) -> dict:
    base = f"http://testserver/demo-partner{path}"
    return {
        "count": len(items),
        "next": f"{base}?page=2&page_size=20",
        "previous": None,
        "results": list(items[:20]),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_demo_partner_customer_page_conforms_in_strict_mode(demo_spec, backend):
    dataset = demo_data.dataset()
    template, operation = find_operation(demo_spec, "GET", "/demo-partner/customers/")
    assert template == "/customers/"
    schema, reason = response_schema(demo_spec, operation, 200, "application/json")
    assert reason == ""
    check = compile_response_validator(
        demo_spec, schema, openapi_version=demo_spec["openapi"], strict=True, backend=backend
    )
    page = demo_page(dataset.customers, "/customers/")
    assert check.violations(page) == []
    # and it notices when the data drifts from the contract
    broken = copy.deepcopy(page)
    broken["results"][3]["email"] = "not-an-email"
    broken["results"][4]["loyalty"] = "gold"
    assert messages(check.violations(broken)) == [
        "`$.results[3].email`: 'not-an-email' is not an e-mail address",
        "`$.results[4].loyalty` is not declared in the schema",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_demo_partner_orders_invoices_and_details_conform_in_strict_mode(demo_spec, backend):
    dataset = demo_data.dataset()
    cases = [
        ("/demo-partner/orders/", demo_page(dataset.orders, "/orders/")),
        ("/demo-partner/invoices/", demo_page(dataset.invoices, "/invoices/")),
        (f"/demo-partner/customers/{dataset.customers[0]['id']}/", dataset.customers[0]),
        (f"/demo-partner/orders/{dataset.orders[-1]['number']}/", dataset.orders[-1]),
        (f"/demo-partner/invoices/{dataset.invoices[7]['number']}/", dataset.invoices[7]),
    ]
    for path, body in cases:
        check = validator(demo_spec, "GET", path, strict=True, backend=backend)
        assert check.violations(body) == [], path


# --------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------

BODY = {
    "count": 2,
    "results": [
        {"id": "C-10001", "name": "Acme", "tags": ["a", "b"], "vat": None, "active": True},
        {"id": "C-10002", "name": "Globex", "tags": [], "vat": "NL1", "active": False},
    ],
    "total": 12.5,
}
HEADERS = {"Content-Type": "application/json; charset=utf-8", "X-Request-Id": "abc-123"}


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        ({"path": "$.results[0].id", "op": "equals", "value": "C-10001"}, True),
        ({"path": "$.results[0].id", "op": "equals", "value": "C-99999"}, False),
        ({"path": "$.count", "op": "equals", "value": 2.0}, True),
        ({"path": "$.results[0].active", "op": "equals", "value": 1}, False),
        ({"path": "$.results[1].tags", "op": "equals", "value": []}, True),
        ({"path": "$.results[0].vat", "op": "exists"}, True),
        ({"path": "$.results[0].missing", "op": "exists"}, False),
        ({"path": "$.results[0].missing", "op": "absent"}, True),
        ({"path": "$.results[0].name", "op": "absent"}, False),
        ({"path": "$.results[*].id", "op": "matches", "value": r"^C-\d{5}$"}, True),
        ({"path": "$.results[*].name", "op": "matches", "value": "^A"}, False),
        ({"path": "$.count", "op": "matches", "value": r"^\d+$"}, True),
        ({"path": "$.count", "op": "type", "value": "integer"}, True),
        ({"path": "$.total", "op": "type", "value": "number"}, True),
        ({"path": "$.total", "op": "type", "value": "integer"}, False),
        ({"path": "$.results[0].vat", "op": "type", "value": "null"}, True),
        ({"path": "$.results[0].active", "op": "type", "value": "boolean"}, True),
        ({"path": "$.results[0].active", "op": "type", "value": "number"}, False),
        ({"path": "$.results", "op": "type", "value": "array"}, True),
        ({"path": "$.results[0]", "op": "type", "value": "object"}, True),
        ({"path": "$.results[0].id", "op": "type", "value": "string"}, True),
        ({"path": "$.results", "op": "length", "value": 2}, True),
        ({"path": "$.results[0].name", "op": "length", "value": 4}, True),
        ({"path": "$.results[0]", "op": "length", "value": 5}, True),
        ({"path": "$.results", "op": "length", "value": 3}, False),
        ({"path": "$.count", "op": "length", "value": 1}, False),
        ({"path": "$.results[?(@.name == 'Globex')].id", "op": "equals", "value": "C-10002"}, True),
        ({"path": "results[1].active", "op": "equals", "value": False}, True),
        ({"path": "$.results[5].id", "op": "equals", "value": "x"}, False),
    ],
)
def test_assertions(spec, passed):
    validate_assertion(spec)
    result = evaluate_assertion(spec, BODY, HEADERS)
    assert result.passed is passed, result


def test_assertion_names_and_messages():
    result = evaluate_assertion(
        {"path": "$.results[0].id", "op": "equals", "value": "C-10001"}, BODY, HEADERS
    )
    assert result == CheckResult(
        "assert $.results[0].id equals 'C-10001'", True, "$.results[0].id is 'C-10001'", []
    )
    result = evaluate_assertion(
        {"path": "$.results[*].name", "op": "matches", "value": "^A"}, BODY, {}
    )
    assert result.name == "assert $.results[*].name matches '^A'"
    assert result.passed is False
    assert result.message == "1 of 2 values fail: $.results[1].name: 'Globex' does not match '^A'"
    assert result.details == ["$.results[1].name: 'Globex' does not match '^A'"]
    result = evaluate_assertion({"path": "$.nope", "op": "exists"}, BODY, {})
    assert (result.name, result.passed, result.message) == (
        "assert $.nope exists",
        False,
        "nothing at $.nope",
    )
    result = evaluate_assertion({"path": "$.count", "op": "type", "value": "string"}, BODY, {})
    assert result.name == "assert $.count type string"
    assert result.message == "$.count: 2 is an integer, not a string"
    result = evaluate_assertion({"path": "$.id", "op": "exists"}, None, {})
    assert result.message == "nothing at $.id (the response has no JSON body)"


def test_header_assertions_are_case_insensitive():
    spec = {"path": "header:content-type", "op": "matches", "value": "^application/json"}
    validate_assertion(spec)
    result = evaluate_assertion(spec, None, HEADERS)
    assert result.passed is True
    assert result.name == "assert header:content-type matches '^application/json'"
    assert evaluate_assertion(
        {"path": "header:X-REQUEST-ID", "op": "equals", "value": "abc-123"}, None, HEADERS
    ).passed
    assert (
        evaluate_assertion(
            {"path": "header:X-Request-Id", "op": "equals", "value": "abc"}, None, HEADERS
        ).passed
        is False
    )
    assert evaluate_assertion({"path": "header:Retry-After", "op": "absent"}, BODY, HEADERS).passed
    assert (
        evaluate_assertion({"path": "Header: ETag", "op": "exists"}, BODY, HEADERS).passed is False
    )
    # several values of one header (a multi-dict as a list of pairs) are joined
    pairs = [("Vary", "Accept"), ("vary", "Cookie")]
    assert evaluate_assertion(
        {"path": "header:Vary", "op": "equals", "value": "Accept, Cookie"}, None, pairs
    ).passed


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"path": "$.id", "op": "resembles", "value": 1}, "unknown op 'resembles'"),
        ({"path": "$.results[", "op": "exists"}, "invalid JSONPath '$.results['"),
        ({"path": "$..", "op": "exists"}, "invalid JSONPath"),
        ({"path": "", "op": "exists"}, "path is missing"),
        ({"op": "exists"}, "path is missing"),
        ({"path": "$.id", "op": "matches", "value": "(unclosed"}, "invalid regular expression"),
        ({"path": "$.id", "op": "matches", "value": "a" * 501}, "longer than 500 characters"),
        ({"path": "$.id", "op": "matches", "value": 5}, "needs a regular expression"),
        ({"path": "$.id", "op": "equals"}, "op 'equals' needs a value"),
        ({"path": "$.id", "op": "type", "value": "text"}, "unknown type 'text'"),
        ({"path": "$.id", "op": "length", "value": -1}, "whole number"),
        ({"path": "$.id", "op": "length", "value": True}, "whole number"),
        ({"path": "$.id", "op": "exists", "value": 3}, "takes no value"),
        ({"path": "$.id", "op": "equals", "value": 1, "vaule": 2}, "unknown key(s) 'vaule'"),
        ({"path": "header:Bad Name", "op": "exists"}, "invalid header name"),
        ({"path": "$[?(@.name =~ '(a+)+$')]", "op": "exists"}, "=~"),
        ("$.id equals 1", "an assertion must be an object"),
    ],
)
def test_bad_assertions_are_refused_with_a_clear_message(spec, problem):
    with pytest.raises(ValueError) as raised:
        validate_assertion(spec)
    assert problem in str(raised.value)
    result = evaluate_assertion(spec, BODY, HEADERS)
    assert result.passed is False
    assert result.message.startswith("invalid assertion: ")


def test_equals_accepts_null_as_a_value():
    spec = {"path": "$.results[0].vat", "op": "equals", "value": None}
    validate_assertion(spec)
    assert evaluate_assertion(spec, BODY, {}).passed is True
    assert evaluate_assertion({**spec, "path": "$.results[1].vat"}, BODY, {}).passed is False


# --------------------------------------------------------------------------------------
# Templating
# --------------------------------------------------------------------------------------


def test_render_substitutes_recursively_including_keys():
    variables = {"customer_id": "C-10001", "count": 3, "env": "test", "flag": True}
    value = {
        "path": "/customers/{{customer_id}}/",
        "query": {"page_size": "{{ count }}", "label": "n={{count}}", "on": "{{flag}}-{{flag}}"},
        "{{env}}_key": ["{{customer_id}}", 1, None, {"nested": "{{env}}"}],
    }
    assert render(value, variables) == {
        "path": "/customers/C-10001/",
        "query": {"page_size": 3, "label": "n=3", "on": "true-true"},
        "test_key": ["C-10001", 1, None, {"nested": "test"}],
    }
    assert render("{{count}}", variables) == 3
    assert render("{{flag}}", variables) is True
    assert render("{{customer_id}}", variables) == "C-10001"
    assert render("no placeholders", {}) == "no placeholders"
    assert render(42, {}) == 42


def test_render_keeps_the_type_of_a_whole_string_placeholder_and_copies_containers():
    ids = ["a", "b"]
    rendered = render({"ids": "{{ids}}"}, {"ids": ids})
    assert rendered == {"ids": ["a", "b"]}
    rendered["ids"].append("c")
    assert ids == ["a", "b"]
    assert render("{{none}}", {"none": None}) is None


def test_render_refuses_an_undefined_variable():
    with pytest.raises(UndefinedVariable) as raised:
        render({"a": ["ok {{known}}", "{{ missing }}"]}, {"known": 1})
    assert raised.value.name == "missing"
    assert isinstance(raised.value, ValueError)
    assert str(raised.value) == "undefined variable {{missing}}"
    with pytest.raises(UndefinedVariable):
        render({"{{key}}": 1}, {})


def test_variables_in_finds_every_name():
    value = {
        "path": "/customers/{{customer_id}}/orders/{{ order }}",
        "{{header_name}}": ["{{a}}", {"b": "x{{b}}y"}],
        "plain": 3,
    }
    assert variables_in(value) == {"customer_id", "order", "header_name", "a", "b"}
    assert variables_in("no variables here {single}") == set()
    assert variables_in(None) == set()


# --------------------------------------------------------------------------------------
# The other named checks
# --------------------------------------------------------------------------------------


def test_check_status_code(shop):
    _, get_customer = find_operation(shop, "GET", "/customers/C-1/")
    _, create = find_operation(shop, "POST", "/orders/")
    assert checks.check_status_code(get_customer, 200).passed is True
    assert checks.check_status_code(get_customer, 409).message == "409 is documented by 4XX"
    assert checks.check_status_code(get_customer, 503).passed is True  # default
    result = checks.check_status_code(create, 500)
    assert result.passed is False
    assert result.message == "500 is not documented (the spec documents 201, 422)"
    assert checks.check_status_code(create, 500, expected=[500]).passed is True
    assert checks.check_status_code(None, 200).passed is None


def test_check_content_type(shop):
    _, get_customer = find_operation(shop, "GET", "/customers/C-1/")
    _, delete = find_operation(shop, "DELETE", "/customers/C-1/")
    ok = checks.check_content_type(shop, get_customer, 200, "application/json;charset=UTF-8")
    assert ok.passed is True
    wrong = checks.check_content_type(shop, get_customer, 200, "text/html")
    assert (wrong.passed, wrong.message) == (
        False,
        "text/html; the spec declares application/json",
    )
    assert checks.check_content_type(shop, get_customer, 409, "application/problem+json").passed
    assert checks.check_content_type(shop, delete, 204, None, has_body=False).passed is True
    assert checks.check_content_type(shop, delete, 500, None).passed is None


def test_check_response_headers(shop):
    _, operation = find_operation(shop, "GET", "/customers/")
    good = checks.check_response_headers(
        shop, operation, 200, {"x-total-count": "240", "X-Rate-Limit": "100"}
    )
    assert good.passed is True
    missing = checks.check_response_headers(shop, operation, 200, {"X-Rate-Limit": "100"})
    assert (missing.passed, missing.message) == (False, "X-Total-Count is missing (required)")
    wrong = checks.check_response_headers(
        shop, operation, 200, {"X-Total-Count": "-1", "X-Rate-Limit": "lots"}
    )
    assert wrong.passed is False
    assert wrong.details == [
        "header X-Total-Count: -1 is less than the minimum 0",
        "header X-Rate-Limit: expected an integer, got a string ('lots')",
    ]
    assert checks.check_response_headers(shop, operation, 404, {}).passed is None


def test_check_response_schema(shop):
    _, operation = find_operation(shop, "GET", "/orders/SO-1/")
    result = checks.check_response_schema(
        shop, operation, 200, "application/json", order(), openapi_version="3.0.3", strict=True
    )
    assert (result.name, result.passed) == (checks.RESPONSE_SCHEMA, True)
    result = checks.check_response_schema(
        shop,
        operation,
        200,
        "application/json",
        order(extra_field=1),
        openapi_version="3.0.3",
        strict=True,
        cache_key=("spec", 1),
    )
    assert result.passed is False
    assert result.message == (
        "1 violation(s) (strict); first: "
        "`$.extra_field` is not declared in the schema (strict mode)"
    )
    assert result.details == [
        {
            "path": "$.extra_field",
            "keyword": "strict",
            "message": "`$.extra_field` is not declared in the schema (strict mode)",
        }
    ]
    missing = checks.check_response_schema(
        shop, operation, 500, "application/json", {}, openapi_version="3.0.3", strict=False
    )
    assert (missing.passed, missing.message) == (False, "no contract for status 500")


def test_the_simple_checks():
    assert checks.check_not_server_error(503).passed is False
    assert checks.check_not_server_error(404).passed is True
    assert checks.check_max_latency(120, 100).passed is False
    assert checks.check_max_latency(80, 100).passed is True
    assert checks.check_max_latency(80, None).passed is None
    assert checks.check_invalid_input_rejected(422).passed is True
    assert checks.check_invalid_input_rejected(401).passed is False
    assert checks.check_invalid_input_rejected(200).passed is False
    assert checks.check_no_credentials_rejected(401).passed is True
    assert checks.check_no_credentials_rejected(200).passed is False
