"""Provider responses shaped like the real APIs (fields as each provider documents them; see docs/decisions.md §1)."""

from __future__ import annotations

import time
from typing import Any

from pytest_httpserver import HTTPServer


def wait_until_served(httpserver: HTTPServer, count: int, timeout: float = 5.0) -> None:
    """Wait for a slow handler the client gave up on: the shared server must be idle before the next test."""
    ends = time.monotonic() + timeout
    while len(httpserver.log) < count and time.monotonic() < ends:
        time.sleep(0.02)
    assert len(httpserver.log) >= count


def brave_result(
    image_url: str, page_url: str, *, width: int | None = 1200, height: int | None = 1200
) -> dict[str, Any]:
    return {
        "type": "image_result",
        "title": "Celular Samsung Galaxy A15 128GB Azul",
        "url": page_url,
        "source": page_url.split("/")[2].removeprefix("www."),
        "page_fetched": "2026-10-01T12:00:00Z",
        "thumbnail": {"src": "https://imgs.search.brave.com/Zm9vYmFy/rs:fit:500:0:0/g:ce/aHR0cHM6Ly9p", "width": 500},
        "properties": {
            "url": image_url,
            "placeholder": "https://imgs.search.brave.com/cGxhY2Vob2xkZXI/rs:fit:300:0:0",
            "width": width,
            "height": height,
        },
        "meta_url": {
            "scheme": "https",
            "netloc": page_url.split("/")[2],
            "hostname": page_url.split("/")[2],
            "favicon": "https://imgs.search.brave.com/ZmF2aWNvbg/rs:fit:32:32:1:0",
            "path": "› p › celular-samsung-galaxy-a15",
        },
        "confidence": "high",
    }


def brave_payload(results: list[dict[str, Any]], query: str = "Samsung Galaxy A15 128GB") -> dict[str, Any]:
    return {
        "type": "images",
        "query": {"original": query, "spellcheck_off": True, "show_strict_warning": False},
        "results": results,
    }


BRAVE_RATE_LIMITED = {
    "type": "ErrorResponse",
    "error": {
        "id": "5b3f0c1a-0000-4000-8000-000000000000",
        "status": 429,
        "detail": "Request rate limit exceeded for plan",
        "meta": {
            "plan": "Free",
            "rate_limit": 1,
            "rate_current": 1,
            "quota_limit": 2000,
            "quota_current": 15,
            "org_rate_limit": None,
            "org_rate_current": 0,
            "component": "rate_limiter",
        },
        "code": "RATE_LIMITED",
    },
    "time": 1773685964,
}

BRAVE_QUOTA_EXHAUSTED = {
    "type": "ErrorResponse",
    "error": {
        "id": "5b3f0c1a-0000-4000-8000-000000000001",
        "status": 429,
        "detail": "Request quota limit exceeded for plan",
        "meta": {"plan": "Free", "rate_limit": 1, "rate_current": 0, "quota_limit": 2000, "quota_current": 2000},
        "code": "QUOTA_LIMITED",
    },
    "time": 1773685964,
}

BRAVE_INVALID_TOKEN = {
    "type": "ErrorResponse",
    "error": {
        "id": "5b3f0c1a-0000-4000-8000-000000000002",
        "status": 422,
        "code": "SUBSCRIPTION_TOKEN_INVALID",
        "detail": "The provided subscription token is invalid.",
        "meta": {"component": "authentication"},
    },
    "time": 1773685964,
}


def serpapi_result(position: int, original: str, link: str, *, width: int = 1000, height: int = 1000) -> dict[str, Any]:
    return {
        "position": position,
        "thumbnail": f"https://serpapi.com/searches/6720f0/images/{position}.jpeg",
        "related_content_id": "ZGVmYXVsdA==",
        "serpapi_related_content_link": "https://serpapi.com/search.json?engine=google_images_related_content",
        "source": "Frávega",
        "source_logo": "https://serpapi.com/searches/6720f0/images/logo.png",
        "title": "Cafetera Nespresso Essenza Mini C30 Roja",
        "link": link,
        "original": original,
        "original_width": width,
        "original_height": height,
        "is_product": True,
        "in_stock": True,
    }


def serpapi_payload(results: list[dict[str, Any]], *, ijn: int = 0, next_page: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "search_metadata": {
            "id": "6720f0a1b2c3d4e5f6a7b8c9",
            "status": "Success",
            "json_endpoint": "https://serpapi.com/searches/6720f0/6720f0a1b2c3d4e5f6a7b8c9.json",
            "created_at": "2026-11-02 12:00:00 UTC",
            "processed_at": "2026-11-02 12:00:00 UTC",
            "google_images_url": "https://www.google.com.ar/search?q=cafetera&udm=2",
            "total_time_taken": 1.84,
        },
        "search_parameters": {
            "engine": "google_images",
            "q": "Cafetera Nespresso Essenza Mini C30",
            "google_domain": "google.com.ar",
            "hl": "es",
            "gl": "ar",
            "ijn": str(ijn),
            "device": "desktop",
        },
        "images_results": results,
    }
    if next_page:
        payload["serpapi_pagination"] = {
            "current": ijn,
            "next": f"https://serpapi.com/search.json?engine=google_images&ijn={ijn + 1}&q=cafetera",
        }
    return payload


