"""API specs: loading, recognising, validating, listing and comparing (apps.catalog.specs).

Plain functions, no database. Hostile inputs each finish in under 2 s and end in SpecError;
a listener on 127.0.0.1 and an audit hook prove that no reference is ever fetched or read.
"""

from __future__ import annotations

import codecs
import copy
import json
import sys
import threading
import time
import tracemalloc
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.catalog import specs
from apps.catalog.specs import (
    Change,
    Operation,
    SpecError,
    SpecProblem,
    SpecSummary,
    detect_kind,
    diff_specs,
    list_operations,
    load_document,
    validate_spec,
)

FIXTURES = Path(__file__).parent / "fixtures"
TIME_LIMIT = 2.0


def fixture(name: str) -> dict:
    return load_document((FIXTURES / name).read_bytes(), name)


def timed(fn, *args, **kwargs):
    """Run fn; assert it finished in under TIME_LIMIT; return (result or SpecError)."""
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except SpecError as exc:
        result = exc
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"{fn.__name__} took {elapsed:.2f} s"
    return result


def refused(fn, *args, **kwargs) -> SpecError:
    result = timed(fn, *args, **kwargs)
    assert isinstance(result, SpecError), f"expected SpecError, got {result!r}"
    assert result.problems and all(isinstance(p, SpecProblem) for p in result.problems)
    return result


def paths_of(error: SpecError) -> list[str]:
    return [p.path for p in error.problems]


def oas(paths: dict | None = None, schemas: dict | None = None, version: str = "3.0.3") -> dict:
    doc: dict = {"openapi": version, "info": {"title": "T", "version": "1"}, "paths": paths or {}}
    if schemas is not None:
        doc["components"] = {"schemas": schemas}
    return doc


def ok_response(schema: dict, code: str = "200") -> dict:
    return {code: {"description": "ok", "content": {"application/json": {"schema": schema}}}}


# ----------------------------------------------------------------------------------------
# Realistic specs
# ----------------------------------------------------------------------------------------


def test_openapi_30_yaml_fixture_validates_and_lists_operations():
    doc = fixture("crm_customers_v1.yaml")
    assert validate_spec(doc) == SpecSummary("openapi-3.0", "3.0.3", "CRM Customers API", "1.4.0")
    # unquoted YAML status codes arrive as the strings JSON would have
    assert "200" in doc["paths"]["/customers"]["get"]["responses"]
    operations = list_operations("openapi-3.0", doc)
    assert [op.key for op in operations] == [
        "GET /customers",
        "POST /customers",
        "GET /customers/{customerId}",
        "DELETE /customers/{customerId}",
        "PATCH /customers/{customerId}",
        "GET /customers/{customerId}/orders",
        "GET /orders/{orderId}",
        "POST /orders/{orderId}/cancel",
        "GET /health",
    ]
    assert operations[0] == Operation(
        key="GET /customers",
        method="GET",
        path="/customers",
        operation_id="listCustomers",
        summary="List customers",
        status_codes=["200", "400"],
    )
    assert operations[3].status_codes == ["204", "404", "409"]


def test_openapi_30_v2_fixture_validates():
    summary = validate_spec(fixture("crm_customers_v2.yaml"))
    assert (summary.kind, summary.api_version) == ("openapi-3.0", "2.0.0")


def test_openapi_31_json_fixture_validates_and_lists_operations():
    doc = fixture("orders_api_v3.openapi31.json")
    assert validate_spec(doc) == SpecSummary(
        "openapi-3.1", "3.1.0", "Order Management API", "3.2.1"
    )
    assert [
        (op.key, op.operation_id, op.status_codes) for op in list_operations("openapi-3.1", doc)
    ] == [
        ("GET /orders", "searchOrders", ["200"]),
        ("POST /orders", "placeOrder", ["201", "422"]),
        ("GET /orders/{orderId}", "getOrderById", ["200", "404"]),
        ("GET /categories", "categoryTree", ["200"]),
    ]


def test_asyncapi_26_fixture_validates_and_lists_operations():
    doc = fixture("order_events_asyncapi26.yaml")
    assert validate_spec(doc) == SpecSummary("asyncapi-2", "2.6.0", "ERP Order Events", "1.2.0")
    operations = list_operations("asyncapi-2", doc)
    assert [(op.key, op.channel, op.action, op.operation_id) for op in operations] == [
        (
            "channel erp.orders.created (subscribe)",
            "erp.orders.created",
            "subscribe",
            "onOrderCreated",
        ),
        (
            "channel erp.orders.status-changed (subscribe)",
            "erp.orders.status-changed",
            "subscribe",
            "onOrderStatusChanged",
        ),
        (
            "channel crm.customers.updated (publish)",
            "crm.customers.updated",
            "publish",
            "publishCustomerUpdated",
        ),
        (
            "channel erp.orders.deleted (subscribe)",
            "erp.orders.deleted",
            "subscribe",
            "onOrderDeleted",
        ),
    ]
    assert operations[0].summary == "Receive newly placed orders"


def test_asyncapi_30_fixture_validates_and_lists_operations():
    doc = fixture("order_events_asyncapi30.yaml")
    assert validate_spec(doc) == SpecSummary(
        "asyncapi-3", "3.0.0", "Warehouse Shipment Events", "0.9.0"
    )
    assert [
        (op.key, op.channel, op.action, op.operation_id)
        for op in list_operations("asyncapi-3", doc)
    ] == [
        (
            "channel warehouse.shipments.dispatched (send)",
            "warehouse.shipments.dispatched",
            "send",
            "sendShipmentDispatched",
        ),
        (
            "channel warehouse.shipments.requested (receive)",
            "warehouse.shipments.requested",
            "receive",
            "receiveShipmentRequest",
        ),
    ]


def test_json_schema_2020_12_fixture_validates_and_lists_definitions():
    doc = fixture("customer.schema.json")
    assert validate_spec(doc) == SpecSummary("json-schema", "2020-12", "Customer master record", "")
    assert [(op.key, op.path) for op in list_operations("json-schema", doc)] == [
        ("schema", ""),
        ("schema #/$defs/Address", "/$defs/Address"),
        ("schema #/$defs/CustomerRef", "/$defs/CustomerRef"),
        ("schema #/$defs/OrgUnit", "/$defs/OrgUnit"),
    ]


@pytest.mark.parametrize(
    "dialect, expected",
    [
        ("http://json-schema.org/draft-04/schema#", "draft-04"),
        ("http://json-schema.org/draft-06/schema#", "draft-06"),
        ("http://json-schema.org/draft-07/schema#", "draft-07"),
        ("https://json-schema.org/draft/2019-09/schema", "2019-09"),
        ("https://json-schema.org/draft/2020-12/schema", "2020-12"),
    ],
)
def test_json_schema_dialects_are_recognised_without_fetching(dialect, expected):
    summary = validate_spec({"$schema": dialect, "type": "object", "title": "X"})
    assert (summary.kind, summary.version, summary.title) == ("json-schema", expected, "X")


def test_json_schema_without_dialect_defaults_to_2020_12():
    assert validate_spec({"type": "object"}).version == "2020-12"


@pytest.mark.parametrize("backend", ["jsonschema-rs", "jsonschema"])
def test_both_validation_backends_accept_the_fixtures_and_name_the_same_paths(backend, monkeypatch):
    if backend == "jsonschema":
        monkeypatch.setattr(specs, "_jsonschema_rs", None)
    elif specs._jsonschema_rs is None:
        pytest.skip("jsonschema-rs is not installed")
    for name in (
        "crm_customers_v1.yaml",
        "crm_customers_v2.yaml",
        "orders_api_v3.openapi31.json",
        "order_events_asyncapi26.yaml",
        "order_events_asyncapi30.yaml",
        "customer.schema.json",
    ):
        validate_spec(fixture(name))
    bad = oas({"/a": {"get": {"responses": {"200": {"content": {}}}}}}, version="3.1.0")
    bad["components"] = {
        "schemas": {"X": {"type": "strin", "properties": {"a": {"minLength": -1}}}}
    }
    error = refused(validate_spec, bad)
    assert sorted(paths_of(error)) == [
        "/components/schemas/X/properties/a/minLength",
        "/components/schemas/X/type",
        "/paths/~1a/get/responses/200",
    ]
    assert "description" in error.problems[0].message
    bad["components"]["schemas"]["X"] = {"type": ["string", "nul"]}
    assert paths_of(refused(validate_spec, bad))[-1] == "/components/schemas/X/type/1"


# ----------------------------------------------------------------------------------------
# load_document: formats and the safe YAML subset
# ----------------------------------------------------------------------------------------


