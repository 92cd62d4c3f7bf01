"""Configuration read from the environment (documented in the README).

``Settings.from_env()`` is the one place that turns environment variables into typed values. Dagster
resources receive the same variables through ``EnvVar`` (see ``ml_images.defs.resources``) and
fall back to these defaults when a variable is unset, so the CLI and the UI behave identically.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ml_images.catalog.rules import RULES_ENV_VAR, parse_publication_rules
from ml_images.download.address_policy import format_allowed_host, parse_allowed_host
from ml_images.errors import ConfigurationError
from ml_images.processing.execution_providers import DEFAULT_PROVIDERS, ONNX_PROVIDERS_ENV, parse_providers
from ml_images.processing.results import COVER_POLICIES
from ml_images.search.distributor import SEARCH_MODE_ENV_VAR, URL_REWRITES_ENV_VAR, SearchMode, UrlRewrites
from ml_images.search.rate_limit import RATE_LIMIT_ENV_VAR, parse_rate_limit

SEARCH_PROVIDERS = ("brave", "serpapi", "google", "searxng")
# S3 canned ACLs; objects are private (no ACL sent) unless ML_IMAGES_S3_ACL names one of these.
S3_CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """A number from the environment; blank or unset gives ``default``; bad values name the variable."""
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum:g}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(_get(env, "ML_IMAGES_HOME") or "./var").expanduser().resolve()


def default_database_url(home: Path) -> str:
    return f"sqlite:///{home / 'catalog.db'}"


def check_database_url(url: str, name: str = "ML_IMAGES_DATABASE_URL") -> str:
    """``url`` when SQLAlchemy can parse it and knows its backend; else a ``ConfigurationError`` that never
    repeats the value (it may hold a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"{name} is not a SQLAlchemy URL like postgresql+psycopg2://user:password@host:5432/database or "
            "sqlite:////path/catalog.db (the value is not shown: it may hold a password)"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{name} names a database backend SQLAlchemy does not know: {parsed.drivername!r} "
            "(use postgresql+psycopg2:// or sqlite:///)"
        ) from None
    return url


