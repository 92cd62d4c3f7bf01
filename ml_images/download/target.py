"""A candidate's URL, checked and in canonical form before anything is fetched.

Only http and https, no credentials, a valid (IDNA) host name or IP literal, a port other than 0; the canonical
form (lower-case scheme and host, no fragment, no default port, percent-encoded path and query) is what redirect
loops are detected on. A URL that fails any check is refused (``bad_url``, ``bad_scheme``, ``blocked_port``)
before a DNS lookup or a connection is made.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from requests.utils import requote_uri

from ml_images.outcomes import ReasonCode, Refused

_MAX_URL_LENGTH = 4096
_HOSTNAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (host, port) and what to ask for (request_target)."""

    url: str  # canonical form: lower-case scheme and host, no fragment, no default port
    scheme: str
    host: str  # ASCII (IDNA) host, IPv6 without brackets
    port: int
    request_target: str  # path?query, percent-encoded


def parse_target(url: str) -> Target:
    """``url`` checked and in canonical form, or ``Refused`` saying what is wrong with it."""
    url = url.strip()
    if not url or len(url) > _MAX_URL_LENGTH:
        raise Refused(ReasonCode.BAD_URL, "empty or longer than 4096 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise Refused(ReasonCode.BAD_URL, "control characters in URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(ReasonCode.BAD_URL, str(exc)[:200]) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(ReasonCode.BAD_SCHEME, f"scheme {scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        raise Refused(ReasonCode.BAD_URL, "credentials in URL")
    raw_host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(raw_host)
        host = str(ip)
    except ValueError:
        try:
            host = raw_host.encode("idna").decode("ascii").lower() if raw_host else ""
        except UnicodeError:
            raise Refused(ReasonCode.BAD_URL, "host name is not valid IDNA") from None
        if not _HOSTNAME.match(host.rstrip(".")):
            raise Refused(ReasonCode.BAD_URL, "invalid host name") from None
        ip = None
    default_port = 443 if scheme == "https" else 80
    if port is None:
        port = default_port
    elif port == 0:  # never a destination; `port or default` would have fetched port 80 instead
        raise Refused(ReasonCode.BLOCKED_PORT, "port 0 is not a destination")
    netloc = f"[{host}]" if ip is not None and ip.version == 6 else host
    if port != default_port:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    request_target = requote_uri(path + (f"?{parts.query}" if parts.query else ""))
    canonical = urlunsplit((scheme, netloc, requote_uri(path), requote_uri(parts.query), ""))
    return Target(canonical, scheme, host, port, request_target)


def referer(page_url: str | None) -> str | None:
    """The canonical page URL to send as Referer (hotlink protection checks it), or None when unusable."""
    if not page_url:
        return None
    try:
        target = parse_target(page_url)
    except Refused:
        return None
    return target.url
