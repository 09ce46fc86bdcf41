"""Tests for apps.core.async_egress.AsyncEgress beyond what test_egress.py runs through
both doors: one session's kept connections, concurrency, cancellation, and a table of
failures whose messages must be word for word those of egress.request.

As in test_egress.py, every server is a real one on the loopback network, DNS goes
through a fake resolver, and a guard refuses (and records) every TCP connection, opened
by the event loop or by urllib3, to an address outside loopback.
"""

import asyncio
import asyncio.selector_events
import contextlib
import inspect
import ipaddress
import json
import socket
import ssl
import struct
import threading
import time

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apps.core import egress
from apps.core.async_egress import AsyncEgress
from apps.core.egress import (
    EgressConnectionError,
    EgressError,
    EgressRefused,
    EgressTimeout,
    EgressTLSError,
)
from tests.core.test_egress import (
    AppServer,
    FakeResolver,
    RawServer,
    _certificate,
    drip_then_stall,
    never_answers,
    reset_connection,
    run_in_own_loop,
)
from tests.core.test_egress_keep_alive import ClosesSecondRequest, Server

LOCAL = ["127.0.0.0/8"]
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class LoopbackGuard:
    """Records every TCP connection the event loop (or urllib3, for the parity table)
    opens; only the loopback network gets through."""

    def __init__(self):
        self.attempts: list[tuple[str, int]] = []

    def check(self, address):
        host, port = address[:2]
        host = host.strip("[]")
        self.attempts.append((host, port))
        ip = ipaddress.ip_address(host)
        if not any(ip.version == net.version and ip in net for net in LOOPBACK_NETWORKS):
            raise ConnectionRefusedError(111, "Connection refused (test guard: loopback only)")


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    guard = LoopbackGuard()
    loop_class = asyncio.selector_events.BaseSelectorEventLoop
    real_sock_connect = loop_class.sock_connect
    real_create_connection = urllib3.util.connection.create_connection

    async def sock_connect(loop, sock, address):
        guard.check(address)
        return await real_sock_connect(loop, sock, address)

    def create_connection(address, *args, **kwargs):
        guard.check(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(loop_class, "sock_connect", sock_connect)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return guard


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    fake = FakeResolver()
    monkeypatch.setattr(egress, "resolve_host", fake)
    return fake


@pytest.fixture
def server():
    app = Server()
    yield app
    app.stop()


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


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA and a server certificate for api.partner.test and 127.0.0.1 (valid
    and expired), as in test_egress.py. Returns the folder."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Pontis Test CA", "Pontis Test CA", ca_key.public_key(), ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "not-a-bundle.pem").write_text("not a certificate")
    sans = [x509.DNSName("api.partner.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
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


def _tls_context(tls, label):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / f"{label}.pem")
    return context


@pytest.fixture
def https_server(tls):
    app = Server(tls_context=_tls_context(tls, "valid"))
    yield app
    app.stop()


def run(scenario):
    """Runs a coroutine function that takes an open AsyncEgress session."""

    async def main():
        async with AsyncEgress(allowlist=LOCAL) as door:
            await scenario(door)

    run_in_own_loop(main())


# =========================================================================== kept connections


def test_one_session_reuses_one_connection_for_many_requests(server):
    base = f"http://127.0.0.1:{server.port}"

    async def scenario(door):
        for i in range(50):
            response = await door.request("GET", f"{base}/echo?i={i}")
            assert json.loads(response.body)["path"] == f"/echo?i={i}"
            assert response.peer_address == "127.0.0.1"

    run(scenario)
    assert len(server.connections) == 1
    assert len(server.requests) == 50


def test_concurrent_requests_stay_within_the_connection_limit(server):
    base = f"http://127.0.0.1:{server.port}"

    async def main():
        async with AsyncEgress(allowlist=LOCAL, connections=4) as door:
            responses = await asyncio.gather(
                *(door.request("GET", f"{base}/echo?i={i}") for i in range(40))
            )
        for i, response in enumerate(responses):  # no answer went to another request
            assert json.loads(response.body)["path"] == f"/echo?i={i}"

    run_in_own_loop(main())
    assert 1 <= len(server.connections) <= 4
    assert len(server.requests) == 40


def test_a_truncated_response_is_not_reused_and_one_read_to_its_end_is(server):
    base = f"http://127.0.0.1:{server.port}"

    async def scenario(door):
        exact = await door.request("GET", f"{base}/bytes?n=10", max_bytes=10)
        assert (exact.body, exact.truncated) == (b"x" * 10, False)
        await door.request("GET", f"{base}/echo")
        assert len(server.connections) == 1
        # Far more than the read buffers hold: the rest of the body is still on its way.
        cut = await door.request("GET", f"{base}/bytes?n=20000000", max_bytes=10)
        assert (cut.body, cut.truncated) == (b"x" * 10, True)
        await door.request("GET", f"{base}/echo")
        await door.request("GET", f"{base}/echo")

    run(scenario)
    assert len(server.connections) == 2  # the truncated one was closed, never reused


def test_a_refused_redirect_raises_egress_refused_and_the_session_goes_on(server, connections):
    base = f"http://127.0.0.1:{server.port}"

    async def scenario(door):
        with pytest.raises(EgressRefused) as refused:
            await door.request("GET", f"{base}/redirect?to=http://169.254.169.254/latest/")
        assert refused.value.message == (
            "refused: 169.254.169.254 is the cloud metadata address and the environment's "
            "allowlist does not permit it"
        )
        response = await door.request("GET", f"{base}/echo")
        assert response.status == 200

    run(scenario)
    assert {host for host, _port in connections.attempts} == {"127.0.0.1"}
    assert [path for _method, path, _headers in server.requests] == [
        "/redirect?to=http://169.254.169.254/latest/",
        "/echo",
    ]


def test_every_request_is_resolved_and_checked_despite_a_kept_connection(
    server, resolver, connections
):
    resolver.set("rebind.test", ["127.0.0.1"], ["10.0.0.5"])
    url = f"http://rebind.test:{server.port}/echo"

    async def scenario(door):
        await door.request("GET", url)
        with pytest.raises(EgressRefused) as refused:
            await door.request("GET", url)
        assert "rebind.test resolves to 10.0.0.5, which is a private address" in (
            refused.value.message
        )

    run(scenario)
    assert resolver.count("rebind.test") == 2
    assert len(server.requests) == 1
    assert connections.attempts == [("127.0.0.1", server.port)]


def test_a_kept_connection_is_not_used_once_the_name_resolves_elsewhere(
    server, resolver, connections
):
    # The kept connection leads to 127.0.0.1; the next lookup says 127.0.0.2, where
    # nothing listens: the request must go there (and fail), not down the old connection.
    resolver.set("moving.test", ["127.0.0.1"], ["127.0.0.2"], ["127.0.0.1"])
    url = f"http://moving.test:{server.port}/echo"

    async def scenario(door):
        assert (await door.request("GET", url)).peer_address == "127.0.0.1"
        with pytest.raises(EgressConnectionError) as error:
            await door.request("GET", url)
        assert error.value.message == (
            "could not connect to moving.test (127.0.0.2): connection refused"
        )
        assert connections.attempts[-1] == ("127.0.0.2", server.port)
        assert (await door.request("GET", url)).peer_address == "127.0.0.1"

    run(scenario)
    assert len(server.requests) == 2
    # Unlike egress.request's pool, which keeps a connection for its address's return,
    # the session closes a kept connection whose address is no longer among the answers.
    assert len(server.connections) == 2


def test_the_next_checked_address_is_tried_in_order(server, resolver, connections):
    resolver.set("partner.test", ["127.0.0.2", "127.0.0.1"])  # nothing on 127.0.0.2

    async def scenario(door):
        response = await door.request("GET", f"http://partner.test:{server.port}/echo")
        assert response.peer_address == "127.0.0.1"

    run(scenario)
    assert connections.attempts == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]
    assert resolver.count("partner.test") == 1


