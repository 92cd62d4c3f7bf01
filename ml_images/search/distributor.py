"""The distributor's own photo as candidate #0, and when a product pays for a web search.

``product_master.image_url`` is the distributor's picture of that exact product: free, already in the catalog and
more likely right than anything a search engine proposes. Distributors often store a thumbnail address there
(``.../sm/123.jpg``) whose large version lives at a predictable place (``.../lg/123.jpg``), so
``ML_IMAGES_DISTRIBUTOR_URL_REWRITES`` — a JSON list of ``[regex, replacement]`` pairs applied in order with
Python's ``re.sub`` — turns one into the other before the download. The rules are validated once at start-up: a
typo must stop the deployment, not silently leave every product with its thumbnail.

The distributor photo is downloaded and judged like any search result (same safe downloader, same checks); a bad
URL is refused by the downloader with its usual reason code, and recorded like any other refusal.

``ImageCandidate`` carries no provenance, so ``SourcedCandidate`` wraps it with its ``source_kind``
(``distributor`` or ``search``, the values of ``product_image.source_kind``), the provider that proposed it and
the catalog URL a rewrite rule changed.

``ML_IMAGES_SEARCH_MODE`` decides when a search is paid for: ``fill`` (search fills the places the distributor
photo leaves), ``fallback`` (search only without a usable distributor photo) or ``never``. ``plan_search`` turns
the mode and what is known of the distributor photo into one answer for the pipeline.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml_images.errors import ConfigurationError
from ml_images.outcomes import ReasonCode
from ml_images.search.blocklist import host_of
from ml_images.search.candidates import ImageCandidate

URL_REWRITES_ENV_VAR = "ML_IMAGES_DISTRIBUTOR_URL_REWRITES"
SEARCH_MODE_ENV_VAR = "ML_IMAGES_SEARCH_MODE"

_MAX_SHOWN = 120  # characters of a bad entry quoted in an error message


class SourceKind(enum.StrEnum):
    """Where a candidate came from; the values are those of ``product_image.source_kind``."""

    DISTRIBUTOR = "distributor"
    SEARCH = "search"


@dataclass(frozen=True)
class SourcedCandidate:
    """A candidate with its provenance, which ``ImageCandidate`` itself does not hold.

    ``provider``: the search provider that proposed it (``brave``...), None for the distributor photo.
    ``rewritten_from``: the catalog's URL when a rewrite rule changed it (so an operator can see both).
    """

    candidate: ImageCandidate
    source_kind: SourceKind
    provider: str | None = None
    rewritten_from: str | None = None

    @property
    def image_url(self) -> str:
        return self.candidate.image_url

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.candidate.to_dict(),
            "source_kind": self.source_kind.value,
            "provider": self.provider,
            "rewritten_from": self.rewritten_from,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourcedCandidate:
        return cls(
            candidate=ImageCandidate.from_dict(dict(data)),
            source_kind=SourceKind(str(data.get("source_kind", SourceKind.SEARCH.value))),
            provider=data.get("provider"),
            rewritten_from=data.get("rewritten_from"),
        )


def search_candidates(candidates: Iterable[ImageCandidate], provider: str) -> list[SourcedCandidate]:
    """Search results labelled with their source kind and provider, order kept."""
    return [SourcedCandidate(c, SourceKind.SEARCH, provider=provider) for c in candidates]


# --- URL rewrite rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewriteRule:
    pattern: re.Pattern[str]
    replacement: str

    def apply(self, url: str) -> str:
        return self.pattern.sub(self.replacement, url)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


@dataclass(frozen=True)
class UrlRewrites:
    """Rewrite rules for distributor URLs, applied in order (each to the previous rule's result)."""

    rules: tuple[RewriteRule, ...] = ()

    @classmethod
    def parse(cls, raw: str | None, variable: str = URL_REWRITES_ENV_VAR) -> UrlRewrites:
        """Rules from the variable's JSON text; unset or blank means none.

        Raises ``ConfigurationError`` naming ``variable`` and the bad entry for invalid JSON, a value that is not a
        list, an entry that is not a pair of strings, an empty regex, a regex that does not compile or a
        replacement that refers to a group the regex does not have.
        """
        if raw is None or not raw.strip():
            return cls()
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ConfigurationError(
                f"{variable} is not valid JSON ({exc}); expected [[regex, replacement], ...]"
            ) from None
        if not isinstance(value, list):
            raise ConfigurationError(
                f"{variable} must be a JSON list of [regex, replacement] pairs, got {_shown(value)}"
            )
        rules = []
        for index, entry in enumerate(value):
            where = f"{variable} entry {index} ({_shown(entry)})"
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
                raise ConfigurationError(f"{where} must be a pair of strings [regex, replacement]")
            regex, replacement = entry
            if not regex:
                raise ConfigurationError(f"{where}: the regex is empty (it would match between every character)")
            try:
                pattern = re.compile(regex)
            except re.error as exc:
                raise ConfigurationError(f"{where}: the regex does not compile ({exc})") from None
            try:
                # re parses the replacement template on every sub, match or not: a bad group reference fails here
                # at start-up rather than on the first product whose URL matches.
                pattern.sub(replacement, "")
            except (re.error, IndexError) as exc:
                raise ConfigurationError(f"{where}: the replacement is invalid for this regex ({exc})") from None
            rules.append(RewriteRule(pattern, replacement))
        return cls(tuple(rules))

    def apply(self, url: str) -> str:
        for rule in self.rules:
            url = rule.apply(url)
        return url

    def __bool__(self) -> bool:
        return bool(self.rules)


def parse_url_rewrites(env: Mapping[str, str]) -> UrlRewrites:
    """``ML_IMAGES_DISTRIBUTOR_URL_REWRITES`` from an environment mapping (``os.environ`` or a test's dict)."""
    return UrlRewrites.parse(env.get(URL_REWRITES_ENV_VAR))


def distributor_candidate(image_url: str | None, rewrites: UrlRewrites | None = None) -> SourcedCandidate | None:
    """The catalog's ``image_url`` (rewritten) as candidate #0, or None when the product has none.

    The URL is not judged here: the safe downloader refuses a bad one with its usual reason code, so a refused
    distributor photo is recorded like any other refusal. The size is unknown until it is downloaded.
    """
    if image_url is None or not image_url.strip():
        return None
    original = image_url.strip()
    url = rewrites.apply(original) if rewrites else original
    candidate = ImageCandidate(image_url=url, source=host_of(url), rank=0)
    return SourcedCandidate(
        candidate, SourceKind.DISTRIBUTOR, provider=None, rewritten_from=original if url != original else None
    )


# --- search mode -------------------------------------------------------------------------------------------------


class SearchMode(enum.StrEnum):
    FILL = "fill"  # search fills the places left after the distributor photo (default)
    FALLBACK = "fallback"  # search only when there is no usable distributor photo
    NEVER = "never"  # never search

    @classmethod
    def parse(cls, raw: str | None, variable: str = SEARCH_MODE_ENV_VAR) -> SearchMode:
        """The mode named by ``raw`` (case and blanks ignored); unset or blank gives ``fill``."""
        if raw is None or not raw.strip():
            return cls.FILL
        try:
            return cls(raw.strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ConfigurationError(f"{variable} must be one of {names}, got {raw!r}") from None


class DistributorPhoto(enum.StrEnum):
    """What the pipeline knows of the product's distributor photo when it asks whether to search."""

    ABSENT = "absent"  # no image_url in the catalog
    OFFERED = "offered"  # an image_url, not judged yet
    USABLE = "usable"  # downloaded and accepted by the checks
    REFUSED = "refused"  # downloaded (or tried) and refused


# Reason codes of ``SearchPlan.reason``; in ``never`` mode without a usable distributor photo the plan's reason is
# the product's no-images ``ReasonCode`` instead.
PLAN_NO_DISTRIBUTOR_PHOTO = "no_distributor_photo"
PLAN_FILL_AFTER_DISTRIBUTOR = "fill_after_distributor_photo"
PLAN_AWAIT_DISTRIBUTOR = "awaiting_distributor_photo"
PLAN_DISTRIBUTOR_USABLE = "distributor_photo_usable"
PLAN_DISTRIBUTOR_REFUSED = "distributor_photo_refused"
PLAN_SEARCH_DISABLED = "search_disabled"


@dataclass(frozen=True)
class SearchPlan:
    """How many places the search must fill for a product, and why.

    ``places`` is the number of candidates to ask the search for; 0 means no search call. ``judge_first``: the
    decision depends on the distributor photo's verdict (``fallback`` mode), so download and judge it, then ask
    ``plan_search`` again with ``USABLE`` or ``REFUSED``. ``reason`` is a stable code for the attempt record; in
    ``never`` mode without a usable distributor photo it is the product's no-images reason.
    """

    places: int
    reason: str
    judge_first: bool = False

    @property
    def search(self) -> bool:
        return self.places > 0


def plan_search(mode: SearchMode, count: int, photo: DistributorPhoto) -> SearchPlan:
    """The search a product needs under ``mode`` with ``count`` images wanted (``IMAGE_SEARCH_COUNT``).

    ``fill`` does not wait for the distributor photo's verdict: searching for ``count - 1`` places at once costs
    no extra call and no latency, and a refused distributor photo leaves one place unfilled at worst (the caller
    may plan again with ``REFUSED`` to fill it). ``fallback`` must wait: its whole point is not paying for a search
    when the distributor photo is good.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    if mode is SearchMode.NEVER:
        if photo is DistributorPhoto.ABSENT:
            return SearchPlan(0, ReasonCode.NO_DISTRIBUTOR_PHOTO_SEARCH_DISABLED)
        if photo is DistributorPhoto.REFUSED:
            return SearchPlan(0, ReasonCode.DISTRIBUTOR_PHOTO_REFUSED_SEARCH_DISABLED)
        return SearchPlan(0, PLAN_SEARCH_DISABLED)
    if photo is DistributorPhoto.ABSENT:
        return SearchPlan(count, PLAN_NO_DISTRIBUTOR_PHOTO)
    if photo is DistributorPhoto.REFUSED:
        return SearchPlan(count, PLAN_DISTRIBUTOR_REFUSED)
    if mode is SearchMode.FILL:
        return SearchPlan(count - 1, PLAN_FILL_AFTER_DISTRIBUTOR)
    if photo is DistributorPhoto.OFFERED:
        return SearchPlan(0, PLAN_AWAIT_DISTRIBUTOR, judge_first=True)
    return SearchPlan(0, PLAN_DISTRIBUTOR_USABLE)


def distributor_photo_state(candidate: SourcedCandidate | None) -> DistributorPhoto:
    """``ABSENT`` or ``OFFERED`` for the result of ``distributor_candidate``, before any download."""
    return DistributorPhoto.ABSENT if candidate is None else DistributorPhoto.OFFERED