def ensure_writable_folder(path: Path, name: str) -> Path:
    """Creates ``path`` if needed and proves it writable; a ``ConfigurationError`` naming the variable otherwise."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{name}: {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"{name}: the folder {path} cannot be created or written ({exc.strerror or type(exc).__name__})"
        ) from None
    return path


def parse_host_list(raw: str | None, name: str = "ML_IMAGES_ALLOWED_PRIVATE_HOSTS") -> frozenset[str]:
    """Comma-separated ``host`` or ``host:port`` entries (``[v6]:port`` for IPv6), in canonical form."""
    if not raw:
        return frozenset()
    entries = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            entries.add(format_allowed_host(*parse_allowed_host(item)))
        except ValueError as exc:
            raise ConfigurationError(f"{name}: {exc}") from None
    return frozenset(entries)


CATALOG_LAYOUTS = ("standalone", "django")
_APP_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def parse_catalog_layout(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(layout, Django app label) from ``ML_IMAGES_CATALOG_LAYOUT`` and ``ML_IMAGES_DJANGO_APP_LABEL``."""
    env = os.environ if env is None else env
    layout = (_get(env, "ML_IMAGES_CATALOG_LAYOUT") or "standalone").lower()
    if layout not in CATALOG_LAYOUTS:
        raise ConfigurationError(
            f"ML_IMAGES_CATALOG_LAYOUT must be one of {', '.join(CATALOG_LAYOUTS)}, got {layout!r}"
        )
    label = _get(env, "ML_IMAGES_DJANGO_APP_LABEL") or "aiecommerce"
    # The label becomes part of table names in SQL: an identifier only.
    if not _APP_LABEL.fullmatch(label):
        raise ConfigurationError(
            f"ML_IMAGES_DJANGO_APP_LABEL must be a Django app label (letters, digits, _), got {label!r}"
        )
    return layout, label


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    search_provider: str = "brave"
    search_endpoint: str | None = None
    brave_api_key: str | None = field(default=None, repr=False)
    serpapi_api_key: str | None = field(default=None, repr=False)
    google_api_key: str | None = field(default=None, repr=False)
    google_search_engine_id: str | None = None
    searxng_url: str | None = None
    image_search_count: int = 5
    bucket: str | None = None
    s3_region: str | None = None
    aws_endpoint_url: str | None = None
    public_base_url: str | None = None
    s3_acl: str | None = None
    s3_connect_timeout: float = 5.0
    s3_read_timeout: float = 10.0
    rembg_model: str = "u2netp"
    onnx_providers: tuple[str, ...] = DEFAULT_PROVIDERS
    allowed_private_hosts: frozenset[str] = frozenset()
    publication_rules_json: str | None = None
    freshness_hours: float = 24.0
    no_images_cooldown_hours: float = 24.0
    search_cache_ttl_hours: float = 168.0
    canvas_size: int = 1200
    unreachable_attempts: int = 3
    claim_lease_seconds: float = 60.0
    claim_heartbeat_seconds: float = 15.0
    cover_policy: str = "strict"
    cover_attempts: int = 3
    distributor_url_rewrites: UrlRewrites = field(default_factory=UrlRewrites)
    search_mode: SearchMode = SearchMode.FILL
    search_rate_limit: float | None = None  # requests per second; None: the provider's default (DEFAULT_RATES)
    search_fallback: str | None = None
    search_fallback_endpoint: str | None = None
    catalog_layout: str = "standalone"  # ML_IMAGES_CATALOG_LAYOUT: "standalone" or "django"
    django_app_label: str = "aiecommerce"  # ML_IMAGES_DJANGO_APP_LABEL: prefix of the Django tables

    def rate_limit_for(self, provider: str) -> float:
        """``ML_IMAGES_SEARCH_RATE_LIMIT`` when set (it applies to each provider in use), else the provider's
        documented default."""
        return self.search_rate_limit if self.search_rate_limit is not None else parse_rate_limit(None, provider)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = default_home(env)
        provider = (_get(env, "ML_IMAGES_SEARCH_PROVIDER") or "brave").lower()
        if provider not in SEARCH_PROVIDERS:
            raise ConfigurationError(
                f"ML_IMAGES_SEARCH_PROVIDER must be one of {', '.join(SEARCH_PROVIDERS)}, got {provider!r}"
            )
        s3_acl = _get(env, "ML_IMAGES_S3_ACL")
        if s3_acl is not None and s3_acl not in S3_CANNED_ACLS:
            raise ConfigurationError(f"ML_IMAGES_S3_ACL must be one of {', '.join(S3_CANNED_ACLS)}, got {s3_acl!r}")
        lease = env_number(env, "ML_IMAGES_CLAIM_LEASE_SECONDS", 60.0, minimum=1.0)
        heartbeat = env_number(env, "ML_IMAGES_CLAIM_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
        if heartbeat * 2 > lease:
            raise ConfigurationError(
                f"ML_IMAGES_CLAIM_HEARTBEAT_SECONDS ({heartbeat:g}) must be at most half of "
                f"ML_IMAGES_CLAIM_LEASE_SECONDS ({lease:g}), or live claims would be taken over"
            )
        fallback = _get(env, "ML_IMAGES_SEARCH_FALLBACK")
        fallback = fallback.lower() if fallback else None
        if fallback is not None and fallback not in SEARCH_PROVIDERS:
            raise ConfigurationError(
                f"ML_IMAGES_SEARCH_FALLBACK must be one of {', '.join(SEARCH_PROVIDERS)}, got {fallback!r}"
            )
        rate_raw = _get(env, RATE_LIMIT_ENV_VAR)
        cover_policy = (_get(env, "ML_IMAGES_COVER_POLICY") or "strict").lower()
        if cover_policy not in COVER_POLICIES:
            raise ConfigurationError(
                f"ML_IMAGES_COVER_POLICY must be one of {', '.join(COVER_POLICIES)}, got {cover_policy!r}"
            )
        database_url = _get(env, "ML_IMAGES_DATABASE_URL")
        rules = _get(env, RULES_ENV_VAR)
        parse_publication_rules(rules)  # a malformed value stops every command at once, naming the variable
        layout, app_label = parse_catalog_layout(env)
        return cls(
            home=home,
            database_url=check_database_url(database_url) if database_url else default_database_url(home),
            search_provider=provider,
            search_endpoint=_get(env, "ML_IMAGES_SEARCH_ENDPOINT"),
            brave_api_key=_get(env, "BRAVE_SEARCH_API_KEY"),
            serpapi_api_key=_get(env, "SERPAPI_API_KEY"),
            google_api_key=_get(env, "GOOGLE_API_KEY"),
            google_search_engine_id=_get(env, "GOOGLE_SEARCH_ENGINE_ID"),
            searxng_url=_get(env, "SEARXNG_URL"),
            image_search_count=_integer(env, "IMAGE_SEARCH_COUNT", 5),
            bucket=_get(env, "AWS_STORAGE_BUCKET_NAME"),
            s3_region=_get(env, "AWS_S3_REGION_NAME"),
            aws_endpoint_url=_get(env, "AWS_ENDPOINT_URL"),
            public_base_url=_get(env, "ML_IMAGES_PUBLIC_BASE_URL"),
            s3_acl=s3_acl,
            s3_connect_timeout=env_number(env, "ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            s3_read_timeout=env_number(env, "ML_IMAGES_S3_READ_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            rembg_model=_get(env, "ML_IMAGES_REMBG_MODEL") or "u2netp",
            onnx_providers=parse_providers(_get(env, ONNX_PROVIDERS_ENV)),
            allowed_private_hosts=parse_host_list(_get(env, "ML_IMAGES_ALLOWED_PRIVATE_HOSTS")),
            publication_rules_json=rules,
            freshness_hours=env_number(env, "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS", 24.0),
            no_images_cooldown_hours=env_number(env, "ML_IMAGES_NO_IMAGES_COOLDOWN_HOURS", 24.0),
            search_cache_ttl_hours=env_number(env, "ML_IMAGES_SEARCH_CACHE_TTL_HOURS", 168.0),
            canvas_size=_integer(env, "ML_IMAGES_CANVAS_SIZE", 1200, minimum=500),
            unreachable_attempts=_integer(env, "ML_IMAGES_UNREACHABLE_ATTEMPTS", 3),
            claim_lease_seconds=lease,
            claim_heartbeat_seconds=heartbeat,
            distributor_url_rewrites=UrlRewrites.parse(_get(env, URL_REWRITES_ENV_VAR)),
            search_mode=SearchMode.parse(_get(env, SEARCH_MODE_ENV_VAR)),
            search_rate_limit=parse_rate_limit(rate_raw, provider) if rate_raw is not None else None,
            search_fallback=fallback,
            search_fallback_endpoint=_get(env, "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT"),
            cover_policy=cover_policy,
            cover_attempts=_integer(env, "ML_IMAGES_COVER_ATTEMPTS", 3),
            catalog_layout=layout,
            django_app_label=app_label,
        )
