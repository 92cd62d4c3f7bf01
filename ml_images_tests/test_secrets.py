"""No credential, in any encoding, in any output, log, Dagster event or compute log, or stored record.

The end-to-end tests run ``ml-images -v fetch`` (a real subprocess) for each provider against a loopback server
speaking that provider's API, which echoes the key back in its error bodies raw, percent-encoded, form-encoded
and JSON-escaped. One product's search succeeds (its images are stored), the next one's fails; then stdout,
stderr and every byte of every file under ``DAGSTER_HOME`` and ``ML_IMAGES_HOME`` (SQLite databases, compute
logs) are searched for every form of the key.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.errors import SearchQuotaError, SearchUnavailableError
from ml_images.redaction import install_log_redaction, redact, secrets_in_environment
from ml_images.search.factory import build_http_session
from ml_images.search.providers import (
    BraveImageSearch,
    GoogleCseImageSearch,
    SearxngImageSearch,
    SerpApiImageSearch,
)
from ml_images_tests.pipeline.support import Catalog, photo_bytes
from ml_images_tests.search.payloads import (
    brave_payload,
    brave_result,
    google_item,
    google_payload,
    searxng_payload,
    searxng_result,
    serpapi_payload,
    serpapi_result,
)

# Characters that differ in every encoding: "+" (a space in form encoding), "/", "=", a space and a non-ASCII one.
KEY = "Sk+/live=Key 42é-0123456789"
CX = "cx+engine/id=ÿ-987654"


def forms(secret: str) -> set[str]:
    """Every form in which ``secret`` could reach a log or a file."""
    quoted = quote(secret, safe="")
    return {
        secret,
        quoted,
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),  # lower-case escapes
        quote(secret),  # "/" kept
        quote_plus(secret),
        quote(quoted, safe=""),  # encoded twice
        json.dumps(secret)[1:-1],  # \u00e9
        json.dumps(secret, ensure_ascii=False)[1:-1].replace("/", "\\/"),
    }


def echo(secret: str) -> str:
    """What a careless server writes back: the key in several encodings at once."""
    return f"bad key {secret} (as sent: {quote_plus(secret)}, {quote(secret, safe='')}, {json.dumps(secret)})"


# --- redaction: unit level ---------------------------------------------------------------------------------------


@pytest.fixture
def serpapi_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SERPAPI_API_KEY", KEY)
    return KEY


def test_every_encoding_of_a_key_is_redacted(serpapi_key: str) -> None:
    for form in forms(serpapi_key) | {serpapi_key.replace("/", "&#47;")}:
        text = f"GET /search.json?q=x&api_key={form}&ijn=0"
        assert redact(text) == "GET /search.json?q=x&api_key=***&ijn=0", form
    assert redact("nothing secret here") == "nothing secret here"


def test_credentials_of_every_kind_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", "postgresql+psycopg2://shop:p%40ssw0rd-db@127.0.0.1:5432/shop")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("SEARXNG_URL", "http://searx:basic-auth-pw@127.0.0.1:8888/?token=searx-token-123")
    monkeypatch.setenv("DEPLOY_WEBHOOK_TOKEN", "hook-token-abcdef")
    found = secrets_in_environment()
    assert {"p@ssw0rd-db", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "basic-auth-pw", "searx-token-123"} <= found
    assert "hook-token-abcdef" in found
    text = "db p@ssw0rd-db / p%40ssw0rd-db, aws wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY, basic-auth-pw"
    assert redact(text) == "db *** / ***, aws ***, ***"


def test_a_short_password_is_redacted_only_where_it_stands_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", "postgresql://u:pas@127.0.0.1:5432/db")
    assert (
        redact("postgresql://u:pas@127.0.0.1:5432/db passed port") == "postgresql://u:***@127.0.0.1:5432/db passed port"
    )


def test_log_records_are_redacted_whatever_the_handler(serpapi_key: str) -> None:
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("ml_images_tests.secrets")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("calling %s", f"https://127.0.0.1/search.json?api_key={quote_plus(serpapi_key)}")
        try:
            raise requests.ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: /x?api_key={KEY}")
        except requests.ConnectionError:
            logger.warning("search failed", exc_info=True)
        logger.info("stack", stack_info=True, extra={"note": "x"})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "api_key=***" in output
    assert "Max retries exceeded with url: /x?api_key=***" in output  # the traceback is kept, redacted
    assert not any(form in output for form in forms(serpapi_key))


# --- providers: the key never leaves in an error or a log line ---------------------------------------------------


def _quiet_error(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("provider_name", ["brave", "serpapi", "google", "searxng"])
def test_provider_errors_echoing_the_key_are_scrubbed(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture, provider_name: str, status: int
) -> None:
    session = build_http_session()
    text = echo(KEY) + " " + echo(CX)
    bodies: dict[str, Any] = {
        "brave": {"error": {"code": text, "detail": text}},
        "serpapi": {"error": text},
        "google": {"error": {"errors": [{"reason": text}], "status": text}},
        "searxng": {"error": text},
    }
    httpserver.expect_request("/api").respond_with_handler(lambda _r: _quiet_error(status, bodies[provider_name]))
    endpoint = httpserver.url_for("/api")
    provider: Any
    if provider_name == "brave":
        provider = BraveImageSearch(KEY, session, endpoint)
    elif provider_name == "serpapi":
        provider = SerpApiImageSearch(KEY, session, endpoint)
    elif provider_name == "google":
        provider = GoogleCseImageSearch(KEY, CX, session, endpoint)
    else:
        base = httpserver.url_for("/").replace("http://", f"http://searx:{quote(KEY, safe='')}@")
        provider = SearxngImageSearch(base, session, endpoint)
    caplog.set_level(logging.DEBUG)

    with pytest.raises((SearchQuotaError, SearchUnavailableError)) as raised:
        provider.fetch_page("q", 0, 10)

    message = str(raised.value)
    assert "***" in message or provider_name == "searxng"  # SearXNG's error bodies are not read for details
    error = raised.value
    assert error.__cause__ is None  # requests' own exceptions (full URL inside) are never chained
    assert error.__context__ is None or error.__suppress_context__
    everything = message + repr(provider) + caplog.text
    assert f"127.0.0.1:{httpserver.port}" in caplog.text  # urllib3's DEBUG line with the URL is there...
    for secret in (KEY, CX) if provider_name == "google" else (KEY,):
        for form in forms(secret):
            assert form not in everything, form  # ...without the key in any form


# --- the CLI, end to end -----------------------------------------------------------------------------------------


class ProviderServer:
    """One loopback server speaking the four providers' APIs and serving the images they return.

    A query containing ``FAILING`` gets an error whose body echoes the credential; any other query gets
    two results pointing at generated photos on the same server.
    """

    def __init__(self, server: HTTPServer, provider: str) -> None:
        self.server = server
        self.provider = provider
        self.images = {f"{i}.jpg": photo_bytes(9000 + i) for i in range(2)}
        self.searches = 0
        server.expect_request("/img/0.jpg").respond_with_data(self.images["0.jpg"], content_type="image/jpeg")
        server.expect_request("/img/1.jpg").respond_with_data(self.images["1.jpg"], content_type="image/jpeg")
        for path in ("/res/v1/images/search", "/search.json", "/customsearch/v1", "/search"):
            server.expect_request(path).respond_with_handler(self._search)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def _authorised(self, request: Request) -> bool:
        if self.provider == "brave":
            return request.headers.get("X-Subscription-Token") == KEY  # latin-1 both ways
        if self.provider == "serpapi":
            return request.args.get("api_key") == KEY
        if self.provider == "google":
            return request.args.get("key") == KEY and request.args.get("cx") == CX
        auth = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"searx:{KEY}".encode("latin-1")).decode()  # as requests encodes it
        return auth == f"Basic {expected}"

    def _search(self, request: Request) -> Response:
        self.searches += 1
        if not self._authorised(request):
            return _quiet_error(401, {"error": "unauthorised: " + echo(KEY)})
        text = echo(KEY) + " / " + echo(CX) + " / url " + request.url
        if "FAILING" in request.args.get("q", ""):
            if self.provider == "brave":
                return _quiet_error(500, {"type": "ErrorResponse", "error": {"code": text, "detail": text}})
            if self.provider == "serpapi":
                return _quiet_error(401, {"error": "Invalid API key. " + text})
            if self.provider == "google":
                return _quiet_error(403, {"error": {"code": 403, "message": text, "errors": [{"reason": text}]}})
            return _quiet_error(500, {"error": "engine error: " + text})
        images = [self.url("/img/0.jpg"), self.url("/img/1.jpg")]
        pages = [f"http://127.0.0.1:{self.server.port}/p/{i}" for i in range(2)]
        payload: dict[str, Any]
        if self.provider == "brave":
            payload = brave_payload(
                [brave_result(u, p, width=640, height=640) for u, p in zip(images, pages, strict=True)]
            )
        elif self.provider == "serpapi":
            results = [
                serpapi_result(i, u, p, width=640, height=640)
                for i, (u, p) in enumerate(zip(images, pages, strict=True))
            ]
            payload = serpapi_payload(results, next_page=False)
        elif self.provider == "google":
            payload = google_payload(
                [google_item(u, p, width=640, height=640) for u, p in zip(images, pages, strict=True)]
            )
            payload["queries"].pop("nextPage", None)
        else:
            payload = searxng_payload(
                [searxng_result(u, p, resolution="640 x 640") for u, p in zip(images, pages, strict=True)]
            )
        return Response(json.dumps(payload), content_type="application/json")


def provider_environment(server: ProviderServer) -> dict[str, str]:
    env = {"ML_IMAGES_SEARCH_PROVIDER": server.provider, "ML_IMAGES_ALLOWED_PRIVATE_HOSTS": "127.0.0.1"}
    if server.provider == "brave":
        env |= {"BRAVE_SEARCH_API_KEY": KEY, "ML_IMAGES_SEARCH_ENDPOINT": server.url("/res/v1/images/search")}
    elif server.provider == "serpapi":
        env |= {"SERPAPI_API_KEY": KEY, "ML_IMAGES_SEARCH_ENDPOINT": server.url("/search.json")}
    elif server.provider == "google":
        env |= {
            "GOOGLE_API_KEY": KEY,
            "GOOGLE_SEARCH_ENGINE_ID": CX,
            "ML_IMAGES_SEARCH_ENDPOINT": server.url("/customsearch/v1"),
        }
    else:  # an instance behind basic auth: the password is in SEARXNG_URL
        origin = urlsplit(server.url("/"))
        env["SEARXNG_URL"] = f"http://searx:{quote(KEY, safe='')}@{origin.netloc}"
    return env


@pytest.fixture
def provider_server(request: pytest.FixtureRequest) -> Iterator[ProviderServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield ProviderServer(server, request.param)
    finally:
        server.clear()
        server.stop()


def files_containing(root: Path, needles: set[str]) -> list[str]:
    found: list[str] = []
    encoded = {n.encode("utf-8") for n in needles}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found.extend(f"{path.relative_to(root)}: {n!r}" for n in encoded if n in data)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("provider_server", "verbose"),
    [("brave", True), ("serpapi", True), ("google", True), ("searxng", True), ("serpapi", False)],
    indirect=["provider_server"],
)
def test_fetch_leaks_no_key_anywhere(provider_server: ProviderServer, tmp_path: Path, verbose: bool) -> None:
    home = Path(os.environ["ML_IMAGES_HOME"])
    dagster_home = tmp_path / "dagster_home"
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        found = catalog.add_product("GOOD1", age=timedelta(hours=3))
        failing = catalog.add_product("FAILING", age=timedelta(hours=1))
    finally:
        catalog.close()
    env = {
        **os.environ,
        **provider_environment(provider_server),
        "DAGSTER_HOME": str(dagster_home),
        "ML_IMAGES_STEP_MAX_RETRIES": "0",
        "PYTHONPATH": os.environ.get("SS_OLD_CODE", ""),
    }

    result = subprocess.run(
        [sys.executable, "-m", "ml_images.cli", *(["-v"] if verbose else []), "fetch", "--batch-size", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    output = result.stdout + result.stderr
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        stored = catalog.images(found)
        [attempt] = catalog.attempts(failing)
    finally:
        catalog.close()
    # Both paths really ran: the first product's images are stored, the second one's search failed...
    assert len(stored) == 2, output
    assert attempt.reason_code in ("search_unavailable", "search_quota"), output
    assert provider_server.searches >= 2
    # ...verbosely when asked (urllib3's DEBUG lines are there), and the echoed key was seen and masked.
    assert ('"GET /' in result.stderr) is verbose, output
    assert "***" in output
    assert "***" in str(attempt.reason)
    secrets = forms(KEY) | (forms(CX) if provider_server.provider == "google" else set())
    leaks = [f"output: {form!r}" for form in secrets if form in output]
    leaks += files_containing(dagster_home, secrets)
    leaks += files_containing(home, secrets)
    assert leaks == []
    if verbose:
        compute_logs = [p for p in dagster_home.rglob("*") if p.is_file() and p.suffix in (".err", ".out")]
        assert any(b'"GET /' in p.read_bytes() for p in compute_logs), "the compute logs hold the DEBUG lines too"


@pytest.mark.slow
@pytest.mark.parametrize("provider_server", ["serpapi"], indirect=True)
def test_runs_launched_by_dagster_with_debug_python_logs_leak_no_key(
    provider_server: ProviderServer, tmp_path: Path
) -> None:
    """Outside ``ml-images``: ``dagster job execute`` / ``dagster asset materialize``, with an instance that turns
    urllib3's and the project's DEBUG records into Dagster events (stored in the run's event log)."""
    home = Path(os.environ["ML_IMAGES_HOME"])
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        "python_logs:\n  python_log_level: DEBUG\n  managed_python_loggers: [urllib3, ml_images]\n"
        "telemetry:\n  enabled: false\n"
    )
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        found = catalog.add_product("GOOD1", age=timedelta(hours=3))
        failing = catalog.add_product("FAILING", age=timedelta(hours=1))
    finally:
        catalog.close()
    env = {
        **os.environ,
        **provider_environment(provider_server),
        "DAGSTER_HOME": str(dagster_home),
        "ML_IMAGES_STEP_MAX_RETRIES": "0",
    }
    dagster = str(Path(sys.executable).with_name("dagster"))
    location = ["-m", "ml_images.definitions"]
    commands = [
        [dagster, "job", "execute", *location, "-j", "fetch_ml_images"],  # registers the partitions
        *(
            [dagster, "asset", "materialize", *location, "--select", "product_images", "--partition", str(pid)]
            for pid in (found, failing)
        ),
    ]
    output = ""
    for command in commands:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
        output += result.stdout + result.stderr

    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        assert len(catalog.images(found)) == 2, output
        [attempt] = catalog.attempts(failing)
    finally:
        catalog.close()
    assert attempt.reason_code == "search_quota", output
    assert '"GET /search.json?' in output  # urllib3's DEBUG lines were logged, as Dagster events
    assert "api_key=***" in output
    secrets = forms(KEY)
    leaks = [f"output: {form!r}" for form in secrets if form in output]
    leaks += files_containing(dagster_home, secrets)
    leaks += files_containing(home, secrets)
    assert leaks == []
