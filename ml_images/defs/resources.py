"""Dagster resources: thin shells that build the plain services from configuration.

Every field maps to an environment variable of the README. ``default_resources()`` wires a field to an ``EnvVar``
only when the variable is set when the code location loads; otherwise the field stays ``None`` and the service
falls back to ``Settings.from_env()``'s default, so the CLI and the UI behave alike. ``EnvVar`` values are resolved
at run time and shown in the UI by name, never by value, which keeps API keys out of the run config.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from dagster_aws.s3 import S3Resource
from pydantic import Field
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog import db
from ml_images.errors import ConfigurationError, SchemaNotMigratedError
from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images.processing.execution_providers import check_available
from ml_images.settings import SEARCH_PROVIDERS, Settings, parse_host_list
from ml_images.storage.base import ImageStore
from ml_images.storage.factory import S3_MAX_ATTEMPTS, build_image_store, build_s3_client

# One engine per database URL per process: the CLI runs many batches in one process and each run re-initialises
# its resources; a new pool per run would leak connections.
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def env_var_if_set(name: str) -> EnvVar | None:
    value = os.environ.get(name)
    return EnvVar(name) if value is not None and value.strip() else None


class CatalogDatabaseResource(ConfigurableResource):
    """The catalog database (SQLAlchemy). Refuses to run on a schema that is missing or behind."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (ML_IMAGES_DATABASE_URL); default: SQLite file in ML_IMAGES_HOME.",
    )

    def settings(self) -> Settings:
        base = Settings.from_env()
        return replace(base, database_url=self.database_url) if self.database_url else base

    def engine(self) -> Engine:
        url = self.settings().database_url
        with _ENGINES_LOCK:
            engine = _ENGINES.get(url)
            if engine is None:
                engine = db.create_catalog_engine(url)
                _ENGINES[url] = engine
            return engine

    def session_factory(self) -> sessionmaker[Session]:
        return db.make_session_factory(self.engine())

    def check_schema(self) -> None:
        url = make_url(self.settings().database_url)
        database = url.database
        # Connecting would create an empty SQLite file; a missing catalog is a configuration error, not a write.
        if (
            url.get_backend_name() == "sqlite"
            and database not in (None, "", ":memory:")
            and not Path(database).exists()
        ):
            raise SchemaNotMigratedError(f"the catalog database {database} does not exist; run `ml-images db upgrade`")
        db.ensure_schema_current(self.engine())

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.check_schema()


class ImageSearchResource(ConfigurableResource):
    """The image search provider. Keys come from the environment; they never appear in metadata or logs."""

    provider: str | None = Field(default=None, description="brave | serpapi | google | searxng")
    endpoint: str | None = Field(default=None, description="Override of the provider's endpoint URL.")
    brave_api_key: str | None = Field(default=None, description="BRAVE_SEARCH_API_KEY")
    serpapi_api_key: str | None = Field(default=None, description="SERPAPI_API_KEY")
    google_api_key: str | None = Field(default=None, description="GOOGLE_API_KEY")
    google_search_engine_id: str | None = Field(default=None, description="GOOGLE_SEARCH_ENGINE_ID")
    searxng_url: str | None = Field(default=None, description="SEARXNG_URL")
    image_search_count: int | None = Field(default=None, ge=1, description="IMAGE_SEARCH_COUNT: images per product.")
    allowed_private_hosts: str | None = Field(
        default=None, description="Comma-separated hosts exempt from the private-address block (demo, tests)."
    )

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with this resource's non-empty fields applied."""
        changes: dict[str, Any] = {}
        if self.provider:
            provider = self.provider.strip().lower()
            if provider not in SEARCH_PROVIDERS:
                raise ConfigurationError(
                    f"search provider must be one of {', '.join(SEARCH_PROVIDERS)}, got {self.provider!r}"
                )
            changes["search_provider"] = provider
        for name in (
            "brave_api_key",
            "serpapi_api_key",
            "google_api_key",
            "google_search_engine_id",
            "searxng_url",
            "image_search_count",
        ):
            value = getattr(self, name)
            if value not in (None, ""):
                changes[name] = value
        if self.endpoint:
            changes["search_endpoint"] = self.endpoint
        if self.allowed_private_hosts:
            changes["allowed_private_hosts"] = parse_host_list(self.allowed_private_hosts)
        return replace(settings, **changes)