def test_json_and_yaml_are_detected_from_bytes_text_and_file_names():
    assert load_document(b'{"openapi": "3.0.3"}') == {"openapi": "3.0.3"}
    assert load_document("openapi: 3.0.3\n") == {"openapi": "3.0.3"}
    assert load_document(b"{a: 1}") == {"a": 1}  # a YAML flow mapping, not JSON
    assert load_document(codecs.BOM_UTF8 + b'{"a": 1}', "spec.json") == {"a": 1}
    assert load_document("a: café\n".encode()) == {"a": "café"}


def test_yaml_values_become_plain_json():
    doc = load_document(
        "date: 2024-05-01\n"
        "stamp: 2024-05-01T10:00:00Z\n"
        "200: numeric key\n"
        "on: yaml 1.1 boolean key\n"
        "~: null key\n"
        "count: 0x1F\n"
        "ratio: 1.5\n"
        "flag: yes\n"
        "nothing:\n"
        "quoted: '12'\n"
    )
    assert doc == {
        "date": "2024-05-01",
        "stamp": "2024-05-01T10:00:00Z",
        "200": "numeric key",
        "on": "yaml 1.1 boolean key",
        "~": "null key",
        "count": 31,
        "ratio": 1.5,
        "flag": True,
        "nothing": None,
        "quoted": "12",
    }
    assert json.loads(json.dumps(doc)) == doc


def test_yaml_anchors_aliases_and_merge_keys_expand_into_independent_copies():
    doc = load_document(
        "base: &base {type: object, required: [id]}\n"
        "a: *base\n"
        "b:\n"
        "  <<: *base\n"
        "  title: B\n"
        "list: &l [1, 2]\n"
        "again: *l\n"
    )
    assert doc["a"] == {"type": "object", "required": ["id"]}
    assert doc["b"] == {"type": "object", "required": ["id"], "title": "B"}
    assert doc["again"] == [1, 2]
    doc["a"]["required"].append("x")
    assert doc["base"]["required"] == ["id"]  # no shared objects


@pytest.mark.parametrize(
    "raw, filename, path, words",
    [
        (b"", None, "", "empty"),
        (b"   \n\t\n", None, "", "empty"),
        (b"# only a comment\n", None, "", "empty"),
        (bytes(range(256)) * 4, None, "", "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "logo.yaml", "", "binary"),
        ("openapi: café\n".encode("latin-1"), None, "", "not UTF-8"),
        (codecs.BOM_UTF16_LE + "a: 1".encode("utf-16-le"), None, "", "UTF-16"),
        (b"[1, 2, 3]", None, "", "top level must be an object"),
        (b'"just a string"', None, "", "top level must be an object"),
        (b"- a\n- b\n", None, "", "top level must be an object"),
        (b"42", None, "", "top level must be an object"),
        (b"a: [1, 2\nb: 3\n", None, "/a", "invalid YAML at line 2"),
        (b"a: b: c\n", None, "", "invalid YAML at line 1"),
        (b'{"a": 1,}', "spec.json", "", "invalid JSON at line 1, column 9"),
        (b'{"a": 1', None, "", "invalid JSON"),
        (b"a: 1\n---\nb: 2\n", None, "", "several YAML documents"),
        (b'{"a": 1, "a": 2}', None, "", "duplicate key 'a'"),
        (b"a: 1\nb:\n  c: 1\n  c: 2\n", None, "/b/c", "duplicate key 'c' (line 4"),
        (b'{"a": NaN}', None, "", "NaN is not a JSON number"),
        (b'{"a": -Infinity}', None, "", "-Infinity is not a JSON number"),
        (b'{"a": 1e400}', None, "/a", "out of range"),
        (b"a: .inf\n", None, "/a", "not a finite number"),
        (b"a: .nan\n", None, "/a", "not a finite number"),
        (b"a: !!binary aGVsbG8=\n", None, "/a", "YAML tag"),
        (b"a: !!set {x, y}\n", None, "/a", "YAML tag"),
        (b"a: !!omap [{x: 1}]\n", None, "/a", "YAML tag"),
        (b"a: !!python/object/apply:os.system ['id']\n", None, "/a", "YAML tag"),
        (b"a: !!python/name:os.system\n", None, "/a", "YAML tag"),
        (b"a: !custom x\n", None, "/a", "YAML tag"),
        (b"? [a, b]\n: c\n", None, "", "keys must be strings"),
        (b"a: *nowhere\n", None, "/a", "no anchor"),
        (b"a: &a [*a]\n", None, "/a", "refers to itself"),
        (b"a: &a {b: *a}\n", None, "/a/b", "refers to itself"),
        (b"a: [1]\n<<: 3\n", None, "", "merge key"),
    ],
)
def test_bad_documents_are_refused_with_a_clear_message(raw, filename, path, words):
    error = refused(load_document, raw, filename)
    assert error.problems[0].path == path, error
    assert words in str(error), error


def test_non_bytes_input_is_refused():
    assert "bytes or text" in str(refused(load_document, 12345))
    assert "bytes or text" in str(refused(load_document, None))


def test_size_cap_is_checked_before_parsing():
    assert "5 MB" in str(refused(load_document, b"a" * (5 * 1024 * 1024 + 1)))
    assert "5 MB" in str(refused(load_document, "x" * (50 * 1024 * 1024)))
    assert "limit" in str(refused(load_document, b"{" * (50 * 1024 * 1024)))
    # multi-byte characters count as bytes
    assert "5 MB" in str(refused(load_document, "é" * (3 * 1024 * 1024)))


def test_size_cap_follows_django_settings_when_configured():
    from django.conf import settings as django_settings

    if not django_settings.configured:
        pytest.skip("Django settings are not configured in this run")
    from django.test import override_settings

    with override_settings(PONTIS_SPEC_MAX_BYTES=100):
        assert "limit is 100" in str(refused(load_document, b"a: " + b"x" * 200))
    assert load_document(b"a: " + b"x" * 200) == {"a": "x" * 200}


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{b: " * 100_000 + "1" + "}" * 100_000,
        "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "x\n",
        "- " * 5_000 + "x\n",
    ],
    ids=["json-array", "json-object", "yaml-flow-seq", "yaml-flow-map", "yaml-block", "yaml-seq"],
)
def test_deep_nesting_is_refused_without_a_recursion_crash(raw):
    error = refused(load_document, raw)
    assert "nest" in str(error)


def test_nesting_up_to_the_limit_is_accepted():
    depth = specs.DEFAULT_MAX_DEPTH
    doc = load_document('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1))
    assert isinstance(doc, dict)
    refused(load_document, '{"a":' * depth + "{}" + "}" * depth)


@pytest.mark.parametrize(
    "raw, path",
    [
        ('{"a": ' + "9" * 5000 + "}", ""),
        ('{"a": [1, -' + "9" * 5000 + "]}", ""),
        ('{"a": [1, ' + "7" * 300 + "]}", "/a/1"),
        ("a: " + "9" * 5000 + "\n", "/a"),
        ("a: 0." + "1" * 5000 + "\n", "/a"),
        ("a: [" + "1" * 5000 + "]\n", "/a"),
    ],
)
def test_long_numbers_are_refused_quickly(raw, path):
    error = refused(load_document, raw)
    assert error.problems[0].path == path
    assert "too long" in str(error)


def test_long_float_literals_that_python_handles_are_safe():
    doc = load_document('{"a": 0.' + "1" * 5000 + "}")
    assert isinstance(doc["a"], float)


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)
MERGE_BOMB = "l0: &l0 {a: 1, b: 2}\n" + "".join(
    f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], k{i}: {i}}}\n" for i in range(1, 60)
)
DEEP_ALIAS = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\n" + "b: " + "[" * 40 + "*a" + "]" * 40 + "\n"


