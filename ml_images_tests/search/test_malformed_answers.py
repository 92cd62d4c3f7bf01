"""Malformed provider answers, served by a real HTTP server on 127.0.0.1 for every provider.

A 200 whose result list is missing or of the wrong type (or that is not a JSON object at all) is a provider
failure: retried like a 5xx, then ``search_unavailable``, never cached, never "no results". Only a well-formed
empty answer means "no results". Inside a well-formed answer one malformed result costs only its own fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.errors import SearchUnavailableError
from ml_images.search.cache import SearchCache
from ml_images.search.providers import (
    BraveImageSearch,
    GoogleCseImageSearch,
    SearxngImageSearch,
    SerpApiImageSearch,
)
from ml_images.search.retry import RetryableSearchError, RetryPolicy
from ml_images.search.service import ImageSearchService, search_calls_of

from .payloads import SERPAPI_NO_RESULTS, google_payload, searxng_payload

PATHS = {
    "brave": "/res/v1/images/search",
    "serpapi": "/search.json",
    "google": "/customsearch/v1",
    "searxng": "/search",
}
PROVIDERS = list(PATHS)


def build_provider(name: str, httpserver: HTTPServer, session: requests.Session) -> Any:
    endpoint = httpserver.url_for(PATHS[name])
    if name == "brave":
        return BraveImageSearch("brave-key-0001", session, endpoint)
    if name == "serpapi":
        return SerpApiImageSearch("serp-key-0002", session, endpoint)
    if name == "google":
        return GoogleCseImageSearch("google-key-0003", "cx-0004", session, endpoint)
    return SearxngImageSearch(httpserver.url_for("/"), session)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def cache(database_url: str) -> Iterator[SearchCache]:
    upgrade_schema(database_url)
    engine = create_catalog_engine(database_url)
    try:
        yield SearchCache(make_session_factory(engine))
    finally:
        engine.dispose()


def service(provider: Any, cache: SearchCache | None, sleeps: list[float] | None = None) -> ImageSearchService:
    waits = [] if sleeps is None else sleeps
    retry = RetryPolicy(max_attempts=3, base_delay=0.5, jitter=False, sleep=waits.append)
    return ImageSearchService(provider, cache=cache, retry=retry, min_side=1)


def serve(httpserver: HTTPServer, path: str, body: bytes | str, status: int = 200) -> None:
    data = body.encode() if isinstance(body, str) else body
    httpserver.expect_request(path).respond_with_handler(
        lambda _request: Response(data, status=status, content_type="application/json")
    )


# --- the whole answer is malformed: a provider failure ------------------------------------------------------------

MALFORMED: dict[str, list[Any]] = {
    "brave": [{"type": "images"}, {"type": "images", "results": {"0": {}}}, {"type": "images", "results": None}],
    "serpapi": [
        {"search_metadata": {"status": "Success"}},
        {"search_metadata": {"status": "Success"}, "images_results": {"position": 1}},
    ],
    "google": [{"kind": "customsearch#search"}, {"kind": "customsearch#search", "items": "none"}],
    "searxng": [{"query": "q", "number_of_results": 0}, {"query": "q", "results": "none"}],
}
NOT_AN_OBJECT = ["<html><body>502 Bad Gateway</body></html>", "[]", '{"results": [', "null"]


def _malformed_cases() -> list[Any]:
    cases = [
        pytest.param(name, json.dumps(body), id=f"{name}-{i}")
        for name, bodies in MALFORMED.items()
        for i, body in enumerate(bodies)
    ]
    cases += [
        pytest.param(name, body, id=f"{name}-raw{i}") for name in PROVIDERS for i, body in enumerate(NOT_AN_OBJECT)
    ]
    return cases


@pytest.mark.parametrize(("name", "body"), _malformed_cases())
def test_a_malformed_200_is_retried_then_unavailable_and_never_cached(
    httpserver: HTTPServer, session: requests.Session, sqlite_url: str, name: str, body: str
) -> None:
    upgrade_schema(sqlite_url)
    engine = create_catalog_engine(sqlite_url)
    search_cache = SearchCache(make_session_factory(engine))
    serve(httpserver, PATHS[name], body)
    sleeps: list[float] = []
    try:
        with pytest.raises(SearchUnavailableError, match=r"malformed answer|not JSON|not an object") as raised:
            service(build_provider(name, httpserver, session), search_cache, sleeps).search("Acme ZX1 MONITOR")
        assert search_calls_of(raised.value) == 3  # retried like a 5xx, and every call counted
        assert len(httpserver.log) == 3
        assert sleeps == [0.5, 1.0]
        assert search_cache.get(name, "Acme ZX1 MONITOR") is None  # not cached as "no results"
    finally:
        engine.dispose()


# --- well-formed empty answers: "no results" ---------------------------------------------------------------------

EMPTY: dict[str, list[Any]] = {
    "brave": [{"type": "images", "query": {"original": "q"}, "results": []}],
    "serpapi": [
        SERPAPI_NO_RESULTS,  # the error string SerpApi uses for "nothing found"
        {"search_metadata": {"status": "Success"}, "search_information": {"image_results_state": "Fully empty"}},
    ],
    "google": [google_payload([], next_start=None)],  # no "items", totalResults "0"
    "searxng": [searxng_payload([])],
}


@pytest.mark.parametrize(
    ("name", "body"), [pytest.param(n, b, id=f"{n}-{i}") for n, bodies in EMPTY.items() for i, b in enumerate(bodies)]
)
def test_a_well_formed_empty_answer_is_no_results_and_cached(
    httpserver: HTTPServer, session: requests.Session, cache: SearchCache, name: str, body: Any
) -> None:
    serve(httpserver, PATHS[name], json.dumps(body))
    outcome = service(build_provider(name, httpserver, session), cache).search("zzqx no existe")
    assert (outcome.candidates, outcome.calls, outcome.cached) == ([], 1, False)
    assert cache.get(name, "zzqx no existe") == []


def test_google_past_its_last_page_is_an_empty_page(httpserver: HTTPServer, session: requests.Session) -> None:
    body = google_payload([], next_start=None)
    body["searchInformation"].update(totalResults="2340")  # an estimate; the page itself has no items
    serve(httpserver, PATHS["google"], json.dumps(body))
    page = build_provider("google", httpserver, session).fetch_page("q", 1, 10)
    assert (page.candidates, page.has_more) == ([], False)
    with pytest.raises(RetryableSearchError, match="'items' is missing"):
        build_provider("google", httpserver, session).fetch_page("q", 0, 10)  # first page: not an answer


def test_searxng_with_every_engine_unresponsive_is_not_no_results(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    body = searxng_payload([])
    body["unresponsive_engines"] = [["google images", "CAPTCHA"], ["bing images", "timeout"]]
    serve(httpserver, PATHS["searxng"], json.dumps(body))
    with pytest.raises(RetryableSearchError, match="google images, bing images"):
        build_provider("searxng", httpserver, session).fetch_page("q", 0, 10)


# --- one malformed result: only its own fields are lost ------------------------------------------------------------

GOOD = {"url": "http://127.0.0.1/img/good.jpg", "page": "http://127.0.0.1/p/good", "title": "Good photo"}


def _brave(url: Any, page: Any, title: Any, width: Any, height: Any) -> Any:
    return {"url": page, "title": title, "properties": {"url": url, "width": width, "height": height}}


def _serpapi(url: Any, page: Any, title: Any, width: Any, height: Any) -> Any:
    return {"original": url, "link": page, "title": title, "original_width": width, "original_height": height}


def _google(url: Any, page: Any, title: Any, width: Any, height: Any) -> Any:
    image = {"contextLink": page, "width": width, "height": height}
    return {"link": url, "title": title, "mime": "image/jpeg", "image": image}


def _searxng(url: Any, page: Any, title: Any, width: Any, height: Any) -> Any:
    return {"img_src": url, "url": page, "title": title, "resolution": f"{width} x {height}"}


SHAPES: dict[str, Callable[..., Any]] = {"brave": _brave, "serpapi": _serpapi, "google": _google, "searxng": _searxng}
LIST_KEYS = {"brave": "results", "serpapi": "images_results", "google": "items", "searxng": "results"}


def _mixed_body(name: str) -> bytes:
    """Six results: a good one, four with malformed fields, one that is not an object, one URL that is a list.

    Placeholders are replaced after ``json.dumps``: 1e400, NaN, a 5000-digit integer, a NUL, a lone surrogate
    and a byte that is not UTF-8 cannot be written by ``json.dumps`` itself."""
    shape = SHAPES[name]
    results = [
        shape(GOOD["url"], GOOD["page"], GOOD["title"], 1200, 900),
        shape("http://127.0.0.1/img/inf.jpg", ["not", "a", "string"], "@@NUL@@", "@@INF@@", "@@NAN@@"),
        shape("http://127.0.0.1/img/text.jpg", 404, "@@SURROGATE@@", "abc", "@@BIG@@"),
        shape("http://127.0.0.1/img/neg.jpg", "http://127.0.0.1/p/neg", ["title"], -5, True),
        shape("http://127.0.0.1/img/badbyte.jpg", "http://127.0.0.1/p/b", "caf@@BADBYTE@@ con leche", 800, 1e3),
        "a result that is a string",
        shape(["http://127.0.0.1/img/list.jpg"], "http://127.0.0.1/p/list", "list URL", 1000, 1000),
    ]
    body: dict[str, Any] = {LIST_KEYS[name]: results}
    if name == "google":
        body["searchInformation"] = {"totalResults": "7"}
    text = json.dumps(body)
    for placeholder, raw in {
        '"@@INF@@"': "1e400",
        '"@@NAN@@"': "NaN",
        '"@@BIG@@"': "9" * 5000,
        "@@NUL@@": "\\u0000 title",
        "@@SURROGATE@@": "\\ud800 title",
    }.items():
        text = text.replace(placeholder, raw)
    return text.encode("utf-8").replace(b"@@BADBYTE@@", b"\xff")


@pytest.mark.parametrize("name", PROVIDERS)
def test_one_malformed_result_costs_only_its_own_fields(
    httpserver: HTTPServer, session: requests.Session, cache: SearchCache, name: str
) -> None:
    serve(httpserver, PATHS[name], _mixed_body(name))

    outcome = service(build_provider(name, httpserver, session), cache).search("Acme ZX1 MONITOR")

    found = {c.image_url.rsplit("/", 1)[1]: c for c in outcome.candidates}
    assert list(found) == ["good.jpg", "inf.jpg", "text.jpg", "neg.jpg", "badbyte.jpg"]
    good, inf, text, neg, badbyte = found.values()
    assert (good.width, good.height, good.page_url, good.title) == (1200, 900, GOOD["page"], GOOD["title"])
    if name != "searxng":  # SearXNG reports sizes as free text, so these cases do not reach it as numbers
        assert (inf.width, inf.height) == (None, None)  # 1e400, NaN
        assert (text.width, text.height) == (None, None)  # "abc", a 5000-digit integer
        assert (neg.width, neg.height) == (None, None)  # -5, true
        assert (badbyte.width, badbyte.height) == (800, 1000)  # 1e3 is a whole number
    assert inf.page_url is None  # a list where a string goes
    assert inf.title is None  # a NUL cannot be stored
    assert text.title is None  # nor a lone surrogate
    assert neg.title is None
    assert badbyte.title == "caf\ufffd con leche"  # one bad byte costs one character
    assert sorted(d.reason for d in outcome.dropped) == ["bad_url", "bad_url"]  # the string and the list URL
    # The answer was cached, and the cache (JSON in SQLite or PostgreSQL) reads back what was found.
    assert cache.get(name, "Acme ZX1 MONITOR") == outcome.candidates