def image_store_s3_resource(region_name: Any = None, endpoint_url: Any = None) -> S3Resource:
    """dagster-aws's ``S3Resource`` as the image store uses it: ``S3_MAX_ATTEMPTS`` attempts per call."""
    return S3Resource(region_name=region_name, endpoint_url=endpoint_url, max_attempts=S3_MAX_ATTEMPTS)


class ImageStoreResource(ConfigurableResource):
    """Where images go: S3 when a bucket is named, else a local folder.

    ``s3`` (dagster-aws's ``S3Resource``) holds the S3 configuration: region, endpoint, attempts, credentials. The
    client is built by ``build_s3_client`` from those fields plus the connect and read timeouts
    (``ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS``, ``ML_IMAGES_S3_READ_TIMEOUT_SECONDS``), which
    ``S3Resource.get_client()`` cannot take.
    """

    bucket: str | None = Field(default=None, description="AWS_STORAGE_BUCKET_NAME; unset = local folder store.")
    public_base_url: str | None = Field(default=None, description="ML_IMAGES_PUBLIC_BASE_URL")
    s3: S3Resource = Field(
        default_factory=image_store_s3_resource, description="S3 client settings (region, endpoint, attempts)."
    )

    def apply(self, settings: Settings) -> Settings:
        changes: dict[str, Any] = {}
        if self.bucket:
            changes["bucket"] = self.bucket
        if self.public_base_url:
            changes["public_base_url"] = self.public_base_url
        if self.s3.region_name:
            changes["s3_region"] = self.s3.region_name
        if self.s3.endpoint_url:
            changes["aws_endpoint_url"] = self.s3.endpoint_url
        return replace(settings, **changes)

    def build_store(self, settings: Settings) -> ImageStore:
        resolved = self.apply(settings)
        if resolved.bucket:
            return build_image_store(resolved, s3_client=build_s3_client(resolved, self.s3))
        return build_image_store(resolved)


class BackgroundRemoverResource(ConfigurableResource):
    """rembg, one session per process shared by every thread; the model must be installed before a run starts."""

    model_name: str | None = Field(default=None, description="ML_IMAGES_REMBG_MODEL (default u2netp).")

    def resolved_model(self) -> str:
        return self.model_name or Settings.from_env().rembg_model

    def remover(self) -> BackgroundRemover:
        """The shared remover; a ConfigurationError when ML_IMAGES_ONNX_PROVIDERS asks for a provider this
        onnxruntime build lacks (before any product is claimed)."""
        remover = get_shared_remover(self.resolved_model(), Settings.from_env().onnx_providers)
        check_available(remover.providers)
        return remover

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Fails the run at start-up with ModelNotInstalledError (names the model and `ml-images models install`).
        self.remover().ensure_available()


def default_resources() -> dict[str, ConfigurableResource]:
    """The resources of the code location, from the environment at load time."""
    return {
        "catalog": CatalogDatabaseResource(database_url=env_var_if_set("ML_IMAGES_DATABASE_URL")),
        "image_search": ImageSearchResource(
            provider=env_var_if_set("ML_IMAGES_SEARCH_PROVIDER"),
            endpoint=env_var_if_set("ML_IMAGES_SEARCH_ENDPOINT"),
            brave_api_key=env_var_if_set("BRAVE_SEARCH_API_KEY"),
            serpapi_api_key=env_var_if_set("SERPAPI_API_KEY"),
            google_api_key=env_var_if_set("GOOGLE_API_KEY"),
            google_search_engine_id=env_var_if_set("GOOGLE_SEARCH_ENGINE_ID"),
            searxng_url=env_var_if_set("SEARXNG_URL"),
            allowed_private_hosts=env_var_if_set("ML_IMAGES_ALLOWED_PRIVATE_HOSTS"),
        ),
        "image_store": ImageStoreResource(
            bucket=env_var_if_set("AWS_STORAGE_BUCKET_NAME"),
            public_base_url=env_var_if_set("ML_IMAGES_PUBLIC_BASE_URL"),
            s3=image_store_s3_resource(
                region_name=env_var_if_set("AWS_S3_REGION_NAME"), endpoint_url=env_var_if_set("AWS_ENDPOINT_URL")
            ),
        ),
        "background_remover": BackgroundRemoverResource(model_name=env_var_if_set("ML_IMAGES_REMBG_MODEL")),
    }
