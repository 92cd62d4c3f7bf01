"""Order a product's candidates by a score a person can read, not by the search engine's order.

The engine ranks pages for a text query; it does not know that the distributor's photo is the right product,
that 1200 px is what Mercado Libre recommends, that ``psref.lenovo.com`` is Lenovo's own site or that a result
titled "IdeaPad 3 15ALC6" shows another model. Each of those is one *part* of the score, in whole points, kept
with a short explanation, so the attempt record and the asset metadata say why a picture came first:

* ``source_kind`` — the distributor photo gets a bonus larger than anything a search result can reach, so it is
  always first (checked when the weights are built);
* ``size`` — the reported shorter side: >= 1200 px (Mercado Libre's recommended size) best, >= 800 px (its zoom
  threshold) next, unknown in between the two lower steps (it may well be large; candidates under 500 px were
  already dropped by the search filter);
* ``domain`` — the page or image host belongs to the brand: its registrable name (``lenovo`` in
  ``psref.lenovo.com`` or ``lenovo.com.ar``) equals the brand's normalised name. Marketplaces and stock sites never
  get here (the blocklist drops them);
* ``rank`` — the engine's position, one point per place (capped), so it decides among otherwise equal candidates;
* ``words`` — the result's title or page URL names the product's model, SKU or GTIN (ahead), or names another
  model of the same family (behind), judged by ``ml_images.processing.product_match`` exactly as words read on a
  picture are. Model-number-like words of the product's own description and specs (its processor, "i5-1135G7")
  are left out first: a shop's title listing the product's parts does not name another model.

Deterministic: the same candidates give the same order; equal totals keep the engine's order (rank, then input
position).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ml_images.processing.product_match import ProductIdentity, match_words, normalise
from ml_images.processing.results import ProductMatch
from ml_images.search.blocklist import host_of
from ml_images.search.candidates import ImageCandidate
from ml_images.search.distributor import SourcedCandidate, SourceKind
from ml_images.search.product_profile import ProductProfile, is_brand_host, related_codes

# Where a URL path separates words: ``/ideapad-3-15itl6_82h8/index.html``.
_URL_SEPARATORS = re.compile(r"[/\-_.+,;:=&?~%]+")


@dataclass(frozen=True)
class RankingWeights:
    """Points of each part. The defaults make the distributor photo first, then (roughly) a brand-domain result
    before a merely large one, and a result naming another model behind everything that does not."""

    distributor: int = 100
    large_size: int = 20
    medium_size: int = 10
    unknown_size: int = 5
    large_side: int = 1200  # Mercado Libre's recommended size
    medium_side: int = 800  # Mercado Libre zooms only above this
    brand_domain: int = 30
    names_product: int = 25
    names_other_model: int = -40
    rank_step: int = 1
    max_rank_penalty: int = 20

    def __post_init__(self) -> None:
        best_search = self.large_size + self.brand_domain + self.names_product
        if self.distributor <= best_search:
            raise ValueError(f"distributor ({self.distributor}) must exceed the best search score ({best_search})")
        if self.names_other_model > 0 or self.rank_step < 0 or self.max_rank_penalty < 0:
            raise ValueError("names_other_model must be <= 0; rank_step and max_rank_penalty >= 0")
        if not 0 < self.medium_side <= self.large_side:
            raise ValueError("need 0 < medium_side <= large_side")


@dataclass(frozen=True)
class ScorePart:
    name: str
    points: int
    detail: str


@dataclass(frozen=True)
class CandidateScore:
    parts: tuple[ScorePart, ...]

    @property
    def total(self) -> int:
        return sum(part.points for part in self.parts)

    def points(self, name: str) -> int:
        for part in self.parts:
            if part.name == name:
                return part.points
        raise KeyError(name)

    def explain(self) -> str:
        """``"128 = source_kind 100 + size 20 + domain 0 + rank -2 + words 10"``, for logs and metadata."""
        terms = " + ".join(f"{part.name} {part.points}" for part in self.parts)
        return f"{self.total} = {terms}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "parts": {part.name: {"points": part.points, "detail": part.detail} for part in self.parts},
        }


@dataclass(frozen=True)
class RankedCandidate:
    """A candidate, its place after ranking (0 = first) and why."""

    sourced: SourcedCandidate
    score: CandidateScore
    position: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.sourced.to_dict(), "position": self.position, "score": self.score.to_dict()}


def _url_words(url: str | None) -> list[str]:
    """The words of a page URL's path (the host says nothing about which model the page shows)."""
    if not url:
        return []
    try:
        path = urlsplit(url).path
    except ValueError:
        return []
    return [word for word in _URL_SEPARATORS.split(unquote(path)) if word]