@pytest.mark.parametrize(
    "raw, words",
    [
        (BILLION_LAUGHS, "alias bomb"),
        (MERGE_BOMB, "alias bomb"),
        (DEEP_ALIAS, "nests deeper"),
        ("a: &x 1\n" + "b: [" + ",".join(["*x"] * 20_000) + "]\n", "more than 10,000 YAML aliases"),
    ],
    ids=["billion-laughs", "merge-keys", "deep-alias", "alias-count"],
)
def test_alias_bombs_fail_fast_with_bounded_memory(raw, words):
    error = refused(load_document, raw)
    assert words in str(error)
    tracemalloc.start()
    try:
        with pytest.raises(SpecError):
            load_document(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_limits_can_be_lowered(monkeypatch):
    monkeypatch.setattr(specs, "_limits", lambda: (1000, 5, 50, 3))
    assert "1,000" in str(refused(load_document, b"a: " + b"x" * 1000))
    assert "5 levels" in str(refused(load_document, "a: [[[[[1]]]]]"))
    assert "50 values" in str(refused(load_document, "a: [" + ",".join(["1"] * 60) + "]"))
    assert "3 YAML aliases" in str(refused(load_document, "a: &x 1\nb: [*x, *x, *x, *x]\n"))
    assert "50 values" in str(refused(validate_spec, {"type": "object", "enum": list(range(60))}))


def test_time_budgets_stop_yaml_reading_and_diffing(monkeypatch):
    monkeypatch.setattr(specs, "_parse_seconds", lambda: 0.0)
    error = refused(load_document, "a:\n" + "- x\n" * 10_000)
    assert "too large to read in time" in str(error)
    assert load_document('{"a": [' + ",".join(["1"] * 10_000) + "]}")["a"][0] == 1  # JSON: no limit
    monkeypatch.setattr(specs, "_setting_float", lambda name, default: 0.0)
    schemas = {
        f"S{i}": {"type": "object", "properties": {"v": {"type": "string"}}} for i in range(600)
    }
    paths = {
        f"/p{i}": {"get": {"responses": ok_response({"$ref": f"#/components/schemas/S{i}"})}}
        for i in range(600)
    }
    old = oas(paths, schemas)
    new = copy.deepcopy(old)
    for schema in new["components"]["schemas"].values():
        schema["properties"]["v"]["type"] = "integer"
    diff = diff_specs(old, new)
    assert diff.truncated and 0 < len(diff.breaking) < 600


def test_json_lookalike_yaml_and_broken_json():
    assert load_document("{openapi: 3.0.3, info: {title: T}}") == {
        "openapi": "3.0.3",
        "info": {"title": "T"},
    }
    error = refused(
        load_document, '{"openapi": "3.0.3", "info": {"title": "T",}, ' + '"x": 1, ' * 100 + "}"
    )
    assert "invalid JSON at line 1" in str(error)


def test_large_realistic_specs_load_validate_list_and_diff_in_time():
    paths, schemas = {}, {}
    for i in range(1500):
        schemas[f"R{i}"] = {
            "type": "object",
            "required": ["f0"],
            "properties": {
                f"f{j}": {"type": "string", "description": "a field", "enum": ["a", "b"]}
                for j in range(20)
            },
        }
        paths[f"/r{i}/{{id}}"] = {
            "get": {
                "operationId": f"get{i}",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": ok_response({"$ref": f"#/components/schemas/R{i}"}),
            }
        }
    raw = json.dumps(oas(paths, schemas)).encode()
    assert 2_000_000 < len(raw) < specs.DEFAULT_MAX_BYTES
    doc = timed(load_document, raw)
    assert timed(validate_spec, doc).kind == "openapi-3.0"
    assert len(timed(list_operations, "openapi-3.0", doc)) == 1500
    new = copy.deepcopy(doc)
    for i in range(0, 1500, 3):
        del new["components"]["schemas"][f"R{i}"]["properties"]["f3"]
    diff = timed(diff_specs, doc, new)
    assert len(diff.breaking) == 500 and diff.compatible == []
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(oas(dict(list(paths.items())[:900]), schemas), Dumper=dumper)
    assert timed(load_document, text)["info"]["title"] == "T"


def test_a_5mb_flat_document_is_refused_by_the_node_cap_quickly():
    raw = '{"x":[' + ",".join(["0"] * 2_500_000) + "]}"
    assert "more than 500,000 values" in str(refused(load_document, raw))


# ----------------------------------------------------------------------------------------
# detect_kind
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc, kind",
    [
        ({"openapi": "3.0.0"}, "openapi-3.0"),
        ({"openapi": "3.0.3"}, "openapi-3.0"),
        ({"openapi": "3.1.0"}, "openapi-3.1"),
        ({"openapi": "3.1.1"}, "openapi-3.1"),
        ({"asyncapi": "2.0.0"}, "asyncapi-2"),
        ({"asyncapi": "2.6.0"}, "asyncapi-2"),
        ({"asyncapi": "3.0.0"}, "asyncapi-3"),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, "json-schema"),
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, "json-schema"),
        ({"type": "object", "properties": {}}, "json-schema"),
    ],
)
def test_detect_kind(doc, kind):
    assert detect_kind(doc) == kind


@pytest.mark.parametrize(
    "doc, path, words",
    [
        ({"swagger": "2.0", "info": {}}, "/swagger", "Swagger 2.0 is not supported"),
        ({"openapi": "2.0"}, "/openapi", "OpenAPI 2.0 is not supported"),
        ({"openapi": "3.2.0"}, "/openapi", "OpenAPI 3.2.0 is not supported"),
        ({"openapi": 3.0}, "/openapi", "quote it in YAML"),
        ({"asyncapi": "1.2.0"}, "/asyncapi", "AsyncAPI 1.2.0 is not supported"),
        ({"asyncapi": "3.1.0"}, "/asyncapi", "not supported"),
        ({"asyncapi": 2}, "/asyncapi", "version string"),
        ({"$schema": "http://127.0.0.1:1/meta.json"}, "/$schema", "unknown JSON Schema dialect"),
        ({"$schema": 7}, "/$schema", "unknown JSON Schema dialect"),
        ({"info": {"title": "x"}}, "", "not a recognised spec"),
        ({}, "", "not a recognised spec"),
        ([1, 2], "", "must be an object"),
        ("openapi: 3.0.0", "", "must be an object"),
        (None, "", "must be an object"),
    ],
)
def test_detect_kind_refuses_what_it_does_not_support(doc, path, words):
    error = refused(detect_kind, doc)
    assert error.problems[0].path == path
    assert words in str(error)
    assert "supported: OpenAPI 3.0 and 3.1, AsyncAPI 2.x and 3.0, JSON Schema" in str(error) or (
        "quote it" in words or "version string" in words
    )


# ----------------------------------------------------------------------------------------
# validate_spec: structure problems name their JSON pointer
# ----------------------------------------------------------------------------------------


def test_openapi_structure_problems_name_their_paths():
    doc = load_document(
        "openapi: 3.0.0\n"
        "info: {title: T}\n"
        "paths:\n"
        "  /orders:\n"
        "    get:\n"
        "      responses:\n"
        "        200: {content: {}}\n"
        "    post:\n"
        "      operationId: dup\n"
        "      responses: {'201': {description: ok}}\n"
        "  /other:\n"
        "    put:\n"
        "      operationId: dup\n"
        "      responses: {'204': {description: ok}}\n"
    )
    error = refused(validate_spec, doc)
    assert [(p.path, p.message) for p in error.problems] == [
        ("/info", '"version" is a required property'),
        ("/paths/~1orders/get/responses/200", '"description" is a required property'),
        ("/paths/~1other/put/operationId", "operationId 'dup' is also used by POST /orders"),
    ]


@pytest.mark.parametrize(
    "doc, path",
    [
        ({"openapi": "3.0.0", "info": {"title": "T", "version": "1"}, "paths": [1, 2]}, "/paths"),
        ({"openapi": "3.0.0", "info": {"title": "T", "version": "1"}, "paths": "none"}, "/paths"),
        ({"openapi": "3.0.0", "paths": {}}, ""),
        ({"openapi": "3.0.0", "info": [], "paths": {}}, "/info"),
        ({"openapi": "3.1.0", "info": {"title": "T", "version": "1"}}, ""),
        (oas({"orders": {}}), "/paths"),
        (
            oas({"/a": {"get": {"responses": {"200": {"description": 5}}}}}),
            "/paths/~1a/get/responses/200/description",
        ),
        (oas({"/a": {"get": {"responses": []}}}), "/paths/~1a/get/responses"),
        (oas({"/a": {"get": {"parameters": {}, "responses": {}}}}), "/paths/~1a/get/parameters"),
    ],
)
def test_malformed_openapi_documents_are_refused_with_a_path(doc, path):
    error = refused(validate_spec, doc)
    assert path in paths_of(error), error


def test_openapi_paths_differing_only_in_parameter_names_are_refused():
    ok = {"get": {"responses": {"200": {"description": "ok"}}}}
    doc = oas({"/b/{id}": ok, "/b/{key}": copy.deepcopy(ok)})
    error = refused(validate_spec, doc)
    assert [(p.path, p.message) for p in error.problems] == [
        (
            "/paths/~1b~1{key}",
            "path '/b/{key}' is the same as '/b/{id}': templated paths that differ only in "
            "parameter names are identical",
        )
    ]


def test_openapi_31_schemas_are_checked_against_the_2020_12_meta_schema():
    doc = oas(
        {"/a": {"get": {"responses": ok_response({"type": "object", "required": "id"})}}},
        {"X": {"type": ["string", "nul"]}},
        version="3.1.0",
    )
    error = refused(validate_spec, doc)
    assert paths_of(error) == [
        "/paths/~1a/get/responses/200/content/application~1json/schema/required",
        "/components/schemas/X/type/1",
    ]
    assert "nul" in error.problems[1].message


