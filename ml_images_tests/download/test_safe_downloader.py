"""SafeDownloader against real servers on 127.0.0.1.

pytest-socket (``--allow-hosts=127.0.0.1,::1``) turns any connection to another address into a
``SocketBlockedError``. So a ``blocked_address`` refusal for 10.0.0.1 / 169.254.169.254 / 127.0.0.2 also
proves that no connection was attempted: had one been, the reason would be ``connect_error``.
"""

from __future__ import annotations

import gzip
import io
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from ml_images.download.results import DownloadedImage
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.outcomes import Refusal, Refused
from ml_images.search.candidates import ImageCandidate

if TYPE_CHECKING:  # types only: helpers reach tests as fixtures, the conftest is never imported at run time
    from .conftest import Handler, LocalServer, RequestHandler, TlsFiles


def encode(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


PNG = encode("PNG")


def redirect_to(location: str, status: int = 302) -> Handler:
    return lambda h: h.redirect(location, status)


def local_downloader(**kwargs: object) -> SafeDownloader:
    options: dict[str, object] = {"allowed_private_hosts": ["127.0.0.1"], "deadline_seconds": 5.0}
    options.update(kwargs)
    return SafeDownloader(**options)  # type: ignore[arg-type]


def refusal(downloader: SafeDownloader, url: str, page_url: str | None = None) -> Refused:
    with pytest.raises(Refused) as info:
        downloader.download(ImageCandidate(image_url=url, page_url=page_url))
    return info.value


@pytest.mark.parametrize(("fmt", "expected"), [("PNG", "png"), ("WEBP", "webp"), ("AVIF", "avif"), ("JPEG", "jpeg")])
def test_valid_images_are_accepted(server: LocalServer, fmt: str, expected: str) -> None:
    body = encode(fmt)
    # The Content-Type is deliberately wrong: only the magic bytes count.
    url = server.serve(f"/img.{expected}", body, content_type="application/octet-stream")
    result = local_downloader().download(ImageCandidate(image_url=url))
    assert result.format == expected
    assert result.data == body
    assert result.final_url == url


def test_gif_is_recognised(server: LocalServer) -> None:
    url = server.serve("/anim.gif", encode("GIF"), content_type="image/gif")
    assert local_downloader().download(ImageCandidate(image_url=url)).format == "gif"


def test_request_headers_browser_like_with_referer_and_identity(server: LocalServer) -> None:
    url = server.serve("/p.png", PNG)
    local_downloader().download(ImageCandidate(image_url=url, page_url="https://shop.example/producto/1#fotos"))
    (request,) = server.requests_to("/p.png")
    assert request.headers["user-agent"].startswith("Mozilla/5.0")
    assert request.headers["referer"] == "https://shop.example/producto/1"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/admin.png",
        "http://127.0.0.2:{port}/x.png",
        "http://127.0.0.2/x.png",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:a9fe:a9fe::1]/latest/meta-data/",
        "http://0x7f000002/x.png",
    ],
)
def test_redirect_to_a_private_address_is_refused_before_connecting(server: LocalServer, location: str) -> None:
    url = server.route("/hop", lambda h: h.redirect(location.format(port=server.port)))
    refused = refusal(local_downloader(), url)
    assert refused.reason == "blocked_address", refused
    assert refused.url == url
    assert "after redirect" in refused.detail


def test_hostname_resolving_to_private_address_is_refused() -> None:
    downloader = SafeDownloader(resolver=lambda host, port: {"evil.test": ["10.0.0.1"]}[host])
    refused = refusal(downloader, "http://evil.test/cat.jpg")
    assert refused.reason == "blocked_address"
    assert "10.0.0.1" in refused.detail


def test_connection_goes_to_the_vetted_address_keeping_the_host_header(server: LocalServer) -> None:
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]  # images.test does not exist in DNS: only the pinned address can work

    server.serve("/p.png", PNG)
    downloader = SafeDownloader(allowed_private_hosts=["images.test"], resolver=resolver)
    result = downloader.download(ImageCandidate(image_url=server.url("/p.png", host="images.test")))
    assert result.format == "png"
    assert lookups == ["images.test"]  # one lookup, no second one at connect time
    assert server.requests_to("/p.png")[0].headers["host"] == f"images.test:{server.port}"