@pytest.fixture
def closes_second():
    server = ClosesSecondRequest()
    yield server
    server.stop()


def test_an_idempotent_request_is_sent_again_when_a_kept_connection_was_dropped(closes_second):
    url = f"http://127.0.0.1:{closes_second.port}/"

    async def scenario(door):
        assert (await door.request("GET", url)).body == b"first"
        assert (await door.request("GET", url)).body == b"first"  # on a new connection

    run(scenario)
    assert closes_second.connections == 2
    assert closes_second.heads == [b"GET / HTTP/1.1"] * 3


def test_a_request_is_not_sent_again_when_a_new_connection_broke(raw):
    heads = []

    def counts_and_resets(conn, server):
        heads.append(conn)
        reset_connection(conn, server)

    server = raw(counts_and_resets)

    async def scenario(door):
        with pytest.raises(EgressConnectionError) as error:
            await door.request("GET", f"http://127.0.0.1:{server.port}/")
        assert error.value.message == (
            "connection to 127.0.0.1 broke while waiting for a response: "
            "[Errno 104] Connection reset by peer"
        )

    run(scenario)
    assert len(heads) == 1  # as egress.request: only a kept connection earns a second try


def test_a_post_is_not_sent_again_when_a_kept_connection_was_dropped(closes_second):
    url = f"http://127.0.0.1:{closes_second.port}/"

    async def scenario(door):
        await door.request("GET", url)
        with pytest.raises(EgressConnectionError) as error:
            await door.request("POST", url, body=b"{}")
        assert error.value.message == (
            "connection to 127.0.0.1 broke while waiting for a response: "
            "Remote end closed connection without response"
        )
        assert not error.value.permanent

    run(scenario)
    assert closes_second.connections == 1
    assert closes_second.heads == [b"GET / HTTP/1.1", b"POST / HTTP/1.1"]


