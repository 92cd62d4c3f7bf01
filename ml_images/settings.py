"""Configuration: the one place that reads the environment (documented in the README's "Configuration" table).

``VARIABLES`` is the registry: every variable the project reads, once, with its kind, documented default,
description and whether its value is a secret. ``Settings.from_env()`` turns the environment into typed values and
validates them all at once (a malformed value is a ``ConfigurationError`` naming the variable, never echoing a
secret); ``current_settings()`` is the process's validated copy. Resources, the sensor, the retry policy, the
executor and the CLI take their values from here; the README's table is generated from ``VARIABLES``
(``python -m ml_images.settings``), and a test fails when the two disagree.

Hand-written rather than pydantic-settings: most values go through the domain's own parsers (publication rules,
URL rewrites, host lists, rate limits, execution providers), cross-field rules (heartbeat ≤ half the lease,
celery needs a broker) and error messages that must never repeat a value that may hold a credential; pydantic's
validation errors quote the input, and the dependency would buy little over one table and one function.

The module is longer than most because the registry and the parsing belong together: a variable is named once.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ml_images.catalog.claims_defaults import DEFAULT_CLAIM_LEASE_SECONDS
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
EXECUTORS = ("in_process", "celery")
CATALOG_LAYOUTS = ("standalone", "django")
DEFAULT_CELERY_BACKEND = "rpc://"
#: A product the sensor requested is not requested again within this time (the sensor cursor's TTL, hours).
DEFAULT_SENSOR_REQUESTED_TTL_HOURS = 2.0
#: Presigned links are valid at most this long (S3's own limit for signature version 4 is seven days).
MAX_PRESIGNED_HOURS = 168.0


@dataclass(frozen=True)
class Variable:
    """One environment variable: what it is called, what kind of value it takes, its documented default, what it
    does, and whether its value is a secret (redacted everywhere, never shown in run config)."""

    name: str
    kind: str
    default: str
    description: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "ML_IMAGES_HOME",
        "folder",
        "`./var`",
        "folder for the embedded default (catalog DB, local image store, demo)",
    ),
    Variable(
        "ML_IMAGES_DATABASE_URL",
        "SQLAlchemy URL",
        "SQLite file `$ML_IMAGES_HOME/catalog.db`",
        "catalog database (its password is redacted)",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_CATALOG_LAYOUT",
        "`standalone` \\| `django`",
        "`standalone`",
        "`standalone` (the project's own schema, created by `ml-images db upgrade`) or `django` (the shop's existing "
        "Django tables, untouched; see [On an existing Django catalog](#on-an-existing-django-catalog))",
    ),
    Variable(
        "ML_IMAGES_DJANGO_APP_LABEL",
        "text",
        "`aiecommerce`",
        "the Django app label whose tables hold the catalog (with `ML_IMAGES_CATALOG_LAYOUT=django`)",
    ),
    Variable(
        "ML_IMAGES_SEARCH_PROVIDER",
        "`brave` \\| `serpapi` \\| `google` \\| `searxng`",
        "`brave`",
        "the image search provider",
    ),
    Variable(
        "BRAVE_SEARCH_API_KEY",
        "secret",
        "—",
        "Brave Search API key (`brave`)",
        secret=True,
    ),
    Variable(
        "SERPAPI_API_KEY",
        "secret",
        "—",
        "SerpApi key (`serpapi`)",
        secret=True,
    ),
    Variable(
        "GOOGLE_API_KEY",
        "secret",
        "—",
        "Google Custom Search key (`google`)",
        secret=True,
    ),
    Variable(
        "GOOGLE_SEARCH_ENGINE_ID",
        "secret",
        "—",
        "Google Programmable Search engine id (`google`)",
        secret=True,
    ),
    Variable(
        "SEARXNG_URL",
        "URL",
        "—",
        "base URL of the SearXNG instance (`searxng`)",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_SEARCH_ENDPOINT",
        "URL",
        "provider's own",
        "override of the chosen provider's endpoint URL (proxies, tests)",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_SEARCH_FALLBACK",
        "provider name",
        "none: a quota stops the run, unavailability fails the step",
        "a second provider asked for a product when the primary one is out of quota, refuses the key or is "
        "unavailable after its retries; its credentials are the provider's usual variables",
    ),
    Variable(
        "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT",
        "URL",
        "provider's own",
        "override of the fallback provider's endpoint URL",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_SEARCH_MODE",
        "`fill` \\| `fallback` \\| `never`",
        "`fill`",
        "when a search is paid for: `fill` (the search fills the places left after the distributor photo), "
        "`fallback` (only when the product has no distributor photo or it was refused), `never`",
    ),
    Variable(
        "ML_IMAGES_SEARCH_RATE_LIMIT",
        "number > 0",
        "per provider, its free plan: `brave` 1, `serpapi` 50/hour (0.0139), `google` 1, `searxng` 0.25",
        "search requests per second, enforced for the whole process by one token bucket per provider endpoint, "
        "shared by every thread; applies to the fallback provider too (its own bucket)",
    ),
    Variable(
        "ML_IMAGES_DISTRIBUTOR_URL_REWRITES",
        "JSON",
        "none",
        "JSON list of `[regex, replacement]` pairs applied in order (Python `re.sub`) to "
        '`product_master.image_url` before the download, e.g. `[["/sm/", "/lg/"]]` for a distributor\'s thumbnail '
        "→ large photo",
    ),
    Variable(
        "IMAGE_SEARCH_COUNT",
        "integer ≥ 1",
        "5",
        "images per product",
    ),
    Variable(
        "ML_IMAGES_SEARCH_CACHE_TTL_HOURS",
        "number ≥ 0",
        "168",
        "how long a product's search results are reused (a retried run does not pay twice)",
    ),
    Variable(
        "ML_IMAGES_EXECUTOR",
        "`in_process` \\| `celery`",
        "`in_process`",
        "`in_process` (steps in the run's process) or `celery` (steps on `ml-images worker` processes, see Deployment)",
    ),
    Variable(
        "ML_IMAGES_CELERY_BROKER_URL",
        "URL",
        "—",
        "the Celery broker, e.g. `amqp://user:password@host:5672//` (required with `celery`)",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_CELERY_BACKEND_URL",
        "URL",
        "`rpc://`",
        "the Celery result backend, e.g. `redis://host:6379/0`",
        secret=True,
    ),
    Variable(
        "AWS_STORAGE_BUCKET_NAME",
        "text",
        "—",
        "S3 bucket; unset = local folder store `$ML_IMAGES_HOME/images`",
    ),
    Variable(
        "AWS_S3_REGION_NAME",
        "text",
        "boto3's",
        "S3 region (the credentials come from boto3's usual chain: `AWS_ACCESS_KEY_ID`, profiles, roles)",
    ),
    Variable(
        "AWS_ENDPOINT_URL",
        "URL",
        "AWS",
        "S3-compatible endpoint (MinIO, a local S3 API server)",
        secret=True,
    ),
    Variable(
        "ML_IMAGES_PUBLIC_BASE_URL",
        "URL",
        "the bucket's S3 URL",
        "prefix of the URL recorded in `product_image.url` (CDN)",
    ),
    Variable(
        "ML_IMAGES_S3_ACL",
        "canned ACL",
        "none: objects stay private",
        "canned ACL sent with each upload (`public-read`, `bucket-owner-full-control`, …)",
    ),
    Variable(
        "ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS",
        "number ≥ 0.1",
        "5",
        "S3 connect timeout per attempt; a call makes at most 3 attempts, so an endpoint that never answers fails "
        "it in about 35 s (`storage_unavailable`: the batch stops, its products stay pending)",
    ),
    Variable(
        "ML_IMAGES_S3_READ_TIMEOUT_SECONDS",
        "number ≥ 0.1",
        "10",
        "S3 read timeout per attempt (see the connect timeout)",
    ),
    Variable(
        "ML_IMAGES_PRESIGNED_LINK_HOURS",
        "number 0–168",
        "0 (no presigned links)",
        "when set, the UI metadata of a product on a private S3 store links each full image with a presigned URL "
        "valid this long. A presigned URL carries the access key id (and, with temporary credentials, the session "
        "token) in its query string — values kept out of every other record — so it is off unless asked for; a "
        "public base URL or a `public-read` ACL gives permanent links without it",
    ),
    Variable(
        "ML_IMAGES_REMBG_MODEL",
        "model name",
        "`u2netp`",
        "rembg model name",
    ),
    Variable(
        "ML_IMAGES_ONNX_PROVIDERS",
        "comma-separated names",
        "`CPUExecutionProvider`",
        "ONNX Runtime execution providers for background removal, in order of preference, e.g. "
        '`CUDAExecutionProvider,CPUExecutionProvider` (see "Background-removal model")',
    ),
    Variable(
        "ML_IMAGES_ALLOWED_PRIVATE_HOSTS",
        "comma-separated hosts",
        "none",
        "hosts exempt from the private-address and port blocks (demo, tests): `host:port` (`[::1]:8080` for IPv6) "
        "exempts that port only; a bare `host` exempts **every** port of it — `127.0.0.1` also lets a candidate "
        "URL reach the databases and admin ports listening on this machine, so prefer `host:port` outside tests. "
        "Port 0 is always refused",
    ),
    Variable(
        "MERCADOLIBRE_PUBLICATION_RULES",
        "JSON",
        "NOTEBOOK ≥ 1000, MONITOR ≥ 0, COMPUTER ≥ 500",
        'JSON `{category: {"price_threshold": n}}` or `{category: n}`',
    ),
    Variable(
        "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS",
        "number ≥ 0",
        "24",
        "max age of `last_updated`",
    ),
    Variable(
        "ML_IMAGES_NO_IMAGES_COOLDOWN_HOURS",
        "number ≥ 0",
        "24",
        "a product whose last attempt found nothing is not selected again before this",
    ),
    Variable(
        "ML_IMAGES_UNREACHABLE_ATTEMPTS",
        "integer ≥ 1",
        "3",
        "consecutive `candidates_unreachable` attempts (in distinct runs) before a product counts as `no_usable_image`",
    ),
    Variable(
        "ML_IMAGES_CLAIM_LEASE_SECONDS",
        "number ≥ 1",
        "60",
        "a claim whose worker sent no heartbeat for this long is taken over by the next run",
    ),
    Variable(
        "ML_IMAGES_CLAIM_HEARTBEAT_SECONDS",
        "number ≥ 0.1",
        "15",
        "how often a worker refreshes its claims (at most half the lease)",
    ),
    Variable(
        "ML_IMAGES_CANVAS_SIZE",
        "integer ≥ 500",
        "1200",
        "side of the output square, px",
    ),
    Variable(
        "ML_IMAGES_COVER_POLICY",
        "`strict` \\| `lenient`",
        "`strict`",
        "when no candidate passes the cover gate: `strict` stores nothing (`no_compliant_cover`, listing → "
        "`ERROR`), `lenient` stores the pictures and flags the attempt (see [The cover](#the-cover))",
    ),
    Variable(
        "ML_IMAGES_COVER_ATTEMPTS",
        "integer ≥ 1",
        "3",
        "background-removal runs (and as many studio flood fills) spent per product looking for a compliant cover",
    ),
    Variable(
        "DAGSTER_HOME",
        "folder",
        "`$ML_IMAGES_HOME/dagster_home` for `ml-images` and `make`",
        "Dagster instance folder (runs, partitions, sensor cursors)",
    ),
    Variable(
        "ML_IMAGES_SENSOR_BATCH_SIZE",
        "integer ≥ 1",
        "25",
        "products per run requested by the sensor, and per run of a backfill launched from the UI (read when the "
        "code location loads; `ml-images fetch` takes `--batch-size` instead)",
    ),
    Variable(
        "ML_IMAGES_SENSOR_MAX_PRODUCTS_PER_TICK",
        "integer ≥ 1",
        "500",
        "products one sensor tick registers at most",
    ),
    Variable(
        "ML_IMAGES_SENSOR_MAX_ACTIVE_RUNS",
        "integer ≥ 1",
        "4",
        "the sensor requests nothing while this many image runs are queued or running",
    ),
    Variable(
        "ML_IMAGES_SENSOR_REQUESTED_TTL_HOURS",
        "number ≥ 0",
        "2",
        "a product the sensor requested is not requested again within this time",
    ),
    Variable(
        "ML_IMAGES_SENSOR_INTERVAL_SECONDS",
        "integer ≥ 5",
        "60",
        "minimum time between sensor ticks",
    ),
    Variable(
        "ML_IMAGES_STEP_MAX_RETRIES",
        "integer ≥ 0",
        "2",
        "Dagster retries of an image step after a transient fault (exponential backoff with jitter)",
    ),
    Variable(
        "ML_IMAGES_STEP_RETRY_DELAY_SECONDS",
        "number ≥ 0",
        "30",
        "base delay of those retries",
    ),
)
VARIABLE_NAMES = frozenset(v.name for v in VARIABLES)
SECRET_VARIABLES = frozenset(v.name for v in VARIABLES if v.secret)


def configuration_table() -> str:
    """The README's configuration table, generated from ``VARIABLES``."""
    lines = ["| variable | value | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{v.name}` | {v.kind} | {v.default} | {v.description} |" for v in VARIABLES]
    return "\n".join(lines) + "\n"


