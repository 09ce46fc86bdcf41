"""The one door for outbound HTTP.

Every request Pontis makes to a URL that a user typed (contract tests, data
pulls, ITSM and Jira calls, notifications) goes through :func:`request`. The
door enforces, for every hop of every exchange:

* **Scheme.** Only ``http`` and ``https``. ``file:``, ``ftp:``, ``gopher:``,
  ``data:``, ``javascript:`` and the rest are refused.
* **Destination.** The host is resolved once with the operating system's
  resolver (:func:`resolve_host`). If *any* returned address is loopback,
  private, link-local (the cloud metadata address 169.254.169.254 above all),
  unspecified, carrier-grade NAT, unique local, multicast or otherwise not a
  public address, the request is refused, unless the environment's allowlist
  permits it. IPv6 forms that carry an IPv4 address (``::ffff:a.b.c.d``,
  ``::a.b.c.d``, 6to4, NAT64) are judged by that IPv4 address. Literal hosts
  are parsed the way resolvers parse them, so ``127.1``, ``2130706433``,
  ``0x7f.0.0.1`` and ``0177.0.0.1`` are all 127.0.0.1. URLs with user info
  (``user@host``), backslashes, percent-encoded hosts, spaces or control
  characters are refused outright.
* **No second lookup.** The TCP connection goes to the exact address that was
  checked (urllib3's ``HTTPConnection``/``HTTPSConnection`` opened on the IP),
  with the original name sent in ``Host``, in TLS SNI and checked against the
  certificate. DNS rebinding therefore cannot swap the address after the check.
* **TLS.** Certificates are always verified, against the system trust store or
  against the environment's uploaded CA bundle (``ca_bundle``). There is no
  switch to turn verification off.
* **Redirects.** Followed by hand, at most ``PONTIS_EGRESS_MAX_REDIRECTS``; each
  hop is checked again (scheme and resolved address). 303, and 301/302 after a
  POST, become GET without a body, as browsers do. ``Authorization``,
  ``Cookie`` and ``Proxy-Authorization`` are dropped once a redirect leaves the
  original origin (scheme, host, port) and are not sent again on later hops.
* **Time.** A connect timeout, a read timeout (per socket read) and a total
  deadline for the whole exchange, redirects included. When the deadline
  passes, a watchdog shuts the socket down, so a server that drips one byte
  every two seconds (in the headers or the body) cannot hold a worker.
* **Size.** The body is read in chunks up to ``max_bytes`` (after gzip/deflate
  decoding, which is itself bounded per chunk); the rest is not read and the
  response says ``truncated=True``.
* **Connections.** By default every exchange has its own connection and sends
  ``Connection: close``. A caller that sends many requests to one origin (the
  contract-test runner) may pass ``keep_alive=True``: a connection whose
  response was read to its end is then kept idle for the next request to the
  same scheme, host, port, CA bundle *and* checked address. Every request is
  still checked and resolved first; a kept connection is only used if its
  address is one of those just checked. A connection is never kept after an
  error, a timeout, a truncated body, a body of unknown length or the
  server's ``Connection: close``.

Failures raise :class:`EgressError` (or a subclass) with a message written for
people and a ``permanent`` flag that tells callers whether a retry can help.

Settings (read through ``django.conf.settings``, with defaults so that the
module also works without Django configured)::

    PONTIS_EGRESS_CONNECT_TIMEOUT     seconds, default 5
    PONTIS_EGRESS_READ_TIMEOUT        seconds, default 30
    PONTIS_EGRESS_TOTAL_TIMEOUT       seconds, default 60
    PONTIS_EGRESS_MAX_RESPONSE_BYTES  default 10 MiB
    PONTIS_EGRESS_MAX_REDIRECTS       default 5

Tests mock two seams: :func:`request` for callers, and :func:`resolve_host`
for DNS.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import http.client
import io
import ipaddress
import itertools
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.ssl_match_hostname import CertificateError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials; dropped when a redirect changes origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Headers that describe the request body; dropped when a redirect turns into GET.
BODY_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "content-language", "transfer-encoding"}
)
# The header that carries the caller's correlation id to the other side.
CORRELATION_HEADER = "X-Correlation-ID"
USER_AGENT = "Pontis-egress/1.0"
CHUNK_BYTES = 64 * 1024
# Methods that may be sent again when a kept-alive connection turns out to have
# been closed by the server as the request went out (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Idle keep-alive connections: at most this many per origin and address, each
# for at most this many seconds.
MAX_IDLE_CONNECTIONS_PER_KEY = 16
IDLE_CONNECTION_SECONDS = 30.0

# Host names that always mean this machine or the cloud metadata service,
# whatever the resolver says (RFC 6761 reserves "localhost" and "*.localhost").
_LOOPBACK_NAMES = ("localhost",)
_METADATA_NAMES = ("metadata.google.internal",)

# Forbidden networks with the words used in refusal messages. First match wins,
# so the metadata address comes before link-local, broadcast before reserved.
_FORBIDDEN_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), words)
    for network, words in (
        ("169.254.169.254/32", "the cloud metadata address"),
        ("fd00:ec2::254/128", "the cloud metadata address"),
        ("0.0.0.0/8", 'an unspecified ("this network") address'),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_METADATA_ADDRESSES = frozenset(
    network.network_address
    for network, words in _FORBIDDEN_NETWORKS
    if words == "the cloud metadata address"
)

_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_HOST_CHARS = re.compile(r"[a-z0-9._-]+")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")
_METHOD = re.compile(r"[A-Z]{1,20}")
# Everything printable in ASCII except space; used to percent-encode the rest.
_SAFE_URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))


# --------------------------------------------------------------------------- errors


class EgressError(Exception):
    """An outbound request failed. ``message`` is for people; ``permanent`` says
    whether repeating the same request can help (False: try again later)."""

    permanent = True

    def __init__(self, message: str, *, permanent: bool | None = None):
        super().__init__(message)
        self.message = message
        if permanent is not None:
            self.permanent = permanent


class EgressRefused(EgressError):
    """The URL or its destination is not allowed (scheme, address, malformed URL)."""

    permanent = True


class EgressTimeout(EgressError):
    """Connecting, waiting or reading took longer than allowed."""

    permanent = False


class EgressConnectionError(EgressError):
    """The connection could not be made or broke (refused, reset, DNS failure)."""

    permanent = False


class EgressTLSError(EgressError):
    """The TLS handshake or certificate check failed."""

    permanent = True


# --------------------------------------------------------------------------- settings


def _setting(name: str, default):
    """A PONTIS_EGRESS_* setting, or the default when Django is not configured."""
    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:
        return default


def _seconds(value: float) -> str:
    """Formats a duration for messages: 5 -> "5.0", 0.25 -> "0.25"."""
    return str(round(float(value), 3))


# --------------------------------------------------------------------------- allowlist


@dataclass(frozen=True)
class Allowlist:
    """Exceptions to the address rules for one environment.

    ``networks`` permit any address inside them. ``names`` (exact host names) and
    ``suffixes`` (from ``*.corp.local``: any subdomain of corp.local, not
    corp.local itself) let those hosts resolve to non-public addresses, except
    the cloud metadata address, which only an explicit network entry permits.
    """

    networks: tuple[IPNetwork, ...] = ()
    names: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def permits_address(self, ip: IPAddress) -> bool:
        candidates = [ip]
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            candidates.append(embedded[1])
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )

    def permits_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith("." + s) for s in self.suffixes)


def parse_allowlist(entries: Iterable[str] | str | Allowlist | None) -> Allowlist:
    """Parses an environment's allowlist; raises ValueError naming a bad entry.

    Entries are IP addresses (``127.0.0.1``, ``::1``), networks
    (``10.20.0.0/16``), host names (``erp.corp.local``) or wildcard names
    (``*.corp.local`` for its subdomains). A single string is split on commas
    and whitespace. Blank entries are ignored.
    """
    if entries is None:
        return Allowlist()
    if isinstance(entries, Allowlist):
        return entries
    if isinstance(entries, str):
        entries = re.split(r"[\s,]+", entries)
    entries = tuple(entries)
    for raw in entries:
        if not isinstance(raw, str):
            raise ValueError(f"allowlist entry {raw!r} is not text")
    return _parse_entries(entries)


# Every request parses its environment's allowlist; the few distinct ones are
# parsed once. Allowlist is frozen, so a cached one can be shared.
@functools.lru_cache(maxsize=256)
def _parse_entries(entries: tuple[str, ...]) -> Allowlist:
    networks: list[IPNetwork] = []
    names: list[str] = []
    suffixes: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(_bad_entry(entry))
            if network.prefixlen == 0:
                raise ValueError(
                    f"allowlist entry {entry!r} would permit every address and switch "
                    "the protection off"
                )
            networks.append(network)
            continue
        try:
            ip = ipaddress.ip_address(entry.removeprefix("[").removesuffix("]"))
        except ValueError:
            pass
        else:
            networks.append(ipaddress.ip_network(ip))
            continue
        wildcard = entry.startswith("*.")
        name = entry[2:] if wildcard else entry
        try:
            name = _normalise_name(name)
        except ValueError:
            name = ""
        if not name:
            raise ValueError(_bad_entry(entry))
        (suffixes if wildcard else names).append(name)
    return Allowlist(tuple(networks), tuple(names), tuple(suffixes))


def _bad_entry(entry: str) -> str:
    return (
        f"allowlist entry {entry!r} is not an IP address (10.1.2.3), a network "
        "(10.20.0.0/16), a host name (erp.corp.local) or a wildcard (*.corp.local)"
    )


def _rules(allowlist: Iterable[str] | str | Allowlist | None) -> Allowlist:
    """parse_allowlist for request time: a bad entry refuses the request."""
    try:
        return parse_allowlist(allowlist)
    except ValueError as exc:
        raise EgressRefused(f"refused: the environment's allowlist is invalid: {exc}")


def _normalise_name(name: str) -> str:
    """A host name in lowercase ASCII without a trailing dot; ValueError if it is
    not a plausible DNS name or looks like a number."""
    name = name.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("not a valid international domain name")
    name = name.removesuffix(".")
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or not _HOST_CHARS.fullmatch(name)
        or any(not label or len(label) > 63 for label in labels)
    ):
        raise ValueError("not a valid host name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError("not a valid host name (it ends in a number)")
    return name


# --------------------------------------------------------------------------- addresses


def _embedded_ipv4(ip: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped form of", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "a 6to4 form of", ip.sixtofour
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "a NAT64 form of", low32
    if ip in _IPV4_TRANSLATED:
        return "an IPv4-translated form of", low32
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "an IPv4-compatible form of", low32
    return None


def _forbidden_reason(ip: IPAddress) -> str | None:
    """Why an address may not be contacted ("a loopback address"), or None."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = _forbidden_reason(embedded[1])
        if inner is not None:
            return inner
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return None  # the public IPv4 address is what is really contacted
    for network, words in _FORBIDDEN_NETWORKS:
        if ip.version == network.version and ip in network:
            return words
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global or ip.is_reserved:
        return "a special-purpose (non-public) address"
    return None


