"""The distributor's photo as candidate #0: rewrite rules, the candidate, the search mode and the search plan."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pytest_httpserver import HTTPServer

from ml_images.download.results import DownloadedImage
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.errors import ConfigurationError
from ml_images.outcomes import ReasonCode, Refused
from ml_images.search.candidates import ImageCandidate
from ml_images.search.distributor import (
    PLAN_AWAIT_DISTRIBUTOR,
    PLAN_DISTRIBUTOR_REFUSED,
    PLAN_DISTRIBUTOR_USABLE,
    PLAN_FILL_AFTER_DISTRIBUTOR,
    PLAN_NO_DISTRIBUTOR_PHOTO,
    PLAN_SEARCH_DISABLED,
    URL_REWRITES_ENV_VAR,
    DistributorPhoto,
    SearchMode,
    SearchPlan,
    SourcedCandidate,
    SourceKind,
    UrlRewrites,
    distributor_candidate,
    distributor_photo_state,
    parse_url_rewrites,
    plan_search,
    search_candidates,
)

SM_TO_LG = '[["/sm/", "/lg/"]]'


# --- rewrite rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "   ", "[]"])
def test_no_rules_leave_the_url_alone(raw: str | None) -> None:
    rewrites = UrlRewrites.parse(raw)
    assert not rewrites
    assert rewrites.apply("http://127.0.0.1:9/img/sm/1.jpg") == "http://127.0.0.1:9/img/sm/1.jpg"


def test_rules_apply_in_order_each_to_the_previous_result() -> None:
    raw = r"""[
        ["/sm/", "/lg/"],
        ["_(\\d+)x(\\d+)\\.jpg$", ".jpg"],
        ["/lg/(?P<id>\\d+)\\.jpg$", "/lg/\\g<id>_hd.jpg"]
    ]"""
    rewrites = UrlRewrites.parse(raw)
    assert len(rewrites.rules) == 3
    assert rewrites.apply("http://127.0.0.1:9/catalog/sm/123_150x150.jpg") == "http://127.0.0.1:9/catalog/lg/123_hd.jpg"
    # The third rule matches only what the first two produced.
    assert rewrites.apply("http://127.0.0.1:9/catalog/lg/9.jpg") == "http://127.0.0.1:9/catalog/lg/9_hd.jpg"
    assert rewrites.apply("http://127.0.0.1:9/other/7.png") == "http://127.0.0.1:9/other/7.png"


def test_rules_come_from_the_environment_variable() -> None:
    rewrites = parse_url_rewrites({URL_REWRITES_ENV_VAR: SM_TO_LG})
    assert rewrites.apply("http://127.0.0.1:9/sm/1.jpg") == "http://127.0.0.1:9/lg/1.jpg"
    assert not parse_url_rewrites({})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('[["/sm/", "/lg/"]', "is not valid JSON"),
        ('{"/sm/": "/lg/"}', 'must be a JSON list of [regex, replacement] pairs, got {"/sm/": "/lg/"}'),
        ('"/sm/ -> /lg/"', "must be a JSON list"),
        ('[["/sm/"]]', 'entry 0 (["/sm/"]) must be a pair of strings'),
        ('[["/sm/", "/lg/"], ["/a/", 2]]', 'entry 1 (["/a/", 2]) must be a pair of strings'),
        ('[["/sm/", "/lg/", "/xl/"]]', "entry 0 ("),
        ('["/sm/", "/lg/"]', 'entry 0 ("/sm/") must be a pair of strings'),
        ('[["(unclosed", "x"]]', 'entry 0 (["(unclosed", "x"]): the regex does not compile'),
        ('[["", "x"]]', "the regex is empty"),
        ('[["/sm/(\\\\d+)", "/lg/\\\\2"]]', "the replacement is invalid for this regex"),
        ('[["/sm/", "/lg/\\\\g<id>"]]', "the replacement is invalid for this regex"),
    ],
)
def test_bad_rules_stop_start_up_naming_the_variable_and_the_entry(raw: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UrlRewrites.parse(raw)
    message = str(caught.value)
    assert message.startswith(URL_REWRITES_ENV_VAR)
    assert expected in message


def test_a_long_bad_entry_is_quoted_shortened() -> None:
    raw = '[["' + "a" * 500 + '"]]'
    with pytest.raises(ConfigurationError) as caught:
        UrlRewrites.parse(raw)
    assert len(str(caught.value)) < 300
    assert "…" in str(caught.value)


# --- the candidate -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_url", [None, "", "  \t"])
def test_no_catalog_url_no_candidate(image_url: str | None) -> None:
    assert distributor_candidate(image_url, UrlRewrites.parse(SM_TO_LG)) is None
    assert distributor_photo_state(distributor_candidate(image_url)) is DistributorPhoto.ABSENT


def test_the_candidate_is_the_rewritten_url_with_its_source_kind_and_the_catalog_url() -> None:
    sourced = distributor_candidate(" http://127.0.0.1:9/catalog/sm/123.jpg ", UrlRewrites.parse(SM_TO_LG))
    assert sourced is not None
    assert sourced.source_kind is SourceKind.DISTRIBUTOR
    assert sourced.provider is None
    assert sourced.image_url == "http://127.0.0.1:9/catalog/lg/123.jpg"
    assert sourced.rewritten_from == "http://127.0.0.1:9/catalog/sm/123.jpg"
    assert sourced.candidate == ImageCandidate("http://127.0.0.1:9/catalog/lg/123.jpg", source="127.0.0.1", rank=0)
    assert distributor_photo_state(sourced) is DistributorPhoto.OFFERED

    unchanged = distributor_candidate("http://127.0.0.1:9/catalog/lg/123.jpg", UrlRewrites.parse(SM_TO_LG))
    assert unchanged is not None
    assert unchanged.rewritten_from is None
    assert distributor_candidate("http://127.0.0.1:9/catalog/sm/1.jpg") == SourcedCandidate(
        ImageCandidate("http://127.0.0.1:9/catalog/sm/1.jpg", source="127.0.0.1"), SourceKind.DISTRIBUTOR
    )


def test_sourced_candidates_round_trip_through_a_dict() -> None:
    sourced = distributor_candidate("http://127.0.0.1:9/sm/1.jpg", UrlRewrites.parse(SM_TO_LG))
    assert sourced is not None
    record = sourced.to_dict()
    assert record["source_kind"] == "distributor"
    assert record["image_url"] == "http://127.0.0.1:9/lg/1.jpg"
    assert record["rewritten_from"] == "http://127.0.0.1:9/sm/1.jpg"
    assert SourcedCandidate.from_dict(record) == sourced

    found = ImageCandidate("http://127.0.0.1:9/a.jpg", width=1200, height=900, title="t", rank=3)
    [labelled] = search_candidates([found], "brave")
    assert labelled == SourcedCandidate(found, SourceKind.SEARCH, provider="brave")
    assert SourcedCandidate.from_dict(labelled.to_dict()) == labelled


def _jpeg(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_the_rewritten_url_is_what_the_safe_downloader_fetches(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/catalog/sm/123.jpg").respond_with_data(_jpeg(150), content_type="image/jpeg")
    httpserver.expect_request("/catalog/lg/123.jpg").respond_with_data(_jpeg(1200), content_type="image/jpeg")
    sourced = distributor_candidate(httpserver.url_for("/catalog/sm/123.jpg"), UrlRewrites.parse(SM_TO_LG))
    assert sourced is not None

    downloaded = SafeDownloader(allowed_private_hosts=("127.0.0.1",), deadline_seconds=10.0).download(sourced.candidate)

    assert isinstance(downloaded, DownloadedImage)
    assert Image.open(io.BytesIO(downloaded.data)).size == (1200, 1200)
    assert [request.path for request, _ in httpserver.log] == ["/catalog/lg/123.jpg"]


def test_a_broken_distributor_url_is_refused_like_any_candidate(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/catalog/lg/404.jpg").respond_with_data("gone", status=404)
    downloader = SafeDownloader(allowed_private_hosts=("127.0.0.1",), deadline_seconds=10.0)
    broken = distributor_candidate(httpserver.url_for("/catalog/sm/404.jpg"), UrlRewrites.parse(SM_TO_LG))
    not_a_url = distributor_candidate("imagenes/sm/404.jpg", UrlRewrites.parse(SM_TO_LG))
    assert broken is not None
    assert not_a_url is not None

    with pytest.raises(Refused) as http_404:
        downloader.download(broken.candidate)
    with pytest.raises(Refused) as relative:
        downloader.download(not_a_url.candidate)

    assert http_404.value.reason == "http_404"
    assert http_404.value.url == httpserver.url_for("/catalog/lg/404.jpg")
    assert relative.value.reason == "bad_scheme"


# --- search mode and plan ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mode"),
    [(None, SearchMode.FILL), ("", SearchMode.FILL), (" Fallback ", SearchMode.FALLBACK), ("NEVER", SearchMode.NEVER)],
)
def test_search_mode_parse(raw: str | None, mode: SearchMode) -> None:
    assert SearchMode.parse(raw) is mode


def test_an_unknown_search_mode_names_the_variable_and_the_choices() -> None:
    expected = r"ML_IMAGES_SEARCH_MODE must be one of fill, fallback, never, got 'always'"
    with pytest.raises(ConfigurationError, match=expected):
        SearchMode.parse("always")


ABSENT, OFFERED = DistributorPhoto.ABSENT, DistributorPhoto.OFFERED
USABLE, REFUSED = DistributorPhoto.USABLE, DistributorPhoto.REFUSED


@pytest.mark.parametrize(
    ("mode", "photo", "plan"),
    [
        (SearchMode.FILL, ABSENT, SearchPlan(5, PLAN_NO_DISTRIBUTOR_PHOTO)),
        (SearchMode.FILL, OFFERED, SearchPlan(4, PLAN_FILL_AFTER_DISTRIBUTOR)),
        (SearchMode.FILL, USABLE, SearchPlan(4, PLAN_FILL_AFTER_DISTRIBUTOR)),
        (SearchMode.FILL, REFUSED, SearchPlan(5, PLAN_DISTRIBUTOR_REFUSED)),
        (SearchMode.FALLBACK, ABSENT, SearchPlan(5, PLAN_NO_DISTRIBUTOR_PHOTO)),
        (SearchMode.FALLBACK, OFFERED, SearchPlan(0, PLAN_AWAIT_DISTRIBUTOR, judge_first=True)),
        (SearchMode.FALLBACK, USABLE, SearchPlan(0, PLAN_DISTRIBUTOR_USABLE)),
        (SearchMode.FALLBACK, REFUSED, SearchPlan(5, PLAN_DISTRIBUTOR_REFUSED)),
        (SearchMode.NEVER, ABSENT, SearchPlan(0, ReasonCode.NO_DISTRIBUTOR_PHOTO_SEARCH_DISABLED)),
        (SearchMode.NEVER, OFFERED, SearchPlan(0, PLAN_SEARCH_DISABLED)),
        (SearchMode.NEVER, USABLE, SearchPlan(0, PLAN_SEARCH_DISABLED)),
        (SearchMode.NEVER, REFUSED, SearchPlan(0, ReasonCode.DISTRIBUTOR_PHOTO_REFUSED_SEARCH_DISABLED)),
    ],
)
def test_search_plan(mode: SearchMode, photo: DistributorPhoto, plan: SearchPlan) -> None:
    assert plan_search(mode, 5, photo) == plan
    assert plan_search(mode, 5, photo).search is (plan.places > 0)


def test_one_image_wanted_and_a_distributor_photo_means_no_search_in_fill_mode() -> None:
    assert plan_search(SearchMode.FILL, 1, DistributorPhoto.OFFERED) == SearchPlan(0, PLAN_FILL_AFTER_DISTRIBUTOR)
    assert not plan_search(SearchMode.FILL, 1, DistributorPhoto.OFFERED).search
    with pytest.raises(ValueError, match="count"):
        plan_search(SearchMode.FILL, 0, DistributorPhoto.ABSENT)