def test_openapi_31_refuses_an_unknown_json_schema_dialect():
    doc = oas({}, version="3.1.0")
    doc["jsonSchemaDialect"] = "http://127.0.0.1:1/dialect"
    assert paths_of(refused(validate_spec, doc)) == ["/jsonSchemaDialect"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["info"].pop("title"), [("/info", "'title' is a required property")]),
        (lambda d: d.pop("channels"), [("", "'channels' is a required property")]),
        (
            lambda d: d.__setitem__("channels", []),
            [("/channels", "channels must be an object, not array")],
        ),
        (
            lambda d: d["servers"]["production"].pop("protocol"),
            [("/servers/production", "'protocol' is a required property")],
        ),
        (
            lambda d: d["channels"]["erp.orders.created"].__setitem__("subscribe", "yes"),
            [
                (
                    "/channels/erp.orders.created/subscribe",
                    "the subscribe operation must be an object, not string",
                )
            ],
        ),
        (
            lambda d: d["channels"]["erp.orders.status-changed"]["subscribe"][
                "message"
            ].__setitem__("oneOf", []),
            [
                (
                    "/channels/erp.orders.status-changed/subscribe/message/oneOf",
                    "oneOf must be a non-empty list of messages",
                )
            ],
        ),
        (
            lambda d: d["channels"]["crm.customers.updated"]["publish"]["message"][
                "payload"
            ].__setitem__("type", "obj"),
            None,
        ),
        (
            lambda d: d.__setitem__("paths", {}),
            [("/paths", "unexpected property 'paths' in the document")],
        ),
    ],
)
def test_asyncapi_2_structure_problems(mutate, expected):
    doc = fixture("order_events_asyncapi26.yaml")
    mutate(doc)
    error = refused(validate_spec, doc)
    if expected is None:
        assert paths_of(error) == ["/channels/crm.customers.updated/publish/message/payload/type"]
    else:
        assert [(p.path, p.message) for p in error.problems] == expected


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["info"].pop("version"), [("/info", "'version' is a required property")]),
        (
            lambda d: d["operations"]["sendShipmentDispatched"].__setitem__("action", "publish"),
            [
                (
                    "/operations/sendShipmentDispatched/action",
                    "action must be 'send' or 'receive', not 'publish'",
                )
            ],
        ),
        (
            lambda d: d["operations"]["sendShipmentDispatched"].pop("channel"),
            [("/operations/sendShipmentDispatched", "'channel' is a required property")],
        ),
        (
            lambda d: d["operations"]["sendShipmentDispatched"]["messages"].__setitem__(
                0, {"$ref": "#/channels/shipmentRequests/messages/ShipmentRequested"}
            ),
            [
                (
                    "/operations/sendShipmentDispatched/messages/0/$ref",
                    "'#/channels/shipmentRequests/messages/ShipmentRequested' is not a message of "
                    "the operation's channel '#/channels/shipmentDispatched'",
                )
            ],
        ),
        (
            lambda d: d["channels"]["shipmentDispatched"].__setitem__("address", 5),
            [
                (
                    "/channels/shipmentDispatched/address",
                    "address must be a string or null, not integer",
                )
            ],
        ),
        (
            lambda d: d["servers"]["production"].pop("host"),
            [("/servers/production", "'host' is a required property")],
        ),
    ],
)
def test_asyncapi_3_structure_problems(mutate, expected):
    doc = fixture("order_events_asyncapi30.yaml")
    mutate(doc)
    error = refused(validate_spec, doc)
    assert [(p.path, p.message) for p in error.problems] == expected


def test_json_schema_problems_are_mapped_to_paths():
    doc = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": "id",
        "properties": {"id": {"type": "strin"}, "n": {"minLength": -1}},
    }
    error = refused(validate_spec, doc)
    assert sorted(paths_of(error)) == [
        "/properties/id/type",
        "/properties/n/minLength",
        "/required",
    ]


def test_validate_spec_refuses_non_json_python_values():
    assert paths_of(refused(validate_spec, {"type": "object", "default": {1, 2}})) == ["/default"]
    assert paths_of(refused(validate_spec, {"type": "object", "x": {"a": float("nan")}})) == [
        "/x/a"
    ]
    assert paths_of(refused(validate_spec, {"type": "object", "x": {1: "a"}})) == ["/x"]
    assert "nests deeper" in str(refused(validate_spec, _deep_dict(500)))
    loop: dict = {"type": "object"}
    loop["properties"] = {"self": loop}
    assert "nests deeper" in str(refused(validate_spec, loop))


def _deep_dict(depth: int) -> dict:
    doc: dict = {}
    node = doc
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return doc


def test_too_many_problems_are_summarised():
    doc = oas({f"/p{i}": {"get": {"responses": {"200": {}}}} for i in range(120)})
    error = refused(validate_spec, doc)
    assert len(error.problems) == specs.MAX_PROBLEMS + 1
    assert error.problems[-1].message.startswith("... and ")


def test_spec_error_is_readable():
    one = SpecError("bad thing", "/a")
    assert str(one) == "/a: bad thing"
    assert one.problems == [SpecProblem("/a", "bad thing")]
    two = SpecError([SpecProblem("", "x"), SpecProblem("/b~1c", "y")])
    assert str(two) == "2 problems:\n- (document): x\n- /b~1c: y"
    assert two.problems[1].as_dict() == {"path": "/b~1c", "message": "y"}


# ----------------------------------------------------------------------------------------
# $ref rules
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, words",
    [
        ("http://example.com/schemas/x.json", "remote reference"),
        ("https://example.com/schemas/x.json#/X", "remote reference"),
        ("HTTP://EXAMPLE.COM/x", "remote reference"),
        ("//example.com/x.json", "remote reference"),
        ("file:///etc/passwd", "file reference"),
        ("file://localhost/etc/passwd#/x", "file reference"),
        ("other.yaml#/components/schemas/X", "points to another file"),
        ("../../etc/passwd", "points to another file"),
        ("/etc/passwd", "points to another file"),
        ("urn:example:schema", "external reference"),
        ("ftp://example.com/x", "external reference"),
        ("", "empty reference"),
    ],
)
def test_non_local_refs_are_refused_at_their_path(ref, words):
    doc = oas({"/a": {"get": {"responses": ok_response({"$ref": ref})}}})
    error = refused(validate_spec, doc)
    problem = error.problems[0]
    assert problem.path == "/paths/~1a/get/responses/200/content/application~1json/schema/$ref"
    assert words in problem.message
    assert "root:" not in str(error)


def test_dangling_local_refs_are_refused():
    doc = oas(
        {"/a": {"get": {"responses": ok_response({"$ref": "#/components/schemas/Ordr"})}}},
        {
            "Order": {
                "type": "object",
                "properties": {"x": {"$ref": "#/components/schemas/Order/properties/y"}},
            }
        },
    )
    error = refused(validate_spec, doc)
    assert [(p.path, p.message) for p in error.problems] == [
        (
            "/paths/~1a/get/responses/200/content/application~1json/schema/$ref",
            "$ref '#/components/schemas/Ordr' does not resolve: nothing named 'Ordr' at "
            "/components/schemas",
        ),
        (
            "/components/schemas/Order/properties/x/$ref",
            "$ref '#/components/schemas/Order/properties/y' does not resolve: nothing named 'y' "
            "at /components/schemas/Order/properties",
        ),
    ]


@pytest.mark.parametrize(
    "schemas, path",
    [
        (
            {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}},
            "/components/schemas/A/$ref",
        ),
        ({"A": {"$ref": "#/components/schemas/A"}}, "/components/schemas/A/$ref"),
        (
            {
                "A": {"$ref": "#/components/schemas/B"},
                "B": {"$ref": "#/components/schemas/C"},
                "C": {"$ref": "#/components/schemas/A"},
            },
            "/components/schemas/A/$ref",
        ),
        (
            {
                "A": {"allOf": [{"$ref": "#/components/schemas/B"}]},
                "B": {"anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/A"}]},
            },
            "/components/schemas/A/allOf/0/$ref",
        ),
    ],
    ids=["two", "self", "three", "through-allOf"],
)
def test_pure_reference_cycles_are_refused(schemas, path):
    error = refused(validate_spec, oas({}, schemas))
    assert paths_of(error) == [path]
    assert "circular $ref" in error.problems[0].message


def test_a_json_schema_that_is_only_a_ref_to_itself_is_refused():
    error = refused(
        validate_spec, {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#"}
    )
    assert paths_of(error) == ["/$ref"]


def test_recursion_through_properties_and_items_is_allowed():
    tree = {
        "Node": {
            "type": "object",
            "properties": {
                "parent": {"$ref": "#/components/schemas/Node"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            },
        }
    }
    doc = oas(
        {"/n": {"get": {"responses": ok_response({"$ref": "#/components/schemas/Node"})}}}, tree
    )
    assert validate_spec(doc).kind == "openapi-3.0"
    assert diff_specs(doc, copy.deepcopy(doc)).breaking == []
    assert (
        validate_spec({"type": "object", "properties": {"next": {"$ref": "#"}}}).kind
        == "json-schema"
    )


def test_local_refs_by_pointer_escape_anchor_and_root_id_resolve():
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.example.com/order.json",
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/a~1b"},
            "b": {"$ref": "#/$defs/with%20space"},
            "c": {"$ref": "#money"},
            "d": {"$ref": "https://schemas.example.com/order.json#/$defs/a~1b"},
        },
        "$defs": {
            "a/b": {"type": "string"},
            "with space": {"type": "integer"},
            "Money": {"$anchor": "money", "type": "number"},
        },
    }
    assert validate_spec(doc).kind == "json-schema"


