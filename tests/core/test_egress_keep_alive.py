"""Tests for ``egress.request(..., keep_alive=True)``, the shared deadline watchdog and
the allowlist cache.

As in test_egress.py, every server is a real one on the loopback network, DNS goes
through a fake resolver, and a guard refuses (and records) every TCP connection to
an address outside 127.0.0.0/8. Servers count the TCP connections they accept, which
is how reuse is seen.
"""

import http.server
import ipaddress
import json
import shutil
import socket
import ssl
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3.util.connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName

from apps.core import egress
from apps.core.egress import EgressConnectionError, EgressError, EgressRefused, EgressTimeout
from tests.core.test_egress import FakeResolver, _certificate

LOCAL = ["127.0.0.0/8"]
LOOPBACK_NETWORK = ipaddress.ip_network("127.0.0.0/8")


class LoopbackGuard:
    """Records every TCP connection urllib3 opens; only 127.0.0.0/8 gets through."""

    def __init__(self, real):
        self.real = real
        self.attempts: list[tuple[str, int]] = []

    def __call__(self, address, *args, **kwargs):
        host, port = address
        self.attempts.append((host, port))
        if ipaddress.ip_address(host) not in LOOPBACK_NETWORK:
            raise ConnectionRefusedError(111, "Connection refused (test guard: loopback only)")
        return self.real(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    guard = LoopbackGuard(urllib3.util.connection.create_connection)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", guard)
    return guard


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    fake = FakeResolver()
    monkeypatch.setattr(egress, "resolve_host", fake)
    return fake


@pytest.fixture(autouse=True)
def no_idle_connections():
    egress.close_idle_connections()
    yield
    egress.close_idle_connections()


# --------------------------------------------------------------------------- servers


class Handler(http.server.BaseHTTPRequestHandler):
    """/echo, /bytes?n=, /slow?seconds=, /close (says Connection: close),
    /no-length (no Content-Length: read until the server closes), /chunked,
    /hang-up (answers, then closes the connection without saying so), /bad-gzip,
    /redirect?to= (a 302 with a body)."""

    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one write per response (no Nagle / delayed-ACK stalls)
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.connections.append(self.client_address)

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the http.server API
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        if url.path == "/bytes":
            return self._send(200, b"x" * int(query["n"]))
        if url.path == "/slow":
            time.sleep(float(query["seconds"]))
            return self._send(200, b"late")
        if url.path == "/close":
            return self._send(200, b"bye", {"Connection": "close"})
        if url.path == "/no-length":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
            return None
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return None
        if url.path == "/hang-up":
            self._send(200, b"hanging up")
            self.close_connection = True
            return None
        if url.path == "/redirect":
            return self._send(302, b"moved", {"Location": query["to"]})
        if url.path == "/bad-gzip":
            return self._send(200, b"not gzip", {"Content-Encoding": "gzip"})
        echo = {"method": self.command, "path": self.path}
        return self._send(200, json.dumps(echo).encode())

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_POST = do_PUT = do_GET


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host="127.0.0.1", tls_context=None):
        super().__init__((host, 0), Handler)
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        self.connections: list[tuple[str, int]] = []
        self.requests: list[tuple[str, str, dict]] = []
        self.port = self.server_address[1]
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def handle_error(self, request, client_address):
        pass

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def server():
    app = Server()
    yield app
    egress.close_idle_connections()  # lets the handler threads end
    app.stop()


def get(url, **options):
    options.setdefault("allowlist", LOCAL)
    return egress.request("GET", url, keep_alive=True, **options)


# =========================================================================== reuse


def test_sequential_requests_share_one_connection(server):
    base = f"http://127.0.0.1:{server.port}"
    for i in range(5):
        response = get(f"{base}/echo?i={i}")
        assert response.status == 200
        assert json.loads(response.body)["path"] == f"/echo?i={i}"
        assert response.peer_address == "127.0.0.1"
    assert len(server.connections) == 1
    assert [path for _method, path, _headers in server.requests] == [
        f"/echo?i={i}" for i in range(5)
    ]
    assert "Connection" not in server.requests[0][2]


