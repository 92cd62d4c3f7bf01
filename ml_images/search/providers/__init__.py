"""Image search providers behind one interface (``ImageSearchProvider``), one module each over a shared HTTP and
error base (``base``) that also holds the error contract every provider keeps."""

from ml_images.search.providers.base import ImageSearchProvider, JsonApiProvider, ProviderPage, redact_url
from ml_images.search.providers.brave import BRAVE_ENDPOINT, BraveImageSearch
from ml_images.search.providers.google_cse import GOOGLE_CSE_ENDPOINT, GoogleCseImageSearch
from ml_images.search.providers.searxng import SearxngImageSearch
from ml_images.search.providers.serpapi import SERPAPI_ENDPOINT, SerpApiImageSearch

__all__ = [
    "BRAVE_ENDPOINT",
    "GOOGLE_CSE_ENDPOINT",
    "SERPAPI_ENDPOINT",
    "BraveImageSearch",
    "GoogleCseImageSearch",
    "ImageSearchProvider",
    "JsonApiProvider",
    "ProviderPage",
    "SearxngImageSearch",
    "SerpApiImageSearch",
    "redact_url",
]
