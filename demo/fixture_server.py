"""A local stand-in for Brave's image search API and for the web servers hosting the images.

``FixtureSearchServer`` answers ``GET /res/v1/images/search`` in Brave's JSON format and serves image files at
``/images/<name>``, on 127.0.0.1 only. The demo (``python -m demo``), the benchmarks (latency knobs)
and tests use it, so the whole pipeline — search, safe download, processing — runs for real without the internet.

Matching: the catalog maps *match keys* to image files. A query matches a key when every word of the key
appears among the query's words (case- and accent-insensitive; words are runs of letters and digits), so
``"IdeaPad 3 15ITL6"`` matches ``"Lenovo IdeaPad 3 15ITL6 notebook"`` however the pipeline builds its query.
When several keys match, the one with the most words wins (the most specific product); unknown queries get an
empty result list, like a real search with no hits.

Distributor photos: ``/distributor/lg/<name>`` serves a file of ``distributor`` (or of the catalog) as it is and
``/distributor/sm/<name>`` a 160 px thumbnail of it — what a distributor's catalog links to, and what the demo's
``ML_IMAGES_DISTRIBUTOR_URL_REWRITES`` rule turns into the large address. An unknown name is a 404.

Paging follows Brave: ``count`` results per page (default 50, at most 200) and ``offset`` counts *pages* to skip
(``offset=1`` with ``count=20`` returns results 20..39). With ``api_key`` set, a request whose
``X-Subscription-Token`` header differs gets Brave's 401 error body.

Usage::

    with FixtureSearchServer({"ideapad 3 15itl6": [Path("a.jpg"), Path("b.png")]}, api_key="k") as server:
        os.environ["ML_IMAGES_SEARCH_ENDPOINT"] = server.search_endpoint
        ...
        server.search_calls, server.image_requests  # counters, thread-safe
"""

from __future__ import annotations

import hmac
import io
import json
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from PIL import Image

SEARCH_PATH = "/res/v1/images/search"
IMAGES_PREFIX = "/images/"
PAGES_PREFIX = "/pages/"
DISTRIBUTOR_LARGE = "/distributor/lg/"
DISTRIBUTOR_THUMBNAIL = "/distributor/sm/"
THUMBNAIL_SIDE = 160
MAX_COUNT = 200
DEFAULT_COUNT = 50
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                  ".gif": "image/gif", ".avif": "image/avif"}  # fmt: skip


def words(text: str) -> list[str]:
    """Lower-case, accent-free runs of letters and digits: how queries and match keys are compared."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"[a-z0-9]+", plain)


class _Entry:
    __slots__ = ("content_type", "height", "path", "width")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        try:
            with Image.open(path) as im:  # reads the header only
                self.width, self.height = im.size
        except (OSError, ValueError):
            self.width, self.height = 0, 0  # not an image: served as-is (tests of the downloader's sniffing)


class _QuietServer(ThreadingHTTPServer):
    """A client that drops its connection (the downloader closing a kept-alive socket) is not an error worth a
    traceback in the demo's output; anything else is still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return
        super().handle_error(request, client_address)