def test_tls_connections_are_kept_per_host_name(https_server, tls, resolver):
    # A connection verified for api.partner.test is not handed to other.partner.test,
    # although both names resolve to the same address: that one is checked on its own.
    resolver.set("api.partner.test", ["127.0.0.1"])
    resolver.set("other.partner.test", ["127.0.0.1"])
    port = https_server.port

    async def main():
        async with AsyncEgress(allowlist=LOCAL, ca_bundle=str(tls / "ca.pem")) as door:
            for _ in range(3):
                response = await door.request("GET", f"https://api.partner.test:{port}/echo")
                assert response.status == 200
            with pytest.raises(EgressTLSError) as error:
                await door.request("GET", f"https://other.partner.test:{port}/echo")
            assert error.value.message.startswith(
                "TLS failure with other.partner.test (127.0.0.1): hostname 'other.partner.test' "
                "doesn't match"
            )

    run_in_own_loop(main())
    assert len(https_server.requests) == 3
    assert len(https_server.connections) == 2  # one kept for api, one refused for other


# =========================================================================== time, cancellation


def test_the_total_deadline_covers_a_slow_dns_lookup(monkeypatch):
    def slow_lookup(host, port):
        time.sleep(0.6)
        return ["127.0.0.1"]

    monkeypatch.setattr(egress, "resolve_host", slow_lookup)
    started = time.monotonic()

    async def scenario(door):
        with pytest.raises(EgressTimeout) as error:
            await door.request("GET", "http://slow-dns.test/", total_timeout=0.2)
        assert error.value.message == (
            "timed out after 0.2 s (the total deadline for the exchange)"
        )
        assert time.monotonic() - started < 0.5

    run(scenario)