def test_https_pins_the_address_but_verifies_the_certificate_for_the_hostname(
    tls_server: LocalServer, tls_files: TlsFiles
) -> None:
    url = tls_server.serve("/p.png", PNG)
    downloader = SafeDownloader(
        allowed_private_hosts=["images.test", "other.test"],
        resolver=lambda host, port: ["127.0.0.1"],
        ca_certs=str(tls_files.ca_cert),
        deadline_seconds=5.0,
    )
    assert downloader.download(ImageCandidate(image_url=url)).data == PNG
    # Same address, other name: the certificate (for images.test only) must not be accepted.
    refused = refusal(downloader, tls_server.url("/p.png", host="other.test"))
    assert refused.reason == "tls_error"


def test_https_with_an_untrusted_certificate_is_refused(tls_server: LocalServer) -> None:
    url = tls_server.serve("/p.png", PNG)
    downloader = SafeDownloader(allowed_private_hosts=["images.test"], resolver=lambda host, port: ["127.0.0.1"])
    assert refusal(downloader, url).reason == "tls_error"


def test_public_host_on_a_non_standard_port_is_refused() -> None:
    downloader = SafeDownloader(resolver=lambda host, port: ["93.184.216.34"])
    assert refusal(downloader, "http://cdn.test:6379/x.png").reason == "blocked_port"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "bad_scheme"),
        ("ftp://127.0.0.1/x.png", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "bad_scheme"),
        ("data:image/png;base64,iVBORw0KGgo=", "bad_scheme"),
        ("//127.0.0.1/x.png", "bad_scheme"),
        ("http://user:secret@127.0.0.1/x.png", "bad_url"),
        ("http:///x.png", "bad_url"),
        ("http://127.0.0.1:99999/x.png", "bad_url"),
        ("http://bad host/x.png", "bad_url"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    assert refusal(local_downloader(), url).reason == reason


def test_redirects_are_followed_up_to_the_limit(server: LocalServer) -> None:
    for i in range(5):
        server.route(f"/r{i}", redirect_to(f"/r{i + 1}", status=301 if i % 2 else 307))
    server.serve("/r5", PNG)
    result = local_downloader(max_redirects=5).download(ImageCandidate(image_url=server.url("/r0")))
    assert result.final_url == server.url("/r5")


def test_too_many_redirects(server: LocalServer) -> None:
    for i in range(7):
        server.route(f"/r{i}", redirect_to(f"/r{i + 1}"))
    server.serve("/r7", PNG)
    assert refusal(local_downloader(max_redirects=5), server.url("/r0")).reason == "too_many_redirects"
    assert not server.requests_to("/r6")  # the sixth redirect was not followed


def test_redirect_loop(server: LocalServer) -> None:
    server.route("/a", lambda h: h.redirect(server.url("/b")))
    server.route("/b", lambda h: h.redirect("/a"))
    assert refusal(local_downloader(), server.url("/a")).reason == "redirect_loop"
    assert len(server.requests_to("/a")) == 1


def test_redirect_to_another_scheme_is_refused(server: LocalServer) -> None:
    url = server.route("/hop", lambda h: h.redirect("file:///etc/passwd"))
    assert refusal(local_downloader(), url).reason == "bad_scheme"


def test_body_without_content_length_is_capped_while_streaming(server: LocalServer) -> None:
    total = 50 * 1024 * 1024
    chunk = b"\xff\xd8\xff" + b"\x00" * (64 * 1024 - 3)

    def endless(h: RequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.end_headers()
        sent = 0
        while sent < total and not h.server.state.stop.is_set():
            h.wfile.write(chunk)
            sent += len(chunk)
            h.count_sent(len(chunk))

    url = server.route("/huge.jpg", endless)
    started = time.monotonic()
    refused = refusal(local_downloader(max_bytes=1024 * 1024), url)
    assert refused.reason == "too_large"
    assert time.monotonic() - started < 3
    time.sleep(0.2)
    assert server.state.bytes_sent["/huge.jpg"] < 20 * 1024 * 1024  # stopped early, not after 50 MB


def test_declared_content_length_over_the_cap_is_refused_before_reading(server: LocalServer) -> None:
    def liar(h: RequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(50 * 1024 * 1024))
        h.end_headers()
        h.wfile.write(PNG)

    url = server.route("/big.png", liar)
    assert refusal(local_downloader(max_bytes=1024 * 1024), url).reason == "too_large"


def test_compressed_body_is_counted_after_decoding(server: LocalServer) -> None:
    bomb = gzip.compress(b"\x89PNG\r\n\x1a\n" + b"\x00" * (4 * 1024 * 1024))
    assert len(bomb) < 20_000
    url = server.serve("/bomb.png", bomb, headers={"Content-Encoding": "gzip"})
    assert refusal(local_downloader(max_bytes=1024 * 1024), url).reason == "too_large"


def test_drip_feeding_server_hits_the_deadline(server: LocalServer, drip: Callable[..., Handler]) -> None:
    url = server.route("/drip.jpg", drip(b"\xff\xd8\xff\xe0", interval=0.1, limit_seconds=15))
    started = time.monotonic()
    refused = refusal(local_downloader(deadline_seconds=1.5, read_timeout=1.0), url)
    elapsed = time.monotonic() - started
    assert refused.reason == "deadline"
    assert 1.4 < elapsed < 3.0


def test_drip_fed_headers_hit_the_deadline(server: LocalServer) -> None:
    def slow_headers(h: RequestHandler) -> None:
        ends = time.monotonic() + 15
        for byte in b"HTTP/1.0 200 OK\r\nX-Padding: " + b"a" * 10_000:
            if time.monotonic() > ends or h.server.state.stop.is_set():
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.1)

    url = server.route("/slow-headers.png", slow_headers)
    started = time.monotonic()
    assert refusal(local_downloader(deadline_seconds=1.5, read_timeout=1.0), url).reason == "deadline"
    assert time.monotonic() - started < 3.0


def test_silent_server_hits_the_read_timeout(server: LocalServer) -> None:
    def silent(h: RequestHandler) -> None:
        h.server.state.stop.wait(5)

    url = server.route("/silent.png", silent)
    assert refusal(local_downloader(read_timeout=0.5), url).reason == "timeout"


def test_html_served_as_jpeg_is_not_an_image(server: LocalServer) -> None:
    html = b"<!DOCTYPE html><html><body>Hotlinking not allowed</body></html>"
    url = server.serve("/photo.jpg", html, content_type="image/jpeg")
    refused = refusal(local_downloader(), url)
    assert refused.reason == "not_an_image"


def test_empty_body(server: LocalServer) -> None:
    url = server.serve("/empty.jpg", b"", content_type="image/jpeg")
    assert refusal(local_downloader(), url).reason == "empty_body"


@pytest.mark.parametrize("status", [403, 404, 500])
def test_http_errors_carry_the_status(server: LocalServer, status: int) -> None:
    url = server.serve("/x.png", PNG, status=status)
    assert refusal(local_downloader(), url).reason == f"http_{status}"


def test_missing_path_gives_http_404(server: LocalServer) -> None:
    assert refusal(local_downloader(), server.url("/nope.png")).reason == "http_404"


def test_truncated_body(server: LocalServer) -> None:
    def short(h: RequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(PNG) + 1000))
        h.end_headers()
        h.wfile.write(PNG)

    url = server.route("/short.png", short)
    assert refusal(local_downloader(), url).reason == "truncated"


