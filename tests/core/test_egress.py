"""Tests for apps.core.egress, the one door for outbound HTTP.

Every server here is a real one on 127.0.0.1 (or ::1), written in this file.
No test sends traffic anywhere else: DNS goes through a fake resolver
(``egress.resolve_host`` is monkeypatched for every test), and an autouse
fixture refuses, without any traffic, every TCP connection to an address other
than loopback while recording the attempt. Every test is bounded to a few
seconds by short timeouts.

The tests that send requests run through both doors (the ``door`` fixture, marked
``@both_doors``): ``egress.request`` itself, and
:class:`apps.core.async_egress.AsyncEgress`, which must apply the same rules and
raise the same errors with the same messages. For the async door, ``egress.request``
is replaced by a wrapper that runs one request in a fresh ``AsyncEgress`` session
under ``asyncio.run`` (in a thread of its own). Tests that only parse URLs or allowlists
run once.
"""

import asyncio
import asyncio.selector_events
import datetime as dt
import gzip
import http.server
import inspect
import ipaddress
import json
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.core import egress
from apps.core.async_egress import AsyncEgress
from apps.core.egress import (
    EgressConnectionError,
    EgressError,
    EgressRefused,
    EgressTimeout,
    EgressTLSError,
)

REAL_RESOLVE_HOST = egress.resolve_host
LOOPBACK = ("127.0.0.1", "::1")
PUBLIC_IP = "93.184.215.14"  # never contacted: the connection guard refuses it
MEBIBYTE = 1024 * 1024
ZERO_BLOCK = bytes(MEBIBYTE)


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = _ipv6_available()


# --------------------------------------------------------------------------- guards


class ConnectionGuard:
    """Records every TCP connection urllib3 (the sync door) or the asyncio event loop
    (the async door) opens; only loopback ever gets through. Addresses put in
    ``black_holes`` never answer (without traffic): connecting to them times out."""

    def __init__(self, real, real_sock_connect):
        self.real = real
        self.real_sock_connect = real_sock_connect
        self.attempts: list[tuple[str, int]] = []
        self.black_holes: set[str] = set()

    def check(self, address):
        host, port = address[:2]
        host = host.strip("[]")
        self.attempts.append((host, port))
        if host in self.black_holes:
            return False
        if host not in LOOPBACK:
            raise ConnectionRefusedError(111, "Connection refused (test guard: loopback only)")
        return True

    def __call__(self, address, timeout=None, *args, **kwargs):
        if not self.check(address):
            time.sleep(timeout)
            raise TimeoutError("timed out")
        return self.real(address, timeout, *args, **kwargs)

    async def sock_connect(self, loop, sock, address):
        if not self.check(address):
            await asyncio.sleep(3600)
        return await self.real_sock_connect(loop, sock, address)


class FakeResolver:
    """Stands in for DNS. ``set(name, [ips], [ips], ...)``: successive lookups get
    successive answers (the last one repeats). Unknown names do not resolve."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.calls: list[str] = []

    def set(self, name, *answers):
        self.answers[name] = list(answers)

    def __call__(self, host, port):
        self.calls.append(host)
        answers = self.answers.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    def count(self, host):
        return self.calls.count(host)


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    loop_class = asyncio.selector_events.BaseSelectorEventLoop
    guard = ConnectionGuard(urllib3.util.connection.create_connection, loop_class.sock_connect)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", guard)

    async def sock_connect(loop, sock, address):
        return await guard.sock_connect(loop, sock, address)

    monkeypatch.setattr(loop_class, "sock_connect", sock_connect)
    return guard


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    fake = FakeResolver()
    monkeypatch.setattr(egress, "resolve_host", fake)
    return fake


# --------------------------------------------------------------------------- doors


def async_door_request(
    method,
    url,
    *,
    allowlist=(),
    ca_bundle=None,
    keep_alive=False,  # the async door always keeps connections, per session
    **kwargs,
):
    """egress.request's signature, served by one request in a fresh AsyncEgress session."""
    result = []

    async def run():
        async with AsyncEgress(allowlist=allowlist, ca_bundle=ca_bundle) as door:
            result.append(await door.request(method, url, **kwargs))

    # The response is handed over outside the task's result: asyncio.run (3.11) formats
    # the main task with its result when it restores the SIGINT handler, which would
    # repr a whole body and spoil the memory measurements.
    run_in_own_loop(run())
    return result[0]


def run_in_own_loop(coroutine):
    """``asyncio.run(coroutine)`` in a thread of its own, as the test runner sends its cases:
    the test process may have an event loop running on its main thread already (Playwright's
    synchronous API keeps one there once the browser tests have run)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # raised again in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="egress-test-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture(params=["sync", "async"])
def door(request, monkeypatch):
    """Runs a test through egress.request ("sync") and through AsyncEgress ("async")."""
    if request.param == "async":
        monkeypatch.setattr(egress, "request", async_door_request)
    return request.param


# Marks a test that sends requests: it runs once per door.
both_doors = pytest.mark.usefixtures("door")


# --------------------------------------------------------------------------- servers


class AppHandler(http.server.BaseHTTPRequestHandler):
    """A small partner API: /echo, /redirect, /chain/N, /bytes, /gzip, /deflate,
    /status, /cookies. Every request is recorded on the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": self.headers, "body": body}
        )
        if url.path == "/redirect":
            return self._send(int(query.get("code", 302)), b"", {"Location": query["to"]})
        if url.path.startswith("/chain/"):
            left = int(url.path.rsplit("/", 1)[1])
            if left == 0:
                return self._send(200, b"end of chain")
            return self._send(302, b"", {"Location": f"/chain/{left - 1}"})
        if url.path == "/bytes":
            return self._send(200, b"x" * int(query["n"]))
        if url.path == "/gzip":
            return self._send(200, gzip.compress(b"hello " * 100), {"Content-Encoding": "gzip"})
        if url.path == "/deflate":
            return self._send(200, zlib.compress(b"hello " * 100), {"Content-Encoding": "deflate"})
        if url.path == "/bad-gzip":
            return self._send(200, b"this is not gzip at all", {"Content-Encoding": "gzip"})
        if url.path == "/status":
            extra = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            return self._send(int(query["code"]), b"status", extra)
        if url.path == "/cookies":
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("X-Custom", "Yes")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        echo = {
            "method": self.command,
            "path": self.path,
            "headers": {key.lower(): value for key, value in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        return self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class AppServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host="127.0.0.1", tls_context=None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), AppHandler)
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        self.requests: list[dict] = []
        self.port = self.server_address[1]
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # clients that hang up early are part of the tests

    def stop(self):
        self.shutdown()
        self.server_close()