def test_a_cancelled_request_is_cancelled_and_the_session_goes_on(raw, server):
    silent = raw(never_answers)

    async def scenario(door):
        task = asyncio.create_task(door.request("GET", f"http://127.0.0.1:{silent.port}/"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # cancelled, not turned into an EgressTimeout
        response = await door.request("GET", f"http://127.0.0.1:{server.port}/echo")
        assert response.status == 200

    run(scenario)


# =========================================================================== the API


def test_there_is_no_way_to_turn_tls_verification_off():
    for function in (AsyncEgress.__init__, AsyncEgress.request):
        parameters = inspect.signature(function).parameters
        assert not {"verify", "insecure", "cert_reqs", "ssl", "ssl_context"} & set(parameters)


def test_a_request_outside_the_session_is_a_programming_error():
    async def main():
        door = AsyncEgress(allowlist=LOCAL)
        with pytest.raises(RuntimeError):
            await door.request("GET", "http://127.0.0.1/")

    run_in_own_loop(main())


def test_an_invalid_allowlist_is_refused_when_the_session_is_made():
    with pytest.raises(EgressRefused) as refused:
        AsyncEgress(allowlist=["10.0.0.0/33"])
    assert "allowlist is invalid" in refused.value.message


# =========================================================================== same words


def close_at_once(conn, server):
    pass  # reads the request head and hangs up


class HangsUpAtOnce:
    """Accepts each connection and closes it without a word: after reading what the client
    sent first (its TLS hello), so that the client always sees an orderly close (an EOF);
    or, with ``reset``, resets it at once."""

    def __init__(self, reset=False):
        self.reset = reset
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                # Closing with the hello unread would send a reset instead, sometimes: it
                # depends on whether the hello had arrived yet.
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
            conn.close()

    def stop(self):
        self.sock.close()


def too_many_encodings(conn, server):
    server.send(
        conn,
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip, gzip, gzip, gzip, gzip\r\n"
        b"Content-Length: 3\r\n\r\nabc",
    )


class Env:
    """What the failures of the parity table need: servers, names, a closed port."""

    def __init__(self, app, raw, tls, resolver):
        self.app = app
        self.raw = raw
        self.tls = tls
        self.https = AppServer(tls_context=_tls_context(tls, "valid"))
        self.expired = AppServer(tls_context=_tls_context(tls, "expired"))
        self.hangs_up = HangsUpAtOnce()
        self.resets = HangsUpAtOnce(reset=True)
        for name in ("partner.test", "api.partner.test", "other.partner.test"):
            resolver.set(name, ["127.0.0.1"])
        resolver.set("metadata.test", ["169.254.169.254"])
        resolver.set("mixed.test", ["127.0.0.1", "10.0.0.1"])
        resolver.set("junk.test", ["not-an-address"])
        resolver.set("flaky.test", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.closed_port = probe.getsockname()[1]

    def stop(self):
        self.https.stop()
        self.expired.stop()
        self.hangs_up.stop()
        self.resets.stop()

    @property
    def ca(self):
        return str(self.tls / "ca.pem")


@pytest.fixture
def env(raw, tls, resolver):
    app = AppServer()
    environment = Env(app, raw, tls, resolver)
    yield environment
    environment.stop()
    app.stop()


# (id, builder): builder(env) -> (method, url, options for egress.request)
FAILURES = [
    ("scheme", lambda e: ("GET", "ftp://example.com/file", {})),
    ("user info", lambda e: ("GET", "http://user:secret@partner.test/", {})),
    ("malformed url", lambda e: ("GET", "http://exa mple.com/", {})),
    ("forbidden literal", lambda e: ("GET", "http://10.0.0.1/", {})),
    ("loopback name", lambda e: ("GET", "http://localhost/", {"allowlist": ()})),
    ("forbidden answer", lambda e: ("GET", "http://metadata.test/", {})),
    ("one forbidden answer", lambda e: ("GET", "http://mixed.test/", {})),
    ("resolver junk", lambda e: ("GET", "http://junk.test/", {})),
    ("no such name", lambda e: ("GET", "http://nowhere.test/", {})),
    ("temporary DNS failure", lambda e: ("GET", "http://flaky.test/", {})),
    ("invalid allowlist", lambda e: ("GET", "http://10.0.0.1/", {"allowlist": ["*foo"]})),
    ("invalid method", lambda e: ("GET /x HTTP/1.1\r\n", "http://10.0.0.1/", {})),
    (
        "header injection",
        lambda e: (
            "GET",
            f"http://127.0.0.1:{e.app.port}/echo",
            {"headers": {"X-Note": "a\r\nX-Injected: 1"}},
        ),
    ),
    (
        "header name",
        lambda e: ("GET", f"http://127.0.0.1:{e.app.port}/echo", {"headers": {"X:Y": "1"}}),
    ),
    (
        "header not latin-1",
        lambda e: ("GET", f"http://127.0.0.1:{e.app.port}/echo", {"headers": {"X-Y": "Ł"}}),
    ),
    (
        "redirect to metadata",
        lambda e: (
            "GET",
            f"http://partner.test:{e.app.port}/redirect?to=http://169.254.169.254/",
            {"allowlist": ["partner.test"]},
        ),
    ),
    (
        "redirect to a file",
        lambda e: ("GET", f"http://127.0.0.1:{e.app.port}/redirect?to=file:///etc/passwd", {}),
    ),
    ("too many redirects", lambda e: ("GET", f"http://127.0.0.1:{e.app.port}/chain/9", {})),
    ("refused", lambda e: ("GET", f"http://127.0.0.1:{e.closed_port}/", {})),
    ("refused by name", lambda e: ("GET", f"http://partner.test:{e.closed_port}/", {})),
    (
        "no response",
        lambda e: ("GET", f"http://127.0.0.1:{e.raw(never_answers).port}/", {"read_timeout": 0.3}),
    ),
    (
        "no response by name",
        lambda e: (
            "GET",
            f"http://partner.test:{e.raw(never_answers).port}/",
            {"read_timeout": 0.3},
        ),
    ),
    (
        "a stalled body",
        lambda e: (
            "GET",
            f"http://partner.test:{e.raw(drip_then_stall).port}/",
            {"read_timeout": 0.3},
        ),
    ),
    (
        "total deadline",
        lambda e: (
            "GET",
            f"http://127.0.0.1:{e.raw(never_answers).port}/",
            {"read_timeout": 5, "total_timeout": 0.4},
        ),
    ),
    ("reset", lambda e: ("GET", f"http://127.0.0.1:{e.raw(reset_connection).port}/", {})),
    ("hang-up", lambda e: ("POST", f"http://127.0.0.1:{e.raw(close_at_once).port}/", {})),
    ("bad gzip", lambda e: ("GET", f"http://127.0.0.1:{e.app.port}/bad-gzip", {})),
    (
        "too many encodings",
        lambda e: ("GET", f"http://127.0.0.1:{e.raw(too_many_encodings).port}/", {}),
    ),
    ("unknown CA", lambda e: ("GET", f"https://127.0.0.1:{e.https.port}/echo", {})),
    (
        "another name's certificate",
        lambda e: (
            "GET",
            f"https://other.partner.test:{e.https.port}/echo",
            {"ca_bundle": e.ca},
        ),
    ),
    (
        "expired certificate",
        lambda e: ("GET", f"https://127.0.0.1:{e.expired.port}/echo", {"ca_bundle": e.ca}),
    ),
    (
        "missing CA bundle",
        lambda e: (
            "GET",
            f"https://api.partner.test:{e.https.port}/echo",
            {"ca_bundle": str(e.tls / "missing.pem")},
        ),
    ),
    (
        "not a CA bundle",
        lambda e: (
            "GET",
            f"https://127.0.0.1:{e.https.port}/echo",
            {"ca_bundle": str(e.tls / "not-a-bundle.pem")},
        ),
    ),
    ("https to http", lambda e: ("GET", f"https://127.0.0.1:{e.app.port}/echo", {})),
    ("reset in the TLS handshake", lambda e: ("GET", f"https://127.0.0.1:{e.resets.port}/", {})),
]

# Failures where only the words after the door's own differ: they come from OpenSSL
# (the synchronous door) and asyncio (this one).
SAME_UP_TO_THE_LIBRARYS_WORDS = [
    (
        "hang-up in the TLS handshake",
        lambda e: ("GET", f"https://127.0.0.1:{e.hangs_up.port}/", {}),
        "connection to 127.0.0.1 broke during the TLS handshake: ",
    ),
]


def _outcome(send, method, url, options):
    try:
        send(method, url, **options)
    except EgressError as error:
        return type(error), error.message, error.permanent
    return None


def _async_request(method, url, *, allowlist, ca_bundle=None, **options):
    async def main():
        async with AsyncEgress(allowlist=allowlist, ca_bundle=ca_bundle) as door:
            await door.request(method, url, **options)

    run_in_own_loop(main())


@pytest.mark.parametrize("build", [build for _id, build in FAILURES], ids=[i for i, _ in FAILURES])
def test_both_doors_fail_with_the_same_class_and_words(build, env):
    method, url, options = build(env)
    options = {"allowlist": LOCAL, "total_timeout": 2, **options}
    sync = _outcome(egress.request, method, url, options)
    method, url, options = build(env)  # a fresh raw server, if the failure needs one
    options = {"allowlist": LOCAL, "total_timeout": 2, **options}
    asynchronous = _outcome(_async_request, method, url, options)
    assert sync is not None
    assert asynchronous == sync


@pytest.mark.parametrize(
    "build, words",
    [(build, words) for _id, build, words in SAME_UP_TO_THE_LIBRARYS_WORDS],
    ids=[i for i, _, _ in SAME_UP_TO_THE_LIBRARYS_WORDS],
)
def test_both_doors_fail_with_the_same_class_and_the_same_own_words(build, words, env):
    outcomes = []
    for send in (egress.request, _async_request):
        method, url, options = build(env)
        outcomes.append(_outcome(send, method, url, {"allowlist": LOCAL, **options}))
    (sync_class, sync_message, sync_permanent), (async_class, async_message, async_permanent) = (
        outcomes
    )
    assert (async_class, async_permanent) == (sync_class, sync_permanent)
    assert sync_message.startswith(words)
    assert async_message.startswith(words)