def test_connection_refused() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert refusal(local_downloader(), f"http://127.0.0.1:{port}/x.png").reason == "connect_error"


def test_download_all_keeps_order_and_bounds_concurrency(server: LocalServer) -> None:
    def slow_png(h: RequestHandler) -> None:
        time.sleep(0.3)
        h.send_bytes(PNG)

    for i in range(6):
        server.route(f"/slow{i}.png", slow_png)
    candidates = [ImageCandidate(image_url=server.url(f"/slow{i}.png"), rank=i) for i in range(6)]
    candidates.insert(2, ImageCandidate(image_url="http://10.0.0.1/x.png"))
    downloader = local_downloader(max_workers=3)
    started = time.monotonic()
    results = downloader.download_all(candidates)
    elapsed = time.monotonic() - started
    assert len(results) == 7
    assert isinstance(results[2], Refusal)
    assert results[2].reason == "blocked_address"
    ok = [r for r in results if isinstance(r, DownloadedImage)]
    assert [r.candidate.rank for r in ok] == [0, 1, 2, 3, 4, 5]
    assert server.state.max_in_flight <= 3
    assert server.state.max_in_flight >= 2
    assert elapsed < 6 * 0.3  # concurrent, not one after another


def test_one_downloader_shared_by_threads(server: LocalServer) -> None:
    server.serve("/p.png", PNG)
    downloader = local_downloader()
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            got = downloader.download(ImageCandidate(image_url=server.url("/p.png")))
            with lock:
                results.append(got.format)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == ["png"] * 20


