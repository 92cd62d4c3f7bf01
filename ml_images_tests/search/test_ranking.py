"""The candidate ranking: readable score parts, the brand's own domains, model words, deterministic order.

Host names here are data, never contacted: the brand's real domains (``psref.lenovo.com``) are what the ranking
must recognise; every other result sits on 127.0.0.1.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from demo.sample_catalog import PRODUCTS
from ml_images.catalog.models import ProductMaster
from ml_images.processing.product_match import ProductIdentity
from ml_images.search.candidates import ImageCandidate
from ml_images.search.distributor import SourceKind, distributor_candidate, search_candidates
from ml_images.search.product_profile import (
    ProductProfile,
    is_brand_host,
    own_model_numbers,
    product_identity,
    registrable_name,
)
from ml_images.search.ranking import CandidateRanker, RankingWeights

SHOP = "http://127.0.0.1:8080"
IDEAPAD = next(p for p in PRODUCTS if p.code == "NB-LEN-IP3-15ITL6")  # Lenovo IdeaPad 3 15ITL6, i5-1135G7


def lenovo() -> ProductProfile:
    return ProductProfile.of(IDEAPAD)


def result(rank: int, image_url: str, *, page: str | None = None, title: str | None = None, side: int | None = 1200):
    return ImageCandidate(image_url, width=side, height=side, page_url=page, title=title, rank=rank)


def test_brand_domain_large_model_named_candidate_comes_first_and_another_model_falls_behind() -> None:
    engine_order = [
        # The engine's favourite: large, but another IdeaPad 3 (15ALC6, the Ryzen one).
        result(
            0,
            f"{SHOP}/img/ideapad-3-15alc6.jpg",
            page=f"{SHOP}/notebook-lenovo-ideapad-3-15alc6",
            title="Notebook Lenovo IdeaPad 3 15ALC6 Ryzen 5 5500U",
        ),
        result(1, f"{SHOP}/img/lenovo-oferta.jpg", page=f"{SHOP}/ofertas", title="Notebook Lenovo oferta", side=800),
        result(2, f"{SHOP}/img/ip3.jpg", page=f"{SHOP}/p/12", title="Lenovo IdeaPad 3 15ITL6", side=600),
        # The brand's own product page, large, naming the model: last in the engine's order.
        result(
            3,
            "https://psref.lenovo.com/syspool/Sys/Image/IdeaPad/IdeaPad_3_15ITL6/IdeaPad_3_15ITL6_CT1_01.png",
            page="https://psref.lenovo.com/Product/IdeaPad/IdeaPad_3_15ITL6",
            title="IdeaPad 3 15ITL6 | Lenovo PSREF",
            side=1500,
        ),
    ]
    ranked = CandidateRanker().rank(search_candidates(engine_order, "brave"), lenovo())

    assert [r.sourced.candidate.rank for r in ranked] == [3, 2, 1, 0]
    assert [r.position for r in ranked] == [0, 1, 2, 3]
    first, last = ranked[0], ranked[-1]
    assert first.score.points("domain") == 30
    assert "psref.lenovo.com" in first.score.to_dict()["parts"]["domain"]["detail"]
    assert first.score.points("size") == 20
    assert first.score.points("words") == 25
    assert first.score.points("rank") == -3
    assert first.score.total == 72
    assert last.score.points("words") == -40
    assert "15alc6" in last.score.to_dict()["parts"]["words"]["detail"]
    assert last.score.total < 0


def test_score_parts_and_total_are_recorded_for_metadata_and_the_attempt_record() -> None:
    candidate = result(
        1,
        f"{SHOP}/img/a.jpg",
        page="https://www.lenovo.com/ar/es/p/laptops/ideapad/ideapad-3-15itl6",
        title="Lenovo IdeaPad 3",
        side=None,
    )
    ranked = CandidateRanker().rank(search_candidates([candidate], "serpapi"), lenovo())
    record = ranked[0].to_dict()

    json.dumps(record)  # goes into Dagster metadata and a JSON column as it is
    assert record["source_kind"] == "search"
    assert record["provider"] == "serpapi"
    assert record["image_url"] == f"{SHOP}/img/a.jpg"
    assert record["position"] == 0
    parts = record["score"]["parts"]
    assert list(parts) == ["source_kind", "size", "domain", "rank", "words"]
    assert parts["source_kind"] == {"points": 0, "detail": "search result (serpapi)"}
    assert parts["size"] == {"points": 5, "detail": "size not reported"}
    assert parts["domain"]["points"] == 30
    assert "www.lenovo.com" in parts["domain"]["detail"]
    assert parts["rank"] == {"points": -1, "detail": "search rank 1"}
    assert parts["words"]["points"] == 25
    assert "model" in parts["words"]["detail"]
    assert record["score"]["total"] == 5 + 30 - 1 + 25 == sum(p["points"] for p in parts.values())
    assert ranked[0].score.explain() == "59 = source_kind 0 + size 5 + domain 30 + rank -1 + words 25"


def test_the_distributor_photo_is_first_whatever_the_search_results() -> None:
    best_search = result(
        0,
        "https://psref.lenovo.com/img/IdeaPad_3_15ITL6.png",
        page="https://psref.lenovo.com/Product/IdeaPad/IdeaPad_3_15ITL6",
        title="IdeaPad 3 15ITL6",
        side=2000,
    )
    distributor = distributor_candidate(f"{SHOP}/catalog/lg/82H803RAR.jpg")
    assert distributor is not None
    candidates = [*search_candidates([best_search], "brave"), distributor]
    ranked = CandidateRanker().rank(candidates, lenovo())

    assert ranked[0].sourced.source_kind is SourceKind.DISTRIBUTOR
    assert ranked[0].score.points("source_kind") == 100
    assert ranked[0].score.points("rank") == 0
    assert ranked[0].score.to_dict()["parts"]["words"]["detail"] == "no title or page URL"
    assert ranked[1].score.total == 20 + 30 + 0 + 25


def test_weights_that_would_let_a_search_result_pass_the_distributor_photo_are_refused() -> None:
    with pytest.raises(ValueError, match="distributor"):
        RankingWeights(distributor=75)
    with pytest.raises(ValueError, match="names_other_model"):
        RankingWeights(names_other_model=5)


def test_equal_scores_keep_the_engine_order_and_the_order_is_deterministic() -> None:
    same = [result(rank, f"{SHOP}/img/{rank}.jpg", page=f"{SHOP}/p/{rank}", title="Notebook") for rank in range(8)]
    ranker = CandidateRanker(RankingWeights(rank_step=0))  # no rank points: every total is equal
    expected = [f"{SHOP}/img/{rank}.jpg" for rank in range(8)]
    shuffled = list(same)
    random.Random(7).shuffle(shuffled)
    for order in (same, shuffled, list(reversed(same))):
        ranked = ranker.rank(search_candidates(order, "brave"), lenovo())
        assert len({r.score.total for r in ranked}) == 1
        assert [r.sourced.image_url for r in ranked] == expected

    # Cached results replayed with equal ranks: the input order decides.
    twins = [result(0, f"{SHOP}/img/b.jpg"), result(0, f"{SHOP}/img/a.jpg")]
    ranked = ranker.rank(search_candidates(twins, "brave"), lenovo())
    assert [r.sourced.image_url for r in ranked] == [f"{SHOP}/img/b.jpg", f"{SHOP}/img/a.jpg"]


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("lenovo.com", "lenovo"),
        ("www.lenovo.com", "lenovo"),
        ("psref.lenovo.com", "lenovo"),
        ("lenovo.com.ar", "lenovo"),
        ("www.lenovo.co.uk", "lenovo"),
        ("lenovo.ar", "lenovo"),
        ("store.hp.com.ar", "hp"),
        ("lenovo.mercadoshops.com.ar", "mercadoshops"),
        ("127.0.0.1", None),
        ("[::1]", None),
        ("localhost", None),
        (None, None),
    ],
)
def test_registrable_name(host: str | None, name: str | None) -> None:
    assert registrable_name(host) == name


@pytest.mark.parametrize(
    ("host", "brand", "own"),
    [
        ("psref.lenovo.com", "Lenovo", True),
        ("lenovo.com.ar", "LENOVO", True),
        ("www.hewlett-packard.com", "Hewlett Packard", True),
        ("www.lg.com", "LG", True),
        ("lenovo.mercadoshops.com.ar", "Lenovo", False),  # a shop under another registrant
        ("notlenovo.com", "Lenovo", False),
        ("lenovo.com", None, False),
        ("127.0.0.1", "Lenovo", False),
    ],
)
def test_brand_hosts(host: str, brand: str | None, own: bool) -> None:
    assert is_brand_host(host, brand) is own


def test_image_host_of_the_brand_counts_when_the_page_is_elsewhere() -> None:
    candidate = result(0, "https://p3-ofp.static.lenovo.com.ar/ip3.png", page=f"{SHOP}/p/1", title="Notebook")
    ranked = CandidateRanker().rank(search_candidates([candidate], "brave"), lenovo())
    assert ranked[0].score.points("domain") == 30
    assert "image host" in ranked[0].score.to_dict()["parts"]["domain"]["detail"]


def test_identity_from_the_catalog_row_as_the_query_builder_reads_it() -> None:
    row = ProductMaster(
        code="NB-ASUS-X1504ZA",
        sku="ASX1504ZABQ",
        description="Notebook ASUS Vivobook 15 X1504ZA-BQ Core i5-1235U 8GB",
        price=Decimal("779999.00"),
        specs={"Marca": "ASUS", "processor": "Intel Core i5-1235U"},
        model_name="Vivobook 15 X1504ZA",
        gtin="4711387000000",
    )
    assert product_identity(row) == ProductIdentity(
        brand="ASUS", model="Vivobook 15 X1504ZA", sku="ASX1504ZABQ", gtin="4711387000000"
    )
    assert product_identity(IDEAPAD).model == "IdeaPad 3 15ITL6"
    assert {"i51235u", "x1504zabq"} <= own_model_numbers(row)
    profile = ProductProfile.of(row)
    assert "i51235u" in profile.neutral_words()
    assert "x1504zabq" not in profile.neutral_words()  # the model with a suffix names the product


def test_the_products_own_processor_in_a_title_is_not_another_model() -> None:
    profile = ProductProfile.of(IDEAPAD)
    titled = result(0, f"{SHOP}/1.jpg", page=f"{SHOP}/p/1", title="Notebook Lenovo Core i5-1135G7 8GB 512GB")
    slugged = result(1, f"{SHOP}/2.jpg", page=f"{SHOP}/notebook-lenovo-core-i5-1135g7-8gb", title=None)
    other_cpu = result(2, f"{SHOP}/3.jpg", page=f"{SHOP}/p/3", title="Notebook Lenovo IdeaPad 3 14ALC6 Ryzen 7 5700U")
    ranked = CandidateRanker().rank(search_candidates([titled, slugged, other_cpu], "brave"), profile)
    by_url = {r.sourced.image_url: r.score for r in ranked}

    assert by_url[f"{SHOP}/1.jpg"].points("words") == 0
    assert by_url[f"{SHOP}/2.jpg"].points("words") == 0
    assert by_url[f"{SHOP}/3.jpg"].points("words") == -40
    # Without the product's own words the processor reads as a model number of the brand.
    bare = ProductProfile(product_identity(IDEAPAD))
    assert CandidateRanker().score(search_candidates([titled], "brave")[0], bare).points("words") == -40


def test_a_title_with_the_model_spelt_with_a_variant_suffix_still_names_it() -> None:
    row = ProductMaster(
        sku="ASX1504ZABQ",
        description="Notebook ASUS Vivobook 15 X1504ZA-BQ Core i5-1235U",
        specs={"brand": "ASUS", "model": "Vivobook 15 X1504ZA"},
    )
    candidate = result(0, f"{SHOP}/a.jpg", page=f"{SHOP}/p/1", title="ASUS Vivobook 15 X1504ZA Core i5-1235U")
    score = CandidateRanker().score(search_candidates([candidate], "brave")[0], ProductProfile.of(row))
    assert score.points("words") == 25


@pytest.mark.parametrize(
    ("page", "title", "named"),
    [
        (f"{SHOP}/p/LEN82H803RAR", None, "SKU"),
        (f"{SHOP}/p/1", "Lenovo 0196380123456", "GTIN"),
        (f"{SHOP}/notebooks/ideapad-3-15itl6-82h8", None, "model"),
    ],
)
def test_sku_gtin_or_model_in_the_title_or_page_url_puts_a_result_ahead(
    page: str, title: str | None, named: str
) -> None:
    candidate = result(4, f"{SHOP}/x.jpg", page=page, title=title)
    score = CandidateRanker().score(search_candidates([candidate], "brave")[0], lenovo())
    assert score.points("words") == 25
    assert score.to_dict()["parts"]["words"]["detail"].endswith(named)


def test_unknown_brand_gives_no_domain_points() -> None:
    no_brand = ProductProfile(ProductIdentity(model="IdeaPad 3 15ITL6"))
    candidate = result(0, "https://psref.lenovo.com/a.png", page="https://psref.lenovo.com/p")
    score = CandidateRanker().score(search_candidates([candidate], "brave")[0], no_brand)
    assert score.to_dict()["parts"]["domain"] == {"points": 0, "detail": "brand unknown"}


@pytest.mark.parametrize(
    ("width", "height", "points"),
    [(1200, 1600, 20), (1600, 1199, 10), (800, 800, 10), (799, 2000, 0), (None, 1300, 20), (None, None, 5)],
)
def test_size_part_uses_the_shorter_reported_side(width: int | None, height: int | None, points: int) -> None:
    candidate = ImageCandidate(f"{SHOP}/a.jpg", width=width, height=height, rank=0)
    score = CandidateRanker().score(search_candidates([candidate], "brave")[0], lenovo())
    assert score.points("size") == points
