"""The egress door for asyncio callers that send many requests to one environment.

The contract-test runner sends thousands of requests per run to one endpoint. It does so
through an :class:`AsyncEgress`: one aiohttp session per run, with keep-alive connections
and its C HTTP parser, under the same rules as :func:`apps.core.egress.request`, using
the same functions to apply them:

* the URL of every hop is parsed and checked (scheme, user info, literal and reserved
  addresses) before it is sent;
* a host name is resolved once per hop (through ``egress.resolve_host``, in an executor)
  and every address it resolves to is checked. A new connection goes to exactly those
  addresses, tried in order, each with its own connect timeout; the connector never looks
  the name up again, so DNS rebinding cannot swap the address. A kept connection is only
  used if it leads to one of the addresses just checked;
* redirects are followed by hand, each hop checked again, credentials dropped when a
  redirect leaves the origin;
* TLS is always verified, against the system store or the environment's CA bundle, with
  the SSL context and the host name check urllib3 uses for the synchronous door;
* a connect timeout, a read timeout per socket read, and a total deadline over the whole
  exchange, redirects included: a server that drips a byte every two seconds is cut off;
* the body is read and decoded (gzip, deflate) in bounded chunks up to ``max_bytes``, with
  urllib3's decoders; a truncated response's connection is closed, never reused (unless
  the whole response had arrived already: then nothing of it is left on the connection).

Failures raise the same :class:`~apps.core.egress.EgressError` subclasses, with the same
messages, as the synchronous door. Where the words after the colon come from the
library underneath (aiohttp here, http.client and urllib3 there), they may differ.

What still differs from ``egress.request``, because aiohttp works so:

* aiohttp's parser is strict where http.client is lenient: a malformed response head
  (an invalid header line or Content-Length, a head cut off by the server closing) or a
  malformed chunk that arrives with the head is an "invalid HTTP response" (permanent)
  or a broken connection, where the synchronous door may return a response or report a
  broken connection (transient);
* aiohttp sends header values as UTF-8 (http.client: Latin-1) and refuses control
  characters other than tab, including obsolete line folding that http.client allows;
* a kept connection whose address is not among a new lookup's answers is closed rather
  than kept for later.
"""

import asyncio
import contextvars
import errno
import functools
import io
import ipaddress
import os
import re
import socket
import ssl
import time
import weakref
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
import urllib3.exceptions
import urllib3.response
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.ssl_match_hostname import CertificateError, match_hostname
from yarl import URL

from apps.core import egress
from apps.core.egress import (
    EgressConnectionError,
    EgressError,
    EgressResponse,
    EgressTimeout,
    EgressTLSError,
    IPAddress,
    Limits,
)

# aiohttp rounds timeouts above this many seconds up to a whole second of the loop's
# clock; the synchronous door does not, so neither does this one.
_NO_CEILING = 1e9
# The smallest timeout, as in the synchronous door (aiohttp reads 0 as "no timeout").
_MIN_TIMEOUT = 0.001
# http.client's limits for a response head, which the synchronous door parses with.
_MAX_LINE = 65536
_MAX_HEADERS = 100

# http.client's rules for header names and values (http.client._is_legal_header_name and
# _is_illegal_header_value): the synchronous door refuses what they refuse.
_LEGAL_HEADER_NAME = re.compile(rb"[^:\s][^:\r\n]*")
_ILLEGAL_HEADER_VALUE = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])")

# Methods urllib3 sends without Content-Length when there is no body, that aiohttp would
# send "Content-Length: 0" with (the rest of urllib3's list is in aiohttp's GET_METHODS).
_NO_CONTENT_METHODS = frozenset({"DELETE", "CONNECT"})

# Errors that mean the peer closed or reset the connection.
_BROKEN = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass
class _Hop:
    """One attempt at one hop: the checked addresses of its host, the one a new
    connection dials, and (once connected) the address the request went out to."""

    host: str
    port: int
    checked: list[IPAddress]
    dial: IPAddress
    verify_host: bool  # https: check the certificate against the host name
    peer: IPAddress | None = None
    kept: bool = False  # the connection handed out last was a kept one
    failure: Exception | None = None  # how the last try failed


# The hop being sent by the current task: the resolver and the connector read it.
_current_hop: contextvars.ContextVar[_Hop | None] = contextvars.ContextVar(
    "egress_hop", default=None
)


