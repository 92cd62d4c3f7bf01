"""Mercado Libre publication rules: which categories are published, from which price on.

``MERCADOLIBRE_PUBLICATION_RULES`` holds JSON ``{category: {"price_threshold": n}}`` or ``{category: n}``.
Categories match ignoring case and surrounding blanks, never by prefix ("Car" does not match "Cartoons").
A malformed value is a configuration error at start-up: silently selecting nothing would look like success.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ml_images.errors import ConfigurationError

RULES_ENV_VAR = "MERCADOLIBRE_PUBLICATION_RULES"
SQLITE_FUNCTION_NAME = "ml_images_norm_category"
# What "surrounding blanks" means; the same set in Python, SQLite (via the Python function) and PostgreSQL.
_BLANKS = " \t\n\r\f\v"
_PG_BLANKS_LITERAL = "E' \\t\\n\\r\\f\\x0B'"


def normalize_category(value: str | None) -> str | None:
    """Strip blanks and upper-case character by character.

    Characters whose upper case is longer than one character ("ß" → "SS") are kept as they are, which is what
    PostgreSQL's ``upper()`` does; that keeps Python, SQLite and PostgreSQL in agreement.
    """
    if value is None:
        return None
    out = []
    for ch in value.strip(_BLANKS):
        up = ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


class normalized_category(FunctionElement[str]):
    """SQL twin of :func:`normalize_category`, compiled per dialect."""

    type = sa.String()
    inherit_cache = True
    name = "normalized_category"


@compiles(normalized_category, "sqlite")
def _normalized_category_sqlite(element: normalized_category, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's upper() folds ASCII only; create_catalog_engine registers the Python function under this name.
    return f"{SQLITE_FUNCTION_NAME}({compiler.process(element.clauses, **kw)})"


@compiles(normalized_category, "postgresql")
def _normalized_category_postgresql(element: normalized_category, compiler: SQLCompiler, **kw: Any) -> str:
    return f"upper(btrim({compiler.process(element.clauses, **kw)}, {_PG_BLANKS_LITERAL}))"


@compiles(normalized_category)
def _normalized_category_default(element: normalized_category, compiler: SQLCompiler, **kw: Any) -> str:
    return f"upper(trim({compiler.process(element.clauses, **kw)}))"


class PublicationRules(Mapping[str, Decimal]):
    """Immutable mapping: normalised category → minimum price (inclusive). Empty rules select nothing."""

    __slots__ = ("_thresholds",)

    def __init__(self, thresholds: Mapping[str, Decimal | int | str] | None = None) -> None:
        normalized: dict[str, Decimal] = {}
        for category, threshold in (thresholds or {}).items():
            key = normalize_category(category)
            if not key:
                raise ValueError("a publication rule needs a non-blank category")
            if key in normalized:
                raise ValueError(f"categories {category!r} and another rule normalise to the same {key!r}")
            value = Decimal(threshold)
            if not value.is_finite() or value < 0:
                raise ValueError(f"the price threshold of {category!r} must be a number >= 0, got {threshold!r}")
            normalized[key] = value
        self._thresholds = normalized

    def __getitem__(self, category: str) -> Decimal:
        return self._thresholds[category]

    def __iter__(self) -> Iterator[str]:
        return iter(self._thresholds)

    def __len__(self) -> int:
        return len(self._thresholds)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v}" for k, v in self._thresholds.items())
        return f"PublicationRules({{{inner}}})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PublicationRules):
            return self._thresholds == other._thresholds
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._thresholds.items()))

    def threshold_for(self, category: str | None) -> Decimal | None:
        key = normalize_category(category)
        return self._thresholds.get(key) if key else None

    def matches(self, category: str | None, price: Decimal | None) -> bool:
        """True when the category has a rule and the price reaches its threshold."""
        threshold = self.threshold_for(category)
        return threshold is not None and price is not None and Decimal(price) >= threshold

    def sql_condition(
        self,
        category: sa.ColumnElement[Any] | QueryableAttribute[Any],
        price: sa.ColumnElement[Any] | QueryableAttribute[Any],
    ) -> sa.ColumnElement[bool]:
        """The same test as :meth:`matches`, as one SQL boolean expression (``false`` for empty rules)."""
        if not self._thresholds:
            return sa.false()
        # A simple CASE normalises the category once per row (an OR of equalities would do it once per rule).
        return sa.case(
            {cat: price >= threshold for cat, threshold in self._thresholds.items()},
            value=normalized_category(category),
            else_=sa.false(),
        )


DEFAULT_PUBLICATION_RULES = PublicationRules(
    {"NOTEBOOK": Decimal(1000), "MONITOR": Decimal(0), "COMPUTER": Decimal(500)}
)

_SHAPE = '{"CATEGORY": {"price_threshold": 1000}} or {"CATEGORY": 1000}'


def _error(message: str) -> ConfigurationError:
    return ConfigurationError(f"{RULES_ENV_VAR}: {message} (expected JSON like {_SHAPE})")


def _reject_constant(name: str) -> Any:
    raise _error(f"{name} is not a valid price threshold")


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _error(f"category {key!r} appears twice")
        result[key] = value
    return result


def _threshold(category: str, value: Any) -> Decimal:
    if isinstance(value, dict):
        extra = sorted(set(value) - {"price_threshold"})
        if extra or "price_threshold" not in value:
            raise _error(f"rule {category!r} must have exactly the key 'price_threshold', got keys {sorted(value)}")
        value = value["price_threshold"]
    # json gives bool for true/false (a subclass of int elsewhere, but never a Decimal here)
    if not isinstance(value, Decimal):
        raise _error(f"the price threshold of {category!r} must be a number, got {json.dumps(value, default=str)}")
    if value < 0:
        raise _error(f"the price threshold of {category!r} must be >= 0, got {value}")
    return value


def parse_publication_rules(raw: str | None) -> PublicationRules:
    """Parses the environment value. None (unset) → the original's three rules; ``{}`` → no rules."""
    if raw is None or not raw.strip():
        return DEFAULT_PUBLICATION_RULES
    try:
        data = json.loads(
            raw,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_pairs_without_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise _error(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except InvalidOperation:
        raise _error("a number could not be read") from None
    if not isinstance(data, dict):
        raise _error(f"must be a JSON object, got {type(data).__name__}")
    thresholds: dict[str, Decimal] = {}
    for category, value in data.items():
        if not normalize_category(category):
            raise _error("a category name is blank")
        thresholds[category] = _threshold(category, value)
    try:
        return PublicationRules(thresholds)
    except ValueError as exc:
        raise _error(str(exc)) from None
