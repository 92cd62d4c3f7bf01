"""Real HTTP(S) servers on 127.0.0.1 for the downloader tests.

``http.server`` threads rather than pytest-httpserver: drip-feeding, endless bodies and raw status lines need
control of the socket. Every handler is bounded in time and stops when the test ends or the client leaves.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

Handler = Callable[["RequestHandler"], None]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]


@dataclass
class ServerState:
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    bytes_sent: dict[str, int] = field(default_factory=dict)


class RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        return

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            handler = state.routes.get(path)
            if handler is None:
                self.send_bytes(b"not found", status=404, content_type="text/plain")
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass  # the client gave up, as the downloader is meant to
        finally:
            with state.lock:
                state.in_flight -= 1

    # response helpers -------------------------------------------------------------------------------------
    def send_bytes(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "image/png",
        content_length: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def count_sent(self, n: int) -> None:
        state = self.server.state
        with state.lock:
            state.bytes_sent[self.path] = state.bytes_sent.get(self.path, 0) + n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class LocalServer:
    """A threaded HTTP server on 127.0.0.1 with per-path handlers; ``url(path)`` builds its URLs."""

    httpd: _Server
    scheme: str = "http"
    host: str = "127.0.0.1"

    @property
    def state(self) -> ServerState:
        return self.httpd.state

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        name = host or self.host
        return f"{self.scheme}://{f'[{name}]' if ':' in name else name}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        self.state.routes[path] = handler
        return self.url(path)

    def serve(self, path: str, body: bytes, **kwargs: object) -> str:
        return self.route(path, lambda h: h.send_bytes(body, **kwargs))  # type: ignore[arg-type]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.state.requests if r.path.split("?", 1)[0] == path]


def _start(ssl_context: ssl.SSLContext | None = None, *, ipv6: bool = False) -> tuple[_Server, threading.Thread]:
    httpd = _Server6(("::1", 0), RequestHandler) if ipv6 else _Server(("127.0.0.1", 0), RequestHandler)
    httpd.state = ServerState()
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return httpd, thread


def _stop(httpd: _Server, thread: threading.Thread) -> None:
    httpd.state.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd, thread = _start()
    try:
        yield LocalServer(httpd)
    finally:
        _stop(httpd, thread)


@pytest.fixture
def ipv6_server() -> Iterator[LocalServer]:
    """The same server on the IPv6 loopback address [::1]."""
    httpd, thread = _start(ipv6=True)
    try:
        yield LocalServer(httpd, host="::1")
    finally:
        _stop(httpd, thread)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA and a server certificate for ``images.test`` only (no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml_images test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path = folder / "server.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = folder / "server.key"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return TlsFiles(ca_cert=ca_path, server_context=context)


@pytest.fixture
def tls_server(tls_files: TlsFiles) -> Iterator[LocalServer]:
    httpd, thread = _start(tls_files.server_context)
    try:
        yield LocalServer(httpd, scheme="https", host="images.test")
    finally:
        _stop(httpd, thread)


def image_bytes(fmt: str, size: tuple[int, int] = (16, 12)) -> bytes:
    """A small real image written by Pillow (AVIF included: Pillow 13 wheels ship libavif)."""
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    """``make_image("AVIF")``: test modules get helpers through fixtures, never by importing this conftest
    (mypy and pytest would name the module differently)."""
    return image_bytes


def drip_handler(body_start: bytes, *, interval: float, limit_seconds: float) -> Handler:
    """Headers at once, then one byte every ``interval`` seconds: never slow enough to trip a read timeout."""

    def handler(h: RequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.end_headers()
        h.wfile.write(body_start)
        h.wfile.flush()
        ends = time.monotonic() + limit_seconds
        while time.monotonic() < ends and not h.server.state.stop.is_set():
            h.wfile.write(b"\x00")
            h.wfile.flush()
            h.count_sent(1)
            time.sleep(interval)

    return handler


@pytest.fixture
def drip() -> Callable[..., Handler]:
    return drip_handler
