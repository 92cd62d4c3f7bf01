"""Domains whose images are never used: social networks (personal photos, no licence), marketplaces
(competitors' listings; Mercado Libre itself flags copied pictures) and stock-photo sites (watermarks)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

# "name.*" stands for that name under any public suffix (amazon.com, amazon.com.br, amazon.co.uk).
DEFAULT_BLOCKED_DOMAINS: tuple[str, ...] = (
    # social networks and their image CDNs
    "facebook.com",
    "fbcdn.net",
    "fbsbx.com",
    "instagram.com",
    "cdninstagram.com",
    "threads.net",
    "pinterest.*",
    "pinimg.com",
    "twitter.com",
    "x.com",
    "twimg.com",
    "tiktok.com",
    "tiktokcdn.com",
    "youtube.com",
    "ytimg.com",
    "reddit.com",
    "redd.it",
    "redditmedia.com",
    "linkedin.com",
    "licdn.com",
    "tumblr.com",
    "flickr.com",
    "staticflickr.com",
    "vk.com",
    # marketplaces
    "mercadolibre.*",
    "mercadolivre.*",
    "mlstatic.com",
    "amazon.*",
    "media-amazon.com",
    "ssl-images-amazon.com",
    "ebay.*",
    "ebayimg.com",
    "aliexpress.*",
    "alicdn.com",
    "alibaba.com",
    "temu.com",
    "kwcdn.com",
    "shein.com",
    "ltwebstatic.com",
    "walmart.*",
    "walmartimages.com",
    "etsy.com",
    "etsystatic.com",
    "shopee.*",
    "olx.*",
    "wish.com",
    # stock photography
    "shutterstock.com",
    "istockphoto.com",
    "gettyimages.*",
    "stock.adobe.com",
    "ftcdn.net",
    "depositphotos.com",
    "dreamstime.com",
    "123rf.com",
    "alamy.com",
    "freepik.com",
    "vecteezy.com",
    "canstockphoto.com",
    "bigstockphoto.com",
    "pond5.com",
)

_MAX_SUFFIX_LABELS = 2  # "com.br", "co.uk": how many labels "name.*" may be followed by


def host_of(url: str | None) -> str | None:
    """Lower-case host of an absolute URL, without a trailing dot; None when there is none."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


class DomainBlocklist:
    """Matches a host against blocked domains, subdomains included (``www.`` and ``http2.mlstatic.com``)."""

    def __init__(self, entries: Iterable[str]) -> None:
        exact: set[str] = set()
        any_suffix: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower().lstrip("*").strip(".")
            if not entry:
                continue
            if entry.endswith(".*"):
                any_suffix.add(entry[:-2])
            else:
                exact.add(entry)
        self._exact = frozenset(exact)
        self._any_suffix = frozenset(any_suffix)

    def match(self, host: str | None) -> str | None:
        """The blocked entry ``host`` falls under, or None."""
        if not host:
            return None
        labels = host.rstrip(".").lower().split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            if suffix in self._exact:
                return suffix
            if labels[i] in self._any_suffix and 1 <= len(labels) - i - 1 <= _MAX_SUFFIX_LABELS:
                return f"{labels[i]}.*"
        return None