def test_nested_id_and_unknown_schema_dialects_are_refused():
    doc = {
        "type": "object",
        "properties": {
            "a": {"$id": "https://evil.example.com/a.json", "$ref": "#/$defs/x"},
            "b": {"$schema": "https://evil.example.com/meta", "type": "string"},
        },
        "$defs": {"x": {"type": "string"}},
    }
    error = refused(validate_spec, doc)
    assert paths_of(error) == ["/properties/a/$id", "/properties/b/$schema"]


def test_ref_like_values_inside_examples_enums_and_defaults_are_data():
    doc = oas(
        {
            "/a": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "link": {
                                                "type": "object",
                                                "example": {"$ref": "https://example.com/x"},
                                                "default": {"$ref": "file:///etc/passwd"},
                                                "enum": [{"$ref": "other.yaml"}],
                                            },
                                            # a *property* called "example" is a schema
                                            "example": {"type": "string"},
                                        },
                                    },
                                    "example": {"$ref": "http://127.0.0.1:1/x", "$id": "y"},
                                }
                            },
                        }
                    }
                }
            }
        }
    )
    assert validate_spec(doc).kind == "openapi-3.0"


def test_asyncapi_and_json_schema_refs_follow_the_same_rules():
    doc = fixture("order_events_asyncapi26.yaml")
    doc["components"]["schemas"]["OrderEvent"]["properties"]["total"] = {
        "$ref": "https://example.com/money.json"
    }
    error = refused(validate_spec, doc)
    assert paths_of(error) == ["/components/schemas/OrderEvent/properties/total/$ref"]
    doc = fixture("customer.schema.json")
    doc["$defs"]["Address"]["properties"]["city"] = {"$ref": "cities.json#/City"}
    assert paths_of(refused(validate_spec, doc)) == ["/$defs/Address/properties/city/$ref"]


# ----------------------------------------------------------------------------------------
# Proof that nothing is fetched or read
# ----------------------------------------------------------------------------------------


class _Listener:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections: list[tuple] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                listener.requests.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        original = self.server.verify_request

        def verify(request, address):
            self.connections.append(address)
            return original(request, address)

        self.server.verify_request = verify
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = _Listener()
    yield server
    server.close()


_AUDIT = {"active": False, "events": []}


def _audit_hook(event: str, args: tuple) -> None:
    if not _AUDIT["active"]:
        return
    if event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        _AUDIT["events"].append((event, repr(args)[:200]))
    elif event == "open" and args and "passwd" in str(args[0]):
        _AUDIT["events"].append((event, str(args[0])))


sys.addaudithook(_audit_hook)


def hostile_documents(port: int) -> list[tuple[str, dict]]:
    base = f"http://127.0.0.1:{port}"
    schema = "https://json-schema.org/draft/2020-12/schema"
    return [
        (
            "openapi-3.0 ref",
            oas({"/a": {"get": {"responses": ok_response({"$ref": f"{base}/x.json"})}}}),
        ),
        (
            "openapi-3.0 nested ref",
            oas(
                {"/a": {"get": {"responses": ok_response({"$ref": "#/components/schemas/A"})}}},
                {
                    "A": {
                        "type": "object",
                        "properties": {
                            "b": {
                                "type": "array",
                                "items": {"allOf": [{"$ref": f"{base}/deep.json#/B"}]},
                            }
                        },
                    }
                },
            ),
        ),
        (
            "openapi-3.1 $id trick",
            oas(
                {},
                {"A": {"$id": f"{base}/a.json", "$ref": "b.json"}, "B": {"$ref": f"{base}/b.json"}},
                version="3.1.0",
            ),
        ),
        (
            "openapi-3.1 $schema trick",
            oas({}, {"A": {"$schema": f"{base}/meta.json", "type": "string"}}, version="3.1.0"),
        ),
        (
            "openapi-3.1 dialect",
            dict(oas({}, version="3.1.0"), jsonSchemaDialect=f"{base}/dialect"),
        ),
        (
            "openapi-3.1 path item ref",
            oas({"/a": {"$ref": f"{base}/paths.json#/a"}}, version="3.1.0"),
        ),
        ("json-schema $schema", {"$schema": f"{base}/meta.json", "type": "object"}),
        (
            "json-schema root $id + relative ref",
            {
                "$schema": schema,
                "$id": f"{base}/root.json",
                "properties": {"a": {"$ref": "a.json"}},
            },
        ),
        (
            "json-schema dynamicRef",
            {"$schema": schema, "items": {"$dynamicRef": f"{base}/d.json#meta"}},
        ),
        (
            "json-schema nested",
            {
                "$schema": schema,
                "properties": {"a": {"oneOf": [{"not": {"$ref": f"{base}/n.json"}}]}},
            },
        ),
        (
            "asyncapi-2 payload",
            {
                "asyncapi": "2.6.0",
                "info": {"title": "T", "version": "1"},
                "channels": {
                    "c": {"subscribe": {"message": {"payload": {"$ref": f"{base}/p.json"}}}}
                },
            },
        ),
        (
            "asyncapi-3 channel",
            {
                "asyncapi": "3.0.0",
                "info": {"title": "T", "version": "1"},
                "channels": {"c": {"$ref": f"{base}/c.yaml"}},
            },
        ),
        (
            "file ref",
            oas({"/a": {"get": {"responses": ok_response({"$ref": "file:///etc/passwd"})}}}),
        ),
        (
            "relative passwd",
            {"$schema": schema, "properties": {"p": {"$ref": "../../../../etc/passwd#/root"}}},
        ),
    ]


def test_no_reference_is_ever_fetched_or_read(listener):
    documents = hostile_documents(listener.port)
    _AUDIT["events"] = []
    _AUDIT["active"] = True
    try:
        for name, doc in documents:
            raw = json.dumps(doc).encode()
            loaded = timed(load_document, raw)
            assert isinstance(loaded, dict), name
            error = refused(validate_spec, loaded)
            assert error.problems, name
            assert "root:x:" not in str(error)
            refused(diff_specs, loaded, loaded)
            kind = name.split(" ")[0]
            if kind in specs.KINDS:
                timed(list_operations, kind, loaded)
    finally:
        _AUDIT["active"] = False
    assert listener.requests == []
    assert listener.connections == []
    assert _AUDIT["events"] == []
    # The listener and the audit hook do notice a real fetch.
    _AUDIT["active"] = True
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{listener.port}/probe", timeout=5) as reply:
            assert reply.status == 200
    finally:
        _AUDIT["active"] = False
    assert listener.requests == ["/probe"]
    assert [event for event, _ in _AUDIT["events"]].count("socket.connect") == 1


def test_file_refs_give_an_error_without_file_content():
    for ref in ("file:///etc/passwd", "file:///etc/passwd#/root", "/etc/passwd", "../etc/passwd"):
        error = refused(
            validate_spec,
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "properties": {"x": {"$ref": ref}},
            },
        )
        assert paths_of(error) == ["/properties/x/$ref"]
        assert "root:" not in str(error) and "/bin/" not in str(error)


# ----------------------------------------------------------------------------------------
# ReDoS: user patterns are never compiled or run here
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_evil_patterns_cost_nothing(version):
    evil = "^(a+)+$"
    keyword = "patternProperties" if version == "3.1.0" else "x-patternProperties"
    doc = oas(
        {
            "/a": {
                "get": {
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "pattern": evil,
                                "default": "a" * 50 + "!",
                            },
                        }
                    ],
                    "responses": ok_response(
                        {
                            "type": "object",
                            keyword: {"(x+x+)+y": {"type": "string"}},
                            "properties": {
                                "a" * 40 + "!": {"type": "string", "pattern": "(.*a){25}"}
                            },
                        }
                    ),
                }
            }
        }
    )
    doc["openapi"] = version
    assert timed(validate_spec, doc).kind.startswith("openapi")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "string",
        "pattern": "(a|aa)+$",
        "examples": ["a" * 60 + "!"],
        "propertyNames": {"pattern": "^(([a-z])+.)+[A-Z]([a-z])+$"},
    }
    assert timed(validate_spec, schema).kind == "json-schema"
    old = copy.deepcopy(schema)
    schema["pattern"] = "(x+x+)+y"
    assert timed(diff_specs, old, schema).breaking == []