class RawServer:
    """A TCP server on 127.0.0.1 whose handler(conn, server) writes raw bytes,
    for the misbehaving cases: never answers, slow drip, endless streams, bombs."""

    def __init__(self, handler):
        self.handler = handler
        self.stopping = threading.Event()
        self.sent = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            try:
                read_request_head(conn)
                self.handler(conn, self)
            except OSError:
                pass  # the client hung up, as it should

    def send(self, conn, data):
        conn.sendall(data)
        self.sent += len(data)

    def stop(self):
        self.stopping.set()
        self.sock.close()


def read_request_head(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def app():
    server = AppServer()
    yield server
    server.stop()


@pytest.fixture
def raw():
    servers = []

    def start(handler):
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


LOCAL = ["127.0.0.1"]  # the allowlist that lets tests reach their own servers


# --------------------------------------------------------------------------- TLS material


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca, sans=(), days=(-1, 30)):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA, a valid server certificate for api.partner.test and
    127.0.0.1, and an expired one. Returns paths."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Pontis Test CA", "Pontis Test CA", ca_key.public_key(), ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    sans = [
        x509.DNSName("api.partner.test"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for label, days in (("valid", (-1, 30)), ("expired", (-30, -1))):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(
            "api.partner.test",
            "Pontis Test CA",
            key.public_key(),
            ca_key,
            ca=False,
            sans=sans,
            days=days,
        )
        (folder / f"{label}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return folder


def _tls_server(tls, label):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / f"{label}.pem")
    return AppServer(tls_context=context)


@pytest.fixture
def https_app(tls):
    server = _tls_server(tls, "valid")
    yield server
    server.stop()


# =========================================================================== schemes


@both_doors
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file://localhost/etc/passwd",
        "ftp://ftp.example.com/file.txt",
        "gopher://127.0.0.1:6379/_INFO",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/stat",
        "ldap://ldap.example.com/",
        "jar:http://example.com/x.jar!/",
        "ws://example.com/socket",
    ],
)
def test_only_http_and_https_are_allowed(url):
    with pytest.raises(EgressRefused) as refused:
        egress.check_url(url, resolve=False)
    assert "only http and https" in refused.value.message
    assert refused.value.permanent
    with pytest.raises(EgressRefused):
        egress.request("GET", url)


@pytest.mark.parametrize(
    "url, words",
    [
        ("", "empty"),
        ("//example.com/path", "no scheme"),
        ("example.com/path", "no scheme"),
        ("http:/example.com", "no host"),
        ("http:///example.com", "no host"),
        ("https://", "no host"),
        ("http://exa mple.com/", "spaces or control characters"),
        (" http://example.com/", "spaces or control characters"),
        ("http://example.com/\n", "spaces or control characters"),
        ("http://example.com:99999/", "not a valid port"),
        ("http://example.com:0/", "not a valid port"),
        ("http://example.com:+80/", "not a valid port"),
        ("http://[::1/", "not a valid URL"),
        ("http://[not-ipv6]/", "not a valid URL"),
        ("http://::1/", "without [brackets]"),
        ("http://exa_mple..com/", "not a valid host name"),
        ("http://1.2.3.4.5/", "not a valid IPv4 address"),
        ("http://256.1.1.1/", "out of range"),
        ("http://09.0.0.1/", "not a valid octal number"),
        ("http://example.123/", "not a valid IPv4 address"),
    ],
)
def test_malformed_urls_are_refused_with_a_clear_message(url, words):
    with pytest.raises(EgressRefused) as refused:
        egress.check_url(url, resolve=False)
    assert words in refused.value.message
    assert refused.value.permanent


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "HTTPS://API.Partner.Example:8443/v1/orders?status=open#top",
        "https://bücher.example/straße?q=ü",
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]/dns-query",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::8.8.8.8]/",
        "http://[2002:808:808::1]/",
    ],
)
def test_public_urls_pass_the_registration_check(url):
    egress.check_url(url, resolve=False)


# =========================================================================== addresses