def test_without_keep_alive_every_request_has_its_own_connection(server):
    for _ in range(3):
        egress.request("GET", f"http://127.0.0.1:{server.port}/echo", allowlist=LOCAL)
    assert len(server.connections) == 3
    assert all(headers["Connection"] == "close" for _m, _p, headers in server.requests)
    assert egress._idle_connections.count() == 0


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/chunked"), ("HEAD", "/echo"), ("GET", "/bytes?n=0"), ("PUT", "/echo")],
)
def test_responses_read_to_their_end_keep_the_connection(method, path, server):
    base = f"http://127.0.0.1:{server.port}"
    first = egress.request(method, base + path, allowlist=LOCAL, keep_alive=True)
    assert first.status == 200
    get(f"{base}/echo")
    assert len(server.connections) == 1


def test_a_body_that_fits_max_bytes_exactly_keeps_the_connection(server):
    base = f"http://127.0.0.1:{server.port}"
    assert get(f"{base}/bytes?n=10", max_bytes=10).truncated is False
    get(f"{base}/echo")
    assert len(server.connections) == 1


def test_connections_are_reused_from_many_threads_without_mixing_answers(server):
    base = f"http://127.0.0.1:{server.port}"
    failures = []

    def work(worker):
        for i in range(15):
            path = f"/echo?worker={worker}&i={i}"
            response = get(base + path)
            if json.loads(response.body)["path"] != path:
                failures.append(path)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(server.requests) == 90
    assert len(server.connections) <= 12  # reused, not one per request


# =========================================================================== no reuse


def test_no_reuse_across_host_names_ports_or_a_literal_address(server, resolver):
    resolver.set("a.test", ["127.0.0.1"])
    resolver.set("b.test", ["127.0.0.1"])
    other = Server()
    try:
        for url in (
            f"http://a.test:{server.port}/echo",
            f"http://b.test:{server.port}/echo",
            f"http://127.0.0.1:{server.port}/echo",
            f"http://127.0.0.1:{other.port}/echo",
            f"http://a.test:{server.port}/echo",  # a.test's connection again
        ):
            assert get(url).status == 200
        assert len(server.connections) == 3
        assert len(other.connections) == 1
    finally:
        egress.close_idle_connections()
        other.stop()


def test_no_reuse_when_the_name_resolves_to_another_address(server, resolver, connections):
    # The pooled connection goes to 127.0.0.1; the next lookup says 127.0.0.2, where
    # nothing listens: the request must go there (and fail), not down the old connection.
    resolver.set("moving.test", ["127.0.0.1"], ["127.0.0.2"], ["127.0.0.1"])
    url = f"http://moving.test:{server.port}/echo"
    assert get(url).peer_address == "127.0.0.1"
    with pytest.raises(EgressConnectionError) as error:
        get(url, total_timeout=2)
    assert "127.0.0.2" in error.value.message
    assert connections.attempts[-1] == ("127.0.0.2", server.port)
    assert get(url).peer_address == "127.0.0.1"
    assert len(server.connections) == 1  # the kept connection waited for its address
    assert len(server.requests) == 2


def test_dns_change_to_a_forbidden_address_is_refused_despite_a_kept_connection(
    server, resolver, connections
):
    resolver.set("rebind.test", ["127.0.0.1"], ["10.0.0.5"])
    url = f"http://rebind.test:{server.port}/echo"
    get(url, allowlist=["127.0.0.1"])
    with pytest.raises(EgressRefused) as refused:
        get(url, allowlist=["127.0.0.1"])
    assert "rebind.test resolves to 10.0.0.5, which is a private address" in refused.value.message
    assert len(server.requests) == 1
    assert connections.attempts == [("127.0.0.1", server.port)]


def test_dns_change_adding_a_forbidden_address_is_refused(server, resolver):
    resolver.set("mixed.test", ["127.0.0.1"], ["127.0.0.1", "169.254.169.254"])
    url = f"http://mixed.test:{server.port}/echo"
    get(url)
    with pytest.raises(EgressRefused):
        get(url)
    assert len(server.requests) == 1


def test_the_allowlist_is_checked_on_every_request(server):
    url = f"http://127.0.0.1:{server.port}/echo"
    get(url)
    with pytest.raises(EgressRefused) as refused:
        get(url, allowlist=[])
    assert "127.0.0.1 is a loopback address" in refused.value.message
    assert len(server.requests) == 1


