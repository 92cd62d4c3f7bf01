"""The sample catalog loads with the real loader and gives the intended mix under the real selection rules;
the fixture server answers the real query of every searchable product and nothing for the ERROR product."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from demo import sample_catalog as sc
from demo.fixture_server import FixtureSearchServer
from demo.runner import write_jsonl
from demo.status import explain_ineligibility
from ml_images.catalog.loader import CatalogLoader
from ml_images.catalog.models import ProductMaster
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES, normalize_category
from ml_images.catalog.selection import MercadoLibreFilter
from ml_images.search.query import QueryConstructor

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _load(session_factory: sessionmaker[Session], tmp_path: Path) -> dict[str, ProductMaster]:
    path = tmp_path / "catalog.jsonl"
    path.write_text(write_jsonl(sc.PRODUCTS, NOW), encoding="utf-8")
    report = CatalogLoader(session_factory).load(path)
    assert (report.inserted, report.updated, report.rejected) == (len(sc.PRODUCTS), 0, [])
    with session_factory() as session:
        return {p.code: p for p in session.scalars(sa.select(ProductMaster)) if p.code}


def test_catalog_shape() -> None:
    codes = [p.code for p in sc.PRODUCTS]
    assert len(codes) == 20
    assert len(set(codes)) == len(codes)
    categories = {normalize_category(p.category) for p in sc.PRODUCTS}
    assert {"NOTEBOOK", "MONITOR", "COMPUTER"} <= categories
    assert any(p.category != p.category.strip() or p.category != p.category.upper() for p in sc.PRODUCTS)
    counts = Counter(p.expected for p in sc.PRODUCTS)
    assert counts[sc.ELIGIBLE] >= 10
    for kind in (sc.NO_RESULTS, sc.HAS_IMAGES, sc.INACTIVE, sc.NOT_FOR_ML, sc.TOO_CHEAP, sc.STALE, sc.NO_RULE):
        assert counts[kind] == 1, kind
    eligible = [p for p in sc.PRODUCTS if p.expected == sc.ELIGIBLE]
    assert any(p.specs is None for p in eligible)  # the description fallback
    assert any(p.specs and {"brand", "model"} <= p.specs.keys() for p in eligible)


def test_rows_are_loader_records_with_fresh_and_stale_timestamps() -> None:
    rows = {r["code"]: r for r in (p.row(NOW) for p in sc.PRODUCTS)}
    stale = next(p for p in sc.PRODUCTS if p.expected == sc.STALE)
    assert datetime.fromisoformat(rows[stale.code]["last_updated"]) == NOW - timedelta(hours=72)
    fresh = next(p for p in sc.PRODUCTS if p.expected == sc.ELIGIBLE)
    assert NOW - datetime.fromisoformat(rows[fresh.code]["last_updated"]) < timedelta(hours=2)
    assert all(isinstance(r["price"], str) for r in rows.values())


def test_intended_mix_under_the_real_selection(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    products = _load(session_factory, tmp_path)
    product_filter = MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, 24.0, now=lambda: NOW)
    reasons = {code: explain_ineligibility(pm, product_filter) for code, pm in products.items()}
    by_expected = {p.expected: p.code for p in sc.PRODUCTS if p.expected != sc.ELIGIBLE}
    eligible_codes = {code for code, reason in reasons.items() if reason is None}
    assert eligible_codes == {p.code for p in sc.PRODUCTS if p.expected in (sc.ELIGIBLE, sc.NO_RESULTS, sc.HAS_IMAGES)}
    assert product_filter.count_eligible() == len(eligible_codes) == 15
    assert reasons[by_expected[sc.INACTIVE]] == "inactive"
    assert reasons[by_expected[sc.NOT_FOR_ML]] == "not for Mercado Libre"
    assert (reasons[by_expected[sc.TOO_CHEAP]] or "").startswith("price 999.00 below the NOTEBOOK threshold")
    assert (reasons[by_expected[sc.STALE]] or "").startswith("stale")
    assert reasons[by_expected[sc.NO_RULE]] == "no publication rule for category 'PERIFERICOS'"
    odd = next(p for p in sc.PRODUCTS if p.category != p.category.strip())
    assert reasons[odd.code] is None  # " monitor " still matches the MONITOR rule


def test_fixture_server_answers_each_products_real_query(
    session_factory: sessionmaker[Session], tmp_path: Path, placeholder_photos: dict[str, Path]
) -> None:
    products = _load(session_factory, tmp_path)
    catalog = {key: [tmp_path / "photos" / n for n in names] for key, names in sc.fixture_catalog_names().items()}
    server = FixtureSearchServer(catalog)  # matching needs no socket
    queries = QueryConstructor()
    for demo in sc.PRODUCTS:
        query = queries.build(products[demo.code])
        assert query, demo.code
        if demo.expected == sc.NO_RESULTS:
            assert server.match(query) is None, query
        elif demo.photos:
            assert server.match(query) == demo.search_key, (demo.code, query)
    fallback = [p for p in sc.PRODUCTS if p.expected == sc.ELIGIBLE and p.specs is None]
    assert all(not queries.build(products[p.code]).endswith(p.category) for p in fallback)


def test_photo_names_and_files_line_up(placeholder_photos: dict[str, Path]) -> None:
    names = sc.fixture_catalog_names()
    # Every photo is a search result or a distributor's photo (served at /distributor/), never both.
    listed = [n for files in names.values() for n in files] + sc.distributor_photo_names()
    assert len(listed) == len(sc.all_photos())
    assert {placeholder_photos[s.name].name for s in sc.all_photos()} == set(listed)
    assert sc.by_code(sc.PRODUCTS[0].code) is sc.PRODUCTS[0]
