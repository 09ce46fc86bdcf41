"""Calling a registered endpoint: its credentials attached, through the egress door."""

import base64
import hashlib
import json
import threading
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from apps.catalog.models import AuthType, Endpoint, EndpointCheck
from apps.core import egress, jobs


class EndpointAuthError(Exception):
    pass


_token_cache: dict[tuple, tuple[str, float]] = {}
_token_lock = threading.Lock()
_fetch_locks: dict[tuple, threading.Lock] = {}
TOKEN_EXPIRY_MARGIN_SECONDS = 30
DEFAULT_TOKEN_LIFETIME_SECONDS = 300


def fetch_oauth2_token(endpoint: Endpoint, credentials: dict) -> str:
    """Client-credentials grant against the endpoint's token URL, cached until shortly before expiry.

    The cache is per process and keyed by everything that makes the token, so a
    changed secret or scope fetches a new one.
    """
    key = (
        endpoint.pk,
        endpoint.token_url,
        endpoint.scopes,
        hashlib.sha256(json.dumps(credentials, sort_keys=True).encode()).hexdigest(),
    )
    with _token_lock:
        key_lock = _fetch_locks.setdefault(key, threading.Lock())
    # One fetch per key at a time: concurrent cases wait for the first and reuse its token.
    with key_lock:
        cached = _token_cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = _request_token(endpoint, credentials)
        _token_cache[key] = (
            token,
            time.monotonic() + max(0.0, lifetime - TOKEN_EXPIRY_MARGIN_SECONDS),
        )
    return token


def _request_token(endpoint: Endpoint, credentials: dict) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if endpoint.scopes:
        form["scope"] = endpoint.scopes
    basic = base64.b64encode(
        f"{credentials.get('client_id', '')}:{credentials.get('client_secret', '')}".encode()
    ).decode()
    response = egress.request(
        "POST",
        endpoint.token_url,
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=urlencode(form).encode(),
        allowlist=endpoint.environment.egress_allowlist,
        ca_bundle=endpoint.environment.ca_bundle_path(),
        read_timeout=endpoint.timeout_seconds,
        max_bytes=64 * 1024,
    )
    if response.status != 200:
        raise EndpointAuthError(f"the token URL answered {response.status}")
    try:
        answer = json.loads(response.body)
        token = answer["access_token"]
        lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS)
    except (ValueError, KeyError, TypeError):
        raise EndpointAuthError("the token URL's answer has no access_token")
    return token, lifetime


def authorised_request(
    endpoint: Endpoint, url: str, credentials: dict | None = None
) -> tuple[str, dict]:
    """The URL and headers for a request to this endpoint, credentials attached.

    ``credentials`` saves decrypting them again for a caller sending many requests.
    """
    headers = dict(endpoint.default_headers or {})
    if credentials is None:
        credentials = endpoint.get_credentials()
    if endpoint.auth_type == AuthType.API_KEY_HEADER:
        headers[endpoint.api_key_name] = credentials.get("api_key", "")
    elif endpoint.auth_type == AuthType.API_KEY_QUERY:
        parts = urlsplit(url)
        query = "&".join(
            filter(
                None,
                [parts.query, urlencode({endpoint.api_key_name: credentials.get("api_key", "")})],
            )
        )
        url = urlunsplit(parts._replace(query=query))
    elif endpoint.auth_type == AuthType.BASIC:
        pair = f"{credentials.get('username', '')}:{credentials.get('password', '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif endpoint.auth_type == AuthType.BEARER:
        headers["Authorization"] = f"Bearer {credentials.get('token', '')}"
    elif endpoint.auth_type == AuthType.OAUTH2_CLIENT_CREDENTIALS:
        headers["Authorization"] = f"Bearer {fetch_oauth2_token(endpoint, credentials)}"
    return url, headers


def run_check(check: EndpointCheck) -> str | None:
    """Work of an EndpointCheck job: GET the base URL and record status and latency."""
    endpoint = Endpoint.objects.select_related("environment", "interface").get(pk=check.endpoint_id)
    jobs.heartbeat(check, done=0, total=1, note=f"GET {endpoint.base_url}")
    try:
        if endpoint.rate_limit_per_second:
            egress.rate_limiter.acquire(f"endpoint-{endpoint.pk}", endpoint.rate_limit_per_second)
        url, headers = authorised_request(endpoint, endpoint.base_url)
        response = egress.request(
            "GET",
            url,
            headers=headers,
            allowlist=endpoint.environment.egress_allowlist,
            ca_bundle=endpoint.environment.ca_bundle_path(),
            read_timeout=endpoint.timeout_seconds,
            total_timeout=endpoint.timeout_seconds,
            max_bytes=64 * 1024,
        )
    except (egress.EgressError, EndpointAuthError) as exc:
        message = getattr(exc, "message", str(exc))
        EndpointCheck.objects.filter(pk=check.pk).update(detail=message)
        return f"Could not reach the endpoint: {message}"
    EndpointCheck.objects.filter(pk=check.pk).update(
        status_code=response.status,
        latency_ms=round(response.elapsed_ms, 1),
        detail=f"{response.status} in {response.elapsed_ms:.0f} ms from {response.peer_address}",
    )
    jobs.heartbeat(check, done=1)
    if response.status in (401, 403):
        return f"The endpoint refused the credentials ({response.status})."
    if response.status >= 500:
        return f"The endpoint answered {response.status}."
    return None