def _describe(ip: IPAddress) -> str:
    """The address for messages, naming the IPv4 address an IPv6 form hides."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None and _forbidden_reason(embedded[1]) is not None:
        form, ipv4 = embedded
        return f"{ip} ({form} {ipv4})"
    return str(ip)


def _is_metadata(ip: IPAddress) -> bool:
    embedded = _embedded_ipv4(ip)
    return ip in _METADATA_ADDRESSES or (
        embedded is not None and embedded[1] in _METADATA_ADDRESSES
    )


def _check_address(ip: IPAddress, host: str, allowlist: Allowlist) -> None:
    """Raises EgressRefused unless the address is public or allowlisted.

    The message reads "refused: 127.0.0.1 is a loopback address and the
    environment's allowlist does not permit it".
    """
    if allowlist.permits_address(ip):
        return
    reason = _forbidden_reason(ip)
    if reason is None:
        return
    if allowlist.permits_name(host) and not _is_metadata(ip):
        return
    subject = _describe(ip)
    if host != str(ip):
        subject = f"{host} resolves to {subject}, which"
    raise EgressRefused(
        f"refused: {subject} is {reason} and the environment's allowlist does not permit it"
    )


def _parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parses a host the way resolvers (inet_aton) and browsers do.

    ``127.1``, ``2130706433``, ``0x7f.0.0.1`` and ``0177.0.0.1`` are all
    127.0.0.1. Returns None for host names; raises ValueError for a host that
    ends in a number but is not a valid address (``1.2.3.4.5``, ``256.1``).
    """
    parts = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.fullmatch(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC_LABEL.fullmatch(part) for part in parts):
        raise ValueError("host ends in a number but is not a valid IPv4 address")
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise ValueError(f"{part!r} is not a valid octal number")
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    last = numbers.pop()
    if any(number > 255 for number in numbers) or last >= 256 ** (4 - len(numbers)):
        raise ValueError("host is out of range for an IPv4 address")
    value = last
    for position, number in enumerate(numbers):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver returns for host, in order.

    The one place DNS happens (tests monkeypatch it). Raises socket.gaierror.
    """
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class _Target:
    """One parsed and normalised URL: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # lowercase ASCII name without trailing dot, or the canonical IP
    port: int
    path: str  # request target: path and query, percent-encoded ASCII
    literal_ip: IPAddress | None
    has_userinfo: bool

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def _parse_url(url: str) -> _Target:
    """Splits and validates a URL; raises EgressRefused for anything dubious."""
    if not isinstance(url, str) or not url:
        raise EgressRefused("refused: the URL is empty")
    # The URL as shown in messages: shortened, and without any user info, which
    # may hold a password.
    shown = re.sub(r"//[^/?#]*@", "//…@", url)
    shown = shown if len(shown) <= 200 else shown[:200] + "…"
    if _SPACE_OR_CONTROL.search(url):
        raise EgressRefused(f"refused: the URL {shown!r} contains spaces or control characters")
    if "\\" in url:
        raise EgressRefused(
            f"refused: the URL {shown!r} contains a backslash, which clients and servers "
            "read differently"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise EgressRefused(f"refused: {shown!r} is not a valid URL ({exc})")
    scheme = parts.scheme.lower()
    if not scheme:
        raise EgressRefused(f"refused: the URL {shown!r} has no scheme; use http:// or https://")
    if scheme not in ALLOWED_SCHEMES:
        raise EgressRefused(
            f"refused: only http and https URLs are allowed, not {scheme}: ({shown!r})"
        )
    if not parts.netloc:
        raise EgressRefused(f"refused: the URL {shown!r} has no host")

    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        closing = hostport.find("]")
        if closing == -1:
            raise EgressRefused(f"refused: the URL {shown!r} has an unclosed [ in its host")
        raw_host, rest = hostport[1:closing], hostport[closing + 1 :]
        if rest and not rest.startswith(":"):
            raise EgressRefused(f"refused: the URL {shown!r} has text after its IPv6 address")
        raw_port = rest[1:] if rest else ""
        if "%" in raw_host:
            raise EgressRefused(
                f"refused: the URL {shown!r} has an IPv6 zone id; link-local hosts are not allowed"
            )
        try:
            literal: IPAddress | None = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise EgressRefused(f"refused: {raw_host!r} in {shown!r} is not a valid IPv6 address")
    else:
        raw_host, colon, raw_port = hostport.partition(":")
        if colon and ":" in raw_port:
            raise EgressRefused(
                f"refused: the URL {shown!r} has an IPv6 address without [brackets]"
            )
        if "%" in raw_host:
            raise EgressRefused(
                f"refused: the URL {shown!r} has a percent-encoded host, which is not allowed"
            )
        host = raw_host.lower()
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise EgressRefused(f"refused: {raw_host!r} is not a valid host name")
        if not host or not _HOST_CHARS.fullmatch(host) or "" in host.removesuffix(".").split("."):
            raise EgressRefused(f"refused: {raw_host!r} in {shown!r} is not a valid host name")
        try:
            literal = _parse_ipv4_literal(host)
        except ValueError as exc:
            raise EgressRefused(f"refused: {raw_host!r} in {shown!r}: {exc}")
        if literal is None:
            try:
                raw_host = _normalise_name(host)
            except ValueError as exc:
                raise EgressRefused(f"refused: {raw_host!r} in {shown!r} is {exc}")

    if raw_port:
        if not _PORT.fullmatch(raw_port) or not 0 < int(raw_port) < 65536:
            raise EgressRefused(f"refused: {raw_port!r} in {shown!r} is not a valid port")
        port = int(raw_port)
    else:
        port = DEFAULT_PORTS[scheme]

    path = quote(parts.path or "/", safe=_SAFE_URL_CHARS)
    if parts.query:
        path += "?" + quote(parts.query, safe=_SAFE_URL_CHARS)
    return _Target(
        url=url.split("#", 1)[0],
        scheme=scheme,
        host=str(literal) if literal is not None else raw_host,
        port=port,
        path=path,
        literal_ip=literal,
        has_userinfo=bool(at),
    )


def _check_target(target: _Target, allowlist: Allowlist) -> None:
    """The checks that need no DNS: literal addresses, reserved names, user info."""
    if target.literal_ip is not None:
        _check_address(target.literal_ip, target.host, allowlist)
    elif not allowlist.permits_name(target.host):
        host = target.host
        if any(host == name or host.endswith("." + name) for name in _LOOPBACK_NAMES):
            raise EgressRefused(
                f"refused: {host} is a loopback name and the environment's allowlist "
                "does not permit it"
            )
        if host in _METADATA_NAMES:
            raise EgressRefused(
                f"refused: {host} is the cloud metadata service and the environment's "
                "allowlist does not permit it"
            )
    if target.has_userinfo:
        raise EgressRefused(
            "refused: the URL carries user info (user:password@host); store credentials "
            "with the endpoint instead of in the URL"
        )


def _resolve(target: _Target, allowlist: Allowlist) -> list[IPAddress]:
    """Resolves the target once and checks every address; returns them in order."""
    if target.literal_ip is not None:
        return [target.literal_ip]
    return resolve_checked(target.host, target.port, allowlist)


def resolve_checked(host: str, port: int, allowlist: Allowlist) -> list[IPAddress]:
    """Resolves a host name once and checks every address; returns them in order."""
    try:
        answers = resolve_host(host, port)
    except socket.gaierror as exc:
        permanent = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        raise EgressConnectionError(
            f"could not resolve {host}: {exc.strerror or exc}", permanent=permanent
        )
    except OSError as exc:
        raise EgressConnectionError(f"could not resolve {host}: {exc}")
    if not answers:
        raise EgressConnectionError(f"could not resolve {host}: no addresses")
    addresses = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError:
            raise EgressRefused(f"refused: the resolver returned {answer!r} for {host}")
        _check_address(ip, host, allowlist)
        addresses.append(ip)
    return addresses


def check_url(url: str, allowlist: Iterable[str] | Allowlist = (), resolve: bool = True) -> None:
    """Raises EgressRefused if url may not be called; returns None if it may.

    For forms and serializers that register an endpoint. With ``resolve=True``
    the host name is resolved too and every answer checked; a name that does
    not resolve (yet) is not an error here, only a forbidden address is. The
    same checks run again on every request.
    """
    rules = _rules(allowlist)
    target = _parse_url(url)
    _check_target(target, rules)
    if resolve and target.literal_ip is None:
        with contextlib.suppress(EgressConnectionError):
            _resolve(target, rules)


# --------------------------------------------------------------------------- deadline


class _Deadline:
    """The total deadline of one exchange.

    The watchdog thread shuts down the socket being read when time is up, which
    wakes a read blocked on a server that sends a byte now and then.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self.cancelled = False
        self.queued = False  # in the watchdog's heap; changed under the watchdog's lock
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        _watchdog.watch(self)

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def bound(self, timeout: float) -> float:
        """The smaller of timeout and the time left (never below a millisecond)."""
        return max(0.001, min(timeout, self.remaining()))

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            self.expired = True
            raise self.error()

    def error(self) -> EgressTimeout:
        return EgressTimeout(
            f"timed out after {_seconds(self.seconds)} s (the total deadline for the exchange)"
        )

    def release(self) -> bool:
        """Stops watching the socket, so that it may be kept for another exchange.
        False if time ran out first (the socket may have been shut down)."""
        with self._lock:
            self._sock = None
            return not self.expired

    def cancel(self) -> None:
        _watchdog.cancel(self)
        with self._lock:
            self._sock = None

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires the total deadlines of all exchanges.

    Deadlines wait in a heap ordered by expiry. Cancelling one only marks it (the
    thread drops it when it comes to the top), and the heap is rebuilt without
    the cancelled ones once they are most of it, so that finished exchanges do
    not pile up until their deadline would have passed.
    """

    def __init__(self):
        self._reset()
        # A forked worker has no watchdog thread and must not share the parent's heap.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._cancelled = 0  # cancelled deadlines still in the heap
        self._order = itertools.count()  # breaks ties, so deadlines are never compared
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._condition:
            heapq.heappush(self._heap, (deadline.expires_at, next(self._order), deadline))
            deadline.queued = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="egress-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._condition.notify()  # it expires before the one being waited for

    def cancel(self, deadline: _Deadline) -> None:
        with self._condition:
            if not deadline.queued or deadline.cancelled:
                return
            deadline.cancelled = True
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                for _expires_at, _order, entry in self._heap:
                    entry.queued = not entry.cancelled
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._condition:
                deadline = self._next_expired()
            deadline.expire()  # outside the lock: it takes the deadline's own lock

    def _next_expired(self) -> _Deadline:
        """Waits for the first deadline that passes without being cancelled."""
        while True:
            if not self._heap:
                self._condition.wait()
                continue
            expires_at, _order, deadline = self._heap[0]
            delay = expires_at - time.monotonic()
            if delay > 0:
                self._condition.wait(delay)
                continue
            heapq.heappop(self._heap)
            deadline.queued = False
            if deadline.cancelled:
                self._cancelled -= 1
                continue
            return deadline


_watchdog = _Watchdog()


# --------------------------------------------------------------------------- keep-alive

# (scheme, host, port, checked address, CA bundle path)
_PoolKey = tuple[str, str, int, str, str | None]


class _IdleConnections:
    """Idle keep-alive connections, thread-safe, per origin, address and CA bundle.

    A connection is handed to one exchange at a time: ``take`` removes it,
    ``keep`` puts it back. At most MAX_IDLE_CONNECTIONS_PER_KEY wait per key, each
    for at most IDLE_CONNECTION_SECONDS; older ones are closed as they are met.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._reset()
        # A forked worker must not share its parent's sockets.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_PoolKey, list[tuple[float, HTTPConnection]]] = {}
        self._swept_at = self._clock()

    def take(self, keys: Iterable[_PoolKey]) -> tuple[HTTPConnection, _PoolKey] | None:
        """A live idle connection for the first key that has one, or None."""
        for key in keys:
            while True:
                conn = self._pop(key)
                if conn is None:
                    break
                # Readable while idle means the server closed it (or sent what
                # nobody asked for): either way it cannot carry a new exchange.
                if conn.is_connected:
                    return conn, key
                conn.close()
        return None

    def keep(self, key: _PoolKey, conn: HTTPConnection) -> None:
        now = self._clock()
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_CONNECTIONS_PER_KEY:
                idle.append((now, conn))
                conn = None
            expired = self._sweep(now)
        if conn is not None:
            expired.append(conn)
        for stale in expired:
            stale.close()

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _kept_at, conn in connections:
                conn.close()

    def count(self) -> int:
        with self._lock:
            return sum(len(connections) for connections in self._idle.values())

    def _pop(self, key: _PoolKey) -> HTTPConnection | None:
        now = self._clock()
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            kept_at, conn = idle.pop()  # the most recently used one
            if now - kept_at < IDLE_CONNECTION_SECONDS:
                return conn
            # The newest has been idle too long, and so have the older ones.
            expired = [conn] + [old for _kept_at, old in idle]
            del self._idle[key]
        for stale in expired:
            stale.close()
        return None

    def _sweep(self, now: float) -> list[HTTPConnection]:
        """Takes out connections idle too long, under every key (at most once a second)."""
        if now - self._swept_at < 1.0:
            return []
        self._swept_at = now
        expired = []
        for key in list(self._idle):
            fresh = [
                (at, conn) for at, conn in self._idle[key] if now - at < IDLE_CONNECTION_SECONDS
            ]
            expired += [conn for at, conn in self._idle[key] if now - at >= IDLE_CONNECTION_SECONDS]
            if fresh:
                self._idle[key] = fresh
            else:
                del self._idle[key]
        return expired


_idle_connections = _IdleConnections()


def close_idle_connections() -> None:
    """Closes every idle keep-alive connection (tests, shutdown)."""
    _idle_connections.close_all()


def _pool_key(target: _Target, ip: IPAddress, ca_bundle: str | None) -> _PoolKey:
    return target.scheme, target.host, target.port, str(ip), ca_bundle


def _reusable(conn: HTTPConnection, response: urllib3.BaseHTTPResponse, truncated: bool) -> bool:
    """Whether the connection can carry another exchange: an HTTP/1.1 response read
    to its end (so its length was known), and the server did not close it."""
    return (
        not truncated
        and response.version == 11
        and response.closed  # http.client closes its side once the whole body is read
        and conn.sock is not None  # http.client drops the socket on "Connection: close"
        and "close" not in response.headers.get("connection", "").lower()
    )


class _StaleConnection(Exception):
    """A kept connection was closed by the server as the request went out."""


# --------------------------------------------------------------------------- request


@dataclass
class EgressResponse:
    """What came back.

    ``headers`` is a plain dict with lowercase names; a header sent more than
    once has its values joined with ", " (RFC 9110). ``raw_headers`` keeps the
    original (name, value) pairs in order, for Set-Cookie and friends.
    ``body`` is the decoded body, at most ``max_bytes`` long; ``truncated`` is
    True when there was more. ``url`` is the final URL, ``redirects`` the URLs
    that answered with a redirect before it, ``peer_address`` the IP connected to.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    elapsed_ms: float
    url: str
    redirects: list[str]
    peer_address: str
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait according to the Retry-After header, if any."""
        return parse_retry_after(self.headers.get("retry-after"))


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    allowlist: Iterable[str] | Allowlist = (),
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    total_timeout: float | None = None,
    max_bytes: int | None = None,
    follow_redirects: bool = True,
    ca_bundle: str | None = None,
    correlation_id: str | None = None,
    keep_alive: bool = False,
) -> EgressResponse:
    """Sends one HTTP request through the egress rules and returns the response.

    Any status code is a response, not an error; EgressError is raised only when
    no acceptable response could be had (refused destination, timeout,
    connection or TLS failure, too many redirects, undecodable body).
    Timeouts are in seconds; None means the PONTIS_EGRESS_* setting.
    ``ca_bundle`` is the path of a PEM file that replaces the system trust store
    for this request. ``correlation_id`` is sent as X-Correlation-ID.
    ``keep_alive=True`` reuses and keeps connections (see the module's docstring);
    by default each exchange opens its own and sends ``Connection: close``.
    """
    rules = _rules(allowlist)
    limits = Limits.of(connect_timeout, read_timeout, total_timeout, max_bytes)
    method = _checked_method(method)
    payload = body.encode("utf-8") if isinstance(body, str) else body
    send_headers = _send_headers(headers, correlation_id, keep_alive=keep_alive)

    started = time.monotonic()
    deadline = _Deadline(limits.total)
    redirects: list[str] = []
    current_url = url
    try:
        while True:
            target = _parse_url(current_url)
            _check_target(target, rules)
            addresses = _resolve(target, rules)
            conn, response, peer = _send(
                target,
                addresses,
                method,
                send_headers,
                payload,
                connect_timeout=limits.connect,
                read_timeout=limits.read,
                ca_bundle=ca_bundle,
                deadline=deadline,
                keep_alive=keep_alive,
            )
            try:
                hop = follow_redirects and _redirect(
                    response.status,
                    response.headers.get("location"),
                    method,
                    payload,
                    send_headers,
                    current_url,
                    target,
                    redirects,
                    limits.max_redirects,
                )
                if hop:
                    method, payload, current_url = hop
                    continue
                content, truncated = _read_body(
                    response, target, limits.max_bytes, deadline, limits.read
                )
                if keep_alive and _reusable(conn, response, truncated) and deadline.release():
                    _idle_connections.keep(_pool_key(target, peer, ca_bundle), conn)
                    conn = None
            finally:
                if conn is not None:
                    conn.close()
            return _response(
                method,
                target,
                response.status,
                list(response.headers.items()),
                content,
                truncated,
                started,
                redirects,
                peer,
            )
    except EgressError as exc:
        logger.warning("egress %s failed: %s", method, exc.message)
        raise
    finally:
        deadline.cancel()


@dataclass(frozen=True)
class Limits:
    """The time and size limits of one exchange, defaults from the PONTIS_EGRESS_* settings."""

    connect: float
    read: float
    total: float
    max_bytes: int
    max_redirects: int

    @classmethod
    def of(cls, connect=None, read=None, total=None, max_bytes=None) -> Limits:
        def given(value, name, default):
            return value if value is not None else _setting(name, default)

        return cls(
            connect=float(given(connect, "PONTIS_EGRESS_CONNECT_TIMEOUT", 5.0)),
            read=float(given(read, "PONTIS_EGRESS_READ_TIMEOUT", 30.0)),
            total=float(given(total, "PONTIS_EGRESS_TOTAL_TIMEOUT", 60.0)),
            max_bytes=int(given(max_bytes, "PONTIS_EGRESS_MAX_RESPONSE_BYTES", 10 * 1024 * 1024)),
            max_redirects=int(_setting("PONTIS_EGRESS_MAX_REDIRECTS", 5)),
        )


def _checked_method(method: str) -> str:
    method = str(method).upper()
    if not _METHOD.fullmatch(method):
        raise EgressError(f"{method!r} is not a valid HTTP method", permanent=True)
    return method


def _send_headers(headers, correlation_id: str | None, *, keep_alive: bool) -> dict[str, str]:
    """The headers sent: the caller's, less those the door owns, plus its own."""
    send_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    for name, value in (headers or {}).items():
        if name.lower() not in ("host", "accept-encoding", "connection"):
            send_headers[name] = value
    if correlation_id:
        send_headers[CORRELATION_HEADER] = correlation_id
    if not keep_alive:
        send_headers["Connection"] = "close"
    return send_headers


def _redirect(
    status: int,
    location: str | None,
    method: str,
    payload: bytes | None,
    send_headers: dict[str, str],
    current_url: str,
    target: _Target,
    redirects: list[str],
    max_redirects: int,
) -> tuple[str, bytes | None, str] | None:
    """The next hop (method, payload, URL) when the response is a redirect to follow, or None.

    Drops credential headers when the redirect leaves the origin and body headers when it
    turns into a GET (both in ``send_headers``); adds ``current_url`` to ``redirects``.
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    if len(redirects) >= max_redirects:
        raise EgressError(
            f"too many redirects (more than {max_redirects}) from {target.host}",
            permanent=True,
        )
    next_url = urljoin(current_url, location)
    next_target = _parse_url(next_url)
    if next_target.origin != target.origin:
        for name in list(send_headers):
            if name.lower() in CREDENTIAL_HEADERS:
                del send_headers[name]
    becomes_get = (status == 303 and method != "HEAD") or (
        status in (301, 302) and method == "POST"
    )
    if becomes_get:
        method, payload = "GET", None
        for name in list(send_headers):
            if name.lower() in BODY_HEADERS:
                del send_headers[name]
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "egress redirect %s %s://%s%s -> %s",
            status,
            target.scheme,
            target.host_header,
            target.path.split("?", 1)[0],
            next_target.host_header,
        )
    redirects.append(current_url)
    return method, payload, next_url


def _response(
    method: str,
    target: _Target,
    status: int,
    raw_headers: list[tuple[str, str]],
    content: bytes,
    truncated: bool,
    started: float,
    redirects: list[str],
    peer,
) -> EgressResponse:
    """The EgressResponse of a finished exchange, logged as the audit line."""
    elapsed_ms = (time.monotonic() - started) * 1000
    if logger.isEnabledFor(logging.INFO):  # the audit line; its arguments cost too
        logger.info(
            "egress %s %s://%s%s -> %s, %d bytes%s in %.0f ms",
            method,
            target.scheme,
            target.host_header,
            target.path.split("?", 1)[0],
            status,
            len(content),
            " (truncated)" if truncated else "",
            elapsed_ms,
        )
    merged: dict[str, str] = {}
    for name, value in raw_headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return EgressResponse(
        status=status,
        headers=merged,
        body=content,
        truncated=truncated,
        elapsed_ms=elapsed_ms,
        url=target.url,
        redirects=redirects,
        peer_address=str(peer),
        raw_headers=raw_headers,
    )


def _send(
    target: _Target,
    addresses: list[IPAddress],
    method: str,
    headers: dict[str, str],
    payload: bytes | None,
    *,
    connect_timeout: float,
    read_timeout: float,
    ca_bundle: str | None,
    deadline: _Deadline,
    keep_alive: bool = False,
) -> tuple[HTTPConnection, urllib3.BaseHTTPResponse, IPAddress]:
    """Connects to the first checked address that answers, sends the request and
    reads the status line and headers. The caller closes the connection.

    With keep_alive, an idle connection to one of the checked addresses is used
    first. If the server turns out to have closed it before answering, an
    idempotent request is sent once more on a new connection.
    """
    if keep_alive:
        checked = {_pool_key(target, ip, ca_bundle): ip for ip in addresses}
        kept = _idle_connections.take(checked)
        if kept is not None:
            conn, key = kept
            peer = checked[key]
            deadline.watch(conn.sock)
            try:
                response = _exchange(
                    conn,
                    peer,
                    target,
                    method,
                    headers,
                    payload,
                    read_timeout=read_timeout,
                    deadline=deadline,
                    may_be_stale=method in IDEMPOTENT_METHODS,
                )
                return conn, response, peer
            except _StaleConnection:
                pass
    conn, peer = _connect(target, addresses, connect_timeout, ca_bundle, deadline)
    response = _exchange(
        conn, peer, target, method, headers, payload, read_timeout=read_timeout, deadline=deadline
    )
    return conn, response, peer


def _exchange(
    conn: HTTPConnection,
    peer: IPAddress,
    target: _Target,
    method: str,
    headers: dict[str, str],
    payload: bytes | None,
    *,
    read_timeout: float,
    deadline: _Deadline,
    may_be_stale: bool = False,
) -> urllib3.BaseHTTPResponse:
    """Sends the request on an open connection and reads the status line and
    headers; closes the connection on failure.

    ``may_be_stale``: raise _StaleConnection instead of an error if the server
    had closed or reset the connection before any response came (a kept
    connection the server dropped as it was reused).
    """
    conn.timeout = deadline.bound(read_timeout)
    try:
        conn.request(
            method,
            target.path,
            body=payload,
            headers={"Host": target.host_header, **headers},
            preload_content=False,
            decode_content=True,
        )
    except Exception as exc:
        conn.close()
        if isinstance(exc, ValueError) and not deadline.expired:
            # http.client refuses header names and values with line breaks.
            raise EgressError(f"invalid request to {target.host}: {exc}", permanent=True)
        if may_be_stale and _is_closed_by_server(exc) and not deadline.expired:
            raise _StaleConnection from exc
        raise _translate(exc, target, peer, deadline, read_timeout, "sending the request")
    try:
        return conn.getresponse()
    except Exception as exc:
        conn.close()
        if may_be_stale and _is_closed_by_server(exc) and not deadline.expired:
            raise _StaleConnection from exc
        raise _translate(exc, target, peer, deadline, read_timeout, "waiting for a response")


def _is_closed_by_server(exc: Exception) -> bool:
    """The connection was closed or reset with no response at all (RemoteDisconnected:
    not one byte of a status line), or the request could not be written."""
    return isinstance(
        exc,
        http.client.RemoteDisconnected
        | ConnectionResetError
        | BrokenPipeError
        | ConnectionAbortedError,
    )


def _connect(
    target: _Target,
    addresses: list[IPAddress],
    connect_timeout: float,
    ca_bundle: str | None,
    deadline: _Deadline,
) -> tuple[HTTPConnection, IPAddress]:
    """Opens a connection to one of the checked addresses, in order."""
    error: EgressError | None = None
    for ip in addresses:
        deadline.check()
        if target.scheme == "https":
            conn: HTTPConnection = HTTPSConnection(
                str(ip),
                target.port,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=ca_bundle,
            )
        else:
            conn = HTTPConnection(str(ip), target.port)
        conn.timeout = deadline.bound(connect_timeout)
        try:
            conn.connect()
        except Exception as exc:
            conn.close()
            error = _translate(exc, target, ip, deadline, connect_timeout, "connecting")
            if error.permanent or deadline.expired:
                raise error
            continue
        deadline.watch(conn.sock)
        return conn, ip
    assert error is not None
    raise error


def _read_body(
    response: urllib3.BaseHTTPResponse,
    target: _Target,
    max_bytes: int,
    deadline: _Deadline,
    read_timeout: float,
) -> tuple[bytes, bool]:
    """Reads and decodes the body in chunks, stopping after max_bytes.

    Memory stays near max_bytes: urllib3 decodes gzip/deflate at most one chunk
    at a time, and BytesIO hands its buffer over without a final copy.
    """
    body = io.BytesIO()
    size = 0
    truncated = False
    try:
        while True:
            deadline.check()
            want = min(CHUNK_BYTES, max_bytes + 1 - size)
            chunk = response.read(want, decode_content=True)
            if not chunk:
                break
            if size + len(chunk) > max_bytes:
                body.write(chunk[: max_bytes - size])
                truncated = True
                break
            body.write(chunk)
            size += len(chunk)
        deadline.check()  # a read cut short by the watchdog returns what it had
    except urllib3.exceptions.DecodeError as exc:
        encoding = response.headers.get("content-encoding", "encoded")
        raise EgressError(
            f"could not decode the {encoding} body from {target.host}: {exc}", permanent=True
        )
    except EgressError:
        raise
    except Exception as exc:
        raise _translate(exc, target, None, deadline, read_timeout, "reading the response")
    return body.getvalue(), truncated


def _translate(
    exc: Exception,
    target: _Target,
    ip: IPAddress | None,
    deadline: _Deadline,
    timeout: float | None,
    phase: str,
) -> EgressError:
    """Turns a socket, ssl, http.client or urllib3 exception into an EgressError."""
    where = target.host if ip is None or str(ip) == target.host else f"{target.host} ({ip})"
    if deadline.expired or deadline.remaining() <= 0:
        return deadline.error()
    if isinstance(exc, EgressError):
        return exc
    if isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError | CertificateError):
        root = _root_cause(exc)
        if isinstance(root, ssl.SSLEOFError | ssl.SSLSyscallError | ConnectionError):
            return EgressConnectionError(
                f"connection to {where} broke during the TLS handshake: {root}"
            )
        return EgressTLSError(f"TLS failure with {where}: {_tls_reason(exc)}")
    if isinstance(exc, FileNotFoundError) and phase == "connecting":
        return EgressTLSError(f"the CA bundle for {where} could not be read: {exc}")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        cause = exc.__cause__ or exc
        return EgressConnectionError(f"could not connect to {where}: {_os_reason(cause)}")
    if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
        waited = _seconds(timeout) if timeout is not None else "?"
        return EgressTimeout(f"timed out after {waited} s {phase} ({where})")
    if isinstance(exc, urllib3.exceptions.ProtocolError | ConnectionError):
        return EgressConnectionError(f"connection to {where} broke while {phase}: {exc}")
    if isinstance(exc, http.client.HTTPException):
        return EgressError(f"invalid HTTP response from {where}: {exc!r}", permanent=True)
    if isinstance(exc, OSError):
        return EgressConnectionError(f"connection to {where} failed while {phase}: {exc}")
    return EgressError(f"request to {where} failed while {phase}: {exc!r}", permanent=False)


def _root_cause(exc: BaseException) -> BaseException:
    return _chain(exc)[-1]


def _tls_reason(exc: BaseException) -> str:
    """The most useful words from a TLS failure, e.g. "certificate verify
    failed: certificate has expired"."""
    for link in _chain(exc):
        if getattr(link, "verify_message", None):
            return f"certificate verify failed: {link.verify_message}"
    for link in _chain(exc):
        if isinstance(link, CertificateError | ssl.CertificateError):
            return str(link)
    return str(_root_cause(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (at most ten)."""
    links = [exc]
    while (exc.__cause__ or exc.__context__) is not None and len(links) < 10:
        exc = exc.__cause__ or exc.__context__
        links.append(exc)
    return links


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


# --------------------------------------------------------------------------- rate limits


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP date).

    Returns None for a missing or unreadable value; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class RateLimiter:
    """A thread-safe token bucket per key (typically one key per endpoint).

    ``acquire(key, rate)`` takes one token and sleeps until it is due. A bucket
    holds at most ``burst`` tokens (default: one second's worth, at least 1), so
    after a quiet spell that many calls go through at once. A caller that would
    have to wait longer than ``max_wait`` gets EgressTimeout at once (and no
    token), so that a worker can reschedule instead of sleeping.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated at)

    def acquire(
        self,
        key: str,
        rate_per_second: float,
        *,
        burst: float | None = None,
        max_wait: float = 30.0,
    ) -> float:
        """Blocks until a request to ``key`` is allowed; returns the seconds waited."""
        wait = self.reserve(key, rate_per_second, burst=burst, max_wait=max_wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    def reserve(
        self,
        key: str,
        rate_per_second: float,
        *,
        burst: float | None = None,
        max_wait: float = 30.0,
    ) -> float:
        """Takes the next token of ``key`` without waiting; returns the seconds until it is
        due, for a caller that waits its own way (``await asyncio.sleep(wait)``)."""
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        capacity = burst if burst is not None else max(1.0, rate_per_second)
        with self._lock:
            now = self._clock()
            tokens, updated = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - updated) * rate_per_second)
            wait = max(0.0, (1.0 - tokens) / rate_per_second)
            if wait > max_wait:
                raise EgressTimeout(
                    f"rate limit for {key}: the next slot is {_seconds(wait)} s away, "
                    f"more than the {_seconds(max_wait)} s allowed"
                )
            # Take the token now (the balance may go negative: a reservation),
            # so that concurrent callers queue up behind this one.
            self._buckets[key] = (tokens - 1.0, now)
        return wait


# One limiter per process, shared by the callers that honour endpoint rate limits.
rate_limiter = RateLimiter()