def _is_neutral(word: str, neutral: frozenset[str], codes: frozenset[str]) -> bool:
    """Whether ``word`` is one of the product's own (non-identifying) words, or a piece of one: a URL slug cuts
    "i5-1135g7" into "i5" and "1135g7". Never a word that spells the model or SKU."""
    norm = normalise(word)
    if any(related_codes(norm, code) for code in codes):
        return False
    return norm in neutral or (len(norm) >= 4 and any(norm in own for own in neutral))


def _without(lines: Sequence[str], neutral: frozenset[str], codes: frozenset[str]) -> list[str]:
    """``lines`` without the product's own words (its processor, say): naming them is not naming another model."""
    if not neutral:
        return list(lines)
    kept = (" ".join(word for word in line.split() if not _is_neutral(word, neutral, codes)) for line in lines)
    return [line for line in kept if line]


def _combine(title: ProductMatch, url: ProductMatch) -> tuple[str | None, str | None]:
    """(what of the product is named, the other model named) over the title and the page URL."""
    for match in (title, url):
        for named, what in (
            (match.model_named, "model"),
            (match.sku_named, "SKU"),
            (match.gtin_named, "GTIN"),
        ):
            if named:
                return what, None
    return None, title.other_model or url.other_model


class CandidateRanker:
    """``rank(candidates, product)`` → the candidates in order, each with its score parts."""

    def __init__(self, weights: RankingWeights | None = None) -> None:
        self.weights = weights or RankingWeights()

    def _source(self, sourced: SourcedCandidate) -> ScorePart:
        if sourced.source_kind is SourceKind.DISTRIBUTOR:
            return ScorePart("source_kind", self.weights.distributor, "the distributor's own photo")
        return ScorePart("source_kind", 0, f"search result ({sourced.provider or 'unknown provider'})")

    def _size(self, candidate: ImageCandidate) -> ScorePart:
        w = self.weights
        sides = [s for s in (candidate.width, candidate.height) if s is not None]
        if not sides:
            return ScorePart("size", w.unknown_size, "size not reported")
        shorter = min(sides)
        reported = f"{candidate.width or '?'}x{candidate.height or '?'}"
        if shorter >= w.large_side:
            return ScorePart("size", w.large_size, f"reported {reported}, shorter side >= {w.large_side}")
        if shorter >= w.medium_side:
            return ScorePart("size", w.medium_size, f"reported {reported}, shorter side >= {w.medium_side}")
        return ScorePart("size", 0, f"reported {reported}, shorter side < {w.medium_side}")

    def _domain(self, candidate: ImageCandidate, identity: ProductIdentity) -> ScorePart:
        if not identity.brand:
            return ScorePart("domain", 0, "brand unknown")
        for label, host in (("page", host_of(candidate.page_url)), ("image", host_of(candidate.image_url))):
            if is_brand_host(host, identity.brand):
                return ScorePart("domain", self.weights.brand_domain, f"{label} host {host} is {identity.brand}'s own")
        host = host_of(candidate.page_url) or host_of(candidate.image_url) or "?"
        return ScorePart("domain", 0, f"{host} is not {identity.brand}'s own")

    def _rank(self, sourced: SourcedCandidate) -> ScorePart:
        if sourced.source_kind is SourceKind.DISTRIBUTOR:
            return ScorePart("rank", 0, "not a search result")
        rank = max(sourced.candidate.rank, 0)
        penalty = min(rank * self.weights.rank_step, self.weights.max_rank_penalty)
        return ScorePart("rank", -penalty, f"search rank {rank}")

    def _words(self, candidate: ImageCandidate, product: ProductProfile) -> ScorePart:
        neutral, codes = product.neutral_words(), product.own_codes()
        title_lines = _without([candidate.title] if candidate.title else [], neutral, codes)
        url_lines = _without(_url_words(candidate.page_url), neutral, codes)
        if not title_lines and not url_lines:
            return ScorePart("words", 0, "no title or page URL")
        identity = product.identity
        named, other = _combine(match_words(title_lines, identity), match_words(url_lines, identity))
        if named:
            return ScorePart("words", self.weights.names_product, f"title or page URL names the product's {named}")
        if other:
            return ScorePart("words", self.weights.names_other_model, f"title or page URL names another model: {other}")
        return ScorePart("words", 0, "names neither the product nor another model")

    def score(self, sourced: SourcedCandidate, product: ProductProfile) -> CandidateScore:
        candidate = sourced.candidate
        return CandidateScore(
            (
                self._source(sourced),
                self._size(candidate),
                self._domain(candidate, product.identity),
                self._rank(sourced),
                self._words(candidate, product),
            )
        )

    def rank(self, candidates: Sequence[SourcedCandidate], product: ProductProfile) -> list[RankedCandidate]:
        """The candidates best first; equal totals keep the engine's order (rank, then input position)."""
        scored = [(self.score(c, product), index, c) for index, c in enumerate(candidates)]
        scored.sort(key=lambda item: (-item[0].total, max(item[2].candidate.rank, 0), item[1]))
        return [RankedCandidate(c, score, position) for position, (score, _, c) in enumerate(scored)]