FORBIDDEN_ADDRESSES = [
    # IPv4 (address, words expected in the message)
    ("127.0.0.1", "a loopback address"),
    ("127.255.255.254", "a loopback address"),
    ("10.0.0.1", "a private address"),
    ("10.255.255.255", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.254", "a private address"),
    ("192.168.0.1", "a private address"),
    ("192.168.255.254", "a private address"),
    ("169.254.0.1", "a link-local address"),
    ("169.254.169.254", "the cloud metadata address"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - a forbidden destination, not a bind
    ("0.1.2.3", "unspecified"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "the broadcast address"),
    ("192.0.0.1", "non-public"),
    ("192.0.2.1", "non-public"),
    ("198.18.0.1", "non-public"),
    ("198.51.100.7", "non-public"),
    ("203.0.113.9", "non-public"),
    # IPv6
    ("::1", "a loopback address"),
    ("::", "the unspecified address"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fd00:ec2::254", "the cloud metadata address"),
    ("fe80::1", "a link-local address"),
    ("febf:ffff::1", "a link-local address"),
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("ff0e::1", "a multicast address"),
    ("2001:db8::1", "non-public"),
    ("100::1", "non-public"),
    ("2001::1", "non-public"),
    # IPv6 forms that carry a forbidden IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1"),
    ("::ffff:0.0.0.0", "IPv4-mapped form of 0.0.0.0"),
    ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1"),
    ("::169.254.169.254", "IPv4-compatible form of 169.254.169.254"),
    ("::ffff:0:127.0.0.1", "IPv4-translated form of 127.0.0.1"),
    ("2002:7f00:1::1", "6to4 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 form of 169.254.169.254"),
    ("64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1"),
    ("64:ff9b::169.254.169.254", "NAT64 form of 169.254.169.254"),
]
FORBIDDEN_IDS = [address for address, _ in FORBIDDEN_ADDRESSES]


def _url_for(address, port=80, path="/"):
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


@both_doors
@pytest.mark.parametrize("address, words", FORBIDDEN_ADDRESSES, ids=FORBIDDEN_IDS)
def test_forbidden_literal_addresses_are_refused(address, words, connections):
    with pytest.raises(EgressRefused) as at_registration:
        egress.check_url(_url_for(address), resolve=False)
    with pytest.raises(EgressRefused) as at_run_time:
        egress.request("GET", _url_for(address), total_timeout=2)
    for refused in (at_registration.value, at_run_time.value):
        assert refused.message.startswith("refused: ")
        assert words in refused.message
        assert refused.message.endswith("and the environment's allowlist does not permit it")
        assert refused.permanent
    assert connections.attempts == []


@both_doors
@pytest.mark.parametrize("address, words", FORBIDDEN_ADDRESSES, ids=FORBIDDEN_IDS)
def test_names_that_resolve_to_forbidden_addresses_are_refused(
    address, words, resolver, connections
):
    resolver.set("innocent.example", [address])
    with pytest.raises(EgressRefused) as at_registration:
        egress.check_url("https://innocent.example/api", resolve=True)
    with pytest.raises(EgressRefused) as at_run_time:
        egress.request("GET", "https://innocent.example/api", total_timeout=2)
    for refused in (at_registration.value, at_run_time.value):
        assert "innocent.example resolves to" in refused.message
        assert words in refused.message
    assert connections.attempts == []
    assert resolver.count("innocent.example") == 2  # once per check, once per request


def test_the_required_message_wording():
    with pytest.raises(EgressRefused) as refused:
        egress.check_url("http://127.0.0.1/", resolve=False)
    assert refused.value.message == (
        "refused: 127.0.0.1 is a loopback address and the environment's allowlist "
        "does not permit it"
    )


@both_doors
def test_a_name_is_refused_if_any_of_its_addresses_is_forbidden(resolver, connections):
    resolver.set("mixed.example", [PUBLIC_IP, "10.0.0.1"])
    with pytest.raises(EgressRefused) as refused:
        egress.request("GET", "http://mixed.example/", total_timeout=2)
    assert "resolves to 10.0.0.1, which is a private address" in refused.value.message
    assert connections.attempts == []


@pytest.mark.parametrize("address", [PUBLIC_IP, "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_names_that_resolve_to_public_addresses_pass_the_check(address, resolver):
    resolver.set("partner.example", [address])
    egress.check_url("https://partner.example/", resolve=True)


# --------------------------------------------------------------------------- disguises

DISGUISES = [
    # resolver-style IPv4 spellings of 127.0.0.1
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://0177.0.0.01/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://0/",
    "http://0.0.0.0:8000/",
    # the same for 169.254.169.254
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://0251.0376.0251.0376/latest/meta-data/",
    "http://169.254.43518/latest/meta-data/",
    "http://169.254.169.254./latest/meta-data/",
    # IPv6 literals
    "http://[::1]/",
    "http://[::1]:8080/admin",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[fe80::1%25eth0]/",
    "http://[FE80::1]/",
    # names
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST:8000/",
    "http://LocalHost./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    # user info tricks
    "http://a@b@127.0.0.1/",
    "http://evil.com@127.0.0.1/",
    "http://user:password@127.0.0.1:8080/",
    "http://169.254.169.254@169.254.169.254/",
    "http://127.0.0.1:80@evil.example/",
    "http://127.0.0.1%2f@evil.example/",
    # backslashes
    "http://127.0.0.1\\@evil.example/",
    "http://evil.example\\@127.0.0.1/",
    "http:\\\\127.0.0.1\\",
    "http://evil.example/\\..\\127.0.0.1",
    # percent-encoded and Unicode hosts
    "http://%31%32%37.0.0.1/",
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://127.0.0.%31/",
    "http://１２７.０.０.１/",
    "http://127。0。0。1/",
    "http://①②⑦.⓪.⓪.①/",
    "http://ｌｏｃａｌｈｏｓｔ/",
]


@both_doors
@pytest.mark.parametrize("url", DISGUISES)
def test_disguised_forbidden_urls_are_refused(url, connections, resolver):
    with pytest.raises(EgressRefused) as refused:
        egress.check_url(url, resolve=False)
    assert refused.value.message.startswith("refused: ")
    with pytest.raises(EgressRefused):
        egress.check_url(url, resolve=True)
    with pytest.raises(EgressRefused):
        egress.request("GET", url, total_timeout=2)
    assert connections.attempts == []
    assert resolver.calls == []  # refused before any DNS


@pytest.mark.parametrize(
    "url, address",
    [
        ("http://127.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://2852039166/", "169.254.169.254"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe"),
        ("http://[0:0:0:0:0:0:0:1]/", "::1"),
    ],
)
def test_disguises_are_named_by_their_real_address(url, address):
    with pytest.raises(EgressRefused) as refused:
        egress.check_url(url, resolve=False)
    assert refused.value.message.startswith(f"refused: {address} ")


def test_user_info_is_refused_even_for_public_hosts():
    with pytest.raises(EgressRefused) as refused:
        egress.check_url("https://user:secret@partner.example/", resolve=False)
    assert "user info" in refused.value.message
    assert "secret" not in refused.value.message


def test_messages_never_repeat_a_password_from_the_url():
    with pytest.raises(EgressRefused) as refused:
        egress.check_url("https://user:secret@partner.example:99999/", resolve=False)
    assert "not a valid port" in refused.value.message
    assert "secret" not in refused.value.message


# =========================================================================== allowlist


def test_parse_allowlist_accepts_networks_addresses_and_names():
    rules = egress.parse_allowlist(
        ["10.20.0.0/16", "127.0.0.1", "::1", "[fd00::1]", "erp.corp.local", "*.Corp.Local.", " "]
    )
    assert [str(network) for network in rules.networks] == [
        "10.20.0.0/16",
        "127.0.0.1/32",
        "::1/128",
        "fd00::1/128",
    ]
    assert rules.names == ("erp.corp.local",)
    assert rules.suffixes == ("corp.local",)


def test_parse_allowlist_splits_a_single_string():
    rules = egress.parse_allowlist("10.20.0.0/16, erp.corp.local\n*.corp.local")
    assert len(rules.networks) == 1
    assert rules.names == ("erp.corp.local",)
    assert rules.suffixes == ("corp.local",)


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.0/33",
        "10.0.0.0/8/8",
        "300.1.1.1",
        "127.1",
        "2130706433",
        "http://erp.corp.local",
        "erp corp",
        "*.",
        "*",
        "*foo.com",
        "foo.*.com",
        "exa$mple.com",
        "0.0.0.0/0",
        "::/0",
    ],
)
def test_parse_allowlist_rejects_invalid_entries_with_a_clear_message(entry):
    with pytest.raises(ValueError) as error:
        egress.parse_allowlist([entry])
    assert repr(entry) in str(error.value)


def test_an_allowlisted_network_lets_addresses_inside_it_through():
    egress.check_url("http://10.20.3.4/", allowlist=["10.20.0.0/16"], resolve=False)
    with pytest.raises(EgressRefused):
        egress.check_url("http://10.21.0.1/", allowlist=["10.20.0.0/16"], resolve=False)


def test_an_allowlisted_address_permits_only_itself_and_its_ipv6_mapped_form():
    egress.check_url("http://127.0.0.1:8000/", allowlist=["127.0.0.1"], resolve=False)
    egress.check_url("http://[::ffff:127.0.0.1]/", allowlist=["127.0.0.1"], resolve=False)
    with pytest.raises(EgressRefused):
        egress.check_url("http://127.0.0.2/", allowlist=["127.0.0.1"], resolve=False)
    egress.check_url("http://[::1]/", allowlist=["::1"], resolve=False)
    with pytest.raises(EgressRefused):
        egress.check_url("http://[::1]/", allowlist=["127.0.0.1"], resolve=False)


def test_an_allowlisted_name_may_resolve_to_a_private_address(resolver):
    resolver.set("erp.corp.local", ["10.1.1.1"])
    resolver.set("other.corp.local", ["10.1.1.2"])
    egress.check_url("https://erp.corp.local/api", allowlist=["erp.corp.local"])
    with pytest.raises(EgressRefused):
        egress.check_url("https://other.corp.local/api", allowlist=["erp.corp.local"])


@pytest.mark.parametrize(
    "host, permitted",
    [
        ("a.corp.local", True),
        ("x.y.corp.local", True),
        ("A.CORP.LOCAL.", True),
        ("corp.local", False),
        ("evilcorp.local", False),
        ("corp.local.evil.example", False),
    ],
)
def test_a_wildcard_entry_permits_subdomains_only(host, permitted, resolver):
    resolver.set(host.lower().rstrip("."), ["10.9.9.9"])
    if permitted:
        egress.check_url(f"http://{host}/", allowlist=["*.corp.local"])
    else:
        with pytest.raises(EgressRefused):
            egress.check_url(f"http://{host}/", allowlist=["*.corp.local"])


def test_an_allowlisted_name_does_not_permit_the_metadata_address(resolver):
    resolver.set("erp.corp.local", ["169.254.169.254"])
    with pytest.raises(EgressRefused) as refused:
        egress.check_url("http://erp.corp.local/", allowlist=["erp.corp.local", "*.corp.local"])
    assert "cloud metadata" in refused.value.message
    egress.check_url("http://169.254.169.254/", allowlist=["169.254.169.254"], resolve=False)


def test_localhost_can_be_allowlisted_by_name(resolver):
    resolver.set("localhost", ["127.0.0.1"])
    egress.check_url("http://localhost:8000/", allowlist=["localhost"])


def test_check_url_accepts_a_name_that_does_not_resolve_yet(resolver):
    egress.check_url("https://not-yet-in-dns.example/api")
    resolver.set("flaky.example", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    egress.check_url("https://flaky.example/api")


# =========================================================================== requests


@both_doors
def test_a_plain_get(app):
    response = egress.request("GET", f"http://127.0.0.1:{app.port}/echo?x=1", allowlist=LOCAL)
    assert response.status == 200
    assert response.ok
    echo = json.loads(response.body)
    assert echo["method"] == "GET"
    assert echo["path"] == "/echo?x=1"
    assert echo["headers"]["host"] == f"127.0.0.1:{app.port}"
    assert echo["headers"]["user-agent"] == egress.USER_AGENT
    assert response.headers["content-type"] == "application/json"
    assert response.truncated is False
    assert response.url == f"http://127.0.0.1:{app.port}/echo?x=1"
    assert response.redirects == []
    assert response.peer_address == "127.0.0.1"
    assert 0 < response.elapsed_ms < 2000


@both_doors
def test_a_post_sends_the_body_headers_and_correlation_id(app):
    response = egress.request(
        "post",
        f"http://127.0.0.1:{app.port}/echo",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t0ken"},
        body='{"order": "Ü-1"}',
        correlation_id="req-123",
        allowlist=LOCAL,
    )
    echo = json.loads(response.body)
    assert echo["method"] == "POST"
    assert echo["body"] == '{"order": "Ü-1"}'
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["content-length"] == str(len('{"order": "Ü-1"}'.encode()))
    assert echo["headers"]["authorization"] == "Bearer t0ken"
    assert echo["headers"]["x-correlation-id"] == "req-123"


@both_doors
def test_no_correlation_header_unless_one_is_given(app):
    response = egress.request("GET", f"http://127.0.0.1:{app.port}/echo", allowlist=LOCAL)
    assert "x-correlation-id" not in json.loads(response.body)["headers"]


@both_doors
def test_the_host_header_is_always_the_urls_host(app, resolver):
    resolver.set("partner.test", ["127.0.0.1"])
    response = egress.request(
        "GET",
        f"http://partner.test:{app.port}/echo",
        headers={"Host": "169.254.169.254"},
        allowlist=LOCAL,
    )
    assert json.loads(response.body)["headers"]["host"] == f"partner.test:{app.port}"
    assert response.peer_address == "127.0.0.1"


@both_doors
def test_header_injection_is_refused(app):
    with pytest.raises(EgressError) as error:
        egress.request(
            "GET",
            f"http://127.0.0.1:{app.port}/echo",
            headers={"X-Note": "a\r\nX-Injected: 1"},
            allowlist=LOCAL,
        )
    assert error.value.permanent
    assert all("x-injected" not in request["headers"] for request in app.requests)


@both_doors
def test_an_invalid_method_is_refused():
    with pytest.raises(EgressError) as error:
        egress.request("GET /x HTTP/1.1\r\n", "http://127.0.0.1/", allowlist=LOCAL)
    assert "not a valid HTTP method" in error.value.message


@both_doors
def test_non_2xx_statuses_are_responses_not_errors(app):
    response = egress.request(
        "GET", f"http://127.0.0.1:{app.port}/status?code=503", allowlist=LOCAL
    )
    assert response.status == 503
    assert not response.ok
    assert response.body == b"status"


@both_doors
def test_head_has_no_body(app):
    response = egress.request("HEAD", f"http://127.0.0.1:{app.port}/bytes?n=100", allowlist=LOCAL)
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == "100"


@both_doors
def test_headers_are_a_lowercase_dict_and_raw_pairs_are_kept(app):
    response = egress.request("GET", f"http://127.0.0.1:{app.port}/cookies", allowlist=LOCAL)
    assert response.headers["x-custom"] == "Yes"
    assert response.headers["set-cookie"] == "a=1, b=2"
    assert [value for name, value in response.raw_headers if name == "Set-Cookie"] == [
        "a=1",
        "b=2",
    ]


@both_doors
def test_retry_after_is_exposed_on_the_response(app):
    response = egress.request(
        "GET", f"http://127.0.0.1:{app.port}/status?code=429&retry_after=3", allowlist=LOCAL
    )
    assert response.status == 429
    assert response.retry_after == 3.0


@both_doors
@pytest.mark.parametrize("path", ["/gzip", "/deflate"])
def test_compressed_bodies_are_decoded(app, path):
    response = egress.request("GET", f"http://127.0.0.1:{app.port}{path}", allowlist=LOCAL)
    assert response.body == b"hello " * 100
    assert (
        json.loads(
            egress.request("GET", f"http://127.0.0.1:{app.port}/echo", allowlist=LOCAL).body
        )["headers"]["accept-encoding"]
        == "gzip, deflate"
    )


@both_doors
def test_a_corrupt_gzip_body_is_a_permanent_error(app):
    with pytest.raises(EgressError) as error:
        egress.request("GET", f"http://127.0.0.1:{app.port}/bad-gzip", allowlist=LOCAL)
    assert "could not decode the gzip body" in error.value.message
    assert error.value.permanent


@both_doors
@pytest.mark.skipif(not IPV6, reason="no IPv6 loopback here")
def test_ipv6_loopback_when_allowlisted():
    server = AppServer(host="::1")
    try:
        response = egress.request("GET", f"http://[::1]:{server.port}/echo", allowlist=["::1"])
    finally:
        server.stop()
    assert response.status == 200
    assert response.peer_address == "::1"
    assert json.loads(response.body)["headers"]["host"] == f"[::1]:{server.port}"


@both_doors
def test_the_next_checked_address_is_tried_when_one_refuses(app, resolver, connections):
    resolver.set("partner.test", ["::1", "127.0.0.1"])  # nothing listens on ::1 at this port
    response = egress.request(
        "GET", f"http://partner.test:{app.port}/echo", allowlist=["::1", "127.0.0.1"]
    )
    assert response.peer_address == "127.0.0.1"
    assert connections.attempts == [("::1", app.port), ("127.0.0.1", app.port)]
    assert resolver.count("partner.test") == 1


# Sync only: about egress.request's signature (test_async_egress.py checks AsyncEgress's).
def test_there_is_no_way_to_turn_tls_verification_off():
    parameters = inspect.signature(egress.request).parameters
    assert not {"verify", "insecure", "cert_reqs", "ssl_context"} & set(parameters)


def test_settings_have_defaults_without_django():
    assert egress._setting("PONTIS_EGRESS_SURELY_NOT_SET", 7) == 7


# =========================================================================== DNS


def test_resolve_host_uses_the_operating_systems_resolver():
    assert REAL_RESOLVE_HOST("127.0.0.1", 80) == ["127.0.0.1"]
    assert "127.0.0.1" in REAL_RESOLVE_HOST("localhost", 80)


@both_doors
def test_dns_rebinding_cannot_swap_the_checked_address(app, resolver, connections):
    # The first answer is allowed, a second lookup would say metadata: there is none.
    resolver.set("rebind.test", ["127.0.0.1"], ["169.254.169.254"])
    response = egress.request("GET", f"http://rebind.test:{app.port}/echo", allowlist=LOCAL)
    assert response.status == 200
    assert response.peer_address == "127.0.0.1"
    assert resolver.count("rebind.test") == 1
    assert connections.attempts == [("127.0.0.1", app.port)]


@both_doors
def test_dns_rebinding_public_first_then_loopback(resolver, connections):
    # The connection goes to the public address that was checked (which the test
    # guard refuses without traffic), never to 127.0.0.1 from a second lookup.
    resolver.set("rebind.test", [PUBLIC_IP], ["127.0.0.1"])
    with pytest.raises(EgressConnectionError):
        egress.request("GET", "http://rebind.test:8080/", total_timeout=2)
    assert connections.attempts == [(PUBLIC_IP, 8080)]
    assert resolver.count("rebind.test") == 1


@both_doors
def test_resolve_is_called_once_per_hop(app, resolver):
    for name in ("a.test", "b.test", "c.test"):
        resolver.set(name, ["127.0.0.1"])
    c_url = f"http://c.test:{app.port}/echo"
    b_url = f"http://b.test:{app.port}/redirect?to={c_url}"
    a_url = f"http://a.test:{app.port}/redirect?to={b_url.replace('?', '%3F').replace('=', '%3D')}"
    response = egress.request("GET", a_url, allowlist=LOCAL)
    assert response.url == c_url
    assert len(response.redirects) == 2
    assert resolver.calls == ["a.test", "b.test", "c.test"]


@both_doors
def test_a_name_that_does_not_resolve_is_a_permanent_error_at_run_time(resolver):
    with pytest.raises(EgressConnectionError) as error:
        egress.request("GET", "https://nowhere.example/", total_timeout=2)
    assert "could not resolve nowhere.example" in error.value.message
    assert error.value.permanent


@both_doors
def test_a_temporary_dns_failure_is_transient(resolver):
    resolver.set("flaky.example", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    with pytest.raises(EgressConnectionError) as error:
        egress.request("GET", "https://flaky.example/", total_timeout=2)
    assert not error.value.permanent


# =========================================================================== redirects


@pytest.fixture
def partner(app, resolver):
    """The app server reached as partner.test, allowlisted by name only, so that
    a redirect to 127.0.0.1 itself is not covered by the allowlist."""
    resolver.set("partner.test", ["127.0.0.1"])
    resolver.set("internal.test", ["10.0.0.5"])
    resolver.set("metadata.test", ["169.254.169.254"])
    return f"http://partner.test:{app.port}"


@both_doors
@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.169.254:80/",
        "//169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:{port}/echo",
        "http://127.1:{port}/echo",
        "http://2130706433:{port}/echo",
        "http://[::1]:{port}/echo",
        "http://[::ffff:127.0.0.1]:{port}/echo",
        "http://[::ffff:169.254.169.254]/",
        "http://localhost:{port}/echo",
        "http://internal.test/",
        "http://metadata.test/",
        "http://user@partner.test:{port}/echo",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "ftp://partner.test/",
        "data:text/plain,hi",
    ],
)
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_into_forbidden_places_are_refused(location, code, app, partner, connections):
    location = location.format(port=app.port)
    url = f"{partner}/redirect?code={code}&to={location.replace('&', '%26')}"
    with pytest.raises(EgressRefused) as refused:
        egress.request("GET", url, allowlist=["partner.test"], total_timeout=2)
    assert refused.value.message.startswith("refused: ")
    assert connections.attempts == [("127.0.0.1", app.port)]  # only the first hop
    assert [request["path"].split("?")[0] for request in app.requests] == ["/redirect"]


@both_doors
def test_redirects_are_followed_and_reported(app):
    base = f"http://127.0.0.1:{app.port}"
    response = egress.request("GET", f"{base}/chain/3", allowlist=LOCAL)
    assert response.status == 200
    assert response.body == b"end of chain"
    assert response.url == f"{base}/chain/0"
    assert response.redirects == [f"{base}/chain/3", f"{base}/chain/2", f"{base}/chain/1"]


@both_doors
def test_too_many_redirects(app):
    limit = egress._setting("PONTIS_EGRESS_MAX_REDIRECTS", 5)
    base = f"http://127.0.0.1:{app.port}"
    assert egress.request("GET", f"{base}/chain/{limit}", allowlist=LOCAL).status == 200
    with pytest.raises(EgressError) as error:
        egress.request("GET", f"{base}/chain/{limit + 1}", allowlist=LOCAL)
    assert f"too many redirects (more than {limit})" in error.value.message
    assert error.value.permanent
    assert len(app.requests) == (limit + 1) + (limit + 1)


@both_doors
def test_redirects_are_not_followed_when_asked_not_to(app):
    response = egress.request(
        "GET",
        f"http://127.0.0.1:{app.port}/redirect?to=http://169.254.169.254/",
        allowlist=LOCAL,
        follow_redirects=False,
    )
    assert response.status == 302
    assert response.headers["location"] == "http://169.254.169.254/"
    assert response.redirects == []


@both_doors
@pytest.mark.parametrize(
    "code, method, expected_method, body_kept",
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "DELETE", "GET", False),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
        (301, "PUT", "PUT", True),
        (302, "PATCH", "PATCH", True),
        (303, "HEAD", "HEAD", False),
    ],
)
def test_redirect_method_rules(code, method, expected_method, body_kept, app):
    base = f"http://127.0.0.1:{app.port}"
    egress.request(
        method,
        f"{base}/redirect?code={code}&to=/echo",
        headers={"Content-Type": "application/json"},
        body=b'{"a": 1}' if method != "HEAD" else None,
        allowlist=LOCAL,
    )
    final = app.requests[-1]
    assert final["method"] == expected_method
    if method == "HEAD":
        return
    assert (final["body"] == b'{"a": 1}') is body_kept
    assert ("Content-Type" in final["headers"]) is body_kept


@both_doors
def test_credentials_are_dropped_when_a_redirect_changes_host(app, resolver):
    resolver.set("a.test", ["127.0.0.1"])
    resolver.set("b.test", ["127.0.0.1"])
    back_to_a = f"http://a.test:{app.port}/echo"
    to_b = f"http://b.test:{app.port}/redirect?to={back_to_a}"
    egress.request(
        "GET",
        f"http://a.test:{app.port}/redirect?to={to_b.replace('?', '%3F').replace('=', '%3D')}",
        headers={"Authorization": "Bearer secret", "Cookie": "session=1", "X-Api-Version": "2"},
        correlation_id="corr-1",
        allowlist=LOCAL,
    )
    first, second, third = app.requests
    assert first["headers"]["Authorization"] == "Bearer secret"
    assert first["headers"]["Cookie"] == "session=1"
    for later in (second, third):  # once dropped, never sent again on this exchange
        assert later["headers"]["Authorization"] is None
        assert later["headers"]["Cookie"] is None
        assert later["headers"]["X-Api-Version"] == "2"
        assert later["headers"]["X-Correlation-ID"] == "corr-1"
    assert second["headers"]["Host"] == f"b.test:{app.port}"


@both_doors
@pytest.mark.parametrize(
    "method, body, content_length",
    [
        ("GET", None, None),
        ("DELETE", None, None),
        ("HEAD", None, None),
        ("POST", None, "0"),
        ("PUT", None, "0"),
        ("PATCH", None, "0"),
        ("DELETE", b"", "0"),
        ("DELETE", b"{}", "2"),
        ("GET", b"{}", "2"),
    ],
)
def test_content_length_is_sent_as_urllib3_sends_it(method, body, content_length, app):
    egress.request(method, f"http://127.0.0.1:{app.port}/echo", body=body, allowlist=LOCAL)
    headers = app.requests[-1]["headers"]
    assert headers["Content-Length"] == content_length
    assert headers["Content-Type"] is None  # none unless the caller gives one
    assert headers["Transfer-Encoding"] is None


@both_doors
def test_credentials_are_kept_on_a_same_origin_redirect(app):
    egress.request(
        "GET",
        f"http://127.0.0.1:{app.port}/redirect?to=/echo",
        headers={"Authorization": "Bearer secret"},
        allowlist=LOCAL,
    )
    assert app.requests[-1]["headers"]["Authorization"] == "Bearer secret"


# =========================================================================== time


def never_answers(conn, server):
    server.stopping.wait(10)


@both_doors
def test_an_endpoint_that_never_answers_times_out(raw):
    server = raw(never_answers)
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        egress.request("GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, read_timeout=0.5)
    assert error.value.message.startswith("timed out after 0.5 s")
    assert not error.value.permanent
    assert time.monotonic() - started < 2


@both_doors
def test_the_total_deadline_also_covers_a_silent_server(raw):
    server = raw(never_answers)
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        egress.request(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            allowlist=LOCAL,
            read_timeout=30,
            total_timeout=0.6,
        )
    assert error.value.message.startswith("timed out after 0.6 s")
    assert time.monotonic() - started < 2


SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"


def slow_drip_body(conn, server):
    server.send(conn, SLOW_HEAD)
    while not server.stopping.wait(2):  # one byte every 2 s
        server.send(conn, b"x")


@both_doors
def test_a_slow_drip_body_is_ended_by_the_total_deadline(raw):
    server = raw(slow_drip_body)
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        egress.request(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            allowlist=LOCAL,
            read_timeout=5,  # each byte arrives well within it
            total_timeout=2.5,
        )
    elapsed = time.monotonic() - started
    assert error.value.message.startswith("timed out after 2.5 s")
    assert 2.4 < elapsed < 4
    assert server.sent > len(SLOW_HEAD)  # at least one byte dripped, within the read timeout


def slow_drip_headers(conn, server):
    server.send(conn, b"HTTP/1.1 200 OK\r\n")
    while not server.stopping.wait(0.2):
        server.send(conn, b"X")


@both_doors
def test_slowly_dripped_headers_are_ended_by_the_total_deadline(raw):
    server = raw(slow_drip_headers)
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        egress.request(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            allowlist=LOCAL,
            read_timeout=5,
            total_timeout=1.0,
        )
    assert error.value.message.startswith("timed out after 1.0 s")
    assert time.monotonic() - started < 2.5


@both_doors
def test_an_address_that_never_answers_hits_the_connect_timeout(app, resolver, connections):
    connections.black_holes.add(PUBLIC_IP)
    resolver.set("partner.test", [PUBLIC_IP])
    url = f"http://partner.test:{app.port}/echo"
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        egress.request("GET", url, allowlist=LOCAL, connect_timeout=0.3, total_timeout=2)
    assert error.value.message == f"timed out after 0.3 s connecting (partner.test ({PUBLIC_IP}))"
    assert not error.value.permanent
    assert time.monotonic() - started < 1
    # With another checked address, that one is tried next.
    resolver.set("partner.test", [PUBLIC_IP, "127.0.0.1"])
    response = egress.request("GET", url, allowlist=LOCAL, connect_timeout=0.3, total_timeout=2)
    assert response.peer_address == "127.0.0.1"
    assert connections.attempts == [
        (PUBLIC_IP, app.port),
        (PUBLIC_IP, app.port),
        ("127.0.0.1", app.port),
    ]


@both_doors
def test_a_refused_connection_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EgressConnectionError) as error:
        egress.request("GET", f"http://127.0.0.1:{port}/", allowlist=LOCAL, total_timeout=2)
    assert "connection refused" in error.value.message
    assert not error.value.permanent


def reset_connection(conn, server):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


@both_doors
def test_a_reset_connection_is_transient(raw):
    server = raw(reset_connection)
    with pytest.raises(EgressConnectionError) as error:
        egress.request("GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, total_timeout=2)
    assert not error.value.permanent


def short_body(conn, server):
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")


@both_doors
def test_a_body_shorter_than_its_content_length_is_a_transient_error(raw):
    server = raw(short_body)
    with pytest.raises(EgressConnectionError) as error:
        egress.request("GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, total_timeout=2)
    assert not error.value.permanent


def not_http(conn, server):
    server.send(conn, b"SSH-2.0-OpenSSH_9.6\r\n")


@both_doors
def test_a_server_that_does_not_speak_http_is_a_permanent_error(raw):
    server = raw(not_http)
    with pytest.raises(EgressError) as error:
        egress.request("GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, total_timeout=2)
    assert "invalid HTTP response" in error.value.message
    assert error.value.permanent


def bad_chunk_later(conn, server):
    server.send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    time.sleep(0.2)
    server.send(conn, b"zz\r\n")  # not a chunk size
    server.stopping.wait(10)


@both_doors
def test_a_malformed_chunk_in_the_middle_of_a_body_is_a_transient_error_at_once(raw):
    server = raw(bad_chunk_later)
    started = time.monotonic()
    with pytest.raises(EgressConnectionError) as error:
        egress.request(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            allowlist=LOCAL,
            read_timeout=5,
            total_timeout=4,
        )
    assert error.value.message.startswith(
        "connection to 127.0.0.1 broke while reading the response: "
    )
    assert not error.value.permanent
    assert time.monotonic() - started < 1.5  # not the read timeout, not the deadline


# Sync only: about the synchronous door's deadline watchdog (the async door's deadline is
# an asyncio.timeout, with nothing to outlive the request).
def test_the_deadline_timer_does_not_outlive_the_request(app):
    for _ in range(5):
        egress.request("GET", f"http://127.0.0.1:{app.port}/echo", allowlist=LOCAL)
    with pytest.raises(EgressRefused):
        egress.request("GET", "http://127.0.0.1/")
    time.sleep(0.05)
    assert [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)] == []


def drip_then_stall(conn, server):
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
    server.stopping.wait(10)


@both_doors
def test_a_body_that_stalls_hits_the_read_timeout(raw):
    server = raw(drip_then_stall)
    with pytest.raises(EgressTimeout) as error:
        egress.request("GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, read_timeout=0.3)
    assert error.value.message.startswith("timed out after 0.3 s reading the response")


@both_doors
def test_an_invalid_allowlist_refuses_the_request():
    with pytest.raises(EgressRefused) as refused:
        egress.request("GET", "http://127.0.0.1/", allowlist=["10.0.0.0/33"])
    assert "allowlist is invalid" in refused.value.message
    with pytest.raises(EgressRefused):
        egress.check_url("http://example.com/", allowlist=["*foo"])


# =========================================================================== size


@both_doors
@pytest.mark.parametrize(
    "size, cap, truncated",
    [
        (10 * MEBIBYTE, MEBIBYTE, True),
        (MEBIBYTE, MEBIBYTE, False),
        (MEBIBYTE + 1, MEBIBYTE, True),
        (10, 0, True),
        (0, 0, False),
    ],
)
def test_bodies_are_cut_at_max_bytes(size, cap, truncated, app):
    response = egress.request(
        "GET", f"http://127.0.0.1:{app.port}/bytes?n={size}", allowlist=LOCAL, max_bytes=cap
    )
    assert response.truncated is truncated
    assert response.body == b"x" * min(size, cap)


def endless_chunked(conn, server):
    server.send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
    while not server.stopping.is_set():
        server.send(conn, chunk)


@both_doors
def test_an_endless_chunked_stream_stops_at_the_cap(raw):
    server = raw(endless_chunked)
    response = egress.request(
        "GET", f"http://127.0.0.1:{server.port}/", allowlist=LOCAL, max_bytes=MEBIBYTE
    )
    assert response.truncated
    assert response.body == b"y" * MEBIBYTE


def compression_bomb(wbits, encoding):
    """A body that inflates to 1 GiB of zeros, compressed as it is sent."""

    def handler(conn, server):
        server.send(
            conn,
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nConnection: close\r\n\r\n" % encoding,
        )
        compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
        for _ in range(1024):
            if server.stopping.is_set():
                return
            data = compressor.compress(ZERO_BLOCK)
            if data:
                server.send(conn, data)
        server.send(conn, compressor.flush())

    return handler


@both_doors
@pytest.mark.parametrize("wbits, encoding", [(31, b"gzip"), (15, b"deflate"), (-15, b"deflate")])
def test_a_compression_bomb_stops_at_the_cap_without_inflating_it_all(wbits, encoding, raw):
    server = raw(compression_bomb(wbits, encoding))
    cap = MEBIBYTE
    tracemalloc.start()
    try:
        started = time.monotonic()
        response = egress.request(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            allowlist=LOCAL,
            max_bytes=cap,
            total_timeout=5,
        )
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.truncated
    assert len(response.body) == cap
    assert response.body == bytes(cap)
    assert peak < 2 * cap + 512 * 1024  # the body plus decoder buffers, not a gigabyte
    assert elapsed < 2


# =========================================================================== TLS


@both_doors
def test_https_with_the_environments_ca_bundle(https_app, tls):
    response = egress.request(
        "GET",
        f"https://127.0.0.1:{https_app.port}/echo",
        allowlist=LOCAL,
        ca_bundle=str(tls / "ca.pem"),
    )
    assert response.status == 200
    assert response.peer_address == "127.0.0.1"


@both_doors
def test_https_to_a_name_checks_the_certificate_against_the_name(https_app, tls, resolver):
    resolver.set("api.partner.test", ["127.0.0.1"])
    response = egress.request(
        "GET",
        f"https://api.partner.test:{https_app.port}/echo",
        allowlist=LOCAL,
        ca_bundle=str(tls / "ca.pem"),
    )
    assert response.peer_address == "127.0.0.1"
    assert json.loads(response.body)["headers"]["host"] == f"api.partner.test:{https_app.port}"
    assert resolver.count("api.partner.test") == 1


@both_doors
def test_an_unknown_certificate_authority_is_refused(https_app):
    with pytest.raises(EgressTLSError) as error:
        egress.request(
            "GET", f"https://127.0.0.1:{https_app.port}/echo", allowlist=LOCAL, total_timeout=2
        )
    assert "certificate verify failed" in error.value.message
    assert error.value.permanent
    assert https_app.requests == []


@both_doors
def test_a_certificate_for_another_name_is_refused(https_app, tls, resolver):
    resolver.set("other.partner.test", ["127.0.0.1"])
    with pytest.raises(EgressTLSError) as error:
        egress.request(
            "GET",
            f"https://other.partner.test:{https_app.port}/echo",
            allowlist=LOCAL,
            ca_bundle=str(tls / "ca.pem"),
            total_timeout=2,
        )
    assert "other.partner.test" in error.value.message
    assert https_app.requests == []


@both_doors
def test_an_expired_certificate_is_refused(tls):
    server = _tls_server(tls, "expired")
    try:
        with pytest.raises(EgressTLSError) as error:
            egress.request(
                "GET",
                f"https://127.0.0.1:{server.port}/echo",
                allowlist=LOCAL,
                ca_bundle=str(tls / "ca.pem"),
                total_timeout=2,
            )
    finally:
        server.stop()
    assert "expired" in error.value.message


@both_doors
def test_a_missing_ca_bundle_is_a_tls_error(https_app, tmp_path):
    with pytest.raises(EgressTLSError) as error:
        egress.request(
            "GET",
            f"https://127.0.0.1:{https_app.port}/echo",
            allowlist=LOCAL,
            ca_bundle=str(tmp_path / "missing.pem"),
            total_timeout=2,
        )
    assert error.value.permanent


@both_doors
def test_https_to_a_plain_http_server_is_a_tls_error(app):
    with pytest.raises(EgressTLSError):
        egress.request(
            "GET", f"https://127.0.0.1:{app.port}/echo", allowlist=LOCAL, total_timeout=2
        )


# =========================================================================== errors


@pytest.mark.parametrize(
    "cls, permanent",
    [
        (EgressRefused, True),
        (EgressTLSError, True),
        (EgressTimeout, False),
        (EgressConnectionError, False),
    ],
)
def test_error_classes(cls, permanent):
    error = cls("something happened")
    assert isinstance(error, EgressError)
    assert error.message == "something happened"
    assert str(error) == "something happened"
    assert error.permanent is permanent
    assert cls("x", permanent=not permanent).permanent is (not permanent)


# =========================================================================== Retry-After


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("3 seconds", None),
    ],
)
def test_parse_retry_after(value, seconds):
    now = dt.datetime(2015, 10, 21, 7, 28, 0, tzinfo=dt.UTC)
    assert egress.parse_retry_after(value, now=now) == seconds


# =========================================================================== rate limits


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_calls_per_key():
    clock = FakeClock()
    limiter = egress.RateLimiter(clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire("endpoint-1", 2.0, burst=1) for _ in range(4)]
    assert waits == [0.0, 0.5, 0.5, 0.5]
    assert limiter.acquire("endpoint-2", 2.0, burst=1) == 0.0  # keys are independent


def test_rate_limiter_allows_a_burst_after_a_quiet_spell():
    clock = FakeClock()
    limiter = egress.RateLimiter(clock=clock, sleep=clock.sleep)
    assert [limiter.acquire("e", 5.0) for _ in range(5)] == [0.0] * 5
    assert limiter.acquire("e", 5.0) == pytest.approx(0.2)
    clock.now += 10
    assert [limiter.acquire("e", 5.0) for _ in range(5)] == [0.0] * 5


def test_rate_limiter_refuses_a_wait_longer_than_allowed():
    clock = FakeClock()
    limiter = egress.RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.acquire("slow", 0.01, burst=1)
    with pytest.raises(EgressTimeout) as error:
        limiter.acquire("slow", 0.01, burst=1, max_wait=30)
    assert "rate limit for slow" in error.value.message
    assert clock.slept == []
    with pytest.raises(ValueError):
        limiter.acquire("slow", 0)


def test_rate_limiter_is_thread_safe():
    limiter = egress.RateLimiter()
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        limiter.acquire("shared", 40.0, burst=1)
        with lock:
            times.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    times.sort()
    assert len(times) == 8
    assert times[-1] - started >= 7 / 40 - 0.01
    assert times[-1] - started < 2
