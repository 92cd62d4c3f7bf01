"""What every image search provider shares: the page type, the interface, and the HTTP and error base.

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

Every call has a total deadline and a body cap (``HttpLimits``: default 30 s and 5 MB), enforced while the body
streams (see ``ml_images.search.bounded_http``). Each provider lives in its own
module of this package and only says how to ask (parameters, credentials) and how to read one result
(``JsonApiProvider._read``); the loop over the results is ``JsonApiProvider._page``, here.

Credentials travel only where each API wants them (Brave: a header; SerpApi and Google: a query parameter).
They never appear in exception messages or logs: logged URLs have no query string, requests' own exception
text (which contains the full URL) is never propagated, provider error text and result fields are scrubbed of
the secrets in every encoding, and each provider registers its secrets with ``ml_images.redaction``, whose log
record factory redacts every log line of the process (urllib3 logs the full URL at DEBUG).
Redirects are not followed: requests would carry the query string and custom headers to the new host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests

from ml_images.errors import SearchQuotaError, SearchUnavailableError
from ml_images.net.capped_body import CONNECTION_ERRORS, BodyTooLarge, DeadlineExceeded
from ml_images.outcomes import ReasonCode, Refusal
from ml_images.redaction import install_log_redaction, protect, redact, url_secrets
from ml_images.search.bounded_http import DEFAULT_LIMITS, CallDeadline, HttpLimits, ensure_bounded, read_body
from ml_images.search.candidates import ImageCandidate
from ml_images.search.providers.fields import NOT_JSON, decode_json, json_type
from ml_images.search.retry import RetryableSearchError, parse_retry_after

log = logging.getLogger(__name__)

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


class JsonApiProvider:
    """HTTP plumbing shared by the providers: GET, error classification, secret scrubbing, and the one loop
    that turns a result list into candidates and refusals (each provider says how to read one result)."""

    name = "provider"

    def __init__(
        self,
        session: requests.Session,
        endpoint: str,
        *,
        secrets: Iterable[str | None] = (),
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.limits = limits
        self._secrets = tuple(s for s in (*secrets, *url_secrets(endpoint)) if s)
        protect(*self._secrets)
        install_log_redaction()  # this process holds a key now: no log line of it may show one
        ensure_bounded(session, endpoint, limits.timeout)

    def __repr__(self) -> str:  # no credentials in reprs either
        return f"{type(self).__name__}(endpoint={redact_url(self.endpoint)!r})"

    def _scrub(self, text: str) -> str:
        """``text`` without this provider's (or any other known) credential, in any encoding."""
        return redact(text)

    def _get_json(self, params: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        where = redact_url(self.endpoint)
        with CallDeadline(self.limits.deadline_seconds) as deadline:
            try:
                response = self.session.get(
                    self.endpoint,
                    params=dict(params),
                    headers=dict(headers or {}),
                    timeout=self.limits.timeout,
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
                        raw = read_body(response, deadline, self.limits.max_body_bytes)
                    else:
                        raw = read_body(response, deadline, _ERROR_BODY_BYTES, truncate=True)
                except DeadlineExceeded:
                    raise self._past_deadline(where) from None
                except BodyTooLarge as exc:
                    allowed = self.limits.max_body_bytes
                    raise RetryableSearchError(
                        f"{self.name}: {where} answered more than the {allowed} bytes allowed ({exc})"
                    ) from None
                except CONNECTION_ERRORS as exc:
                    raise RetryableSearchError(
                        f"{self.name}: connection broken while reading the answer of {where} ({type(exc).__name__})"
                    ) from None
        body = decode_json(raw)
        if status == 200:
            if not isinstance(body, Mapping):
                what = "not JSON" if body is NOT_JSON else f"a JSON {json_type(body)}, not an object"
                raise RetryableSearchError(f"{self.name}: {where} answered 200 with a body that is {what}")
            return body
        self._raise_for_status(status, body if isinstance(body, Mapping) else {}, response.headers)

    def _page(self, results: Sequence[Mapping[str, Any] | None], *, has_more: bool) -> ProviderPage:
        """The page of ``results``: each result read by ``_read``, a malformed one refused on its own."""
        candidates: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        for i, item in enumerate(results):
            found = (
                Refusal("search", ReasonCode.BAD_URL, None, f"result {i} is not a JSON object")
                if item is None
                else self._read(i, item)
            )
            if isinstance(found, ImageCandidate):
                candidates.append(found)
            else:
                dropped.append(found)
        return ProviderPage(candidates, has_more=has_more, dropped=dropped)

    def _read(self, rank: int, item: Mapping[str, Any]) -> ImageCandidate | Refusal:
        """One result as a candidate, or the refusal saying why it cannot be one (per provider)."""
        raise NotImplementedError

    def _past_deadline(self, where: str) -> RetryableSearchError:
        return RetryableSearchError(
            f"{self.name}: no complete answer from {where} within the {self.limits.deadline_seconds:g} s deadline"
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
