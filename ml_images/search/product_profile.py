"""Who the product is, as the ranking reads it: brand and model (``product_identity``), the model-number words
its own texts use, and whether a host is one of the brand's own sites (``is_brand_host``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ml_images.processing.product_match import ProductIdentity, is_model_number, normalise, tokens
from ml_images.search.query import _BRAND_KEYS, _MODEL_KEYS, _spec  # the query builder's spec keys: one definition

# Second-level labels under a country code that are not a registrant's name: ``lenovo.com.ar``, ``bbc.co.uk``,
# ``gob.ar``. Enough for the brands' own sites; a full public-suffix list is not needed to say "this is lenovo".
_SECOND_LEVEL = frozenset({"com", "co", "net", "org", "gob", "gov", "edu", "ac", "mil", "nom", "or", "ne", "go", "int"})


def registrable_name(host: str | None) -> str | None:
    """The registrant's label of ``host``: ``lenovo`` for ``psref.lenovo.com``, ``lenovo.com.ar``, ``www.lenovo.co.uk``.

    None for an IP address or a host without a dot.
    """
    if not host:
        return None
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    if len(labels) < 2:
        return None
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3]
    return labels[-2]


def is_brand_host(host: str | None, brand: str | None) -> bool:
    """Whether ``host`` is one of the brand's own: its registrable name, normalised, equals the brand's."""
    wanted = normalise(brand or "")
    name = registrable_name(host)
    return bool(wanted) and name is not None and normalise(name) == wanted


class ProductLike(Protocol):
    """What ``ProductProfile.of`` needs from a product; ``ProductMaster`` satisfies it."""

    @property
    def specs(self) -> Mapping[str, Any] | None: ...

    @property
    def model_name(self) -> str | None: ...

    @property
    def sku(self) -> str | None: ...

    @property
    def gtin(self) -> str | None: ...

    @property
    def description(self) -> str | None: ...

    @property
    def normalized_name(self) -> str | None: ...


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def product_identity(product: ProductLike) -> ProductIdentity:
    """Brand and model as the query builder reads them from ``specs`` (``product_master`` has no brand column),
    the model falling back to ``model_name``; SKU and GTIN from their columns."""
    specs = product.specs if isinstance(product.specs, Mapping) else {}
    return ProductIdentity(
        brand=_spec(specs, _BRAND_KEYS),
        model=_spec(specs, _MODEL_KEYS) or _text(product.model_name),
        sku=_text(product.sku),
        gtin=_text(product.gtin),
    )


def own_model_numbers(product: ProductLike) -> frozenset[str]:
    """Model-number-like words of the product's own texts (``i51135g7`` from "Core i5-1135G7" in its description or
    specs). A result title that names them names this product's parts, not another model: without this, every
    title listing the product's processor would count as naming another model."""
    specs = product.specs if isinstance(product.specs, Mapping) else {}
    texts = [product.description, product.normalized_name, *(v for v in specs.values() if isinstance(v, str))]
    return frozenset(t for text in texts if text for t in tokens(text) if is_model_number(t))


@dataclass(frozen=True)
class ProductProfile:
    """What the ranking knows of the product: its identity and the model-number words its own texts use."""

    identity: ProductIdentity
    own_words: frozenset[str] = frozenset()

    @classmethod
    def of(cls, product: ProductLike) -> ProductProfile:
        return cls(product_identity(product), own_model_numbers(product))

    def own_codes(self) -> frozenset[str]:
        """The model codes and the SKU, normalised: the words that name this product."""
        sku = normalise(self.identity.sku or "")
        return frozenset(self.identity.model_codes() | ({sku} if sku else set()))

    def neutral_words(self) -> frozenset[str]:
        """Own words that are not (a spelling of) the model or SKU: a title may name them without naming another
        model. ``x1504zabq`` from "X1504ZA-BQ" in the description stays out: it is the model with a suffix."""
        codes = self.own_codes()
        return frozenset(w for w in self.own_words if not any(related_codes(w, code) for code in codes))


def related_codes(a: str, b: str) -> bool:
    """One contains the other (4 characters at least): two spellings of one code."""
    return len(a) >= 4 and len(b) >= 4 and (a in b or b in a)
