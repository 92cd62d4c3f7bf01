"""Build the image-search query for a product, deterministically.

Brand + model (+ category) from ``specs`` when both brand and model are known: the most precise query. Else the
first six words of ``normalized_name`` (or ``description``) once noise words are gone. Then the configured
suffix; punctuation removed, blanks collapsed, at most ``max_length`` characters cut at a word boundary.
Letters with accents, ``ñ`` and SKU-like tokens (``15-fd0011la``, ``i5-1235U``, ``2.5``) survive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Protocol

# Whole words, case-insensitive: price/stock/warranty chatter and the yes/no of spreadsheet columns.
DEFAULT_NOISE_PATTERN = r"cop|s[ií]|no|precio|precios|stock|garant[ií]a|garant[ií]as"
FALLBACK_WORDS = 6

_BRAND_KEYS = ("brand", "marca")
_MODEL_KEYS = ("model", "modelo")
_CATEGORY_KEYS = ("category", "categoria", "categoría")
# Characters that join the parts of a token (SKU "15-fd0011la", "2.5", "A/C", "C++"); elsewhere punctuation.
_JOINERS = "-./+"
_PUNCTUATION = re.compile(r"[^\w\s\-./+]|_")


class ProductLike(Protocol):
    """What the query needs from a product; ``ProductMaster`` satisfies it."""

    @property
    def specs(self) -> Mapping[str, Any] | None: ...

    @property
    def normalized_name(self) -> str | None: ...

    @property
    def description(self) -> str | None: ...

    @property
    def category(self) -> str | None: ...


def words(text: str) -> list[str]:
    """Tokens of ``text`` with punctuation removed; joiners kept only inside a token."""
    text = unicodedata.normalize("NFC", text)
    tokens = (t.strip(_JOINERS) for t in _PUNCTUATION.sub(" ", text).split())
    return [t for t in tokens if t]


def _spec(specs: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    by_key = {k.strip().lower(): v for k, v in specs.items() if isinstance(k, str)}
    for name in names:
        value = by_key.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str | int | float):
            text = str(value).strip()
            if text:
                return text
    return None


def _cut(text: str, max_length: int) -> str:
    if len(text) <= max_length:
        return text
    head = text[: max_length + 1]
    cut = head.rfind(" ")
    return text[:max_length] if cut <= 0 else head[:cut]


class QueryConstructor:
    """``build(product)`` → the search query ("" when the product gives nothing to search for)."""

    def __init__(self, noise_pattern: str | None = None, suffix: str = "", max_length: int = 100) -> None:
        if max_length < 1:
            raise ValueError("max_length must be >= 1")
        pattern = DEFAULT_NOISE_PATTERN if noise_pattern is None else noise_pattern
        self._noise = re.compile(f"(?:{pattern})", re.IGNORECASE) if pattern else None
        self.suffix_words = words(suffix)
        self.max_length = max_length

    def _is_noise(self, word: str) -> bool:
        return self._noise is not None and self._noise.fullmatch(word) is not None

    def _from_specs(self, product: ProductLike) -> list[str] | None:
        specs = product.specs
        if not isinstance(specs, Mapping):
            return None
        brand, model = _spec(specs, _BRAND_KEYS), _spec(specs, _MODEL_KEYS)
        if not brand or not model:
            return None
        brand_words, model_words = words(brand), words(model)
        if not brand_words or not model_words:
            return None
        lowered = [w.lower() for w in model_words]
        if lowered[: len(brand_words)] == [w.lower() for w in brand_words]:
            brand_words = []  # the model already starts with the brand ("HP 15-fd0011la")
        category = _spec(specs, _CATEGORY_KEYS) or (product.category or "")
        return brand_words + model_words + words(category)

    def _from_text(self, product: ProductLike) -> list[str]:
        for text in (product.normalized_name, product.description):
            if text and text.strip():
                kept = [w for w in words(text) if not self._is_noise(w)]
                if kept:
                    return kept[:FALLBACK_WORDS]
        return []

    def build(self, product: ProductLike) -> str:
        base = self._from_specs(product) or self._from_text(product)
        if not base:
            return ""
        return _cut(" ".join(base + self.suffix_words), self.max_length)
