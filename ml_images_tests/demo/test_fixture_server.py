"""FixtureSearchServer: Brave's image-search JSON, paging, the API key, image hosting, latency, lifecycle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from demo.fixture_server import SEARCH_PATH, FixtureSearchServer, words

TIMEOUT = 5
KEY = "k-123"


def _image(path: Path, size: tuple[int, int], fmt: str) -> Path:
    Image.new("RGB", size, (200, 120, 40)).save(path, fmt)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    return {
        "a": _image(tmp_path / "ideapad-1.jpg", (640, 480), "JPEG"),
        "b": _image(tmp_path / "ideapad-2.png", (500, 500), "PNG"),
        "c": _image(tmp_path / "ideapad-3.webp", (800, 600), "WEBP"),
        "d": _image(tmp_path / "monitor-1.jpg", (300, 200), "JPEG"),
        "e": _image(tmp_path / "monitor-2.jpg", (1024, 768), "JPEG"),
    }


@pytest.fixture
def server(photos: dict[str, Path]):
    catalog = {
        "IdeaPad 3 15ITL6": [photos["a"], photos["b"], photos["c"]],
        "Monitor Samsung Odyssey G5": [photos["d"], photos["e"]],
        "Odyssey": [photos["e"]],
    }
    with FixtureSearchServer(catalog, api_key=KEY) as srv:
        yield srv


def _search(
    server: FixtureSearchServer, q: str, params: dict[str, str | int] | None = None, *, token: str | None = KEY
) -> requests.Response:
    headers = {"X-Subscription-Token": token} if token is not None else {}
    return requests.get(server.search_endpoint, params={"q": q, **(params or {})}, headers=headers, timeout=TIMEOUT)


def test_search_answers_in_brave_image_format(server: FixtureSearchServer, photos: dict[str, Path]) -> None:
    response = _search(
        server, "Lenovo IdeaPad 3 15ITL6 NOTEBOOK", {"count": 20, "country": "AR", "safesearch": "strict"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["type"] == "images"
    assert body["query"]["original"] == "Lenovo IdeaPad 3 15ITL6 NOTEBOOK"
    results = body["results"]
    assert [Path(r["properties"]["url"]).name for r in results] == ["ideapad-1.jpg", "ideapad-2.png", "ideapad-3.webp"]
    first = results[0]
    assert first["properties"]["url"] == server.image_url(photos["a"])
    assert first["properties"]["url"].startswith(server.base_url + "/images/")
    assert (first["properties"]["width"], first["properties"]["height"]) == (640, 480)
    assert first["thumbnail"]["src"] == first["properties"]["url"]
    assert first["url"].startswith(server.base_url + "/pages/")
    assert first["source"] == "127.0.0.1"
    assert first["confidence"] == "high"
    assert first["title"]
    assert server.search_endpoint.endswith(SEARCH_PATH)


def test_matching_ignores_case_accents_and_word_order(server: FixtureSearchServer) -> None:
    assert server.match("notebook LENOVO 15itl6 ideapad 3") == "IdeaPad 3 15ITL6"
    assert server.match("Ídeapád 3 15ITL6") == "IdeaPad 3 15ITL6"
    assert server.match("IdeaPad 15ITL6") is None  # every word of the key must be there
    assert words("Monitor Gamer Curvo — Samsung Odyssey G5 27\"") == [
        "monitor", "gamer", "curvo", "samsung", "odyssey", "g5", "27",
    ]  # fmt: skip


def test_most_specific_key_wins(server: FixtureSearchServer) -> None:
    assert server.match("monitor samsung odyssey g5 27") == "Monitor Samsung Odyssey G5"
    assert server.match("odyssey neo") == "Odyssey"
    names = [Path(r["properties"]["url"]).name for r in _search(server, "odyssey neo").json()["results"]]
    assert names == ["monitor-2.jpg"]


def test_unknown_query_gets_empty_results(server: FixtureSearchServer) -> None:
    response = _search(server, "Genérico MiniBox N100 Pro COMPUTER")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_paging_with_count_and_offset_in_pages(server: FixtureSearchServer) -> None:
    def page(count: int, offset: int) -> list[str]:
        body = _search(server, "ideapad 3 15itl6", {"count": count, "offset": offset}).json()
        return [Path(r["properties"]["url"]).name for r in body["results"]]

    assert page(2, 0) == ["ideapad-1.jpg", "ideapad-2.png"]
    assert page(2, 1) == ["ideapad-3.webp"]
    assert page(2, 2) == []
    assert page(1, 2) == ["ideapad-3.webp"]


@pytest.mark.parametrize("params", [{"count": 0}, {"count": 201}, {"count": "x"}, {"offset": -1}])
def test_invalid_parameters_get_422(server: FixtureSearchServer, params: dict[str, str | int]) -> None:
    assert _search(server, "ideapad", params).status_code == 422


def test_missing_query_gets_422(server: FixtureSearchServer) -> None:
    assert _search(server, "").status_code == 422


@pytest.mark.parametrize("token", [None, "", "wrong", "k-1234"])
def test_wrong_or_missing_key_gets_401(server: FixtureSearchServer, token: str | None) -> None:
    response = _search(server, "ideapad 3 15itl6", token=token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "SUBSCRIPTION_TOKEN_INVALID"
    assert server.search_calls == 0  # refused before counting: nothing was "billed"


def test_no_key_configured_accepts_any_request(photos: dict[str, Path]) -> None:
    with FixtureSearchServer({"ideapad": [photos["a"]]}) as srv:
        response = requests.get(srv.search_endpoint, params={"q": "ideapad"}, timeout=TIMEOUT)
        assert response.status_code == 200
        assert len(response.json()["results"]) == 1


@pytest.mark.parametrize(("key", "content_type"), [("a", "image/jpeg"), ("b", "image/png"), ("c", "image/webp")])
def test_images_are_served_with_their_bytes_and_type(
    server: FixtureSearchServer, photos: dict[str, Path], key: str, content_type: str
) -> None:
    response = requests.get(server.image_url(photos[key]), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.content == photos[key].read_bytes()
    assert int(response.headers["Content-Length"]) == len(response.content)
    head = requests.head(server.image_url(photos[key]), timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.content == b""


def test_unknown_image_is_404(server: FixtureSearchServer) -> None:
    assert requests.get(server.base_url + "/images/nope.jpg", timeout=TIMEOUT).status_code == 404
    assert requests.get(server.base_url + "/elsewhere", timeout=TIMEOUT).status_code == 404
    with pytest.raises(KeyError):
        server.image_url("nope.jpg")


def test_counters_and_queries(server: FixtureSearchServer, photos: dict[str, Path]) -> None:
    _search(server, "ideapad 3 15itl6")
    _search(server, "unknown thing")
    requests.get(server.image_url(photos["a"]), timeout=TIMEOUT)
    requests.get(server.base_url + "/images/missing.jpg", timeout=TIMEOUT)
    assert server.search_calls == 2
    assert server.image_requests == 2
    assert server.queries == ["ideapad 3 15itl6", "unknown thing"]


def test_latency_knobs_are_honoured(photos: dict[str, Path]) -> None:
    with FixtureSearchServer({"ideapad": [photos["a"]]}, search_latency=0.3, image_latency=0.2) as srv:
        started = time.monotonic()
        requests.get(srv.search_endpoint, params={"q": "ideapad"}, timeout=TIMEOUT)
        search_elapsed = time.monotonic() - started
        started = time.monotonic()
        requests.get(srv.image_url(photos["a"]), timeout=TIMEOUT)
        image_elapsed = time.monotonic() - started
    assert 0.3 <= search_elapsed < 2.5
    assert 0.2 <= image_elapsed < 2.5


def test_server_stops_on_exit(photos: dict[str, Path]) -> None:
    with FixtureSearchServer({"ideapad": [photos["a"]]}) as srv:
        endpoint = srv.search_endpoint
        assert requests.get(endpoint, params={"q": "ideapad"}, timeout=TIMEOUT).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, params={"q": "ideapad"}, timeout=TIMEOUT)
    with pytest.raises(RuntimeError):
        _ = srv.base_url


def test_server_binds_loopback_on_a_free_port(server: FixtureSearchServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert not server.base_url.endswith(":0")


def test_catalog_errors_are_reported(tmp_path: Path, photos: dict[str, Path]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    clash = _image(other / "ideapad-1.jpg", (10, 10), "JPEG")
    with pytest.raises(ValueError, match="both named"):
        FixtureSearchServer({"a": [photos["a"]], "b": [clash]})
    with pytest.raises(FileNotFoundError):
        FixtureSearchServer({"a": [tmp_path / "missing.jpg"]})
    with pytest.raises(ValueError, match="no letters or digits"):
        FixtureSearchServer({"--": [photos["a"]]})
    with pytest.raises(ValueError, match="latencies"):
        FixtureSearchServer({}, search_latency=-1)