def test_no_reuse_after_a_truncated_body(server):
    base = f"http://127.0.0.1:{server.port}"
    assert get(f"{base}/bytes?n=1000", max_bytes=10).truncated is True
    get(f"{base}/echo")
    assert len(server.connections) == 2


def test_no_reuse_after_a_read_timeout(server):
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/echo")
    with pytest.raises(EgressTimeout):
        get(f"{base}/slow?seconds=1", read_timeout=0.3)
    get(f"{base}/echo")
    assert len(server.connections) == 2


def test_the_total_deadline_ends_an_exchange_on_a_kept_connection(server):
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/echo")
    started = time.monotonic()
    with pytest.raises(EgressTimeout) as error:
        get(f"{base}/slow?seconds=2", read_timeout=5, total_timeout=0.5)
    assert error.value.message.startswith("timed out after 0.5 s")
    assert time.monotonic() - started < 1.5
    get(f"{base}/echo")
    assert len(server.connections) == 2


def test_a_finished_deadline_never_touches_the_kept_connection(server):
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/echo", total_timeout=0.2)
    time.sleep(0.4)  # well past that request's deadline
    assert get(f"{base}/echo").status == 200
    assert len(server.connections) == 1


@pytest.mark.parametrize("path", ["/close", "/no-length"])
def test_no_reuse_when_the_server_closes_or_sends_no_length(path, server):
    base = f"http://127.0.0.1:{server.port}"
    assert get(base + path).status == 200
    get(f"{base}/echo")
    assert len(server.connections) == 2


def test_no_reuse_after_an_error(server):
    base = f"http://127.0.0.1:{server.port}"
    with pytest.raises(EgressError):
        get(f"{base}/bad-gzip")
    get(f"{base}/echo")
    assert len(server.connections) == 2


def test_a_redirect_does_not_keep_its_unread_connection(server):
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/echo")
    # The kept connection carries the redirect, whose body is not read: it is closed,
    # and the next hop opens (and keeps) a new one.
    response = get(f"{base}/redirect?to=/echo")
    assert response.status == 200
    assert response.redirects == [f"{base}/redirect?to=/echo"]
    get(f"{base}/echo")
    assert len(server.connections) == 2
    assert len(server.requests) == 4
    assert egress._idle_connections.count() == 1


# =========================================================================== stale connections


def test_a_connection_the_server_closed_while_idle_is_replaced(server):
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/hang-up")
    time.sleep(0.1)  # the server's FIN arrives
    response = egress.request("POST", f"{base}/echo", body=b"x", allowlist=LOCAL, keep_alive=True)
    assert response.status == 200
    assert len(server.connections) == 2
    assert len(server.requests) == 2  # nothing was sent twice