def test_download_all_of_nothing() -> None:
    assert local_downloader().download_all([]) == []


def test_next_vetted_address_is_tried_when_one_refuses(server: LocalServer) -> None:
    server.serve("/p.png", PNG)
    # Nothing listens on [::1] at the server's port (it is bound to 127.0.0.1 only).
    downloader = SafeDownloader(allowed_private_hosts=["dual.test"], resolver=lambda host, port: ["::1", "127.0.0.1"])
    assert downloader.download(ImageCandidate(image_url=server.url("/p.png", host="dual.test"))).format == "png"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_host_port_allow_list_entry_reaches_that_port_only(server: LocalServer) -> None:
    url = server.serve("/p.png", PNG)
    downloader = SafeDownloader(allowed_private_hosts=[f"127.0.0.1:{server.port}"], deadline_seconds=5.0)
    assert downloader.download(ImageCandidate(image_url=url)).format == "png"
    # Another port of the same loopback host (a local database, say) stays blocked, and before any connection:
    # nothing listens there, so a connection attempt would have read connect_error.
    other = f"http://127.0.0.1:{_closed_port()}/p.png"
    assert refusal(downloader, other).reason == "blocked_address"
    # A redirect to that other port is refused the same way.
    server.route("/hop", redirect_to(other))
    assert refusal(downloader, server.url("/hop")).reason == "blocked_address"


def test_a_bare_host_allow_list_entry_reaches_every_port(server: LocalServer) -> None:
    url = server.serve("/p.png", PNG)
    downloader = SafeDownloader(allowed_private_hosts=["127.0.0.1"], deadline_seconds=5.0)
    assert downloader.download(ImageCandidate(image_url=url)).format == "png"
    assert refusal(downloader, f"http://127.0.0.1:{_closed_port()}/p.png").reason == "connect_error"


def test_an_ipv6_host_port_entry(ipv6_server: LocalServer) -> None:
    url = ipv6_server.serve("/p.png", PNG)
    downloader = SafeDownloader(allowed_private_hosts=[f"[::1]:{ipv6_server.port}"], deadline_seconds=5.0)
    assert downloader.download(ImageCandidate(image_url=url)).format == "png"
    assert refusal(downloader, ipv6_server.url("/p.png").replace(f":{ipv6_server.port}/", ":1/")).reason == (
        "blocked_address"
    )


@pytest.mark.parametrize("allowed", [[], ["127.0.0.1"], ["127.0.0.1:80"]])
def test_port_zero_is_refused_not_fetched_on_port_80(allowed: list[str]) -> None:
    downloader = SafeDownloader(allowed_private_hosts=allowed, deadline_seconds=5.0)
    for url in ("http://127.0.0.1:0/x", "https://127.0.0.1:0/x", "http://127.0.0.1:00/x"):
        assert refusal(downloader, url).reason == "blocked_port", url
