"""HTTP sources: JSON records from a registered endpoint, page by page.

The dataset is a path below the endpoint's base URL (``orders``, ``v2/orders?status=open``).
Options::

    records_path  JSONPath of the list of records; default "$" when the body is a list
    pagination    {"style": "none" | "page" | "offset" | "cursor" | "link", ...}
                  page:   page_param ("page"), start_page (1), size_param ("page_size"
                          when page_size is given), page_size
                  offset: offset_param ("offset"), limit_param ("limit"), page_size (100)
                  cursor: cursor_param ("cursor"), cursor_path (JSONPath of the next cursor,
                          required), size_param and page_size (optional)
                  link:   the Link header's rel="next" (RFC 8288); size_param and page_size
                          (optional) on the first request
    max_pages     10,000 by default; a dataset with more pages is an error, not a cut

Pages end when one is empty, shorter than ``page_size`` (page and offset styles), has no
next cursor or no next link. The same cursor or next link twice is a loop: ReadError.
Each record is a JSON object; a column is read by name (a dotted name reads a nested field
when there is no field of that exact name); a missing field is None. Numbers with a
fraction come as Decimal, nested objects and lists as compact JSON text.

Every request goes through the egress door with the endpoint's credentials
(:func:`apps.catalog.connectivity.authorised_request`), its environment's allowlist and CA
bundle, and its rate limit. 429 and 503 are retried a few times (honouring a short
Retry-After), as are failed connections. Messages name the URL without credentials.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

from apps.reconciliation.readers.base import Reader, ReadError, scrub, window_test

STYLES = ("none", "page", "offset", "cursor", "link")
OPTIONS = ("records_path", "pagination", "max_pages")
PAGINATION_KEYS = (
    "style",
    "page_param",
    "size_param",
    "page_size",
    "offset_param",
    "limit_param",
    "cursor_param",
    "cursor_path",
    "start_page",
)
DEFAULT_MAX_PAGES = 10_000
MAX_PAGE_SIZE = 100_000
RETRY_STATUSES = (429, 503)
BACKOFF_SECONDS = (0.5, 1.0, 2.0)  # before the 2nd, 3rd and 4th attempt
MAX_RETRY_AFTER_SECONDS = 30.0
RATE_LIMIT_MAX_WAIT_SECONDS = 60.0
_MISSING = object()
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,100}")


def _jsonpath(path: Any, what: str):
    from jsonpath_ng.exceptions import JSONPathError
    from jsonpath_ng.ext import parse

    if not isinstance(path, str) or not path.strip():
        raise ReadError(f"{what} must be a JSONPath such as $.items")
    if "=~" in path:
        raise ReadError(f"{what}: regular-expression filters (=~) are not allowed")
    try:
        return parse(path.strip())
    except (JSONPathError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ReadError(f"{what} {path!r} is not a valid JSONPath ({exc})") from None


class HttpReader(Reader):
    kind = "http"
    label = "HTTP API"

    def check(self) -> None:
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ReadError(
                f"unknown option {', '.join(map(str, unknown))}; the options are "
                + ", ".join(OPTIONS)
            )
        endpoint = self.source.endpoint if self.source.endpoint_id else None
        if endpoint is None:
            raise ReadError("an HTTP source needs an endpoint")
        self.endpoint = endpoint
        self.base = (
            endpoint.base_url if endpoint.base_url.endswith("/") else endpoint.base_url + "/"
        )
        self.url = self._dataset_url(self.dataset)

        records_path = self.options.get("records_path")
        self.records_path = None
        if records_path not in (None, ""):
            self.records_path = _jsonpath(records_path, "records_path")
        max_pages = self.options.get("max_pages", DEFAULT_MAX_PAGES)
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise ReadError("max_pages must be a whole number of 1 or more")
        self.max_pages = max_pages
        self.pagination = self._pagination(self.options.get("pagination") or {})
        self._getters = [_getter(name) for name in self.columns]
        self._credentials: dict | None = None

    def _dataset_url(self, dataset: str) -> str:
        if "\\" in dataset or any(ord(char) < 0x21 for char in dataset):
            raise ReadError("the path contains spaces, backslashes or control characters")
        relative = dataset.lstrip("/")
        parts = urlsplit(relative)
        if parts.scheme or parts.netloc or dataset.startswith("//"):
            raise ReadError("the dataset is a path below the endpoint's base URL, not a URL")
        if parts.fragment:
            raise ReadError("the path has a #fragment, which is never sent")
        if ".." in unquote(parts.path).replace("\\", "/").split("/"):
            raise ReadError("the path may not climb above the endpoint's base URL (..)")
        url = urljoin(self.base, relative)
        if not self._below_base(url):
            raise ReadError("the path leaves the endpoint's base URL")
        return url

    def _below_base(self, url: str) -> bool:
        base, other = urlsplit(self.base), urlsplit(url)
        return (
            other.scheme.lower() == base.scheme.lower()
            and other.netloc.lower() == base.netloc.lower()
            and (other.path + "/").startswith(base.path)
        )

    def _pagination(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ReadError('pagination must be an object such as {"style": "page"}')
        unknown = sorted(set(data) - set(PAGINATION_KEYS))
        if unknown:
            raise ReadError(
                f"pagination: unknown setting {', '.join(map(str, unknown))}; the settings are "
                + ", ".join(PAGINATION_KEYS)
            )
        style = data.get("style", "none")
        if style not in STYLES:
            raise ReadError(f"pagination style must be one of {', '.join(STYLES)}")
        page_size = data.get("page_size")
        if page_size is not None and (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_PAGE_SIZE
        ):
            raise ReadError(
                f"pagination: page_size must be a whole number from 1 to {MAX_PAGE_SIZE:,}"
            )
        start_page = data.get("start_page", 1)
        if isinstance(start_page, bool) or not isinstance(start_page, int) or start_page < 0:
            raise ReadError("pagination: start_page must be a whole number of 0 or more")
        settings = {"style": style, "page_size": page_size, "start_page": start_page}
        defaults = {
            "page_param": "page",
            "size_param": "limit" if style == "offset" else "page_size",
            "offset_param": "offset",
            "limit_param": "limit",
            "cursor_param": "cursor",
        }
        for name, default in defaults.items():
            value = data.get(name, default)
            if not isinstance(value, str) or not _PARAM_NAME.fullmatch(value):
                raise ReadError(f"pagination: {name} must be a query parameter name")
            settings[name] = value
        if style == "offset":
            settings["size_param"] = settings["limit_param"]
            settings["page_size"] = page_size or 100
        settings["cursor_path"] = None
        if style == "cursor":
            if "cursor_path" not in data:
                raise ReadError(
                    "pagination: the cursor style needs cursor_path (e.g. $.next_cursor)"
                )
            settings["cursor_path"] = _jsonpath(data["cursor_path"], "pagination: cursor_path")
        return settings

    # -- reading -----------------------------------------------------------------------

    def open(self) -> None:
        self._credentials = self.endpoint.get_credentials()
        self.environment = self.endpoint.environment

    def close(self) -> None:
        self._credentials = None

    def read(self, size: int) -> Iterator[list[tuple]]:
        getters = self._getters
        window_value = _getter(self.window.column) if self.window is not None else None
        where = ["", 0, 0]  # url, page, record: for the window's error message
        inside = (
            window_test(self.window, lambda: f"record {where[2]} of page {where[1]} ({where[0]})")
            if self.window is not None
            else None
        )
        batch: list[tuple] = []
        for page, url, records in self._pages():
            for number, record in enumerate(records, start=1):
                if not isinstance(record, dict):
                    raise ReadError(
                        f"record {number} of page {page} ({url}) is {_json_kind(record)}, "
                        "not a JSON object"
                    )
                if inside is not None:
                    value = window_value(record, missing=_MISSING)
                    if value is _MISSING:
                        raise ReadError(
                            f"record {number} of page {page} ({url}) has no field "
                            f"{self.window.column!r} (the window column)"
                        )
                    where[:] = [url, page, number]
                    if not inside(value):
                        continue
                batch.append(tuple(get(record) for get in getters))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _pages(self) -> Iterator[tuple[int, str, list]]:
        style = self.pagination["style"]
        settings = self.pagination
        page_size = settings["page_size"]
        seen: set[str] = set()
        url = self.url
        page_number = settings["start_page"]
        offset = 0
        cursor: str | None = None
        for page in range(1, self.max_pages + 2):
            if page > self.max_pages:
                raise ReadError(
                    f"more than {self.max_pages:,} pages (max_pages); raise max_pages or check "
                    "the pagination"
                )
            params: dict[str, Any] = {}
            if style == "page":
                params[settings["page_param"]] = page_number
            elif style == "offset":
                params[settings["offset_param"]] = offset
            elif style == "cursor" and cursor is not None:
                params[settings["cursor_param"]] = cursor
            if page_size is not None and (style != "link" or page == 1) and style != "none":
                params[settings["size_param"]] = page_size
            # Link style: the next links carry their own parameters.
            request_url = _with_params(url, params) if style != "link" or page == 1 else url
            response, body = self._get(request_url)
            records = self._records(body, request_url)
            yield page, request_url, records
            if style == "none":
                return
            if style in ("page", "offset"):
                if not records or (page_size is not None and len(records) < page_size):
                    return
                page_number += 1
                offset += len(records)
            elif style == "cursor":
                found = [match.value for match in settings["cursor_path"].find(body)]
                value = found[0] if found else None
                if value in (None, "", False):
                    return
                if isinstance(value, dict | list):
                    raise ReadError(f"GET {request_url}: the next cursor is not a text or number")
                cursor = str(value)
                if cursor in seen:
                    raise ReadError(
                        f"GET {request_url}: the API returned the cursor {cursor[:80]!r} a "
                        "second time (a loop); stopped"
                    )
                seen.add(cursor)
            elif style == "link":
                following = _next_link(response.headers.get("link", ""))
                if not following:
                    return
                following = urljoin(request_url, following)
                if not self._below_base(following):
                    raise ReadError(
                        f"GET {request_url}: the next-page link leaves the endpoint's base "
                        f"URL {self.base}; not followed"
                    )
                following = self._without_credentials(following)
                if following in seen or following == request_url:
                    raise ReadError(
                        f"GET {request_url}: the next-page link {following} was already "
                        "read (a loop); stopped"
                    )
                seen.add(request_url)
                seen.add(following)
                url = following

    def _records(self, body: Any, url: str) -> list:
        if self.records_path is None:
            if isinstance(body, list):
                return body
            raise ReadError(
                f"GET {url}: the response is {_json_kind(body)}, not a list; set records_path "
                "to the JSONPath of the records (e.g. $.items)"
            )
        matches = [match.value for match in self.records_path.find(body)]
        if not matches:
            raise ReadError(
                f"GET {url}: records_path {self.options['records_path']} matches nothing in "
                "the response"
            )
        if len(matches) == 1:
            if matches[0] is None:
                return []
            if isinstance(matches[0], list):
                return matches[0]
        return matches

    def _get(self, url: str) -> tuple[Any, Any]:
        """GET one page (``url`` without credentials): the response and its JSON body."""
        response = self._send(url)
        if not response.ok:
            hint = (
                " (the endpoint refused the credentials)" if response.status in (401, 403) else ""
            )
            raise ReadError(f"GET {url}: HTTP {response.status}{hint}")
        if response.truncated:
            raise ReadError(
                f"GET {url}: HTTP {response.status}, but the body is larger than "
                f"{len(response.body):,} bytes; ask for smaller pages (page_size)"
            )
        try:
            body = json.loads(response.body, parse_float=Decimal)
        except RecursionError:
            raise ReadError(
                f"GET {url}: HTTP {response.status}, the JSON is nested too deeply"
            ) from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
            detail = str(exc)[:200]
            raise ReadError(
                f"GET {url}: HTTP {response.status}, the body is not valid JSON ({detail})"
            ) from None
        return response, body

    def _send(self, url: str) -> Any:
        """The response to a GET of ``url`` (without credentials), after the retries."""
        from apps.catalog.connectivity import EndpointAuthError, authorised_request
        from apps.core import egress

        endpoint = self.endpoint
        secrets = [value for value in (self._credentials or {}).values() if isinstance(value, str)]
        attempts = len(BACKOFF_SECONDS) + 1
        for attempt in range(1, attempts + 1):
            last_try = attempt == attempts
            try:
                if endpoint.rate_limit_per_second:
                    egress.rate_limiter.acquire(
                        f"endpoint-{endpoint.pk}",
                        endpoint.rate_limit_per_second,
                        max_wait=RATE_LIMIT_MAX_WAIT_SECONDS,
                    )
                send_url, headers = authorised_request(endpoint, url, self._credentials)
                headers.setdefault("Accept", "application/json")
                response = egress.request(
                    "GET",
                    send_url,
                    headers=headers,
                    allowlist=self.environment.egress_allowlist,
                    ca_bundle=self.environment.ca_bundle_path(),
                    read_timeout=endpoint.timeout_seconds,
                    total_timeout=endpoint.timeout_seconds * 2,
                    keep_alive=True,
                )
            except EndpointAuthError as exc:
                raise ReadError(scrub(f"GET {url}: no access token: {exc}", secrets)) from None
            except egress.EgressError as exc:
                retry = isinstance(exc, egress.EgressConnectionError) and not exc.permanent
                if retry and not last_try:
                    time.sleep(BACKOFF_SECONDS[attempt - 1])
                    continue
                raise ReadError(scrub(f"GET {url}: {exc.message}", secrets)) from None
            if response.status in RETRY_STATUSES and not last_try:
                wait = response.retry_after
                if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                    raise ReadError(
                        f"GET {url}: HTTP {response.status} with Retry-After {wait:.0f} s, "
                        f"longer than the {MAX_RETRY_AFTER_SECONDS:.0f} s a read waits"
                    )
                time.sleep(wait if wait is not None else BACKOFF_SECONDS[attempt - 1])
                continue
            break
        return response

    def _without_credentials(self, url: str) -> str:
        """A next link without the endpoint's API-key parameter (some APIs echo it)."""
        from apps.catalog.models import AuthType

        if self.endpoint.auth_type != AuthType.API_KEY_QUERY or not self.endpoint.api_key_name:
            return url
        parts = urlsplit(url)
        query = [
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if name != self.endpoint.api_key_name
        ]
        return urlunsplit(parts._replace(query=urlencode(query)))

    @classmethod
    def test_connection(cls, source: Any) -> str:
        """GETs the endpoint's base URL: any answer but a refusal or a server error will do."""
        reader = cls(source, "", {}, ["_"])
        with reader:
            response = reader._send(reader.url)
        if response.status in (401, 403):
            raise ReadError(
                f"GET {reader.url}: HTTP {response.status} (the endpoint refused the credentials)"
            )
        if response.status >= 500:
            raise ReadError(f"GET {reader.url}: HTTP {response.status}")
        return f"Reached {reader.url}: HTTP {response.status} in {response.elapsed_ms:.0f} ms"


def _getter(name: str) -> Callable[..., Any]:
    """Reads a column from a record: the field of that name, else the dotted path."""
    parts = name.split(".")

    def get(record: dict, missing: Any = None) -> Any:
        if name in record:
            value = record[name]
        elif len(parts) > 1:
            value = record
            for part in parts:
                if not isinstance(value, dict) or part not in value:
                    return missing
                value = value[part]
        else:
            return missing
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_number)
        return value

    return get


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _with_params(url: str, params: dict[str, Any]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in params
    ]
    query += [(name, str(value)) for name, value in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _next_link(header: str) -> str | None:
    """The target of the rel="next" link in a Link header, if any."""
    for match in _LINK.finditer(header or ""):
        target, params = match.group(1), match.group(2)
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return target.strip()
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, str):
        return "a text"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return "a number"
