"""Is this picture of the right product? Words read on it against the product's brand, model, SKU and GTIN.

Everything is compared normalised: accents and case dropped, separators removed (``LF24T350-FHL`` and
``lf24t350 fhl`` are the same). A *model number* is a token mixing letters and digits the way model codes do
(``LF24T350FHL``, ``27MP400``, ``X1504ZA``): 4-14 characters, at least two digits, letter runs of at most four
(so ``OFERTA30`` or ``tienda24`` are words, not model numbers) and not a unit or interface (``144Hz``, ``512GB``,
``USB3``). A readable model number of the product's own family — the brand is read too, or it shares the first
two characters of the product's model code — that is not the product's model names *another* model: that picture
shows the wrong product.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ml_images.processing.results import ProductMatch

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_UNIT = re.compile(
    r"^\d+(hz|khz|mhz|ghz|gb|tb|mb|kb|w|v|mah|mm|cm|m|in|k|p|ms|fps|x|nits|rpm|gen|th|nd|rd|st)$"
    r"|^(usb|hdmi|ddr|lpddr|pcie|wifi|rtx|gtx|rx|ips|va|tn|fhd|qhd|uhd|hd|dp|nvme|ssd|hdd|sata|type)\d"
)
_LETTER_RUN = re.compile(r"[a-z]+")


def normalise(text: str) -> str:
    """Lower case, no accents, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return _NOT_ALNUM.sub("", plain)


def tokens(text: str) -> list[str]:
    """Normalised tokens of ``text`` split at blanks and separators (``-``, ``/``, ``.`` and the like stay inside a
    token when they join letters and digits, as in model codes)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    out = []
    for raw in re.split(r"\s+", plain):
        token = _NOT_ALNUM.sub("", raw)
        if token:
            out.append(token)
    return out


def is_model_number(token: str) -> bool:
    if not 4 <= len(token) <= 14 or _UNIT.match(token):
        return False
    digits = sum(ch.isdigit() for ch in token)
    if digits < 2 or digits == len(token):
        return False
    return all(len(run) <= 4 for run in _LETTER_RUN.findall(token))


@dataclass(frozen=True)
class ProductIdentity:
    """Who the product is, as the catalog knows it. Every field is optional; an empty identity matches nothing."""

    brand: str | None = None
    model: str | None = None
    sku: str | None = None
    gtin: str | None = None

    def model_codes(self) -> set[str]:
        """The model as one normalised string, plus its model-number tokens (``IdeaPad 3 15ITL6`` → ``15itl6``)."""
        if not self.model:
            return set()
        codes = {t for t in tokens(self.model) if is_model_number(t)}
        whole = normalise(self.model)
        if len(whole) >= 3:
            codes.add(whole)
        return codes


def _contains_either(a: str, b: str, shortest: int = 4) -> bool:
    return len(a) >= shortest and len(b) >= shortest and (a in b or b in a)


def match_words(words: Iterable[str], identity: ProductIdentity | None) -> ProductMatch:
    """Compare the lines read on a picture with the product's identity."""
    lines = [w for w in words if w and w.strip()]
    if identity is None or not lines:
        return ProductMatch()
    joined = "".join(normalise(line) for line in lines)
    read_tokens = [t for line in lines for t in tokens(line)]
    brand = normalise(identity.brand or "")
    sku = normalise(identity.sku or "")
    gtin = re.sub(r"\D", "", identity.gtin or "")
    codes = identity.model_codes()

    brand_named = len(brand) >= 2 and brand in joined
    # The model as written, or a model number that is a shorter or longer spelling of it (``LF24T350`` for
    # ``LF24T350FHL``: the family without the variant suffix).
    model_named = any(len(code) >= 3 and code in joined for code in codes) or any(
        is_model_number(token) and _contains_either(token, code, 6) for token in read_tokens for code in codes
    )
    sku_named = len(sku) >= 4 and sku in joined
    gtin_named = len(gtin) >= 8 and gtin in re.sub(r"\D", "", " ".join(lines))

    other: str | None = None
    if codes and not model_named:
        own = codes | ({sku} if sku else set())
        family_prefixes = {code[:2] for code in codes if is_model_number(code) or len(code) >= 4}
        for token in read_tokens:
            if brand and token.startswith(brand):  # "SAMSUNGLF27T350" read as one token: judge what follows
                token = token[len(brand) :]
            if not is_model_number(token) or any(_contains_either(token, code) for code in own):
                continue
            if brand_named or token[:2] in family_prefixes:
                other = token
                break
    return ProductMatch(
        brand_named=brand_named,
        model_named=model_named,
        sku_named=sku_named,
        gtin_named=gtin_named,
        other_model=other,
    )