def test_invalid_regex_syntax_is_not_compiled_either():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "string",
        "pattern": "(unclosed",
    }
    assert validate_spec(schema).kind == "json-schema"


# ----------------------------------------------------------------------------------------
# diff_specs
# ----------------------------------------------------------------------------------------

ORDER_200 = "/paths/~1orders~1{orderId}/get/responses/200/content/application~1json/schema"
CREATE_BODY = "/paths/~1customers/post/requestBody/content/application~1json/schema"


def test_openapi_diff_of_the_crm_fixtures_lists_every_change():
    diff = diff_specs(fixture("crm_customers_v1.yaml"), fixture("crm_customers_v2.yaml"))
    assert [(c.kind, c.location) for c in diff.breaking] == [
        ("enum-value-removed", "/paths/~1customers/get/parameters/0/schema/enum"),
        ("request-field-added-required", f"{CREATE_BODY}/properties/country_code"),
        ("request-field-made-required", f"{CREATE_BODY}/properties/phone"),
        ("operation-removed", "/paths/~1customers~1{customerId}/delete"),
        ("parameter-added-required", "/paths/~1customers~1{customerId}~1orders/get/parameters/1"),
        ("response-field-renamed", f"{ORDER_200}/properties/customer_id"),
        ("response-field-removed", f"{ORDER_200}/properties/tracking_url"),
        ("enum-value-removed", f"{ORDER_200}/properties/status/enum"),
        ("type-changed", f"{ORDER_200}/properties/lines/items/properties/quantity"),
        ("status-code-removed", "/paths/~1orders~1{orderId}~1cancel/post/responses/409"),
        ("path-removed", "/paths/~1health"),
    ]
    assert [(c.kind, c.location) for c in diff.compatible] == [
        ("description-changed", "/paths/~1customers/get/description"),
        ("parameter-added", "/paths/~1customers/get/parameters/3"),
        ("request-field-added", f"{CREATE_BODY}/properties/preferred_language"),
        ("status-code-added", "/paths/~1customers/post/responses/409"),
        ("response-field-added", f"{ORDER_200}/properties/is_gift"),
        ("enum-value-added", f"{ORDER_200}/properties/status/enum"),
        ("operation-added", "/paths/~1orders/get"),
    ]
    messages = {c.kind: c.message for c in diff.breaking + diff.compatible}
    assert messages["response-field-renamed"] == (
        "GET /orders/{orderId} response 200: field 'customer_id' renamed to 'customer_ref' "
        "(one field removed and one of the same type added)"
    )
    assert messages["type-changed"] == (
        "GET /orders/{orderId} response 200: field 'lines[].quantity' type changed from integer "
        "to string"
    )
    assert messages["parameter-added-required"] == (
        "GET /customers/{customerId}/orders: query parameter 'since' added as required"
    )
    assert messages["path-removed"] == "path /health removed (GET)"
    assert diff.is_breaking and not diff.truncated
    assert all(isinstance(c, Change) for c in diff.breaking)


def test_openapi_diff_of_identical_specs_is_empty():
    doc = fixture("crm_customers_v1.yaml")
    diff = diff_specs(doc, fixture("crm_customers_v1.yaml"))
    assert (diff.breaking, diff.compatible) == ([], [])


def test_openapi_diff_covers_bodies_media_types_and_parameters():
    old = oas(
        {
            "/items/{id}": {
                "get": {
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "fields", "in": "query", "schema": {"type": "string"}},
                        {"name": "lang", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Item"}
                                },
                                "application/xml": {"schema": {"type": "string"}},
                            },
                        }
                    },
                },
                "put": {"responses": {"204": {"description": "done"}}},
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                        }
                    },
                    "responses": {"204": {"description": "done"}},
                },
            }
        },
        {
            "Item": {
                "type": "object",
                "required": ["name", "sku"],
                "properties": {
                    "name": {"type": "string"},
                    "sku": {"type": "string"},
                    "note": {"type": "string", "description": "free text"},
                },
            }
        },
    )
    new = copy.deepcopy(old)
    new["paths"] = {"/items/{itemId}": new["paths"].pop("/items/{id}")}
    get = new["paths"]["/items/{itemId}"]["get"]
    get["parameters"][0]["name"] = "itemId"  # renaming a path parameter changes nothing
    get["parameters"][1]["required"] = True
    del get["parameters"][2]
    del get["responses"]["200"]["content"]["application/xml"]
    get["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    new["paths"]["/items/{itemId}"]["put"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    post = new["paths"]["/items/{itemId}"]["post"]
    post["requestBody"]["required"] = True
    post["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
        "schema": {"type": "object"}
    }
    item = new["components"]["schemas"]["Item"]
    item["required"] = ["name"]
    item["properties"]["note"]["description"] = "free text, at most 500 characters"

    diff = diff_specs(old, new)
    get_200 = "/paths/~1items~1{itemId}/get/responses/200/content"
    post_body = "/paths/~1items~1{itemId}/post/requestBody"
    assert [(c.kind, c.location, c.message) for c in diff.breaking] == [
        (
            "parameter-made-required",
            "/paths/~1items~1{itemId}/get/parameters/1/required",
            "GET /items/{itemId}: query parameter 'fields' made required",
        ),
        (
            "response-field-made-optional",
            f"{get_200}/application~1json/schema/properties/sku",
            "GET /items/{itemId} response 200: field 'sku' made optional (it may be absent)",
        ),
        (
            "response-media-type-removed",
            f"{get_200}/application~1xml",
            "GET /items/{itemId}: response 200 application/xml removed",
        ),
        (
            "request-body-added-required",
            "/paths/~1items~1{itemId}/put/requestBody",
            "PUT /items/{itemId}: a required request body was added",
        ),
        (
            "request-body-made-required",
            post_body,
            "POST /items/{itemId}: request body made required",
        ),
    ]
    assert [(c.kind, c.location) for c in diff.compatible] == [
        ("parameter-removed", "/paths/~1items~1{id}/get/parameters/2"),
        ("description-changed", f"{get_200}/application~1json/schema/properties/note/description"),
        ("response-media-type-added", f"{get_200}/text~1csv"),
        (
            "request-field-made-optional",
            f"{post_body}/content/application~1json/schema/properties/sku",
        ),
        (
            "description-changed",
            f"{post_body}/content/application~1json/schema/properties/note/description",
        ),
        ("request-media-type-added", f"{post_body}/content/application~1x-www-form-urlencoded"),
    ]


def test_openapi_diff_removing_a_request_enum_value_and_a_request_field():
    old = oas(
        {
            "/o": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "kind": {"type": "string", "enum": ["a", "b", "c", "d"]},
                                        "legacy": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {"204": {"description": "ok"}},
                }
            }
        }
    )
    new = copy.deepcopy(old)
    schema = new["paths"]["/o"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema["properties"]["kind"]["enum"] = ["d", "a"]
    del schema["properties"]["legacy"]
    diff = diff_specs(old, new)
    assert [c.message for c in diff.breaking] == [
        "POST /o request body: field 'kind' enum value \"b\" removed",
        "POST /o request body: field 'kind' enum value \"c\" removed",
    ]
    assert [c.kind for c in diff.compatible] == ["request-field-removed"]


def test_openapi_30_nullable_equals_31_type_null():
    old = oas({"/a": {"get": {"responses": ok_response({"type": "string", "nullable": True})}}})
    new = oas(
        {"/a": {"get": {"responses": ok_response({"type": ["string", "null"]})}}}, version="3.1.0"
    )
    assert diff_specs(old, new).breaking == []
    newer = oas({"/a": {"get": {"responses": ok_response({"type": "string"})}}}, version="3.1.0")
    assert [c.message for c in diff_specs(new, newer).breaking] == [
        "GET /a response 200: type changed from string|null to string"
    ]


def test_openapi_diff_follows_allof_and_shared_refs_per_operation():
    schemas = {
        "Base": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "old": {"type": "integer"}},
        },
        "Thing": {
            "allOf": [
                {"$ref": "#/components/schemas/Base"},
                {"properties": {"x": {"type": "string"}}},
            ]
        },
    }
    paths = {
        "/a": {"get": {"responses": ok_response({"$ref": "#/components/schemas/Thing"})}},
        "/b": {"get": {"responses": ok_response({"$ref": "#/components/schemas/Thing"})}},
    }
    old = oas(paths, schemas)
    new = copy.deepcopy(old)
    del new["components"]["schemas"]["Base"]["properties"]["old"]
    diff = diff_specs(old, new)
    assert [(c.kind, c.location) for c in diff.breaking] == [
        (
            "response-field-removed",
            "/paths/~1a/get/responses/200/content/application~1json/schema/properties/old",
        ),
        (
            "response-field-removed",
            "/paths/~1b/get/responses/200/content/application~1json/schema/properties/old",
        ),
    ]


ASYNC_PAYLOAD = "/channels/crm.customers.updated/publish/message/payload"