def _get(env: Mapping[str, str], name: str) -> str | None:
    """The trimmed value of a registered variable (blank counts as unset). An unregistered name is a programming
    error: every variable the project reads is listed in ``VARIABLES`` (and so in the README)."""
    if name not in VARIABLE_NAMES:
        raise KeyError(f"{name} is not in ml_images.settings.VARIABLES")
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
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


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = _get(env, name)
    value = raw.lower() if raw is not None else default
    if value is not None and value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
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
class SensorSettings:
    """How much one tick of ``new_eligible_products_sensor`` asks for.

    ``max_active_runs`` is back-pressure: no new runs while that many image runs are queued or running, so the
    queue never outgrows what the machine processes. Requested products stay excluded for ``requested_ttl_hours``,
    long enough for a queued run to start and claim them.
    """

    batch_size: int = 25
    max_products_per_tick: int = 500
    max_active_runs: int = 4
    requested_ttl_hours: float = DEFAULT_SENSOR_REQUESTED_TTL_HOURS
    minimum_interval_seconds: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SensorSettings:
        return cls(
            batch_size=_integer(env, "ML_IMAGES_SENSOR_BATCH_SIZE", 25),
            max_products_per_tick=_integer(env, "ML_IMAGES_SENSOR_MAX_PRODUCTS_PER_TICK", 500),
            max_active_runs=_integer(env, "ML_IMAGES_SENSOR_MAX_ACTIVE_RUNS", 4),
            requested_ttl_hours=_number(
                env, "ML_IMAGES_SENSOR_REQUESTED_TTL_HOURS", DEFAULT_SENSOR_REQUESTED_TTL_HOURS
            ),
            minimum_interval_seconds=_integer(env, "ML_IMAGES_SENSOR_INTERVAL_SECONDS", 60, minimum=5),
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str = field(repr=False)
    catalog_layout: str = "standalone"
    django_app_label: str = "aiecommerce"
    search_provider: str = "brave"
    search_endpoint: str | None = field(default=None, repr=False)
    brave_api_key: str | None = field(default=None, repr=False)
    serpapi_api_key: str | None = field(default=None, repr=False)
    google_api_key: str | None = field(default=None, repr=False)
    google_search_engine_id: str | None = field(default=None, repr=False)
    searxng_url: str | None = field(default=None, repr=False)
    image_search_count: int = 5
    bucket: str | None = None
    s3_region: str | None = None
    aws_endpoint_url: str | None = field(default=None, repr=False)
    public_base_url: str | None = None
    s3_acl: str | None = None
    s3_connect_timeout: float = 5.0
    s3_read_timeout: float = 10.0
    presigned_link_hours: float = 0.0
    rembg_model: str = "u2netp"
    onnx_providers: tuple[str, ...] = DEFAULT_PROVIDERS
    allowed_private_hosts: frozenset[str] = frozenset()
    publication_rules_json: str | None = None
    freshness_hours: float = 24.0
    no_images_cooldown_hours: float = 24.0
    search_cache_ttl_hours: float = 168.0
    canvas_size: int = 1200
    unreachable_attempts: int = 3
    claim_lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS
    claim_heartbeat_seconds: float = 15.0
    cover_policy: str = "strict"
    cover_attempts: int = 3
    distributor_url_rewrites: UrlRewrites = field(default_factory=UrlRewrites)
    search_mode: SearchMode = SearchMode.FILL
    search_rate_limit: float | None = None  # requests per second; None: the provider's default (DEFAULT_RATES)
    search_fallback: str | None = None
    search_fallback_endpoint: str | None = field(default=None, repr=False)
    executor: str = "in_process"
    celery_broker_url: str | None = field(default=None, repr=False)
    celery_backend_url: str | None = field(default=None, repr=False)
    dagster_home: Path | None = None
    sensor: SensorSettings = field(default_factory=SensorSettings)
    step_max_retries: int = 2
    step_retry_delay_seconds: float = 30.0

    def rate_limit_for(self, provider: str) -> float:
        """``ML_IMAGES_SEARCH_RATE_LIMIT`` when set (it applies to each provider in use), else the provider's
        documented default."""
        return self.search_rate_limit if self.search_rate_limit is not None else parse_rate_limit(None, provider)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every variable of ``VARIABLES``, parsed and validated; the first bad one raises ``ConfigurationError``."""
        env = os.environ if env is None else env
        home = default_home(env)
        provider = _choice(env, "ML_IMAGES_SEARCH_PROVIDER", SEARCH_PROVIDERS, "brave") or "brave"
        s3_acl = _get(env, "ML_IMAGES_S3_ACL")
        if s3_acl is not None and s3_acl not in S3_CANNED_ACLS:
            raise ConfigurationError(f"ML_IMAGES_S3_ACL must be one of {', '.join(S3_CANNED_ACLS)}, got {s3_acl!r}")
        lease = _number(env, "ML_IMAGES_CLAIM_LEASE_SECONDS", DEFAULT_CLAIM_LEASE_SECONDS, minimum=1.0)
        heartbeat = _number(env, "ML_IMAGES_CLAIM_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
        if heartbeat * 2 > lease:
            raise ConfigurationError(
                f"ML_IMAGES_CLAIM_HEARTBEAT_SECONDS ({heartbeat:g}) must be at most half of "
                f"ML_IMAGES_CLAIM_LEASE_SECONDS ({lease:g}), or live claims would be taken over"
            )
        rate_raw = _get(env, RATE_LIMIT_ENV_VAR)
        database_url = _get(env, "ML_IMAGES_DATABASE_URL")
        rules = _get(env, RULES_ENV_VAR)
        parse_publication_rules(rules)  # a malformed value stops every command at once, naming the variable
        layout, app_label = parse_catalog_layout(env)
        executor = _choice(env, "ML_IMAGES_EXECUTOR", EXECUTORS, "in_process") or "in_process"
        broker = _get(env, "ML_IMAGES_CELERY_BROKER_URL")
        if executor == "celery" and broker is None:
            raise ConfigurationError(
                "ML_IMAGES_EXECUTOR=celery needs ML_IMAGES_CELERY_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)"
            )
        presigned = _number(env, "ML_IMAGES_PRESIGNED_LINK_HOURS", 0.0)
        if presigned > MAX_PRESIGNED_HOURS:
            raise ConfigurationError(
                f"ML_IMAGES_PRESIGNED_LINK_HOURS must be at most {MAX_PRESIGNED_HOURS:g}, got {presigned:g}"
            )
        dagster_home = _get(env, "DAGSTER_HOME")
        return cls(
            home=home,
            database_url=check_database_url(database_url) if database_url else default_database_url(home),
            catalog_layout=layout,
            django_app_label=app_label,
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
            s3_connect_timeout=_number(env, "ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            s3_read_timeout=_number(env, "ML_IMAGES_S3_READ_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            presigned_link_hours=presigned,
            rembg_model=_get(env, "ML_IMAGES_REMBG_MODEL") or "u2netp",
            onnx_providers=parse_providers(_get(env, ONNX_PROVIDERS_ENV)),
            allowed_private_hosts=parse_host_list(_get(env, "ML_IMAGES_ALLOWED_PRIVATE_HOSTS")),
            publication_rules_json=rules,
            freshness_hours=_number(env, "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS", 24.0),
            no_images_cooldown_hours=_number(env, "ML_IMAGES_NO_IMAGES_COOLDOWN_HOURS", 24.0),
            search_cache_ttl_hours=_number(env, "ML_IMAGES_SEARCH_CACHE_TTL_HOURS", 168.0),
            canvas_size=_integer(env, "ML_IMAGES_CANVAS_SIZE", 1200, minimum=500),
            unreachable_attempts=_integer(env, "ML_IMAGES_UNREACHABLE_ATTEMPTS", 3),
            claim_lease_seconds=lease,
            claim_heartbeat_seconds=heartbeat,
            distributor_url_rewrites=UrlRewrites.parse(_get(env, URL_REWRITES_ENV_VAR)),
            search_mode=SearchMode.parse(_get(env, SEARCH_MODE_ENV_VAR)),
            search_rate_limit=parse_rate_limit(rate_raw, provider) if rate_raw is not None else None,
            search_fallback=_choice(env, "ML_IMAGES_SEARCH_FALLBACK", SEARCH_PROVIDERS, None),
            search_fallback_endpoint=_get(env, "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT"),
            cover_policy=_choice(env, "ML_IMAGES_COVER_POLICY", COVER_POLICIES, "strict") or "strict",
            cover_attempts=_integer(env, "ML_IMAGES_COVER_ATTEMPTS", 3),
            executor=executor,
            celery_broker_url=broker,
            celery_backend_url=_get(env, "ML_IMAGES_CELERY_BACKEND_URL"),
            dagster_home=Path(dagster_home).expanduser().resolve() if dagster_home else None,
            sensor=SensorSettings.from_env(env),
            step_max_retries=_integer(env, "ML_IMAGES_STEP_MAX_RETRIES", 2, minimum=0),
            step_retry_delay_seconds=_number(env, "ML_IMAGES_STEP_RETRY_DELAY_SECONDS", 30.0),
        )


_CURRENT: dict[tuple[str | None, ...], Settings] = {}


def current_settings() -> Settings:
    """This process's settings, parsed and validated once per distinct environment (a test or the CLI may change
    a variable; the same values are never parsed twice)."""
    key = tuple(os.environ.get(v.name) for v in VARIABLES)
    settings = _CURRENT.get(key)
    if settings is None:
        settings = Settings.from_env(os.environ)
        _CURRENT.clear()
        _CURRENT[key] = settings
    return settings


if __name__ == "__main__":  # `python -m ml_images.settings`: the README's configuration table
    sys.stdout.write(configuration_table())
