"""Real parts for the pipeline, Dagster and CLI tests: a migrated catalog, and a web of search + images on 127.0.0.1.

``ImageWeb`` is a pytest-httpserver answering Brave-shaped image-search JSON and serving generated product photos.
Products are matched by a token of their query (the model name), so each test decides which product finds what.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.catalog.models import (
    ImageFetchAttempt,
    MercadoLibreListing,
    ProductImage,
    ProductMaster,
    utcnow,
)
from ml_images_tests.processing.images import encode, product_photo

SEARCH_PATH = "/res/v1/images/search"
API_KEY = "test-brave-key-not-secret"
_codes = itertools.count(1)


class Catalog:
    """A migrated catalog database with helpers to add eligible products and read what the pipeline wrote."""

    def __init__(self, url: str) -> None:
        upgrade_schema(url)
        self.url = url
        self.engine = create_catalog_engine(url)
        self.session_factory = make_session_factory(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def add_product(
        self,
        model: str,
        *,
        code: str | None = None,
        category: str = "MONITOR",
        price: str = "150.00",
        eligible: bool = True,
        age: timedelta = timedelta(hours=1),
    ) -> int:
        """An eligible product (by the default rules: MONITOR ≥ 0) whose query is ``Acme <model> MONITOR``."""
        with self.session_factory() as session, session.begin():
            product = ProductMaster(
                code=code or f"SKU-{next(_codes):05d}",
                description=f"Monitor Acme {model} 24 pulgadas",
                price=Decimal(price),
                category=category,
                is_active=True,
                is_for_mercadolibre=eligible,
                specs={"brand": "Acme", "model": model},
                last_updated=utcnow() - age,
            )
            session.add(product)
            session.flush()
            return product.id

    def images(self, product_id: int) -> list[ProductImage]:
        with self.session_factory() as session:
            return list(
                session.scalars(
                    sa.select(ProductImage).where(ProductImage.product_id == product_id).order_by(ProductImage.order)
                )
            )

    def image_count(self) -> int:
        with self.session_factory() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(ProductImage)) or 0)

    def attempts(self, product_id: int) -> list[ImageFetchAttempt]:
        with self.session_factory() as session:
            return list(
                session.scalars(
                    sa.select(ImageFetchAttempt)
                    .where(ImageFetchAttempt.product_id == product_id)
                    .order_by(ImageFetchAttempt.id)
                )
            )

    def attempt_count(self) -> int:
        with self.session_factory() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(ImageFetchAttempt)) or 0)

    def listing(self, product_id: int) -> MercadoLibreListing | None:
        with self.session_factory() as session:
            return session.scalar(
                sa.select(MercadoLibreListing).where(MercadoLibreListing.product_master_id == product_id)
            )

    def add_listing(self, product_id: int, *, status: str, sync_error: str | None = None) -> None:
        with self.session_factory() as session, session.begin():
            session.add(MercadoLibreListing(product_master_id=product_id, status=status, sync_error=sync_error))


def photo_bytes(seed: int, size: int = 640) -> bytes:
    """A distinct product-like JPEG (distinct seeds are far apart in phash, so none is a near-duplicate)."""
    return encode(product_photo(size, size, seed=seed))


@dataclass
class ImageWeb:
    """Brave-compatible search and an image host, both on one loopback server."""

    server: HTTPServer
    search_latency: float = 0.0
    image_latency: float = 0.0
    search_status: int = 200
    search_body: dict[str, Any] | None = None
    _products: dict[str, list[str]] = field(default_factory=dict)
    _images: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    queries: list[str] = field(default_factory=list)
    search_times: list[float] = field(default_factory=list)  # time.monotonic() at each search request's arrival
    image_requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.expect_request(SEARCH_PATH).respond_with_handler(self._search)
        self.server.expect_request(re.compile(r"^/img/.+")).respond_with_handler(self._image)

    @property
    def search_endpoint(self) -> str:
        return self.server.url_for(SEARCH_PATH)

    def url(self, name: str) -> str:
        return self.server.url_for(f"/img/{name}")

    def add(self, model: str, images: Sequence[bytes] | int = 3, *, seed: int | None = None) -> list[str]:
        """What a search for ``model`` returns: the given JPEGs (or that many generated photos)."""
        if isinstance(images, int):
            base = seed if seed is not None else zlib.crc32(model.encode()) % 10_000
            images = [photo_bytes(base * 10 + i) for i in range(images)]
        names = []
        with self._lock:
            for i, data in enumerate(images):
                name = f"{model.lower()}-{i}.jpg"
                self._images[name] = data
                names.append(name)
            self._products[model.lower()] = names
        return names

    def serve(self, path: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Serve ``data`` at ``path`` (a distributor's photo, say); returns its URL."""
        self.server.expect_request(path).respond_with_data(data, content_type=content_type)
        return self.server.url_for(path)

    def requested_paths(self) -> list[str]:
        """Every path the server was asked for, in order."""
        return [request.path for request, _ in self.server.log]

    def add_urls(self, model: str, urls: Sequence[str]) -> None:
        """Results pointing at arbitrary URLs (e.g. missing images: every download is refused)."""
        with self._lock:
            self._products[model.lower()] = [f"@{u}" for u in urls]

    @property
    def search_calls(self) -> int:
        with self._lock:
            return len(self.queries)

    def _search(self, request: Request) -> Response:
        query = request.args.get("q", "")
        with self._lock:
            self.search_times.append(time.monotonic())
            self.queries.append(query)
            status = self.search_status
        if self.search_latency:
            time.sleep(self.search_latency)
        if request.headers.get("X-Subscription-Token") != API_KEY:
            return Response(json.dumps({"error": {"code": "SUBSCRIPTION_TOKEN_INVALID"}}), status=401)
        if status != 200:
            return Response(
                json.dumps(self.search_body or {"error": {"code": "UNAVAILABLE"}}),
                status=status,
                content_type="application/json",
            )
        words = {w.lower() for w in query.split()}
        with self._lock:
            names = next((names for model, names in self._products.items() if model in words), [])
        results = []
        for name in names:
            url = name[1:] if name.startswith("@") else self.url(name)
            results.append(
                {
                    "title": f"photo {name}",
                    "url": f"http://shop.example/{name}",
                    "source": "shop.example",
                    "properties": {"url": url, "width": 640, "height": 640},
                }
            )
        return Response(json.dumps({"type": "images", "results": results}), content_type="application/json")

    def _image(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        with self._lock:
            self.image_requests.append(name)
            data = self._images.get(name)
        if self.image_latency:
            time.sleep(self.image_latency)
        if data is None:
            return Response("not found", status=404)
        return Response(data, content_type="image/jpeg")


def web_environment(web: ImageWeb) -> dict[str, str]:
    """Environment variables pointing the code location (or the CLI) at ``web``."""
    return {
        "ML_IMAGES_SEARCH_PROVIDER": "brave",
        "ML_IMAGES_SEARCH_ENDPOINT": web.search_endpoint,
        "BRAVE_SEARCH_API_KEY": API_KEY,
        "ML_IMAGES_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
    }


@contextmanager
def running_web() -> Iterator[ImageWeb]:
    """A threaded server (downloads run concurrently, so the server must answer concurrently), stopped after."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield ImageWeb(server)
    finally:
        server.clear()
        server.stop()


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
