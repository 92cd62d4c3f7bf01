"""Issue 13's variables: distributor URL rewrites, search mode, rate limit, fallback provider — read, defaulted, and
a bad value stopping start-up with the variable named (``ml-images`` exits 2 with one line)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ml_images.errors import ConfigurationError
from ml_images.search.distributor import SearchMode
from ml_images.search.factory import build_search_service
from ml_images.search.rate_limit import DEFAULT_RATES, RateLimitedProvider
from ml_images.search.service import ImageSearchService
from ml_images.settings import Settings
from ml_images_tests.pipeline.support import running_web, web_environment


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.search_mode is SearchMode.FILL
    assert not settings.distributor_url_rewrites
    assert settings.search_rate_limit is None
    assert (settings.search_fallback, settings.search_fallback_endpoint) == (None, None)
    # Unset: each provider's documented default (its free plan).
    assert {name: settings.rate_limit_for(name) for name in DEFAULT_RATES} == dict(DEFAULT_RATES)


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "ML_IMAGES_DISTRIBUTOR_URL_REWRITES": r'[["/sm/(\\d+)", "/lg/\\1"], ["^http:", "https:"]]',
            "ML_IMAGES_SEARCH_MODE": " Fallback ",
            "ML_IMAGES_SEARCH_RATE_LIMIT": "2.5",
            "ML_IMAGES_SEARCH_FALLBACK": "SearXNG",
            "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT": "http://127.0.0.1:8888/search",
        }
    )
    assert settings.distributor_url_rewrites.apply("http://127.0.0.1/sm/42.jpg") == "https://127.0.0.1/lg/42.jpg"
    assert settings.search_mode is SearchMode.FALLBACK
    assert settings.rate_limit_for("brave") == settings.rate_limit_for("searxng") == 2.5
    assert (settings.search_fallback, settings.search_fallback_endpoint) == ("searxng", "http://127.0.0.1:8888/search")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ML_IMAGES_DISTRIBUTOR_URL_REWRITES", "[[", "not valid JSON"),
        ("ML_IMAGES_DISTRIBUTOR_URL_REWRITES", '{"/sm/": "/lg/"}', "JSON list"),
        ("ML_IMAGES_DISTRIBUTOR_URL_REWRITES", '[["(unclosed", "x"]]', "does not compile"),
        ("ML_IMAGES_DISTRIBUTOR_URL_REWRITES", '[["/sm/", "\\\\2"]]', "replacement is invalid"),
        ("ML_IMAGES_SEARCH_MODE", "sometimes", "fill, fallback, never"),
        ("ML_IMAGES_SEARCH_RATE_LIMIT", "0", "positive number"),
        ("ML_IMAGES_SEARCH_RATE_LIMIT", "fast", "positive number"),
        ("ML_IMAGES_SEARCH_RATE_LIMIT", "nan", "positive number"),
        ("ML_IMAGES_SEARCH_FALLBACK", "bing", "brave, serpapi, google, searxng"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=name) as raised:
        Settings.from_env({name: value})
    assert fragment in str(raised.value)


def test_the_fallback_needs_its_providers_usual_credentials() -> None:
    settings = Settings.from_env({"BRAVE_SEARCH_API_KEY": "k", "ML_IMAGES_SEARCH_FALLBACK": "serpapi"})
    with pytest.raises(
        ConfigurationError, match="SERPAPI_API_KEY is not set; it is required for ML_IMAGES_SEARCH_FALLBACK"
    ):
        build_search_service(settings)


def test_each_provider_gets_its_own_bucket_at_the_configured_rate() -> None:
    settings = Settings.from_env(
        {
            "BRAVE_SEARCH_API_KEY": "k",
            "ML_IMAGES_SEARCH_FALLBACK": "searxng",
            "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT": "http://127.0.0.1:8888/search",
            "ML_IMAGES_SEARCH_RATE_LIMIT": "3",
        }
    )
    service = build_search_service(settings)
    assert isinstance(service.fallback, ImageSearchService)
    primary, fallback = service.provider, service.fallback.provider
    assert isinstance(primary, RateLimitedProvider)
    assert isinstance(fallback, RateLimitedProvider)
    assert (primary.name, fallback.name) == ("brave", "searxng")
    assert primary.bucket is not fallback.bucket
    assert primary.bucket.rate == fallback.bucket.rate == 3
    # The process's one bucket per endpoint: a second service shares it.
    assert build_search_service(settings).provider.bucket is primary.bucket  # type: ignore[attr-defined]


@pytest.mark.slow
def test_ml_images_fetch_stops_on_a_bad_rewrite_rule() -> None:
    with running_web() as web:
        env = {
            **os.environ,
            **web_environment(web),
            "ML_IMAGES_STEP_MAX_RETRIES": "0",
            "ML_IMAGES_DISTRIBUTOR_URL_REWRITES": '[["/sm/(", "/lg/"]]',
        }
        result = subprocess.run(
            [sys.executable, "-m", "ml_images.cli", "fetch"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]], output
    assert lines[0].startswith("ml-images: configuration error: ML_IMAGES_DISTRIBUTOR_URL_REWRITES entry 0"), output
    assert web.search_calls == 0