def test_asyncapi_2_diff_lists_every_change():
    old = fixture("order_events_asyncapi26.yaml")
    new = copy.deepcopy(old)
    channels = new["channels"]
    del channels["erp.orders.deleted"]
    channels["erp.orders.archived"] = {
        "subscribe": {"message": {"name": "OrderArchived", "payload": {"type": "object"}}}
    }
    channels["erp.orders.created"]["publish"] = channels["erp.orders.created"].pop("subscribe")
    status = channels["erp.orders.status-changed"]["subscribe"]["message"]["oneOf"]
    status[1] = {"name": "OrderDelivered", "payload": {"$ref": "#/components/schemas/OrderEvent"}}
    payload = channels["crm.customers.updated"]["publish"]["message"]["payload"]
    payload["properties"]["customer_id"] = {"type": "integer"}
    del payload["properties"]["fields"]
    payload["properties"]["source"] = {"type": "string", "enum": ["crm", "portal"]}
    payload["properties"]["changed_by"] = {"type": "string"}
    payload["required"].append("source")

    diff = diff_specs(old, new)
    assert [(c.kind, c.location) for c in diff.breaking] == [
        ("operation-removed", "/channels/erp.orders.created/subscribe"),
        ("message-removed", "/channels/erp.orders.status-changed/subscribe/message/oneOf/1"),
        ("payload-field-removed", f"{ASYNC_PAYLOAD}/properties/fields"),
        ("payload-field-added-required", f"{ASYNC_PAYLOAD}/properties/source"),
        ("type-changed", f"{ASYNC_PAYLOAD}/properties/customer_id"),
        ("channel-removed", "/channels/erp.orders.deleted"),
    ]
    assert [(c.kind, c.location) for c in diff.compatible] == [
        ("operation-added", "/channels/erp.orders.created/publish"),
        ("message-added", "/channels/erp.orders.status-changed/subscribe/message/oneOf/1"),
        ("payload-field-added", f"{ASYNC_PAYLOAD}/properties/changed_by"),
        ("channel-added", "/channels/erp.orders.archived"),
    ]
    assert diff.breaking[1].message == (
        "channel erp.orders.status-changed (subscribe): message 'OrderCancelled' removed"
    )
    assert diff.breaking[4].message == (
        "channel crm.customers.updated (publish) message 'CustomerUpdated' payload: "
        "field 'customer_id' type changed from string to integer"
    )


def test_asyncapi_3_diff_lists_every_change():
    old = fixture("order_events_asyncapi30.yaml")
    new = copy.deepcopy(old)
    del new["channels"]["shipmentRequests"]
    del new["operations"]["receiveShipmentRequest"]
    new["channels"]["shipmentReturned"] = {
        "address": "warehouse.shipments.returned",
        "messages": {"ShipmentReturned": {"payload": {"type": "object"}}},
    }
    new["operations"]["receiveShipmentReturned"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/shipmentReturned"},
    }
    new["channels"]["shipmentDispatched"]["address"] = "warehouse.shipments.sent"
    new["operations"]["sendShipmentDispatched"]["action"] = "receive"
    shipment = new["components"]["schemas"]["Shipment"]
    shipment["properties"]["shipment_id"] = {"type": "integer"}
    shipment["properties"]["carrier"]["enum"] = ["dhl", "ups", "fedex"]
    shipment["properties"]["weight_kg"] = {"type": "number"}
    shipment["required"].append("tracking_number")

    diff = diff_specs(old, new)
    payload = "/channels/shipmentDispatched/messages/ShipmentDispatched/payload"
    assert [(c.kind, c.location) for c in diff.breaking] == [
        ("channel-address-changed", "/channels/shipmentDispatched/address"),
        ("type-changed", f"{payload}/properties/shipment_id"),
        ("enum-value-removed", f"{payload}/properties/carrier/enum"),
        ("payload-field-made-required", f"{payload}/properties/tracking_number"),
        ("channel-removed", "/channels/shipmentRequests"),
        ("operation-action-changed", "/operations/sendShipmentDispatched/action"),
        ("operation-removed", "/operations/receiveShipmentRequest"),
    ]
    assert [(c.kind, c.location) for c in diff.compatible] == [
        ("payload-field-added", f"{payload}/properties/weight_kg"),
        ("enum-value-added", f"{payload}/properties/carrier/enum"),
        ("channel-added", "/channels/shipmentReturned"),
        ("operation-added", "/operations/receiveShipmentReturned"),
    ]


def test_json_schema_diff_lists_every_change():
    old = fixture("customer.schema.json")
    new = copy.deepcopy(old)
    props = new["properties"]
    del props["addresses"]
    del props["parent"]
    del new["$defs"]["CustomerRef"]
    props["id"] = {"type": "integer"}
    props["status"]["enum"] = ["active", "inactive", "blocked"]
    props["segment"] = {"$ref": "#/$defs/Segment"}
    props["email_verified"] = {"type": "boolean"}
    new["required"] += ["email", "segment"]
    new["$defs"]["OrgUnit"]["properties"]["code"] = {"type": "string"}
    new["$defs"]["Segment"] = {"type": "string", "enum": ["smb", "enterprise"]}

    diff = diff_specs(old, new)
    assert [(c.kind, c.location) for c in diff.breaking] == [
        ("property-removed", "/properties/addresses"),
        ("property-removed", "/properties/parent"),
        ("property-added-required", "/properties/segment"),
        ("type-changed", "/properties/id"),
        ("enum-value-removed", "/properties/status/enum"),
        ("property-made-required", "/properties/email"),
        ("definition-removed", "/$defs/CustomerRef"),
    ]
    assert [(c.kind, c.location) for c in diff.compatible] == [
        ("property-added", "/properties/email_verified"),
        ("enum-value-added", "/properties/status/enum"),
        ("property-added", "/properties/organisation/properties/code"),
        ("definition-added", "/$defs/Segment"),
    ]
    assert diff.compatible[2].message == "schema: property 'organisation.code' added"


def test_diff_refuses_invalid_or_mismatched_documents():
    good = fixture("crm_customers_v1.yaml")
    error = refused(diff_specs, {"openapi": "3.0.0", "paths": []}, good)
    assert all(p.message.startswith("old version: ") for p in error.problems)
    error = refused(diff_specs, good, [1, 2])
    assert error.problems[0].message.startswith("new version: ")
    error = refused(diff_specs, good, fixture("order_events_asyncapi26.yaml"))
    assert "cannot compare a openapi-3.0 document with a asyncapi-2 document" in str(error)
    refused(
        diff_specs, fixture("order_events_asyncapi26.yaml"), fixture("order_events_asyncapi30.yaml")
    )


def test_diff_stays_bounded_on_exponentially_shared_schemas():
    schemas = {"S0": {"type": "object", "properties": {"v": {"type": "string"}}}}
    for i in range(1, 40):
        ref = {"$ref": f"#/components/schemas/S{i - 1}"}
        schemas[f"S{i}"] = {"type": "object", "properties": {"a": ref, "b": ref}}
    old = oas(
        {"/x": {"get": {"responses": ok_response({"$ref": "#/components/schemas/S39"})}}}, schemas
    )
    new = copy.deepcopy(old)
    new["components"]["schemas"]["S0"]["properties"]["v"] = {"type": "integer"}
    diff = timed(diff_specs, old, new)
    assert diff.breaking and all(c.kind == "type-changed" for c in diff.breaking)
    assert len(diff.breaking) + len(diff.compatible) <= specs.MAX_CHANGES
    assert diff.truncated


def test_list_operations_refuses_unknown_kinds_and_bad_documents():
    assert "unknown spec kind" in str(refused(list_operations, "raml", {}))
    refused(list_operations, "openapi-3.0", [1])
    assert list_operations("openapi-3.0", {"openapi": "3.0.0", "paths": []}) == []
    assert list_operations("asyncapi-3", {"operations": {"x": "y"}})[0].key == "channel  ()"


