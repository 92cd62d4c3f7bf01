"""The outcome vocabulary: reason codes, a product's status, a refused candidate, what an attempt cost.

Every stage speaks it — selection, search, download, processing, the recorder, the pipeline, the Dagster metadata
and the CLI — so an operator filters on the same words everywhere. ``ReasonCode`` holds exactly the codes the
README's "Reason codes" table lists (``ml_images_tests/test_outcomes.py`` checks both ways); the one family that
cannot be an enum member, ``http_<status>``, is built by ``http_status_reason``.

One refusal type: a refused candidate is the value ``Refusal`` (stage, reason, url, detail) wherever it travels —
returned by a stage, kept in a report, stored on the attempt row. Inside a stage, a check deep in the call stack
(address resolution, a redirect loop, a header) raises ``Refused`` because unwinding to the stage's boundary is
what it needs; the boundary turns it into the value with ``Refused.at(stage, url)``. Nothing hands an exception
around as a value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class ReasonCode(enum.StrEnum):
    """A stable, machine-readable reason, recorded on the attempt (``reason_code``) or on a refusal."""

    # product: nothing usable (listing → ERROR, cooldown)
    NO_SEARCH_RESULTS = "no_search_results"
    NO_USABLE_IMAGE = "no_usable_image"
    NO_SEARCH_QUERY = "no_search_query"
    NO_DISTRIBUTOR_PHOTO_SEARCH_DISABLED = "no_distributor_photo_search_disabled"
    DISTRIBUTOR_PHOTO_REFUSED_SEARCH_DISABLED = "distributor_photo_refused_search_disabled"
    NO_COMPLIANT_COVER = "no_compliant_cover"
    # product: skipped
    HAS_IMAGES = "has_images"
    NOT_ELIGIBLE = "not_eligible"
    NOT_FOUND = "not_found"
    NOT_NEEDED = "not_needed"
    IN_FLIGHT = "in_flight"
    COOLDOWN_OR_IN_FLIGHT = "cooldown_or_in_flight"
    INVALID_PARTITION_KEY = "invalid_partition_key"
    # product: left pending (transient)
    CANDIDATES_UNREACHABLE = "candidates_unreachable"
    SEARCH_QUOTA = "search_quota"
    SEARCH_UNAVAILABLE = "search_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    CATALOG_UNAVAILABLE = "catalog_unavailable"
    CLAIM_LOST = "claim_lost"
    CONFIGURATION = "configuration"
    TRANSIENT = "transient"
    INTERNAL_ERROR = "internal_error"
    INTERRUPTED = "interrupted"
    BATCH_ABORTED = "batch_aborted"
    NOT_STARTED = "not_started"
    # claim taken over
    STALE_CLAIM = "stale_claim"
    HOLDER_DIED = "holder_died"
    RETRIED_IN_SAME_RUN = "retried_in_same_run"
    # candidate refused: search
    BLOCKED_DOMAIN = "blocked_domain"
    DUPLICATE = "duplicate"
    TOO_SMALL = "too_small"
    UNSUPPORTED_FORMAT = "unsupported_format"
    THUMBNAIL = "thumbnail"
    BAD_URL = "bad_url"
    # candidate refused: download
    BAD_SCHEME = "bad_scheme"
    BLOCKED_ADDRESS = "blocked_address"
    BLOCKED_PORT = "blocked_port"
    DNS_FAILURE = "dns_failure"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    DEADLINE = "deadline"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    REDIRECT_LOOP = "redirect_loop"
    EMPTY_BODY = "empty_body"
    TRUNCATED = "truncated"
    NOT_AN_IMAGE = "not_an_image"
    # candidate refused: processing
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_MANY_PIXELS = "too_many_pixels"
    CORRUPT = "corrupt"
    BLANK = "blank"
    DARK_BACKGROUND = "dark_background"
    WRONG_PRODUCT = "wrong_product"
    COVER_TEXT = "cover_text"
    COVER_NOT_WHITE = "cover_not_white"
    COVER_TRUNCATED = "cover_truncated"
    COVER_MULTIPLE_OBJECTS = "cover_multiple_objects"
    COVER_MASK = "cover_mask"


#: ``http_404``: a download answered with a status other than 200 (the README's ``http_<status>``).
HTTP_STATUS_PREFIX = "http_"


def http_status_reason(status: int) -> str:
    """The reason code of a download answered with HTTP ``status``."""
    return f"{HTTP_STATUS_PREFIX}{status}"


#: Download refusals that say "could not reach it", not "it is not a usable image".
TRANSPORT_REASONS = frozenset(
    {ReasonCode.DNS_FAILURE, ReasonCode.CONNECT_ERROR, ReasonCode.TIMEOUT, ReasonCode.DEADLINE, ReasonCode.TLS_ERROR}
)


class ProductStatus(enum.StrEnum):
    """How an attempt at a product ended: the report's ``status`` and ``image_fetch_attempt.outcome``.

    ``DEFERRED`` is a report status only: its attempt is stored as ``failed`` with ``candidates_unreachable`` (the
    stored values are the ones the catalog has always had).
    """

    RUNNING = "running"  # claimed; finished_at is NULL while it runs
    STORED = "stored"  # images uploaded and product_image rows written
    NO_IMAGES = "no_images"  # nothing usable; listing set to ERROR; cooldown applies
    SKIPPED = "skipped"  # did not need images (or another run holds it); nothing written but the attempt
    DEFERRED = "deferred"  # every candidate unreachable (candidates_unreachable): stays pending, no ERROR
    FAILED = "failed"  # infrastructure fault, batch aborted or interrupted; the product stays pending


#: The statuses a finished product can end with (``RUNNING`` is a claim in progress, never a result).
FINISHED_STATUSES = tuple(status for status in ProductStatus if status is not ProductStatus.RUNNING)


@dataclass(frozen=True)
class Refusal:
    """One refused candidate: which stage refused it, a stable reason code and a human detail.

    ``reason`` is a ``ReasonCode`` value or ``http_<status>``, for operators to filter on; ``detail`` is free text
    and never contains credentials.
    """

    stage: str  # "search" | "download" | "process" | "store"
    reason: str
    url: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        # A plain str, never the enum member: Dagster's metadata serialiser accepts exact built-in types only.
        object.__setattr__(self, "reason", str(self.reason))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Refusal:
        return cls(
            stage=str(data["stage"]),
            reason=str(data["reason"]),
            url=data.get("url"),
            detail=str(data.get("detail", "")),
        )


class Refused(Exception):
    """A check inside a stage refused the candidate; the stage's boundary turns it into a ``Refusal``."""

    def __init__(self, reason: str, detail: str = "", url: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = str(reason)  # a plain str, as ``Refusal.reason``
        self.detail = detail
        self.url = url

    def at(self, stage: str, url: str | None = None) -> Refusal:
        """The refusal as the value the rest of the pipeline keeps (``url`` when the check did not know it)."""
        return Refusal(stage=stage, reason=self.reason, url=self.url or url, detail=self.detail)


@dataclass(frozen=True)
class AttemptStats:
    """What an attempt cost and saw, recorded on its ``image_fetch_attempt`` row whatever its outcome, and carried
    by the product's report.

    ``refusal_counts`` counts every refusal by reason; when None it is counted from ``refusals`` (which is the
    bounded sample that is stored). ``candidates`` are the ranked candidates with their score parts (at most
    ``MAX_STORED_CANDIDATES`` of ``ml_images.catalog.recorder`` kept); ``cover_report`` says which candidates were
    tried as the cover and why they failed.
    """

    search_calls: int = 0
    candidates_found: int = 0
    refusals: Sequence[Refusal] = ()
    refusal_counts: Mapping[str, int] | None = None
    provider: str | None = None
    search_calls_by_provider: Mapping[str, int] = field(default_factory=dict)
    search_cache_hits: int = 0
    downloads: int = 0
    candidates: Sequence[Mapping[str, Any]] = ()
    cover_report: Mapping[str, Any] | None = None