class ClosesSecondRequest:
    """Answers the first request on each connection and keeps it open; on the
    second it hangs up without a word, as a server does that drops an idle
    connection just as a request arrives."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.heads: list[bytes] = []
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_head(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            data += chunk
        self.heads.append(data.split(b"\r\n", 1)[0])
        return data

    def _handle(self, conn):
        with conn:
            if self._read_head(conn) is None:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            self._read_head(conn)

    def stop(self):
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def closes_second():
    server = ClosesSecondRequest()
    yield server
    server.stop()


def test_an_idempotent_request_is_sent_again_on_a_new_connection_once(closes_second):
    url = f"http://127.0.0.1:{closes_second.port}/"
    assert get(url).body == b"first"
    assert get(url).body == b"first"  # the kept one was dropped; a new one answered
    assert closes_second.connections == 2
    assert closes_second.heads == [b"GET / HTTP/1.1"] * 3


def test_a_post_is_not_sent_again_when_a_kept_connection_was_dropped(closes_second):
    url = f"http://127.0.0.1:{closes_second.port}/"
    get(url)
    with pytest.raises(EgressConnectionError) as error:
        egress.request("POST", url, body=b"{}", allowlist=LOCAL, keep_alive=True)
    assert not error.value.permanent
    assert closes_second.connections == 1
    assert closes_second.heads == [b"GET / HTTP/1.1", b"POST / HTTP/1.1"]


# =========================================================================== bounds


def test_idle_connections_are_bounded_per_key(server, monkeypatch):
    monkeypatch.setattr(egress, "MAX_IDLE_CONNECTIONS_PER_KEY", 2)
    url = f"http://127.0.0.1:{server.port}/slow?seconds=0.3"
    threads = [threading.Thread(target=get, args=(url,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(server.connections) == 4
    assert egress._idle_connections.count() == 2


def test_idle_connections_expire(server, monkeypatch):
    monkeypatch.setattr(egress, "IDLE_CONNECTION_SECONDS", 0.1)
    base = f"http://127.0.0.1:{server.port}"
    get(f"{base}/echo")
    time.sleep(0.2)
    get(f"{base}/echo")
    assert len(server.connections) == 2


# =========================================================================== TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keep-alive-tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Keep-alive CA", "Keep-alive CA", ca_key.public_key(), ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    shutil.copy(folder / "ca.pem", folder / "same-ca.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(
        "api.partner.test",
        "Keep-alive CA",
        key.public_key(),
        ca_key,
        ca=False,
        sans=[DNSName("api.partner.test")],
    )
    (folder / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder


@pytest.fixture
def https_server(tls_files):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "server.pem")
    app = Server(tls_context=context)
    yield app
    egress.close_idle_connections()
    app.stop()


def test_tls_connections_are_reused_per_ca_bundle(https_server, tls_files, resolver):
    resolver.set("api.partner.test", ["127.0.0.1"])
    url = f"https://api.partner.test:{https_server.port}/echo"
    for _ in range(3):
        assert get(url, ca_bundle=str(tls_files / "ca.pem")).status == 200
    assert len(https_server.connections) == 1
    assert get(url, ca_bundle=str(tls_files / "same-ca.pem")).status == 200
    assert len(https_server.connections) == 2


# =========================================================================== watchdog


def test_one_watchdog_thread_serves_every_deadline(server):
    for keep_alive in (False, True):
        for _ in range(5):
            egress.request(
                "GET",
                f"http://127.0.0.1:{server.port}/echo",
                allowlist=LOCAL,
                keep_alive=keep_alive,
            )
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("egress-watchdog") == 1
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


def test_deadlines_expire_in_order_and_wake_a_blocked_read():
    early_ours, early_theirs = socket.socketpair()
    late_ours, late_theirs = socket.socketpair()
    with early_ours, early_theirs, late_ours, late_theirs:
        late = egress._Deadline(0.6)
        early = egress._Deadline(0.2)
        late.watch(late_ours)
        early.watch(early_ours)
        started = time.monotonic()
        assert early_ours.recv(1) == b""  # woken by the shutdown, not by data
        assert 0.15 < time.monotonic() - started < 0.5
        assert early.expired and not late.expired
        assert late_ours.recv(1) == b""
        assert 0.5 < time.monotonic() - started < 1.0
        assert late.expired


def test_a_cancelled_deadline_does_not_expire():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadline = egress._Deadline(0.1)
        deadline.watch(ours)
        deadline.cancel()
        time.sleep(0.3)
        assert not deadline.expired
        theirs.sendall(b"still open")
        assert ours.recv(10) == b"still open"


def test_cancelled_deadlines_do_not_pile_up():
    for _ in range(1000):
        egress._Deadline(60).cancel()
    assert len(egress._watchdog._heap) < 200


# =========================================================================== allowlist cache


def test_parsed_allowlists_are_cached_and_shared():
    first = egress.parse_allowlist(["127.0.0.1", "*.corp.local"])
    assert egress.parse_allowlist(("127.0.0.1", "*.corp.local")) is first
    assert egress.parse_allowlist("127.0.0.1, *.corp.local") is first
    assert egress.parse_allowlist(["127.0.0.2"]) is not first
    with pytest.raises(AttributeError):
        first.names = ("evil.test",)


def test_invalid_allowlists_are_refused_every_time():
    for _ in range(2):
        with pytest.raises(ValueError, match="is not text"):
            egress.parse_allowlist([["127.0.0.1"]])
        with pytest.raises(ValueError, match="would permit every address"):
            egress.parse_allowlist(["0.0.0.0/0"])