class _CheckedResolver(AbstractResolver):
    """Hands the connector the address the current hop dials, checked before; it never
    looks a name up again. Outside a hop (not reached through AsyncEgress.request) it
    resolves and checks through egress.resolve_checked."""

    def __init__(self, allowlist: egress.Allowlist):
        self.allowlist = allowlist

    async def resolve(self, host: str, port: int = 0, family=socket.AF_INET):
        hop = _current_hop.get()
        if hop is not None and (hop.host, hop.port) == (host, port):
            addresses = [hop.dial]
        else:
            loop = asyncio.get_running_loop()
            addresses = await loop.run_in_executor(
                None, egress.resolve_checked, host, port, self.allowlist
            )
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in addresses
        ]

    async def close(self) -> None:
        pass


class _CheckedConnector(aiohttp.TCPConnector):
    """Records where each request's connection leads, checks a new TLS connection's
    certificate against the host name (as urllib3 does for the synchronous door), and
    never hands out a kept connection that leads to an address not just checked."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._handed_out = weakref.WeakSet()  # protocols of connections used before

    async def connect(self, req, traces, timeout):
        hop = _current_hop.get()
        while True:
            conn = await super().connect(req, traces=traces, timeout=timeout)
            if hop is None:
                return conn
            protocol = conn.protocol
            kept = protocol in self._handed_out
            self._handed_out.add(protocol)
            peer = _peer_address(conn)
            if kept and (peer is None or peer not in hop.checked):
                conn.close()  # DNS moved on, or the connection is gone: open a new one
                continue
            if not kept and hop.verify_host:
                try:
                    match_hostname(
                        conn.transport.get_extra_info("peercert"),
                        hop.host,
                        hostname_checks_common_name=False,
                    )
                except BaseException:
                    conn.close()
                    raise
            hop.peer = peer if peer is not None else hop.dial
            hop.kept = kept
            return conn


async def _retry_only_after_a_kept_connection(req, handler):
    """A client middleware: aiohttp sends an idempotent request once more when its
    connection broke before an answer came. The synchronous door does so only when that
    was a kept connection (which the server may have closed while it sat idle); when a
    new connection breaks, that failure stands."""
    hop = _current_hop.get()
    if hop is not None and hop.failure is not None and not hop.kept:
        raise hop.failure
    try:
        return await handler(req)
    except Exception as exc:
        if hop is not None:
            hop.failure = exc
        raise


def _peer_address(conn) -> IPAddress | None:
    transport = conn.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    try:
        return ipaddress.ip_address(peer[0])
    except ValueError:
        return None


class _Request(aiohttp.ClientRequest):
    """aiohttp's request, less the "Content-Length: 0" it adds to a DELETE (or CONNECT)
    without a body: urllib3 sends none there (RFC 9110 8.6: no content, and the method
    does not anticipate any), and the synchronous door sends what urllib3 sends."""

    def update_body_from_data(self, body, *args, **kwargs):
        given = hdrs.CONTENT_LENGTH in self.headers
        super().update_body_from_data(body, *args, **kwargs)
        if body is None and not given and self.method in _NO_CONTENT_METHODS:
            self.headers.pop(hdrs.CONTENT_LENGTH, None)


class AsyncEgress:
    """One session of outbound requests under one environment's rules.

    ``async with AsyncEgress(allowlist=..., ca_bundle=...) as door:`` then
    ``await door.request(method, url, ...)`` as often as needed; at most ``connections``
    are open at once.
    """

    def __init__(
        self,
        *,
        allowlist: Iterable[str] | egress.Allowlist = (),
        ca_bundle: str | None = None,
        connections: int = 16,
    ):
        self.rules = egress._rules(allowlist)
        self.ca_bundle = ca_bundle
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None

    async def __aenter__(self) -> "AsyncEgress":
        connector = _CheckedConnector(
            limit=self.connections,
            resolver=_CheckedResolver(self.rules),
            use_dns_cache=False,
            keepalive_timeout=egress.IDLE_CONNECTION_SECONDS,
            happy_eyeballs_delay=None,  # one address per attempt, in order
            timeout_ceil_threshold=_NO_CEILING,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            request_class=_Request,
            middlewares=(_retry_only_after_a_kept_connection,),
            auto_decompress=False,  # decoded here, in bounded chunks
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, ceil_threshold=_NO_CEILING),
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
            max_headers=_MAX_HEADERS,
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _ssl_context(self, where: str) -> ssl.SSLContext:
        """The context urllib3 builds for the synchronous door (same protocol versions,
        options and verify flags), verifying against the CA bundle or the system store;
        built once per session. The host name is checked by the connector."""
        if self._ssl is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            context.check_hostname = False
            context.set_alpn_protocols(["http/1.1"])  # as urllib3 offers, and all aiohttp speaks
            try:
                if self.ca_bundle:
                    context.load_verify_locations(self.ca_bundle)
                else:
                    context.load_default_certs()
            except OSError as exc:
                raise EgressTLSError(f"TLS failure with {where}: {egress._tls_reason(exc)}")
            self._ssl = context
        return self._ssl

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        total_timeout: float | None = None,
        max_bytes: int | None = None,
        follow_redirects: bool = True,
        correlation_id: str | None = None,
    ) -> EgressResponse:
        """Sends one request; the arguments mean what they mean for egress.request."""
        if self.session is None:
            raise RuntimeError("use AsyncEgress as an async context manager")
        limits = Limits.of(connect_timeout, read_timeout, total_timeout, max_bytes)
        method = egress._checked_method(method)
        payload = body.encode("utf-8") if isinstance(body, str) else body
        send_headers = egress._send_headers(headers, correlation_id, keep_alive=True)
        started = time.monotonic()
        try:
            async with asyncio.timeout(limits.total):
                return await self._exchange(
                    method, url, payload, send_headers, limits, started, follow_redirects
                )
        except TimeoutError:
            # Only the total deadline: every other failure is an EgressError by now.
            error = _deadline_error(limits)
            egress.logger.warning("egress %s failed: %s", method, error.message)
            raise error from None
        except EgressError as exc:
            egress.logger.warning("egress %s failed: %s", method, exc.message)
            raise

    async def _exchange(
        self, method, url, payload, send_headers, limits, started, follow_redirects
    ) -> EgressResponse:
        redirects: list[str] = []
        current_url = url
        while True:
            target = egress._parse_url(current_url)
            egress._check_target(target, self.rules)
            addresses = await self._resolve(target)
            response, peer = await self._send(
                target, addresses, method, send_headers, payload, limits, started
            )
            try:
                hop = follow_redirects and egress._redirect(
                    response.status,
                    _header(response, "location"),
                    method,
                    payload,
                    send_headers,
                    current_url,
                    target,
                    redirects,
                    limits.max_redirects,
                )
                if hop:
                    response.release()  # a body not read to its end closes the connection
                    method, payload, current_url = hop
                    continue
                content, truncated = await _read_body(response, target, limits, started)
            except BaseException:
                response.close()
                raise
            if truncated:
                response.close()
            else:
                response.release()
            raw_headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in response.raw_headers
            ]
            return egress._response(
                method,
                target,
                response.status,
                raw_headers,
                content,
                truncated,
                started,
                redirects,
                peer,
            )

    async def _resolve(self, target) -> list[IPAddress]:
        """egress._resolve: the literal address, or the name resolved once and every
        answer checked (in an executor: the resolver blocks)."""
        if target.literal_ip is not None:
            return [target.literal_ip]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, egress.resolve_checked, target.host, target.port, self.rules
        )

    async def _send(self, target, addresses, method, send_headers, payload, limits, started):
        """Sends the request on a kept connection to one of the checked addresses, or on a
        new one to the first address that answers, and reads the status line and headers.
        Returns the response and the address it came from."""
        headers = _checked_headers(target, send_headers)
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=max(_MIN_TIMEOUT, limits.connect),
            sock_read=max(_MIN_TIMEOUT, limits.read),
            ceil_threshold=_NO_CEILING,
        )
        url = URL(f"{target.scheme}://{target.host_header}{target.path}", encoded=True)
        error: EgressError | None = None
        for ip in addresses:
            where = _where(target, ip)
            hop = _Hop(target.host, target.port, addresses, ip, target.scheme == "https")
            ssl_context = self._ssl_context(where) if hop.verify_host else True
            token = _current_hop.set(hop)
            try:
                response = await self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=payload,
                    allow_redirects=False,
                    timeout=timeout,
                    ssl=ssl_context,
                )
            except Exception as exc:
                connected = hop.peer is not None
                error = _translate(
                    exc,
                    target,
                    _where(target, hop.peer) if connected else where,
                    limits,
                    started,
                    "waiting for a response" if connected else "connecting",
                )
                if connected or error.permanent:
                    raise error from exc
                continue  # the next checked address, as the synchronous door does
            finally:
                _current_hop.reset(token)
            if hop.peer is None:  # the connector always records it; never send blind
                response.close()
                raise RuntimeError("the egress connector did not check the connection")
            return response, hop.peer
        assert error is not None
        raise error


def _where(target, ip) -> str:
    """How messages name the other side: the host, and the address if that differs."""
    return target.host if ip is None or str(ip) == target.host else f"{target.host} ({ip})"


def _header(response: aiohttp.ClientResponse, name: str) -> str | None:
    """A response header as urllib3 gives it: repeated values joined with ", "."""
    values = response.headers.getall(name, ())
    return ", ".join(values) if values else None


def _checked_headers(target, send_headers: dict[str, str]) -> dict[str, str]:
    """The headers to send, Host first; refuses what http.client refuses for the
    synchronous door (putheader), with its words. aiohttp itself refuses any control
    character but tab, and sends non-ASCII text as UTF-8 (http.client: Latin-1)."""
    headers = {"Host": target.host_header}
    for name, value in send_headers.items():
        try:
            raw_name = name.encode("ascii")
            if not _LEGAL_HEADER_NAME.fullmatch(raw_name):
                raise ValueError(f"Invalid header name {raw_name!r}")
            if isinstance(value, int):
                value = str(value)
            raw_value = value.encode("latin-1") if isinstance(value, str) else value
            if _ILLEGAL_HEADER_VALUE.search(raw_value):
                raise ValueError(f"Invalid header value {raw_value!r}")
        except (ValueError, TypeError) as exc:
            raise EgressError(f"invalid request to {target.host}: {exc}", permanent=True)
        headers[name] = value
    return headers


def _decoder(content_encoding: str):
    """The decoder urllib3 picks for the synchronous door's responses, or None."""
    encoding = content_encoding.lower()
    known = urllib3.response.BaseHTTPResponse.CONTENT_DECODERS
    if encoding in known or (
        "," in encoding and any(part.strip() in known for part in encoding.split(","))
    ):
        # One decoder per listed encoding, chosen as urllib3 chooses them (one for one).
        return urllib3.response.MultiDecoder(encoding)
    return None


