"""Fixtures shared by the whole suite.

* Network: pytest-socket (``--allow-hosts=127.0.0.1,::1`` in pyproject's addopts) blocks every connection off
  this machine in every test, so a broken SSRF guard fails loudly instead of reaching 169.254.169.254.
* Databases: ``database_url`` runs a test on SQLite and on PostgreSQL. PostgreSQL tests get a database of
  their own, dropped afterwards. Set ``ML_IMAGES_TEST_POSTGRES_URL`` to point at a server (default
  ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``). When it is unreachable the tests skip locally, but
  fail when ``CI`` or ``ML_IMAGES_REQUIRE_POSTGRES`` is set, so CI can never go green without them.
* Django: ``django_catalog`` (SQLite and PostgreSQL) and ``django_catalog_at(url)`` migrate the original Django
  app's tables into a test database with Django itself (``ml_images_tests/django_catalog``).
* Search rate limit: ``ML_IMAGES_SEARCH_RATE_LIMIT`` is 1000/s in every test (the search servers are local; the
  providers' real defaults, 1/s for Brave, would only slow the suite down). The rate-limit tests set their own.
* S3: ``s3_endpoint`` is a real moto S3 API server on 127.0.0.1 (server mode, not an in-process mock).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# The original Django app's tables, created by Django (see ml_images_tests/django_catalog).
from ml_images_tests.django_catalog.fixtures import django_catalog, django_catalog_at  # noqa: F401

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "BRAVE_SEARCH_API_KEY",
    "SERPAPI_API_KEY",
    "GOOGLE_API_KEY",
    "ML_IMAGES_DATABASE_URL",
    "ML_IMAGES_CATALOG_LAYOUT",
    "ML_IMAGES_DJANGO_APP_LABEL",
    "ML_IMAGES_SEARCH_ENDPOINT",
    "ML_IMAGES_SEARCH_FALLBACK",
    "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT",
    "ML_IMAGES_SEARCH_MODE",
    "ML_IMAGES_DISTRIBUTOR_URL_REWRITES",
    "ML_IMAGES_HOME",
    "DAGSTER_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


def postgres_required() -> bool:
    return bool(os.environ.get("CI")) or bool(os.environ.get("ML_IMAGES_REQUIRE_POSTGRES"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's credentials, endpoints or proxies; each gets its own ML_IMAGES_HOME."""
    for name in _CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ML_IMAGES_HOME", str(tmp_path / "ml_images_home"))
    monkeypatch.setenv("ML_IMAGES_SEARCH_RATE_LIMIT", "1000")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("ML_IMAGES_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "no usable server here"
        message = (
            f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)} ({exc!s:.120}). "
            "Start it or set ML_IMAGES_TEST_POSTGRES_URL to run the PostgreSQL tests."
        )
        if postgres_required():
            pytest.fail(message + " (CI / ML_IMAGES_REQUIRE_POSTGRES is set: these tests must run)")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"mlimg_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL (empty database, not migrated)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API endpoint (moto in server mode) on 127.0.0.1; shared by the session, stopped at the end."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh bucket on the moto server, with dummy credentials in the environment (boto3 needs some)."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"mlimg-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return {"endpoint_url": s3_server, "bucket": bucket, "region": "us-east-1"}


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver binds 127.0.0.1 explicitly (``localhost`` may resolve to ::1 first)."""
    return ("127.0.0.1", 0)
