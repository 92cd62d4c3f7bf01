"""Keeps credentials out of every log line and every message, in any form a URL or a JSON body gives them.

A credential reaches text in more forms than its own: SerpApi and Google want the key in the query string, so
urllib3's DEBUG line ``"GET /search.json?...&api_key=... HTTP/1.1" 200`` carries it percent-encoded, and a
provider's error body may echo it raw, percent-encoded (even twice), with ``+`` for spaces or JSON-escaped.
``redact`` replaces every such form of every secret with ``***``.

The secrets are the values of the credential variables the project reads (search keys, AWS credentials, the
password of every database or broker URL, a key or password inside an endpoint URL) plus whatever code
registers with ``protect`` (a provider's key given in its constructor). They are read from the environment
when text is redacted, so a variable set after start-up is covered too.

``install_log_redaction`` wraps the logging record factory: every ``LogRecord`` of the process, whoever logs it
and whichever handler (a console, a file, Dagster's compute-log capture or its event log) later writes it, is
redacted once, when it is created. The CLI installs it when it configures logging, and every search provider
installs it when it is built, so runs launched by Dagster outside the CLI (daemon, UI, ``dagster job
execute``) are covered in the process that holds the key.

Secrets shorter than ``MIN_LENGTH`` characters cannot be told apart from ordinary text and are not redacted;
those shorter than ``BOUNDED_BELOW`` are redacted only where they stand alone (a password ``pass`` must not
turn "passed" into "***ed").
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 3
BOUNDED_BELOW = 8

# Variables whose whole value is a credential.
SECRET_VARIABLES = (
    "BRAVE_SEARCH_API_KEY",
    "SERPAPI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_SEARCH_ENGINE_ID",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DAGSTER_PG_PASSWORD",
)
# Variables holding a URL whose password (or key-like query parameter) is a credential.
URL_VARIABLES = (
    "ML_IMAGES_DATABASE_URL",
    "SEARXNG_URL",
    "ML_IMAGES_SEARCH_ENDPOINT",
    "ML_IMAGES_SEARCH_FALLBACK_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "ML_IMAGES_CELERY_BROKER_URL",
    "ML_IMAGES_CELERY_BACKEND_URL",
)
# Any other variable named like a credential (a deployment's own tokens), when long enough to be one.
_CREDENTIAL_NAME = re.compile(r"(?:^|_)(?:API_KEY|SECRET|SECRET_KEY|SECRET_ACCESS_KEY|TOKEN|PASSWORD|PASSWD)$")
_KEY_LIKE_PARAMETER = re.compile(r"key|token|secret|pass|pwd|auth|sig|cred", re.IGNORECASE)

_lock = threading.Lock()
_protected: set[str] = set()
_protected_version = 0
# (what the secrets were derived from, the pattern): rebuilt only when that changes, so redacting costs a few
# dictionary lookups, not a scan of the environment, per log record.
_compiled: tuple[tuple[object, ...], re.Pattern[str] | None] = ((), None)
_credential_names: tuple[int, tuple[str, ...]] = (-1, ())
_installed = False


def url_secrets(url: str | None) -> set[str]:
    """The password of ``url`` and the values of its key-like query parameters (raw and decoded)."""
    found: set[str] = set()
    if not url:
        return found
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:
        return found
    if password:
        found.update({password, unquote(password)})
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _KEY_LIKE_PARAMETER.search(name):
            found.add(value)
    return found


def secrets_in_environment(env: Mapping[str, str] | None = None) -> set[str]:
    """Every credential value the environment holds, as far as the project can tell."""
    env = os.environ if env is None else env
    found: set[str] = set()
    for name in SECRET_VARIABLES:
        value = (env.get(name) or "").strip()
        if value:
            found.add(value)
    for name in URL_VARIABLES:
        found.update(url_secrets(env.get(name)))
    for name in _credential_named(env):
        value = (env.get(name) or "").strip()
        if len(value) >= BOUNDED_BELOW:
            found.add(value)
    return found


def _credential_named(env: Mapping[str, str]) -> list[str]:
    return [name for name in env if _CREDENTIAL_NAME.search(name.upper())]


def _environment_fingerprint() -> tuple[object, ...]:
    """The values the environment's secrets derive from; the credential-named variables are looked for again
    only when variables are added or removed."""
    global _credential_names
    env = os.environ
    size, names = _credential_names
    if size != len(env):
        names = tuple(_credential_named(env))
        _credential_names = (len(env), names)
    return tuple(env.get(name) for name in (*SECRET_VARIABLES, *URL_VARIABLES, *names))


def protect(*values: str | None) -> None:
    """Register credentials that did not come from the environment (a key passed to a constructor)."""
    global _protected_version
    new = {v for v in values if v} - _protected
    if new:
        with _lock:
            _protected.update(new)
            _protected_version += 1


_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _any_case(hex_digits: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in hex_digits)


def _hex_byte(byte: int) -> str:
    # Percent-encoding in either case, possibly encoded again (%252F) when a URL travels inside another URL.
    return "%(?:25)*" + _any_case(f"{byte:02x}")


def _char_pattern(char: str) -> str:
    forms = [re.escape(char), "".join(_hex_byte(b) for b in char.encode("utf-8"))]
    code = ord(char)
    forms.append(r"\\u" + _any_case(f"{code:04x}"))  # JSON escape
    if char == " ":
        forms.append(r"\+")  # form encoding (requests encodes query parameters this way)
    if not char.isalnum():
        forms.append(r"\\" + re.escape(char))  # JSON "\/", repr "\'", "\\"
        forms.append(f"&#0*{code};")  # an HTML page echoing the URL
        forms.append("&#[xX]0*" + _any_case(f"{code:x}") + ";")
        if char in _HTML_ENTITIES:
            forms.append(_HTML_ENTITIES[char])
    return "(?:" + "|".join(forms) + ")"


def secret_pattern(secret: str) -> str:
    """A regular expression matching ``secret`` in any of the forms a URL, a JSON body or a repr give it."""
    body = "".join(_char_pattern(c) for c in secret)
    if len(secret) < BOUNDED_BELOW:
        return rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"
    return body


def _pattern() -> re.Pattern[str] | None:
    global _compiled
    source = (_protected_version, *_environment_fingerprint())
    cached_for, compiled = _compiled
    if source == cached_for:
        return compiled
    with _lock:
        secrets = {s for s in _protected | secrets_in_environment() if len(s) >= MIN_LENGTH}
        # Longest first: a secret that contains another is masked whole.
        ordered = sorted(secrets, key=len, reverse=True)
        compiled = re.compile("|".join(secret_pattern(s) for s in ordered)) if ordered else None
        _compiled = (source, compiled)
        return compiled


def redact(text: str) -> str:
    """``text`` with every known credential, in any encoding, replaced by ``***``."""
    if not text:
        return text
    pattern = _pattern()
    return pattern.sub(MASK, text) if pattern is not None else text


def redact_all(texts: Iterable[str]) -> list[str]:
    return [redact(t) for t in texts]


def _redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    pattern = _pattern()
    if pattern is None:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to the handler, which reports it as logging always has
        return record
    record.msg = pattern.sub(MASK, message)
    record.args = ()
    if record.exc_info and record.exc_info[0] is not None:
        # Exception text (requests puts the full URL in its messages) is formatted now and kept as text only:
        # Formatter.format prints ``exc_text`` whether or not ``exc_info`` is set.
        record.exc_text = pattern.sub(MASK, logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = pattern.sub(MASK, record.exc_text)
    if record.stack_info:
        record.stack_info = pattern.sub(MASK, record.stack_info)
    return record


def install_log_redaction() -> None:
    """Redact every log record this process creates from now on (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redacted_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True


def configure_logging(*, level: int) -> None:
    """The CLI's logging: one stderr handler at ``level``; every record redacted; warnings logged too."""
    install_log_redaction()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