async def _read_body(response: aiohttp.ClientResponse, target, limits: Limits, started: float):
    """The decoded body, at most max_bytes of it, and whether there was more.

    Decoded in bounded steps (at most CHUNK_BYTES of output each) by the decoders urllib3
    uses for the synchronous door, so a small body cannot inflate to gigabytes in memory.
    """
    max_bytes = limits.max_bytes
    content_encoding = _header(response, "content-encoding")
    body = io.BytesIO()
    size = 0
    truncated = False
    stream = response.content
    unwatch = _watch_connection(response, stream)
    try:
        try:
            decoder = _decoder(content_encoding or "")
            draining = False  # the decoder holds input that gave no output yet
            while True:
                want = min(egress.CHUNK_BYTES, max_bytes + 1 - size)
                if decoder is None:
                    chunk = await stream.read(want)
                    if not chunk:
                        break
                elif draining:
                    chunk = _decode(decoder, b"", want, content_encoding)
                    draining = bool(chunk) and decoder.has_unconsumed_tail
                    if not chunk:
                        continue
                else:
                    data = await stream.read(egress.CHUNK_BYTES)
                    if not data:
                        chunk = _decode(decoder, b"", -1, content_encoding) + decoder.flush()
                        if size + len(chunk) > max_bytes:
                            body.write(chunk[: max_bytes - size])
                            truncated = True
                        else:
                            body.write(chunk)
                        break
                    chunk = _decode(decoder, data, want, content_encoding)
                    draining = decoder.has_unconsumed_tail
                    if not chunk:
                        continue
                if size + len(chunk) > max_bytes:
                    body.write(chunk[: max_bytes - size])
                    truncated = True
                    break
                body.write(chunk)
                size += len(chunk)
        except urllib3.exceptions.DecodeError as exc:
            raise EgressError(
                f"could not decode the {content_encoding or 'encoded'} body from "
                f"{target.host}: {exc}",
                permanent=True,
            )
    except EgressError:
        raise
    except Exception as exc:
        raise _translate(exc, target, target.host, limits, started, "reading the response") from exc
    finally:
        unwatch()
    return body.getvalue(), truncated


