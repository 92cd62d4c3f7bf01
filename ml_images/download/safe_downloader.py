"""Download untrusted image URLs without letting them reach the inside of the network or hold a worker.

Per hop: the URL is checked and made canonical (``target``) → the host is resolved once and every address vetted
(``AddressPolicy``) → the request goes over a connection pinned to a vetted address, under the download's
deadline (``transport``) → redirects are followed by hand and each hop is vetted the same way. The body is
streamed under a byte cap and the wall-clock deadline, and its magic bytes decide whether it is an image.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import certifi
from urllib3 import BaseHTTPResponse

from ml_images.download.address_policy import AddressPolicy, Resolver
from ml_images.download.results import DownloadedImage
from ml_images.download.sniff import SNIFF_BYTES, sniff_image_format
from ml_images.download.target import parse_target
from ml_images.download.target import referer as referer_of
from ml_images.download.transport import DeadlineGuard, open_pinned, refusal_for
from ml_images.net.capped_body import CONNECTION_ERRORS, BodyTooLarge, DeadlineExceeded, declared_length, read_capped
from ml_images.outcomes import ReasonCode, Refusal, Refused, http_status_reason
from ml_images.search.candidates import ImageCandidate

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
_ACCEPT = "image/avif,image/webp,image/apng,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 16 * 1024


class SafeDownloader:
    """Fetches candidate images with SSRF, size, time and content checks. One instance is safe to share
    between threads: every download builds its own connection pools and deadline guard."""

    def __init__(
        self,
        *,
        allowed_private_hosts: Collection[str] = (),
        max_bytes: int = 15 * 1024 * 1024,
        deadline_seconds: float = 20.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_redirects: int = 5,
        max_workers: int = 5,
        user_agent: str = DEFAULT_USER_AGENT,
        resolver: Resolver | None = None,
        ca_certs: str | None = None,
    ) -> None:
        if max_bytes < 1 or max_workers < 1 or max_redirects < 0:
            raise ValueError("max_bytes and max_workers must be >= 1, max_redirects >= 0")
        if min(deadline_seconds, connect_timeout, read_timeout) <= 0:
            raise ValueError("deadline and timeouts must be positive")
        self.max_bytes = max_bytes
        self.deadline_seconds = deadline_seconds
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_redirects = max_redirects
        self.max_workers = max_workers
        self.user_agent = user_agent
        self.ca_certs = ca_certs or certifi.where()  # a private CA bundle for tests or corporate TLS inspection
        self.policy = AddressPolicy(allowed_private_hosts, resolver)

    def download(self, candidate: ImageCandidate) -> DownloadedImage:
        """The candidate's image bytes, or Refused with a machine-readable ``reason``."""
        guard = DeadlineGuard(self.deadline_seconds)
        try:
            return self._download(candidate, guard)
        except Refused as refused:
            log.info("download refused (%s): %s", refused.reason, refused.detail)
            if refused.url is None:
                raise Refused(refused.reason, refused.detail, candidate.image_url) from None
            raise
        finally:
            guard.close()

    def download_all(self, candidates: Sequence[ImageCandidate]) -> list[DownloadedImage | Refusal]:
        """Every candidate's result (the image or its ``Refusal``) in input order; downloads run concurrently, at most
        ``max_workers``."""
        items = list(candidates)
        if not items:
            return []
        workers = min(self.max_workers, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ml-images-download") as executor:
            futures = [executor.submit(self._download_or_refusal, c) for c in items]
            return [f.result() for f in futures]

    def _download_or_refusal(self, candidate: ImageCandidate) -> DownloadedImage | Refusal:
        try:
            return self.download(candidate)
        except Refused as refused:
            return refused.at("download", candidate.image_url)

    def _headers(self, candidate: ImageCandidate) -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": _ACCEPT,
            "Accept-Language": "es-AR,es;q=0.9,en;q=0.8",
            # Identity: the byte cap then measures what we store, and no decompression bomb is possible.
            "Accept-Encoding": "identity",
        }
        referer = referer_of(candidate.page_url)
        if referer:
            headers["Referer"] = referer  # hotlink protection checks it
        return headers

    def _download(self, candidate: ImageCandidate, guard: DeadlineGuard) -> DownloadedImage:
        headers = self._headers(candidate)
        target = parse_target(candidate.image_url)
        visited = {target.url}
        redirects = 0
        while True:
            try:
                addresses = self.policy.vet(target.host, target.port)
            except Refused as refused:
                if redirects:
                    detail = f"{refused.detail} (after redirect to {target.url})"
                    raise Refused(refused.reason, detail, refused.url) from None
                raise
            response, pool = open_pinned(
                target,
                addresses,
                headers,
                guard,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                ca_certs=self.ca_certs,
            )
            try:
                if response.status in _REDIRECT_STATUSES:
                    location = (response.headers.get("Location") or "").strip()
                    if not location:
                        raise Refused(http_status_reason(response.status), "redirect without a Location header")
                    next_target = parse_target(urljoin(target.url, location))
                    if next_target.url in visited:
                        raise Refused(ReasonCode.REDIRECT_LOOP, f"{next_target.url} was already visited")
                    if redirects >= self.max_redirects:
                        raise Refused(ReasonCode.TOO_MANY_REDIRECTS, f"more than {self.max_redirects} redirects")
                    redirects += 1
                    visited.add(next_target.url)
                    target = next_target
                    continue
                if response.status != 200:
                    raise Refused(http_status_reason(response.status), f"{target.url} answered {response.status}")
                data, fmt = self._read_body(response, guard)
                return DownloadedImage(candidate=candidate, final_url=target.url, data=data, format=fmt)
            except CONNECTION_ERRORS as exc:
                raise refusal_for(exc, guard) from None
            finally:
                response.close()
                pool.close()

    def _read_body(self, response: BaseHTTPResponse, guard: DeadlineGuard) -> tuple[bytes, str]:
        try:
            data = read_capped(
                response.stream(_CHUNK_BYTES, decode_content=True),
                guard,
                self.max_bytes,
                declared=declared_length(response.headers),
            )
        except BodyTooLarge as exc:
            raise Refused(ReasonCode.TOO_LARGE, str(exc)) from None
        except DeadlineExceeded as exc:
            raise Refused(ReasonCode.DEADLINE, f"total download deadline reached after {exc.received} bytes") from None
        if not data:
            raise Refused(ReasonCode.EMPTY_BODY, "the response body is empty")
        fmt = sniff_image_format(data[:SNIFF_BYTES])
        if fmt is None:
            head = data[:16].hex(" ")
            raise Refused(ReasonCode.NOT_AN_IMAGE, f"magic bytes {head} are not JPEG, PNG, WebP, GIF or AVIF")
        return data, fmt