# ----------------------------------------------------------------------------------------
# Property-based: anything in, only success or SpecError out
# ----------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)
REFS = [
    "#/components/schemas/A",
    "#/components/schemas/B",
    "#/components/schemas/Missing",
    "#",
    "#/",
    "#/paths",
    "http://127.0.0.1:9/x.json",
    "file:///etc/passwd",
    "other.yaml#/x",
    "#anchor",
]
schema_leaf = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["string", "integer", "object", "array", ["string", "null"], "bogus"]
        ),
        "enum": st.lists(st.sampled_from(["a", "b", 1, None]), max_size=3),
        "$ref": st.sampled_from(REFS),
        "description": st.text(max_size=4),
        "required": st.lists(st.sampled_from(["p", "q", "r"]), max_size=2),
        "nullable": st.booleans(),
    },
)
schemas_strategy = st.recursive(
    schema_leaf,
    lambda children: st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["object", "array"]),
            "properties": st.dictionaries(st.sampled_from(["p", "q", "r"]), children, max_size=3),
            "items": children,
            "allOf": st.lists(children, max_size=2),
            "oneOf": st.lists(children, max_size=2),
            "required": st.lists(st.sampled_from(["p", "q", "r"]), max_size=2),
        },
    ),
    max_leaves=12,
)
operation_strategy = st.fixed_dictionaries(
    {
        "responses": st.dictionaries(
            st.sampled_from(["200", "201", "404", "default"]),
            st.fixed_dictionaries(
                {"description": st.just("ok")},
                optional={
                    "content": st.fixed_dictionaries(
                        {"application/json": st.fixed_dictionaries({"schema": schemas_strategy})}
                    )
                },
            ),
            max_size=2,
        )
    },
    optional={
        "parameters": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["a", "b"]), "in": st.sampled_from(["query", "header"])},
                optional={"required": st.booleans(), "schema": schemas_strategy},
            ),
            max_size=2,
        ),
        "requestBody": st.fixed_dictionaries(
            {
                "content": st.fixed_dictionaries(
                    {"application/json": st.fixed_dictionaries({"schema": schemas_strategy})}
                )
            },
            optional={"required": st.booleans()},
        ),
    },
)
openapi_docs = st.fixed_dictionaries(
    {
        "openapi": st.sampled_from(["3.0.3", "3.1.0"]),
        "info": st.fixed_dictionaries({"title": st.just("T"), "version": st.just("1")}),
        "paths": st.dictionaries(
            st.sampled_from(["/a", "/b/{id}", "/b/{key}", "c"]),
            st.dictionaries(
                st.sampled_from(["get", "post", "delete"]), operation_strategy, max_size=2
            )
            | json_values,
            max_size=3,
        ),
        "components": st.fixed_dictionaries(
            {
                "schemas": st.dictionaries(
                    st.sampled_from(["A", "B", "C"]), schemas_strategy, max_size=3
                )
            }
        ),
    }
)
asyncapi_docs = st.fixed_dictionaries(
    {
        "asyncapi": st.sampled_from(["2.6.0", "3.0.0"]),
        "info": st.fixed_dictionaries({"title": st.just("T"), "version": st.just("1")}),
        "channels": st.dictionaries(
            st.sampled_from(["x", "y"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "subscribe": st.fixed_dictionaries(
                        {"message": st.fixed_dictionaries({"payload": schemas_strategy})}
                    ),
                    "messages": st.dictionaries(
                        st.sampled_from(["m", "n"]),
                        st.fixed_dictionaries({"payload": schemas_strategy}),
                    ),
                    "address": st.sampled_from(["a", "b", None]),
                },
            ),
            max_size=2,
        ),
    }
)
plausible_schema = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["string", "integer", "number", "boolean"]),
            "enum": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
            "description": st.sampled_from(["x", "y"]),
        },
    )
    | st.builds(lambda name: {"$ref": f"#/components/schemas/{name}"}, st.sampled_from("AB")),
    lambda children: (
        st.fixed_dictionaries(
            {"type": st.just("object")},
            optional={
                "properties": st.dictionaries(
                    st.sampled_from(["p", "q", "r", "s"]), children, max_size=4
                ),
                "required": st.lists(st.sampled_from(["p", "q", "r"]), max_size=3, unique=True),
            },
        )
        | st.fixed_dictionaries({"type": st.just("array"), "items": children})
        | st.fixed_dictionaries({"allOf": st.lists(children, min_size=1, max_size=2)})
    ),
    max_leaves=10,
)
plausible_operation = st.fixed_dictionaries(
    {
        "responses": st.dictionaries(
            st.sampled_from(["200", "201", "404"]),
            st.fixed_dictionaries(
                {"description": st.sampled_from(["ok", "fine"])},
                optional={
                    "content": st.fixed_dictionaries(
                        {"application/json": st.fixed_dictionaries({"schema": plausible_schema})}
                    )
                },
            ),
            min_size=1,
            max_size=2,
        )
    },
    optional={
        "parameters": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["a", "b"]),
                    "in": st.just("query"),
                    "schema": plausible_schema,
                },
                optional={"required": st.booleans()},
            ),
            max_size=2,
            unique_by=lambda p: p["name"],
        ),
        "requestBody": st.fixed_dictionaries(
            {
                "content": st.fixed_dictionaries(
                    {"application/json": st.fixed_dictionaries({"schema": plausible_schema})}
                )
            },
            optional={"required": st.booleans()},
        ),
        "summary": st.sampled_from(["s", "t"]),
    },
)
plausible_openapi_docs = st.fixed_dictionaries(
    {
        "openapi": st.sampled_from(["3.0.3", "3.1.0"]),
        "info": st.fixed_dictionaries({"title": st.just("T"), "version": st.just("1")}),
        "paths": st.dictionaries(
            st.sampled_from(["/a", "/b/{id}", "/b/{key}", "/c"]),
            st.dictionaries(
                st.sampled_from(["get", "post", "delete"]), plausible_operation, max_size=2
            ),
            max_size=3,
        ),
        "components": st.fixed_dictionaries(
            {"schemas": st.fixed_dictionaries({"A": plausible_schema, "B": plausible_schema})}
        ),
    }
)
any_doc = (
    json_values
    | openapi_docs
    | asyncapi_docs
    | st.dictionaries(st.text(max_size=5), schemas_strategy)
)


def _only_spec_errors(fn, *args):
    result = timed(fn, *args)
    assert not isinstance(result, BaseException) or isinstance(result, SpecError)
    return result


HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@HYPOTHESIS
@given(value=json_values)
def test_random_json_text_only_loads_or_raises_spec_error(value):
    raw = json.dumps(value, allow_nan=True)
    result = _only_spec_errors(load_document, raw)
    if not isinstance(result, SpecError):
        assert isinstance(result, dict)
        assert json.loads(json.dumps(result)) == result


@HYPOTHESIS
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_random_bytes_and_text_only_load_or_raise_spec_error(raw):
    result = _only_spec_errors(load_document, raw)
    assert isinstance(result, (dict, SpecError))


@HYPOTHESIS
@given(old=any_doc, new=any_doc)
def test_random_documents_only_validate_diff_list_or_raise_spec_error(old, new):
    for doc in (old, new):
        summary = _only_spec_errors(validate_spec, doc)
        if isinstance(summary, SpecSummary):
            operations = _only_spec_errors(list_operations, summary.kind, doc)
            assert isinstance(operations, list)
    diff = _only_spec_errors(diff_specs, old, new)
    if not isinstance(diff, SpecError):
        assert isinstance(diff.breaking, list) and isinstance(diff.compatible, list)
    diff = _only_spec_errors(diff_specs, old, copy.deepcopy(old))
    if not isinstance(diff, SpecError):
        assert diff.breaking == [] and diff.compatible == []


@HYPOTHESIS
@given(old=plausible_openapi_docs, new=plausible_openapi_docs)
def test_random_plausible_openapi_versions_diff_consistently(old, new):
    diff = _only_spec_errors(diff_specs, old, new)
    if isinstance(diff, SpecError):
        return
    for change in diff.breaking + diff.compatible:
        assert change.location.startswith("/") and change.kind and change.message
    same = diff_specs(old, copy.deepcopy(old))
    assert (same.breaking, same.compatible) == ([], [])
    removed = {c.location for c in diff.breaking if c.kind in ("operation-removed", "path-removed")}
    for path, item in old["paths"].items():
        for method in item:
            key = f"{method.upper()} {path}"
            still_there = any(
                op.key.split(" ")[0] == method.upper()
                and specs._norm_path(op.path) == specs._norm_path(path)
                for op in list_operations(validate_spec(new).kind, new)
            )
            if not still_there:
                assert any(
                    loc.startswith(specs.json_pointer(["paths", path])) for loc in removed
                ), key


YAML_PIECES = [
    "a: ", "b: ", "<<: ", "? ", ": ", "- ", "  ", "\n", "\n  ", "\n    ", "[", "]", "{", "}", ", ",
    "&x ", "&y ", "*x", "*y", "!!int ", "!!str ", "!!map ", "!!float ", "!!binary ", "!custom ",
    "1", "-2", "0x1F", "1.5", ".inf", "~", "null", "yes", "'q'", '"w"', "2024-01-01", "---\n",
    "|\n  text\n", "$ref: ", "'#/a'", "http://127.0.0.1:9/x",
]  # fmt: skip


@HYPOTHESIS
@given(pieces=st.lists(st.sampled_from(YAML_PIECES), max_size=40))
def test_random_yaml_constructs_only_load_or_raise_spec_error(pieces):
    result = _only_spec_errors(load_document, "".join(pieces))
    if not isinstance(result, SpecError):
        assert json.loads(json.dumps(result)) == result
        _only_spec_errors(validate_spec, result)