def _watch_connection(response: aiohttp.ClientResponse, stream):
    """Makes sure a body whose connection is lost ends, with an error if it is incomplete.

    aiohttp leaves the body stream waiting, with no read timeout either, when its parser
    fails in the middle of a body (a malformed chunk) and closes the connection; the
    synchronous door reports a broken connection there. Returns the function that stops
    watching (a kept connection must not collect one callback per request).
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        return _nothing  # the whole body is in the stream already
    closed = protocol.closed
    if closed is None:  # the connection was lost already
        _end_stuck_body(stream, protocol)
        return _nothing
    if closed not in _futures_retrieved:
        # Asking for the future made it: its error must not go unretrieved (and logged)
        # when a kept connection is lost after this request.
        closed.add_done_callback(_retrieve)
        _futures_retrieved.add(closed)
    callback = functools.partial(_end_stuck_body_on_loss, stream=stream, protocol=protocol)
    closed.add_done_callback(callback)
    return functools.partial(closed.remove_done_callback, callback)


_futures_retrieved: "weakref.WeakSet[asyncio.Future]" = weakref.WeakSet()


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # the body's own error, if any, says what happened


def _nothing() -> None:
    pass


def _end_stuck_body_on_loss(closed: asyncio.Future, *, stream, protocol) -> None:
    _end_stuck_body(stream, protocol)


def _end_stuck_body(stream, protocol) -> None:
    """Ends a body stream that the lost connection left neither finished nor failed."""
    if stream.is_eof() or stream.exception() is not None:
        return
    cause = protocol.exception()
    stream.set_exception(
        aiohttp.ClientPayloadError(
            f"Response payload is not completed: {_one_line(cause) if cause else 'connection lost'}"
        )
    )


def _one_line(exc: BaseException) -> str:
    """An aiohttp parser message on one line, without the caret that points into it."""
    text = getattr(exc, "message", None) or str(exc)
    lines = (line.strip() for line in str(text).splitlines())
    return " ".join(line for line in lines if line and set(line) != {"^"})


def _decode(decoder, data: bytes, max_length: int, content_encoding: str) -> bytes:
    """decoder.decompress, with decoding errors wrapped as urllib3 wraps them."""
    try:
        return decoder.decompress(data, max_length=max_length)
    except (OSError, zlib.error) as exc:
        raise urllib3.exceptions.DecodeError(
            f"Received response with content-encoding: {content_encoding.lower()}, but "
            "failed to decode it.",
            exc,
        ) from exc


def _socket_error(error: OSError) -> OSError:
    """The socket's own error, as the synchronous door meets it: asyncio replaces its
    words with "Connect call failed ('10.1.2.3', 443)"."""
    if error.errno and error.strerror != os.strerror(error.errno):
        return type(error)(error.errno, os.strerror(error.errno))
    return error


def _deadline_error(limits: Limits) -> EgressTimeout:
    return EgressTimeout(
        f"timed out after {egress._seconds(limits.total)} s (the total deadline for the exchange)"
    )


def _translate(
    exc: Exception, target, where: str, limits: Limits, started: float, phase: str
) -> EgressError:
    """Turns an aiohttp, ssl or socket exception into the EgressError egress.request raises."""
    if time.monotonic() - started >= limits.total:
        return _deadline_error(limits)
    if isinstance(exc, EgressError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return EgressTimeout(
            f"timed out after {egress._seconds(limits.connect)} s connecting ({where})"
        )
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return EgressTimeout(f"timed out after {egress._seconds(limits.read)} s {phase} ({where})")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return EgressTLSError(
            f"TLS failure with {where}: {egress._tls_reason(exc.certificate_error)}"
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError | CertificateError):
        root = egress._root_cause(exc)
        if isinstance(root, ssl.SSLEOFError | ssl.SSLSyscallError | ConnectionError):
            return EgressConnectionError(
                f"connection to {where} broke during the TLS handshake: {root}"
            )
        return EgressTLSError(f"TLS failure with {where}: {egress._tls_reason(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error
        if isinstance(reason, ConnectionResetError) and reason.errno is None:
            # Connected, then closed in the TLS handshake: asyncio says so with a bare
            # ConnectionResetError, where OpenSSL (for the synchronous door) says EOF.
            return EgressConnectionError(
                f"connection to {where} broke during the TLS handshake: "
                "the server closed the connection"
            )
        reason = _socket_error(reason)
        if isinstance(reason, ConnectionError) and not isinstance(reason, ConnectionRefusedError):
            # Connected, then reset (in the TLS handshake): as the synchronous door says it.
            return EgressConnectionError(f"connection to {where} broke while connecting: {reason}")
        return EgressConnectionError(f"could not connect to {where}: {egress._os_reason(reason)}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        # http.client's words for the same event (RemoteDisconnected).
        return EgressConnectionError(
            f"connection to {where} broke while {phase}: "
            "Remote end closed connection without response"
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return EgressConnectionError(f"connection to {where} broke while {phase}: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return EgressError(f"invalid HTTP response from {where}: {_one_line(exc)}", permanent=True)
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in _BROKEN):
        return EgressConnectionError(f"connection to {where} broke while {phase}: {exc}")
    if isinstance(exc, OSError):
        return EgressConnectionError(f"connection to {where} failed while {phase}: {exc}")
    if isinstance(exc, ValueError):
        return EgressError(f"invalid request to {target.host}: {exc}", permanent=True)
    return EgressError(f"request to {where} failed while {phase}: {exc!r}", permanent=False)
