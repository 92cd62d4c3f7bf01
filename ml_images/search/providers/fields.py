"""Reading a provider's JSON answer defensively: one malformed field is unknown (None), never a failed search.

A result field may be anything (``"width": 1e400``, NaN, a list where a string goes, NUL bytes, a credential the
provider echoed back): each reader here returns a clean value or None, and ``result_list`` tells a malformed
answer (a provider failure, retried) from an empty one ("no results").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ml_images.outcomes import ReasonCode, Refusal
from ml_images.redaction import redact
from ml_images.search.blocklist import host_of
from ml_images.search.candidates import ImageCandidate
from ml_images.search.retry import RetryableSearchError

_UNSUPPORTED_FORMATS = ("gif", "svg")
_RESOLUTION = re.compile(r"(\d{2,5})\s*[x×X*]\s*(\d{2,5})")
_MAX_SIDE = 1_000_000  # a reported side beyond this is nonsense: unknown
_MAX_INT_DIGITS = 30  # longer JSON integers are read as infinite (unknown), not as a reason to reject the answer

#: What ``decode_json`` returns for a body that is not JSON at all.
NOT_JSON = object()


def positive_int(value: Any) -> int | None:
    """A positive whole number, or None for anything else (bool, NaN, infinity, text, absurd sizes)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= _MAX_INT_DIGITS:
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= _MAX_SIDE else None


def text(value: Any, limit: int = 2000) -> str | None:
    """Stripped text, or None for anything a database or a log could not hold (NUL, lone surrogates)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return redact(value[:limit])  # a provider echoing a credential into a result must not get it stored


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def resolution(value: Any) -> tuple[int | None, int | None]:
    """``"1920 x 1080"``, ``"1920×1080"``...: free text whose format depends on the engine."""
    if not isinstance(value, str):
        return None, None
    found = _RESOLUTION.search(value)
    if not found:
        return None, None
    return positive_int(found.group(1)), positive_int(found.group(2))


def _parse_int(digits: str) -> int | float:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def decode_json(raw: bytes) -> Any:
    """The parsed body, or ``NOT_JSON``. One absurd number does not make the whole body unreadable."""
    try:
        return json.loads(raw, parse_int=_parse_int)
    except UnicodeDecodeError:
        try:  # one bad byte in a title must not cost the other results
            return json.loads(raw.decode("utf-8", errors="replace"), parse_int=_parse_int)
        except (ValueError, RecursionError):
            return NOT_JSON
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the parser goes
        return NOT_JSON


def result_list(provider: str, results: Any, field_name: str) -> list[Mapping[str, Any] | None]:
    """The result list of an answer, each entry a mapping or None (a malformed entry, refused on its own).

    A missing or mistyped list makes the whole answer malformed: a provider failure, never "no results"."""
    if not isinstance(results, list):
        what = "missing" if results is None else f"a JSON {json_type(results)}, not an array"
        raise RetryableSearchError(f"{provider}: malformed answer: {field_name!r} is {what}")
    return [item if isinstance(item, Mapping) else None for item in results]


def candidate(
    image_url: Any, *, width: Any = None, height: Any = None, page_url: Any = None, title: Any = None, rank: int
) -> ImageCandidate | None:
    """The candidate a result describes, or None when it has no usable image URL."""
    url = text(image_url)
    if url is None:
        return None
    page = text(page_url)
    return ImageCandidate(
        image_url=url,
        width=positive_int(width),
        height=positive_int(height),
        page_url=page,
        source=host_of(page) or host_of(url),
        title=text(title, 300),
        rank=rank,
    )


def unsupported_format(url: str | None, *reported: Any) -> Refusal | None:
    """The refusal of a result the provider reports as GIF or SVG (by MIME type or format field), else None."""
    for value in reported:
        if isinstance(value, str):
            lowered = value.lower()
            for fmt in _UNSUPPORTED_FORMATS:
                if fmt in lowered:
                    return Refusal("search", ReasonCode.UNSUPPORTED_FORMAT, url, f"reported as {fmt}")
    return None


def no_image_url(page_url: str | None, what: str) -> Refusal:
    """The refusal of a result without the image URL it should carry (``what`` names the missing field)."""
    return Refusal("search", ReasonCode.BAD_URL, page_url, f"result without {what}")
