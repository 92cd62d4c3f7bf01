"""Dagster resources, and the clients they return.

Each resource holds its own configuration and hands out its service: ``catalog.selection()`` and
``catalog.recorder()``, ``image_search.search_service()``, ``image_store.store()``,
``background_remover.remover()``. ``default_resources(settings)`` fills the fields from the settings registry
(``ml_images.settings``); a secret or a URL that may hold one is passed as an ``EnvVar``, resolved when a run
starts and shown in the UI by name, never by value. A field left unset takes the registry's value. The CLI gets its
clients the same way, through Dagster's ``build_resources`` on the same resource objects.
"""

from __future__ import annotations

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
from ml_images.catalog.recorder import ImageRecorder
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.errors import ConfigurationError, SchemaNotMigratedError
from ml_images.orchestration.selection_services import SelectionServices
from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images.processing.execution_providers import check_available
from ml_images.search.cache import SearchCache
from ml_images.search.factory import build_search_service
from ml_images.search.query import QueryConstructor
from ml_images.search.service import ImageSearchService
from ml_images.settings import SEARCH_PROVIDERS, Settings, current_settings, default_database_url, parse_host_list
from ml_images.storage.base import ImageStore
from ml_images.storage.factory import S3_MAX_ATTEMPTS, build_image_store, build_s3_client

# One engine per database URL per process: the CLI runs many batches in one process and each run re-initialises
# its resources; a new pool per run would leak connections.
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _env_var(settings_value: object, name: str) -> EnvVar | None:
    """``EnvVar(name)`` when the registry has a value for it (so the UI shows the name, never the value)."""
    return EnvVar(name) if settings_value not in (None, "") else None


class CatalogDatabaseResource(ConfigurableResource):
    """The catalog database (SQLAlchemy) and its readers and writers. Refuses to run on a schema that is missing
    or behind."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (ML_IMAGES_DATABASE_URL); default: SQLite file in ML_IMAGES_HOME.",
    )

    def settings(self) -> Settings:
        """The process's settings with this resource's database."""
        base = current_settings()
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

    def selection(self) -> SelectionServices:
        """Which products need images: the publication rules, the cooldown and the claims."""
        settings = self.settings()
        product_filter = MercadoLibreFilter(
            self.session_factory(),
            parse_publication_rules(settings.publication_rules_json),
            freshness_hours=settings.freshness_hours,
        )
        selector = ImageCandidateSelector(
            product_filter,
            cooldown_hours=settings.no_images_cooldown_hours,
            claim_lease_seconds=settings.claim_lease_seconds,
        )
        return SelectionServices(product_filter=product_filter, selector=selector, queries=QueryConstructor())

    def recorder(self) -> ImageRecorder:
        """Claims, attempts and picture rows (``image_fetch_attempt``, ``product_image``)."""
        return ImageRecorder(self.session_factory(), lease_seconds=self.settings().claim_lease_seconds)

    def search_cache(self) -> SearchCache:
        return SearchCache(self.session_factory(), ttl_hours=self.settings().search_cache_ttl_hours)

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

    def settings(self) -> Settings:
        """The process's settings with this resource's fields (those set) in place of the registry's."""
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
        return replace(current_settings(), **changes)

    def search_service(self, cache: SearchCache | None = None) -> ImageSearchService:
        """The rate-limited provider (with its fallback when configured); a ``ConfigurationError`` names a
        missing key."""
        return build_search_service(self.settings(), cache=cache)


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
    presigned_link_hours: float | None = Field(
        default=None, ge=0, le=168, description="ML_IMAGES_PRESIGNED_LINK_HOURS (0: no presigned links in the UI)."
    )
    s3: S3Resource = Field(
        default_factory=image_store_s3_resource, description="S3 client settings (region, endpoint, attempts)."
    )

    def settings(self) -> Settings:
        changes: dict[str, Any] = {}
        if self.bucket:
            changes["bucket"] = self.bucket
        if self.public_base_url:
            changes["public_base_url"] = self.public_base_url
        if self.presigned_link_hours is not None:
            changes["presigned_link_hours"] = self.presigned_link_hours
        if self.s3.region_name:
            changes["s3_region"] = self.s3.region_name
        if self.s3.endpoint_url:
            changes["aws_endpoint_url"] = self.s3.endpoint_url
        return replace(current_settings(), **changes)

    def store(self) -> ImageStore:
        settings = self.settings()
        if settings.bucket:
            return build_image_store(settings, s3_client=build_s3_client(settings, self.s3))
        return build_image_store(settings)

    def build_store(self, settings: Settings | None = None) -> ImageStore:
        """``store()``; ``settings`` is ignored (kept for callers written before the resource held its
        configuration)."""
        return self.store()


class BackgroundRemoverResource(ConfigurableResource):
    """rembg, one session per process shared by every thread; the model must be installed before a run starts."""

    model_name: str | None = Field(default=None, description="ML_IMAGES_REMBG_MODEL (default u2netp).")

    def resolved_model(self) -> str:
        return self.model_name or current_settings().rembg_model

    def remover(self) -> BackgroundRemover:
        """The shared remover; a ConfigurationError when ML_IMAGES_ONNX_PROVIDERS asks for a provider this
        onnxruntime build lacks (before any product is claimed)."""
        remover = get_shared_remover(self.resolved_model(), current_settings().onnx_providers)
        check_available(remover.providers)
        return remover

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Fails the run at start-up with ModelNotInstalledError (names the model and `ml-images models install`).
        self.remover().ensure_available()


def default_resources(settings: Settings | None = None) -> dict[str, ConfigurableResource]:
    """The resources of the code location, configured from ``settings`` (default: the process's)."""
    s = current_settings() if settings is None else settings
    return {
        "catalog": CatalogDatabaseResource(
            database_url=_env_var(
                s.database_url if s.database_url != default_database_url(s.home) else None, "ML_IMAGES_DATABASE_URL"
            )
        ),
        "image_search": ImageSearchResource(
            provider=s.search_provider,
            endpoint=_env_var(s.search_endpoint, "ML_IMAGES_SEARCH_ENDPOINT"),
            brave_api_key=_env_var(s.brave_api_key, "BRAVE_SEARCH_API_KEY"),
            serpapi_api_key=_env_var(s.serpapi_api_key, "SERPAPI_API_KEY"),
            google_api_key=_env_var(s.google_api_key, "GOOGLE_API_KEY"),
            google_search_engine_id=_env_var(s.google_search_engine_id, "GOOGLE_SEARCH_ENGINE_ID"),
            searxng_url=_env_var(s.searxng_url, "SEARXNG_URL"),
            image_search_count=s.image_search_count,
            # Unset: the registry's parsed list is used as is (its canonical form is not re-parsed).
            allowed_private_hosts=None,
        ),
        "image_store": ImageStoreResource(
            bucket=s.bucket,
            public_base_url=s.public_base_url,
            presigned_link_hours=s.presigned_link_hours,
            s3=image_store_s3_resource(
                region_name=s.s3_region, endpoint_url=_env_var(s.aws_endpoint_url, "AWS_ENDPOINT_URL")
            ),
        ),
        "background_remover": BackgroundRemoverResource(model_name=s.rembg_model),
    }
