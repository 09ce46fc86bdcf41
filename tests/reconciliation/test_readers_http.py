"""The HTTP reader against a real server on loopback (allowed by the environment's egress
allowlist): every pagination style, loops, errors and credentials."""

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.catalog.models import Endpoint
from apps.reconciliation.models import DataSource
from apps.reconciliation.readers import ReadError, Window, open_dataset, test_connection
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db

TOKEN = "tok-canary-41d2"
RECORDS = [
    {
        "id": number,
        "name": f"customer {number}",
        "amount": 10.10 + number if number != 3 else None,
        "customer": {"id": f"C{number}", "tags": ["a", "b"]},
        "updated_at": f"2024-05-{number:02d}T12:00:00Z",
        **({"extra": True} if number == 2 else {}),
    }
    for number in range(1, 26)
]
# The literal 10.10 + 1 is a float; the server sends it as JSON text, the reader reads Decimal.
WIRE = json.dumps(RECORDS)


class Api:
    """Routes of the fake API; ``hits`` counts requests per path, ``seen`` keeps the URLs."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.seen: list[str] = []
        self.headers: list[dict] = []
        self.port = 0

    def answer(self, path: str, query: dict) -> tuple[int, dict, bytes]:
        records = json.loads(WIRE)

        def one(name, default):
            return int(query.get(name, [default])[0])

        if path == "/api/list":
            return 200, {}, json.dumps(records).encode()
        if path == "/api/wrapped":
            return 200, {}, json.dumps({"data": {"items": records}, "count": 25}).encode()
        if path == "/api/paged":
            page, size = one("page", 1), one("page_size", 10)
            chunk = records[(page - 1) * size : page * size]
            return 200, {}, json.dumps({"items": chunk}).encode()
        if path == "/api/zero-paged":  # pages from 0, no size parameter: ends on an empty page
            page = one("p", 0)
            return 200, {}, json.dumps({"items": records[page * 7 : (page + 1) * 7]}).encode()
        if path == "/api/offset":
            offset, limit = one("skip", 0), one("take", 10)
            return 200, {}, json.dumps({"results": records[offset : offset + limit]}).encode()
        if path == "/api/cursor":
            start = int(query.get("after", ["0"])[0])
            chunk = records[start : start + 10]
            following = str(start + 10) if start + 10 < len(records) else None
            return 200, {}, json.dumps({"items": chunk, "meta": {"next": following}}).encode()
        if path == "/api/link":
            page = one("page", 1)
            headers = {}
            if page * 10 < len(records):
                headers["Link"] = (
                    f'</api/link?page={page + 1}>; rel="next", </api/link?page=1>; rel="first"'
                )
            return 200, headers, json.dumps(records[(page - 1) * 10 : page * 10]).encode()
        if path == "/api/loop-cursor":
            return 200, {}, json.dumps({"items": records[:2], "next": "same"}).encode()
        if path == "/api/loop-link":
            return 200, {"Link": '</api/loop-link?page=2>; rel="next"'}, b"[]"
        if path == "/api/escape-link":
            return 200, {"Link": '<http://127.0.0.2:1/steal>; rel="next"'}, b"[]"
        if path == "/api/endless":
            return 200, {}, json.dumps({"items": records[:1]}).encode()
        if path == "/api/broken":
            return 500, {}, b'{"error": "boom"}'
        if path == "/api/html":
            return 200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"
        if path == "/api/object":
            return 200, {}, b'{"items": []}'
        if path == "/api/scalars":
            return 200, {}, b"[1, 2]"
        if path == "/api/secure":
            return 200, {}, json.dumps(records[:3]).encode()
        if path == "/api/flaky":
            if self.hits[path] == 1:
                return 503, {"Retry-After": "1"}, b"{}"
            return 200, {}, json.dumps(records[:2]).encode()
        return 404, {}, b'{"error": "not found"}'


@pytest.fixture
def api():
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            state.hits[parts.path] = state.hits.get(parts.path, 0) + 1
            state.seen.append(self.path)
            state.headers.append(dict(self.headers))
            query = parse_qs(parts.query)
            if (
                parts.path == "/api/secure"
                and self.headers.get("Authorization") != f"Bearer {TOKEN}"
            ):
                status, headers, body = 401, {}, b'{"error": "who are you"}'
            else:
                status, headers, body = state.answer(parts.path, query)
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.port = httpd.server_address[1]
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def endpoint(api, interface_a, environment):
    endpoint = Endpoint(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{api.port}/api",
        auth_type="bearer",
        timeout_seconds=5,
    )
    endpoint.set_credentials({"token": TOKEN})
    endpoint.save()
    return endpoint


def source_for(endpoint):
    return DataSource(kind="http", endpoint=endpoint)


def read_all(endpoint, dataset, columns, options=None, *, window=None, size=10_000):
    with open_dataset(source_for(endpoint), dataset, options or {}, columns, window=window) as rows:
        return [row for batch in rows.batches(size) for row in batch]


def ids(rows):
    return [row[0] for row in rows]


def test_a_plain_list_reads_columns_by_name_nested_and_missing(endpoint, api):
    rows = read_all(endpoint, "list", ["id", "amount", "customer.id", "extra", "customer"])
    assert len(rows) == 25
    assert rows[0] == (1, Decimal("11.1"), "C1", None, '{"id":"C1","tags":["a","b"]}')
    assert rows[1][3] is True
    assert rows[2][1] is None
    assert isinstance(rows[5][1], Decimal)
    # The endpoint's credentials went along, through the egress door.
    assert api.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert api.headers[0]["User-Agent"].startswith("Pontis-egress")


def test_records_path_finds_the_list_in_an_object(endpoint):
    rows = read_all(endpoint, "wrapped", ["id"], {"records_path": "$.data.items"})
    assert ids(rows) == list(range(1, 26))
    rows = read_all(endpoint, "/wrapped", ["id"], {"records_path": "$.data.items[*]"})
    assert ids(rows) == list(range(1, 26))


def test_an_object_without_records_path_says_to_set_it(endpoint, api):
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "wrapped", ["id"])
    assert caught.value.message == (
        f"GET http://127.0.0.1:{api.port}/api/wrapped: the response is a JSON object, not a "
        "list; set records_path to the JSONPath of the records (e.g. $.items)"
    )
    with pytest.raises(ReadError, match=r"records_path \$\.rows matches nothing"):
        read_all(endpoint, "wrapped", ["id"], {"records_path": "$.rows"})


def test_page_style_reads_until_a_short_page(endpoint, api):
    options = {
        "records_path": "$.items",
        "pagination": {"style": "page", "page_size": 10},
    }
    rows = read_all(endpoint, "paged", ["id"], options, size=7)
    assert ids(rows) == list(range(1, 26))
    assert api.seen == [
        "/api/paged?page=1&page_size=10",
        "/api/paged?page=2&page_size=10",
        "/api/paged?page=3&page_size=10",
    ]


def test_page_style_without_a_size_reads_until_an_empty_page(endpoint, api):
    options = {
        "records_path": "$.items",
        "pagination": {"style": "page", "page_param": "p", "start_page": 0},
    }
    assert ids(read_all(endpoint, "zero-paged?sort=id", ["id"], options)) == list(range(1, 26))
    assert api.seen == [f"/api/zero-paged?sort=id&p={page}" for page in range(5)]


def test_offset_style(endpoint, api):
    options = {
        "records_path": "$.results",
        "pagination": {
            "style": "offset",
            "offset_param": "skip",
            "limit_param": "take",
            "page_size": 10,
        },
    }
    assert ids(read_all(endpoint, "offset", ["id"], options)) == list(range(1, 26))
    assert api.seen == [
        "/api/offset?skip=0&take=10",
        "/api/offset?skip=10&take=10",
        "/api/offset?skip=20&take=10",
    ]


def test_cursor_style_follows_the_next_cursor(endpoint, api):
    options = {
        "records_path": "$.items",
        "pagination": {"style": "cursor", "cursor_param": "after", "cursor_path": "$.meta.next"},
    }
    assert ids(read_all(endpoint, "cursor", ["id"], options)) == list(range(1, 26))
    assert api.seen == ["/api/cursor", "/api/cursor?after=10", "/api/cursor?after=20"]


def test_link_style_follows_rel_next(endpoint, api):
    assert ids(read_all(endpoint, "link", ["id"], {"pagination": {"style": "link"}})) == list(
        range(1, 26)
    )
    assert api.seen == ["/api/link", "/api/link?page=2", "/api/link?page=3"]


def test_a_cursor_loop_stops_with_an_error(endpoint, api):
    options = {
        "records_path": "$.items",
        "pagination": {"style": "cursor", "cursor_path": "$.next"},
    }
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "loop-cursor", ["id"], options)
    assert caught.value.message == (
        f"GET http://127.0.0.1:{api.port}/api/loop-cursor?cursor=same: the API returned the "
        "cursor 'same' a second time (a loop); stopped"
    )
    assert api.hits["/api/loop-cursor"] == 2


def test_a_link_loop_and_a_link_off_the_base_url_stop(endpoint, api):
    with pytest.raises(ReadError, match=r"was already read \(a loop\); stopped$"):
        read_all(endpoint, "loop-link", ["id"], {"pagination": {"style": "link"}})
    assert api.hits["/api/loop-link"] == 2
    with pytest.raises(ReadError, match="the next-page link leaves the endpoint's base URL"):
        read_all(endpoint, "escape-link", ["id"], {"pagination": {"style": "link"}})


def test_max_pages_is_an_error_not_a_silent_cut(endpoint, api):
    options = {
        "records_path": "$.items",
        "pagination": {"style": "page", "page_size": 1},
        "max_pages": 3,
    }
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "endless", ["id"], options)
    assert caught.value.message == (
        "more than 3 pages (max_pages); raise max_pages or check the pagination"
    )
    assert api.hits["/api/endless"] == 3


def test_errors_name_the_url_and_status(endpoint, api):
    base = f"http://127.0.0.1:{api.port}/api"
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "broken", ["id"])
    assert caught.value.message == f"GET {base}/broken: HTTP 500"
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "html", ["id"])
    assert caught.value.message == (
        f"GET {base}/html: HTTP 200, the body is not valid JSON "
        "(Expecting value: line 1 column 1 (char 0))"
    )
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "scalars", ["id"])
    assert caught.value.message == (
        f"record 1 of page 1 ({base}/scalars) is a number, not a JSON object"
    )


def test_wrong_credentials_are_a_401_with_a_hint(endpoint, api):
    endpoint.set_credentials({"token": "wrong"})
    endpoint.save()
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "secure", ["id"])
    assert caught.value.message == (
        f"GET http://127.0.0.1:{api.port}/api/secure: HTTP 401 (the endpoint refused the credentials)"
    )


def test_an_api_key_in_the_query_never_shows_in_messages(endpoint, api):
    endpoint.auth_type = "api_key_query"
    endpoint.api_key_name = "key"
    endpoint.set_credentials({"api_key": TOKEN})
    endpoint.save()
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "broken?x=1", ["id"])
    assert caught.value.message == f"GET http://127.0.0.1:{api.port}/api/broken?x=1: HTTP 500"
    assert api.seen == [f"/api/broken?x=1&key={TOKEN}"]


def test_requests_go_through_the_egress_rules(api, interface_a):
    closed = EnvironmentFactory(name="PROD", slug="prod", position=9, egress_allowlist=[])
    endpoint = Endpoint.objects.create(
        interface=interface_a, environment=closed, base_url=f"http://127.0.0.1:{api.port}/api/"
    )
    with pytest.raises(ReadError, match=r"^GET http://127\.0\.0\.1:\d+/api/list: .*127\.0\.0\.1"):
        read_all(endpoint, "list", ["id"])
    assert api.hits == {}


def test_the_endpoint_rate_limit_is_honoured(endpoint, api):
    endpoint.rate_limit_per_second = 4  # a burst of 4, then one every 0.25 s
    endpoint.save()
    options = {"records_path": "$.items", "pagination": {"style": "page", "page_size": 2}}
    started = time.monotonic()
    rows = read_all(endpoint, "paged", ["id"], options)
    assert len(rows) == 25 and api.hits["/api/paged"] == 13
    assert time.monotonic() - started >= (13 - 4) * 0.25 - 0.1


def test_a_503_with_retry_after_is_retried(endpoint, api):
    assert ids(read_all(endpoint, "flaky", ["id"])) == [1, 2]
    assert api.hits["/api/flaky"] == 2


def test_window_filters_records_by_their_timestamp(endpoint, api):
    window = Window(
        "updated_at", datetime(2024, 5, 3, 12, 0, tzinfo=UTC), datetime(2024, 5, 6, 12, 0)
    )
    assert ids(read_all(endpoint, "list", ["id"], window=window)) == [3, 4, 5]
    with pytest.raises(ReadError) as caught:
        read_all(endpoint, "list", ["id"], window=Window("changed", window.start, window.end))
    assert caught.value.message == (
        f"record 1 of page 1 (http://127.0.0.1:{api.port}/api/list) has no field 'changed' "
        "(the window column)"
    )
    with pytest.raises(ReadError, match="the window column 'name' holds 'customer 1', not a date"):
        read_all(endpoint, "list", ["id"], window=Window("name", window.start, window.end))


@pytest.mark.parametrize(
    "dataset, options, message",
    [
        (
            "http://evil.example/x",
            {},
            "the dataset is a path below the endpoint's base URL, not a URL",
        ),
        ("//evil.example/x", {}, "the dataset is a path below the endpoint's base URL, not a URL"),
        ("../admin", {}, "the path may not climb above the endpoint's base URL (..)"),
        ("a/%2e%2e/b", {}, "the path may not climb above the endpoint's base URL (..)"),
        (
            "list",
            {"pagination": {"style": "pages"}},
            "pagination style must be one of none, page, offset, cursor, link",
        ),
        (
            "list",
            {"pagination": {"style": "cursor"}},
            "pagination: the cursor style needs cursor_path (e.g. $.next_cursor)",
        ),
        (
            "list",
            {"pagination": {"style": "page", "page_size": 0}},
            "pagination: page_size must be a whole number from 1 to 100,000",
        ),
        (
            "list",
            {"pagination": {"style": "page", "pagesize": 5}},
            "pagination: unknown setting pagesize",
        ),
        (
            "list",
            {"records": "$.x"},
            "unknown option records; the options are records_path, pagination, max_pages",
        ),
        ("list", {"records_path": "$.["}, "records_path '$.[' is not a valid JSONPath"),
        ("list", {"max_pages": 0}, "max_pages must be a whole number of 1 or more"),
    ],
)
def test_bad_datasets_and_options_are_refused_before_any_request(
    endpoint, api, dataset, options, message
):
    with pytest.raises(ReadError) as caught:
        open_dataset(source_for(endpoint), dataset, options, ["id"])
    assert caught.value.message.startswith(message), caught.value.message
    assert api.hits == {}


def test_connection_test_gets_the_base_url(endpoint, api):
    assert test_connection(source_for(endpoint)).startswith(
        f"Reached http://127.0.0.1:{api.port}/api/: HTTP 404 in "
    )
    with pytest.raises(ReadError, match="an HTTP source needs an endpoint"):
        test_connection(DataSource(kind="http"))