SERPAPI_NO_RESULTS = {
    "search_metadata": {"id": "6720f0a1b2c3d4e5f6a7b8d0", "status": "Success"},
    "search_parameters": {"engine": "google_images", "q": "zzqx 99 no existe", "gl": "ar", "hl": "es"},
    "search_information": {"image_results_state": "Fully empty"},
    "error": "Google hasn't returned any results for this query.",
}


def google_item(link: str, context: str, *, width: int = 1200, height: int = 1200, mime: str = "image/jpeg") -> dict:
    return {
        "kind": "customsearch#result",
        "title": "Notebook HP 15-fd0011la Intel Core i5 | HP Store Argentina",
        "htmlTitle": "<b>Notebook HP 15</b>-<b>fd0011la</b> Intel Core i5",
        "link": link,
        "displayLink": context.split("/")[2],
        "snippet": "Notebook HP 15-fd0011la Intel Core i5",
        "htmlSnippet": "<b>Notebook HP 15</b>-<b>fd0011la</b>",
        "mime": mime,
        "fileFormat": mime,
        "image": {
            "contextLink": context,
            "height": height,
            "width": width,
            "byteSize": 183427,
            "thumbnailLink": "https://encrypted-tbn0.gstatic.com/images?q=tbn:ANd9GcR1",
            "thumbnailHeight": 150,
            "thumbnailWidth": 150,
        },
    }


def google_payload(items: list[dict[str, Any]], *, start: int = 1, next_start: int | None = 11) -> dict[str, Any]:
    request = {
        "title": "Google Custom Search - Notebook HP 15-fd0011la",
        "totalResults": "2340",
        "searchTerms": "Notebook HP 15-fd0011la",
        "count": len(items),
        "startIndex": start,
        "inputEncoding": "utf8",
        "outputEncoding": "utf8",
        "safe": "off",
        "cx": "0123456789abcdef0",
        "searchType": "image",
    }
    queries: dict[str, Any] = {"request": [request]}
    if next_start is not None:
        queries["nextPage"] = [{**request, "startIndex": next_start}]
    payload: dict[str, Any] = {
        "kind": "customsearch#search",
        "url": {"type": "application/json", "template": "https://www.googleapis.com/customsearch/v1?q={searchTerms}"},
        "queries": queries,
        "context": {"title": "ml images"},
        "searchInformation": {
            "searchTime": 0.312,
            "formattedSearchTime": "0.31",
            "totalResults": "2340",
            "formattedTotalResults": "2,340",
        },
    }
    if items:
        payload["items"] = items
    else:  # Google omits ``items`` when nothing matched, and says so in its totals
        request["totalResults"] = "0"
        payload["searchInformation"].update(totalResults="0", formattedTotalResults="0")
    return payload


GOOGLE_DAILY_QUOTA_429 = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service "
        "'customsearch.googleapis.com' for consumer 'project_number:123456789'.",
        "errors": [
            {
                "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'",
                "domain": "global",
                "reason": "rateLimitExceeded",
            }
        ],
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {"quota_limit": "DefaultPerDayPerProject", "service": "customsearch.googleapis.com"},
            }
        ],
    }
}

GOOGLE_DAILY_LIMIT_403 = {
    "error": {
        "errors": [
            {
                "domain": "usageLimits",
                "reason": "dailyLimitExceeded",
                "message": "This API requires billing to be enabled on the project.",
            }
        ],
        "code": 403,
        "message": "Daily Limit Exceeded",
    }
}


def searxng_result(img_src: str, url: str, *, resolution: str = "1200 x 1200", img_format: str = "JPEG") -> dict:
    return {
        "url": url,
        "title": "Heladera No Frost Samsung RT38 382 L",
        "content": "",
        "engine": "bing images",
        "parsed_url": ["https", url.split("/")[2], "/producto", "", "", ""],
        "template": "images.html",
        "engines": ["bing images", "google images"],
        "positions": [1, 3],
        "img_src": img_src,
        "thumbnail_src": "https://tse1.mm.bing.net/th?id=OIP.abc&pid=Api",
        "resolution": resolution,
        "img_format": img_format,
        "filesize": "",
        "score": 3.5,
        "category": "images",
    }


def searxng_payload(results: list[dict[str, Any]], query: str = "Heladera Samsung RT38") -> dict[str, Any]:
    return {
        "query": query,
        "number_of_results": 0,
        "results": results,
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": [],
        "unresponsive_engines": [],
    }