class FixtureSearchServer:
    """Brave-format image search + image hosting on 127.0.0.1, in a daemon thread (a context manager).

    ``search_latency`` / ``image_latency`` (seconds) delay every search / image response, to imitate a remote
    API in benchmarks. Counters: ``search_calls``, ``image_requests``; ``queries`` lists the queries received.
    """

    def __init__(
        self,
        catalog: Mapping[str, Sequence[Path]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        search_latency: float = 0.0,
        image_latency: float = 0.0,
        api_key: str | None = None,
        distributor: Sequence[Path] = (),
    ) -> None:
        if search_latency < 0 or image_latency < 0:
            raise ValueError("latencies must be >= 0")
        self._host, self._port = host, port
        self.search_latency = search_latency
        self.image_latency = image_latency
        self._api_key = api_key
        self._files: dict[str, _Entry] = {}
        self._keys: list[tuple[frozenset[str], int, str, list[str]]] = []  # (words, order, key, file names)
        for order, (key, paths) in enumerate(catalog.items()):
            key_words = frozenset(words(key))
            if not key_words:
                raise ValueError(f"match key {key!r} has no letters or digits")
            names = []
            for path in paths:
                name = Path(path).name
                known = self._files.get(name)
                if known is not None and known.path.resolve() != Path(path).resolve():
                    raise ValueError(f"two different files are both named {name!r}")
                if known is None:
                    if not Path(path).is_file():
                        raise FileNotFoundError(path)
                    self._files[name] = _Entry(Path(path))
                names.append(name)
            self._keys.append((key_words, order, key, names))
        for path in distributor:
            if Path(path).name not in self._files:
                if not Path(path).is_file():
                    raise FileNotFoundError(path)
                self._files[Path(path).name] = _Entry(Path(path))
        self._lock = threading.Lock()
        self._search_calls = 0
        self._image_requests = 0
        self._queries: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FixtureSearchServer:
        if self._server is not None:
            raise RuntimeError("server already started")
        server = _QuietServer((self._host, self._port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fixture-search-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FixtureSearchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def search_endpoint(self) -> str:
        return self.base_url + SEARCH_PATH

    def image_url(self, path: Path | str) -> str:
        name = Path(path).name
        if name not in self._files:
            raise KeyError(f"{name!r} is not served by this fixture server")
        return self.base_url + IMAGES_PREFIX + quote(name)

    # --- counters -------------------------------------------------------------------------------------------

    @property
    def search_calls(self) -> int:
        with self._lock:
            return self._search_calls

    @property
    def image_requests(self) -> int:
        with self._lock:
            return self._image_requests

    @property
    def queries(self) -> list[str]:
        with self._lock:
            return list(self._queries)

    # --- behaviour ------------------------------------------------------------------------------------------

    def match(self, query: str) -> str | None:
        """The catalog key a query resolves to (most specific match), or None."""
        query_words = set(words(query))
        hits = [(len(kw), -order, key) for kw, order, key, _ in self._keys if kw <= query_words]
        return max(hits)[2] if hits else None

    def results_for(self, query: str) -> list[dict[str, Any]]:
        """Every result (all pages) the server would return for ``query``, in Brave's result shape."""
        key = self.match(query)
        if key is None:
            return []
        names = next(n for _, _, k, n in self._keys if k == key)
        return [self._result(name, key, rank) for rank, name in enumerate(names)]

    def _result(self, name: str, key: str, rank: int) -> dict[str, Any]:
        entry = self._files[name]
        image = self.base_url + IMAGES_PREFIX + quote(name)
        page = self.base_url + PAGES_PREFIX + quote(name)
        host = urlsplit(self.base_url).hostname or "127.0.0.1"
        return {
            "type": "image_result",
            "title": f"{key} - foto {rank + 1}",
            "url": page,
            "source": host,
            "page_fetched": "2026-01-01T00:00:00Z",
            "thumbnail": {"src": image, "width": entry.width, "height": entry.height},
            "properties": {"url": image, "placeholder": image, "width": entry.width, "height": entry.height},
            "meta_url": {"scheme": "http", "netloc": host, "hostname": host, "path": f"› images › {name}"},
            "confidence": "high",
        }

    def _count_search(self, query: str) -> None:
        with self._lock:
            self._search_calls += 1
            self._queries.append(query)

    def _count_image(self) -> None:
        with self._lock:
            self._image_requests += 1

    def _authorised(self, token: str | None) -> bool:
        if self._api_key is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), self._api_key.encode())

    def _entry(self, name: str) -> _Entry | None:
        return self._files.get(name)


def _thumbnail(path: Path) -> bytes:
    """A small JPEG of ``path``: the thumbnail a distributor's catalog links to."""
    with Image.open(path) as im:
        small = im.convert("RGB")
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()


def _int_param(params: dict[str, list[str]], name: str, default: int) -> int | None:
    raw = params.get(name, [str(default)])[0]
    try:
        return int(raw)
    except ValueError:
        return None


def _handler_for(fixture: FixtureSearchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FixtureSearch/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own summary
            return

        def do_HEAD(self) -> None:
            self._dispatch(head=True)

        def do_GET(self) -> None:
            self._dispatch(head=False)

        def _dispatch(self, *, head: bool) -> None:
            parts = urlsplit(self.path)
            if parts.path == SEARCH_PATH:
                self._search(parts.query, head=head)
            elif parts.path.startswith(IMAGES_PREFIX):
                self._image(unquote(parts.path[len(IMAGES_PREFIX) :]), head=head)
            elif parts.path.startswith(DISTRIBUTOR_LARGE):
                self._image(unquote(parts.path[len(DISTRIBUTOR_LARGE) :]), head=head)
            elif parts.path.startswith(DISTRIBUTOR_THUMBNAIL):
                self._image(unquote(parts.path[len(DISTRIBUTOR_THUMBNAIL) :]), head=head, thumbnail=True)
            elif parts.path.startswith(PAGES_PREFIX):
                name = unquote(parts.path[len(PAGES_PREFIX) :])
                body = f"<!doctype html><title>{name}</title><img src='{IMAGES_PREFIX}{quote(name)}'>".encode()
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", body, head=head)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"type": "ErrorResponse", "error": {"status": 404}}, head=head)

        def _search(self, raw_query: str, *, head: bool) -> None:
            if not fixture._authorised(self.headers.get("X-Subscription-Token")):
                self._json(HTTPStatus.UNAUTHORIZED, {
                    "type": "ErrorResponse",
                    "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "status": 401,
                              "detail": "The provided subscription token is invalid."},
                }, head=head)  # fmt: skip
                return
            params = parse_qs(raw_query, keep_blank_values=True)
            query = params.get("q", [""])[0].strip()
            count = _int_param(params, "count", DEFAULT_COUNT)
            offset = _int_param(params, "offset", 0)
            if not query or count is None or offset is None or not 1 <= count <= MAX_COUNT or offset < 0:
                self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {
                    "type": "ErrorResponse",
                    "error": {"code": "VALIDATION", "status": 422, "detail": "Unable to validate request parameter(s)",
                              "meta": {"q": query, "count": count, "offset": offset}},
                }, head=head)  # fmt: skip
                return
            fixture._count_search(query)
            if fixture.search_latency:
                time.sleep(fixture.search_latency)
            results = fixture.results_for(query)[offset * count : offset * count + count]
            body = {
                "type": "images",
                "query": {"original": query, "spellcheck_off": True, "show_strict_warning": False},
                "results": results,
                "extra": {"might_be_offensive": False},
            }
            self._json(HTTPStatus.OK, body, head=head)

        def _image(self, name: str, *, head: bool, thumbnail: bool = False) -> None:
            fixture._count_image()
            entry = fixture._entry(name)
            if entry is None:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found", head=head)
                return
            if fixture.image_latency:
                time.sleep(fixture.image_latency)
            if thumbnail:
                self._send(HTTPStatus.OK, "image/jpeg", _thumbnail(entry.path), head=head)
                return
            self._send(HTTPStatus.OK, entry.content_type, entry.path.read_bytes(), head=head)

        def _json(self, status: HTTPStatus, payload: dict[str, Any], *, head: bool) -> None:
            self._send(status, "application/json", json.dumps(payload).encode(), head=head)

        def _send(self, status: HTTPStatus, content_type: str, body: bytes, *, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler
