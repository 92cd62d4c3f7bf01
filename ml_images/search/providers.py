"""Image search providers behind one interface, each mapping its JSON into ``ImageCandidate``.

Error contract for every provider:

* 401 / 402 / 403 and exhausted quotas → ``SearchQuotaError`` (never retried; the run stops, no product ERROR);
* 429 rate limits, 5xx, connection errors, timeouts, a call past its total deadline or over its body cap, and a
  malformed 200 answer (not JSON, or its result list missing or of the wrong type) → ``RetryableSearchError``
  (the service retries; a malformed answer is never taken, nor cached, as "no results");
* anything else unexpected (other 4xx, a redirect) → ``SearchUnavailableError``.

Only a well-formed answer with an empty result list means "no results" (Google omits ``items`` then, with
``searchInformation.totalResults == "0"``; SerpApi says so in its ``error`` string). Inside a well-formed answer,
a malformed field (``"width": 1e400``, NaN, a list where a string goes) is unknown (None) and a malformed result
is dropped with a refusal: neither costs the other results.

Every call has a total deadline (``deadline_seconds``, default 30 s) and a body cap (``max_body_bytes``, default
5 MB), enforced while the body streams (see ``ml_images.search.bounded_http``).

Credentials travel only where each API wants them (Brave: a header; SerpApi and Google: a query parameter).
They never appear in exception messages or logs: logged URLs have no query string, requests' own exception
text (which contains the full URL) is never propagated, provider error text and result fields are scrubbed of
the secrets in every encoding, and each provider registers its secrets with ``ml_images.redaction``, whose log
record factory redacts every log line of the process (urllib3 logs the full URL at DEBUG).
Redirects are not followed: requests would carry the query string and custom headers to the new host.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests

from ml_images.errors import SearchQuotaError, SearchUnavailableError
from ml_images.outcomes import ReasonCode, Refusal
from ml_images.redaction import install_log_redaction, protect, redact, url_secrets
from ml_images.search.blocklist import host_of
from ml_images.search.bounded_http import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT,
    READ_ERRORS,
    BodyTooLarge,
    CallDeadline,
    DeadlineExceeded,
    ensure_bounded,
    read_body,
)
from ml_images.search.candidates import ImageCandidate
from ml_images.search.retry import RetryableSearchError, parse_retry_after

log = logging.getLogger(__name__)

BRAVE_ENDPOINT = "https://api.search.brave.com/res/v1/images/search"
SERPAPI_ENDPOINT = "https://serpapi.com/search.json"
GOOGLE_CSE_ENDPOINT = "https://www.googleapis.com/customsearch/v1"

_UNSUPPORTED_FORMATS = ("gif", "svg")
_RESOLUTION = re.compile(r"(\d{2,5})\s*[x×X*]\s*(\d{2,5})")
_MAX_SIDE = 1_000_000  # a reported side beyond this is nonsense: unknown
_MAX_INT_DIGITS = 30  # longer JSON integers are read as infinite (unknown), not as a reason to reject the answer
_ERROR_BODY_BYTES = 64 * 1024  # an error answer is read this far for its detail; the rest is not needed


@dataclass(frozen=True)
class ProviderPage:
    """One page of results. ``dropped`` holds results the provider itself could tell are unusable (no URL,
    a GIF/SVG by reported MIME type), so they are reported like the service's own filtering."""

    candidates: list[ImageCandidate]
    has_more: bool
    dropped: list[Refusal] = field(default_factory=list)


@runtime_checkable
class ImageSearchProvider(Protocol):
    @property
    def name(self) -> str: ...

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        """Page ``page`` (0-based) of image results for ``query``; ``per_page`` is a hint the API may cap."""
        ...


def redact_url(url: str) -> str:
    """The URL without query string or fragment (where API keys live), for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _positive_int(value: Any) -> int | None:
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


def _text(value: Any, limit: int = 2000) -> str | None:
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _parse_int(text: str) -> int | float:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


_NOT_JSON = object()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _decode_json(raw: bytes) -> Any:
    """The parsed body, or ``_NOT_JSON``. One absurd number does not make the whole body unreadable."""
    try:
        return json.loads(raw, parse_int=_parse_int)
    except UnicodeDecodeError:
        try:  # one bad byte in a title must not cost the other results
            return json.loads(raw.decode("utf-8", errors="replace"), parse_int=_parse_int)
        except (ValueError, RecursionError):
            return _NOT_JSON
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the parser goes
        return _NOT_JSON


def _result_list(provider: str, results: Any, field_name: str) -> list[Mapping[str, Any] | None]:
    """The result list of an answer, each entry a mapping or None (a malformed entry, refused on its own).

    A missing or mistyped list makes the whole answer malformed: a provider failure, never "no results"."""
    if not isinstance(results, list):
        what = "missing" if results is None else f"a JSON {_json_type(results)}, not an array"
        raise RetryableSearchError(f"{provider}: malformed answer: {field_name!r} is {what}")
    return [item if isinstance(item, Mapping) else None for item in results]


def _not_an_object(index: int) -> Refusal:
    return Refusal("search", ReasonCode.BAD_URL, None, f"result {index} is not a JSON object")


def _candidate(
    image_url: Any, *, width: Any = None, height: Any = None, page_url: Any = None, title: Any = None, rank: int
) -> ImageCandidate | None:
    url = _text(image_url)
    if url is None:
        return None
    page = _text(page_url)
    return ImageCandidate(
        image_url=url,
        width=_positive_int(width),
        height=_positive_int(height),
        page_url=page,
        source=host_of(page) or host_of(url),
        title=_text(title, 300),
        rank=rank,
    )


def _unsupported_format(*reported: Any) -> str | None:
    for value in reported:
        if isinstance(value, str):
            lowered = value.lower()
            for fmt in _UNSUPPORTED_FORMATS:
                if fmt in lowered:
                    return fmt
    return None


class _JsonApiProvider:
    """HTTP plumbing shared by the providers: GET, error classification, secret scrubbing."""

    name = "provider"

    def __init__(
        self,
        session: requests.Session,
        endpoint: str,
        *,
        secrets: Iterable[str | None] = (),
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if deadline_seconds <= 0 or max_body_bytes < 1:
            raise ValueError("deadline_seconds and max_body_bytes must be positive")
        self.session = session
        self.endpoint = endpoint
        self.timeout = timeout
        self.deadline_seconds = deadline_seconds
        self.max_body_bytes = max_body_bytes
        self._secrets = tuple(s for s in (*secrets, *url_secrets(endpoint)) if s)
        protect(*self._secrets)
        install_log_redaction()  # this process holds a key now: no log line of it may show one
        ensure_bounded(session, endpoint, timeout)

    def __repr__(self) -> str:  # no credentials in reprs either
        return f"{type(self).__name__}(endpoint={redact_url(self.endpoint)!r})"

    def _scrub(self, text: str) -> str:
        """``text`` without this provider's (or any other known) credential, in any encoding."""
        return redact(text)

    def _get_json(self, params: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        where = redact_url(self.endpoint)
        with CallDeadline(self.deadline_seconds) as deadline:
            try:
                response = self.session.get(
                    self.endpoint,
                    params=dict(params),
                    headers=dict(headers or {}),
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if deadline.expired:
                    raise self._past_deadline(where) from None
                # ``from None``: requests' message contains the full URL, query string (API key) included.
                raise RetryableSearchError(f"{self.name}: {type(exc).__name__} calling {where}") from None
            except Exception as exc:  # whatever it is, its text may hold the URL, query string and key included
                raise SearchUnavailableError(f"{self.name}: {type(exc).__name__} calling {where}") from None
            with response:
                status = response.status_code
                log.debug("%s GET %s -> %s", self.name, where, status)
                try:
                    if status == 200:
                        raw = read_body(response, deadline, self.max_body_bytes)
                    else:
                        raw = read_body(response, deadline, _ERROR_BODY_BYTES, truncate=True)
                except DeadlineExceeded:
                    raise self._past_deadline(where) from None
                except BodyTooLarge as exc:
                    raise RetryableSearchError(
                        f"{self.name}: {where} answered more than the {self.max_body_bytes} bytes allowed ({exc})"
                    ) from None
                except READ_ERRORS as exc:
                    raise RetryableSearchError(
                        f"{self.name}: connection broken while reading the answer of {where} ({type(exc).__name__})"
                    ) from None
        body = _decode_json(raw)
        if status == 200:
            if not isinstance(body, Mapping):
                what = "not JSON" if body is _NOT_JSON else f"a JSON {_json_type(body)}, not an object"
                raise RetryableSearchError(f"{self.name}: {where} answered 200 with a body that is {what}")
            return body
        self._raise_for_status(status, body if isinstance(body, Mapping) else {}, response.headers)

    def _past_deadline(self, where: str) -> RetryableSearchError:
        return RetryableSearchError(
            f"{self.name}: no complete answer from {where} within the {self.deadline_seconds:g} s deadline"
        )

    def _error_detail(self, body: Mapping[str, Any]) -> str:
        """A short, scrubbed description of the provider's error body (overridden per provider)."""
        error = body.get("error")
        if isinstance(error, str):
            return self._scrub(error[:200])
        return ""

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        return False

    def _raise_for_status(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> NoReturn:
        detail = self._error_detail(body)
        message = f"{self.name}: HTTP {status}" + (f" ({detail})" if detail else "")
        if status in (401, 402, 403) or self._is_quota(status, body):
            raise SearchQuotaError(message + "; check the API key, plan and quota")
        if status == 429 or status >= 500:
            raise RetryableSearchError(message, retry_after=parse_retry_after(headers.get("Retry-After")))
        raise SearchUnavailableError(message)


class BraveImageSearch(_JsonApiProvider):
    """Brave Search API, image endpoint (the default provider).

    The image endpoint has no offset parameter and a call costs the same for 1 or 200 results, so the
    first page asks for at least 50 results and there is never a second page.
    """

    name = "brave"
    MAX_COUNT = 200
    MIN_COUNT = 50

    def __init__(
        self,
        api_key: str,
        session: requests.Session,
        endpoint: str | None = None,
        country: str = "AR",
        search_lang: str = "es",
        safesearch: str = "strict",
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            session,
            endpoint or BRAVE_ENDPOINT,
            secrets=[api_key],
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
        )
        self._api_key = api_key
        self.country = country
        self.search_lang = search_lang
        self.safesearch = safesearch

    def _error_detail(self, body: Mapping[str, Any]) -> str:
        error = _mapping(body.get("error"))
        parts = [str(error.get(k)) for k in ("code", "detail") if isinstance(error.get(k), str)]
        return self._scrub(" ".join(parts)[:200])

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # 429 is both the per-second rate limit (retry) and the monthly quota (stop): tell them apart.
        error = _mapping(body.get("error"))
        if str(error.get("code", "")).upper() in ("QUOTA_LIMITED", "QUOTA_EXCEEDED"):
            return True
        meta = _mapping(error.get("meta"))
        limit, current = meta.get("quota_limit"), meta.get("quota_current")
        return isinstance(limit, int) and isinstance(current, int) and 0 < limit <= current

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        if page > 0:
            return ProviderPage([], has_more=False)
        count = min(self.MAX_COUNT, max(per_page, self.MIN_COUNT))
        data = self._get_json(
            {
                "q": query,
                "country": self.country,
                "search_lang": self.search_lang,
                "count": count,
                "safesearch": self.safesearch,
                "spellcheck": "false",  # product names and SKUs must not be "corrected"
            },
            headers={"X-Subscription-Token": self._api_key, "Accept": "application/json"},
        )
        candidates: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        # Brave answers a query without matches with an empty ``results`` list.
        for i, item in enumerate(_result_list(self.name, data.get("results"), "results")):
            if item is None:
                dropped.append(_not_an_object(i))
                continue
            props = _mapping(item.get("properties"))
            candidate = _candidate(
                props.get("url"),
                width=props.get("width"),
                height=props.get("height"),
                page_url=item.get("url"),
                title=item.get("title"),
                rank=i,
            )
            if candidate is None:
                dropped.append(
                    Refusal("search", ReasonCode.BAD_URL, _text(item.get("url")), "result without an image URL")
                )
            else:
                candidates.append(candidate)
        return ProviderPage(candidates, has_more=False, dropped=dropped)


class SerpApiImageSearch(_JsonApiProvider):
    """SerpApi ``google_images`` engine: Google Images results, about 100 per page (``ijn`` 0..99)."""

    name = "serpapi"
    MAX_PAGE = 99

    def __init__(
        self,
        api_key: str,
        session: requests.Session,
        endpoint: str | None = None,
        gl: str = "ar",
        hl: str = "es",
        *,
        google_domain: str = "google.com.ar",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            session,
            endpoint or SERPAPI_ENDPOINT,
            secrets=[api_key],
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
        )
        self._api_key = api_key
        self.gl = gl
        self.hl = hl
        self.google_domain = google_domain

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # SerpApi answers 429 both for the hourly throughput limit (retry) and an exhausted plan (stop).
        error = body.get("error")
        return isinstance(error, str) and "run out of searches" in error.lower()

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        if page > self.MAX_PAGE:
            return ProviderPage([], has_more=False)
        data = self._get_json(
            {
                "engine": "google_images",
                "q": query,
                "gl": self.gl,
                "hl": self.hl,
                "google_domain": self.google_domain,
                "ijn": page,
                "api_key": self._api_key,
            }
        )
        error = data.get("error")
        if isinstance(error, str):
            if "hasn't returned any results" in error or "no results" in error.lower():
                return ProviderPage([], has_more=False)  # SerpApi reports an empty result as an error string
            raise SearchUnavailableError(f"serpapi: {self._scrub(error[:200])}")
        state = _mapping(data.get("search_information")).get("image_results_state")
        if "images_results" not in data and isinstance(state, str) and "empty" in state.lower():
            return ProviderPage([], has_more=False)  # "Fully empty": the other way SerpApi says "no results"
        candidates: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        results = _result_list(self.name, data.get("images_results"), "images_results")
        for i, item in enumerate(results):
            if item is None:
                dropped.append(_not_an_object(i))
                continue
            candidate = _candidate(
                item.get("original"),
                width=item.get("original_width"),
                height=item.get("original_height"),
                page_url=item.get("link"),
                title=item.get("title"),
                rank=i,
            )
            if candidate is None:
                dropped.append(
                    Refusal("search", ReasonCode.BAD_URL, _text(item.get("link")), "result without an original URL")
                )
            else:
                candidates.append(candidate)
        pagination = data.get("serpapi_pagination")
        has_more = bool(_mapping(pagination).get("next")) if pagination is not None else bool(results)
        return ProviderPage(candidates, has_more=has_more and page < self.MAX_PAGE, dropped=dropped)


class GoogleCseImageSearch(_JsonApiProvider):
    """Google Custom Search JSON API with ``searchType=image`` (closed to new customers; ends 2027-01-01).

    ``num`` is at most 10 and ``start + num`` at most 100. The next page starts at
    ``queries.nextPage[0].startIndex``, remembered per (query, page size) for the following call.
    """

    name = "google"
    MAX_NUM = 10
    MAX_RESULTS = 100
    _QUOTA_REASONS = frozenset(
        {"dailylimitexceeded", "ratelimitexceeded", "rate_limit_exceeded", "quotaexceeded", "userratelimitexceeded"}
    )

    def __init__(
        self,
        api_key: str,
        cx: str,
        session: requests.Session,
        endpoint: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            session,
            endpoint or GOOGLE_CSE_ENDPOINT,
            secrets=[api_key, cx],
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
        )
        self._api_key = api_key
        self._cx = cx
        self._next_start: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _reasons(body: Mapping[str, Any]) -> list[str]:
        error = _mapping(body.get("error"))
        reasons = [str(e.get("reason", "")) for e in _items(error.get("errors"))]
        reasons.extend(str(d.get("reason", "")) for d in _items(error.get("details")))
        if isinstance(error.get("status"), str):
            reasons.append(error["status"])
        return [r for r in reasons if r]

    def _error_detail(self, body: Mapping[str, Any]) -> str:
        return self._scrub(", ".join(self._reasons(body))[:200])

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # Daily quota: 429 RESOURCE_EXHAUSTED / rateLimitExceeded (older keys: 403 dailyLimitExceeded).
        # It resets at midnight Pacific, so retrying within a run only burns time.
        reasons = {r.lower() for r in self._reasons(body)}
        return bool(reasons & self._QUOTA_REASONS) or "resource_exhausted" in reasons

    def _remember(self, key: tuple[str, int, int], start: int) -> None:
        with self._lock:
            self._next_start[key] = start
            self._next_start.move_to_end(key)
            while len(self._next_start) > 1024:
                self._next_start.popitem(last=False)

    def _results(self, data: Mapping[str, Any], page: int) -> list[Mapping[str, Any] | None]:
        """``items``; Google omits it when nothing matched (``totalResults`` "0") and past the last page."""
        if "items" not in data:
            info = data.get("searchInformation")
            total = _mapping(info).get("totalResults")
            if isinstance(info, Mapping) and (str(total).strip() == "0" or page > 0):
                return []
        return _result_list(self.name, data.get("items"), "items")

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        num = max(1, min(per_page, self.MAX_NUM))
        with self._lock:
            start = self._next_start.get((query, num, page), 1 + page * num)
        num = min(num, self.MAX_RESULTS - start)
        if num < 1:
            return ProviderPage([], has_more=False)
        data = self._get_json(
            {"key": self._api_key, "cx": self._cx, "q": query, "searchType": "image", "num": num, "start": start}
        )
        candidates: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        for i, item in enumerate(self._results(data, page)):
            if item is None:
                dropped.append(_not_an_object(i))
                continue
            image = _mapping(item.get("image"))
            fmt = _unsupported_format(item.get("mime"), item.get("fileFormat"))
            url = _text(item.get("link"))
            if fmt is not None:
                dropped.append(Refusal("search", ReasonCode.UNSUPPORTED_FORMAT, url, f"reported as {fmt}"))
                continue
            candidate = _candidate(
                url,
                width=image.get("width"),
                height=image.get("height"),
                page_url=image.get("contextLink"),
                title=item.get("title"),
                rank=i,
            )
            if candidate is None:
                dropped.append(Refusal("search", ReasonCode.BAD_URL, None, "result without a link"))
            else:
                candidates.append(candidate)
        next_pages = _items(_mapping(data.get("queries")).get("nextPage"))
        next_start = _positive_int(next_pages[0].get("startIndex")) if next_pages else None
        has_more = next_start is not None and next_start < self.MAX_RESULTS
        if has_more and next_start is not None:
            self._remember((query, max(1, min(per_page, self.MAX_NUM)), page + 1), next_start)
        return ProviderPage(candidates, has_more=has_more, dropped=dropped)


class SearxngImageSearch(_JsonApiProvider):
    """A SearXNG instance's JSON API (``format=json`` must be enabled in its settings.yml, else 403)."""

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        endpoint: str | None = None,
        *,
        language: str = "es-AR",
        safesearch: int = 1,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            session,
            endpoint or base_url.rstrip("/") + "/search",
            secrets=url_secrets(base_url),  # an instance behind basic auth or a token parameter
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
        )
        self.language = language
        self.safesearch = safesearch

    @staticmethod
    def parse_resolution(value: Any) -> tuple[int | None, int | None]:
        """``"1920 x 1080"``, ``"1920×1080"``...: free text whose format depends on the engine."""
        if not isinstance(value, str):
            return None, None
        found = _RESOLUTION.search(value)
        if not found:
            return None, None
        return _positive_int(found.group(1)), _positive_int(found.group(2))

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        data = self._get_json(
            {
                "q": query,
                "format": "json",
                "categories": "images",
                "pageno": page + 1,
                "language": self.language,
                "safesearch": self.safesearch,
            }
        )
        candidates: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        results = _result_list(self.name, data.get("results"), "results")
        unresponsive = data.get("unresponsive_engines")
        if not results and isinstance(unresponsive, list) and unresponsive:
            # Every engine that could have answered failed (CAPTCHA, timeout): that is not "no results".
            engines = ", ".join(str(e[0]) for e in unresponsive if isinstance(e, list) and e)[:200]
            raise RetryableSearchError(f"searxng: no results and engines unresponsive ({self._scrub(engines)})")
        for i, item in enumerate(results):
            if item is None:
                dropped.append(_not_an_object(i))
                continue
            url = _text(item.get("img_src"))
            fmt = _unsupported_format(item.get("img_format"))
            if fmt is not None:
                dropped.append(Refusal("search", ReasonCode.UNSUPPORTED_FORMAT, url, f"reported as {fmt}"))
                continue
            width, height = self.parse_resolution(item.get("resolution"))
            candidate = _candidate(
                url, width=width, height=height, page_url=item.get("url"), title=item.get("title"), rank=i
            )
            if candidate is None:
                dropped.append(Refusal("search", ReasonCode.BAD_URL, _text(item.get("url")), "result without img_src"))
            else:
                candidates.append(candidate)
        return ProviderPage(candidates, has_more=bool(results), dropped=dropped)
