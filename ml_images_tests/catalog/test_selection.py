"""MercadoLibreFilter and ImageCandidateSelector on SQLite and PostgreSQL: every rule, in Python and in SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.models import (
    ImageFetchAttempt,
    ListingStatus,
    MercadoLibreListing,
    ProductMaster,
)
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES, PublicationRules, parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.outcomes import ProductStatus

RULES = parse_publication_rules(
    '{"NOTEBOOK": {"price_threshold": 1000}, " monitor ": 0, "Car": 10, "Cámaras": {"price_threshold": 5}}'
)


def _filter(session_factory: sessionmaker[Session], clock: Any, rules: PublicationRules = RULES) -> MercadoLibreFilter:
    return MercadoLibreFilter(session_factory, rules, freshness_hours=24, now=clock)


def _load(session_factory: sessionmaker[Session], product_id: int) -> ProductMaster:
    with session_factory() as session:
        product = session.get(ProductMaster, product_id)
        assert product is not None
        return product


def test_every_filter_rule_in_python_and_in_sql(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    now = clock()
    cases: dict[str, tuple[bool, dict[str, object]]] = {
        "fresh 23h59m": (True, {"last_updated": now - timedelta(hours=23, minutes=59)}),
        "stale 24h01m": (False, {"last_updated": now - timedelta(hours=24, minutes=1)}),
        "price exactly at threshold": (True, {"price": Decimal("1000.00")}),
        "price below threshold": (False, {"price": Decimal("999.99")}),
        "missing price": (False, {"price": None}),
        "missing category": (False, {"category": None}),
        "category lower case with blanks": (True, {"category": "  notebook\t"}),
        "rule key with blanks, product upper": (True, {"category": "MONITOR", "price": Decimal("0.00")}),
        "Car never matches Cartoons": (False, {"category": "Cartoons", "price": Decimal("99999.00")}),
        "Car matches car (plain-number threshold)": (True, {"category": "car", "price": Decimal("10.00")}),
        "plain-number threshold not reached": (False, {"category": "CAR", "price": Decimal("9.99")}),
        "accented category, other case": (True, {"category": "CÁMARAS", "price": Decimal("5.00")}),
        "category without a rule": (False, {"category": "TOYS"}),
        "blank category": (False, {"category": "   "}),
        "inactive": (False, {"is_active": False}),
        "not for Mercado Libre": (False, {"is_for_mercadolibre": False}),
    }
    ids = {name: make_product(**values) for name, (_, values) in cases.items()}
    product_filter = _filter(session_factory, clock)

    selected = {p.id for p in product_filter.get_eligible_products()}
    in_python = {name: product_filter.is_eligible(_load(session_factory, pid)) for name, pid in ids.items()}
    in_sql = {name: pid in selected for name, pid in ids.items()}
    expected = {name: want for name, (want, _) in cases.items()}
    assert in_python == expected
    assert in_sql == expected
    assert product_filter.count_eligible() == sum(expected.values())


def test_empty_rules_select_nothing(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product()
    product_filter = _filter(session_factory, clock, PublicationRules({}))
    assert product_filter.get_eligible_products() == []
    assert product_filter.count_eligible() == 0
    assert not product_filter.is_eligible(_load(session_factory, pid))
    assert ImageCandidateSelector(product_filter).get_pending_image_products() == []


def test_default_rules_and_freshness_setting(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    notebook = make_product(category="NOTEBOOK", price=Decimal("1000"))
    computer = make_product(category="COMPUTER", price=Decimal("499.99"))
    monitor = make_product(category="MONITOR", price=Decimal("0"), last_updated=clock() - timedelta(hours=30))
    loose = MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, freshness_hours=48, now=clock)
    strict = MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, now=clock)
    assert {p.id for p in loose.get_eligible_products()} == {notebook, monitor}
    assert {p.id for p in strict.get_eligible_products()} == {notebook}
    assert computer not in {p.id for p in loose.get_eligible_products()}


def test_eligible_selection_is_one_query_ordered_oldest_first(
    count_statements: Callable[[], Any],
    session_factory: sessionmaker[Session],
    make_product: Callable[..., int],
    clock: Any,
) -> None:
    newer = make_product(last_updated=clock() - timedelta(hours=1))
    older = make_product(last_updated=clock() - timedelta(hours=5))
    make_product(price=Decimal(1))  # filtered out by SQL, never seen by Python
    product_filter = _filter(session_factory, clock)
    with count_statements() as counter:
        products = product_filter.get_eligible_products()
    # one selection statement; the second only loads the images of the rows it returned
    assert len(counter.selects) == 2
    assert "product_image.product_id IN" in counter.selects[1]
    assert [p.id for p in products] == [older, newer]
    assert [p.id for p in product_filter.get_eligible_products(limit=1)] == [older]
    assert products[0].images == []
    assert products[0].listing is None


def test_pending_excludes_products_with_images(
    count_statements: Callable[[], Any],
    session_factory: sessionmaker[Session],
    make_product: Callable[..., int],
    add_image: Callable[..., None],
    clock: Any,
) -> None:
    with_images = make_product(last_updated=clock() - timedelta(hours=3))
    without = make_product(last_updated=clock() - timedelta(hours=2))
    newest = make_product(last_updated=clock() - timedelta(hours=1))
    make_product(is_active=False)
    add_image(with_images, 0)
    add_image(with_images, 1)
    selector = ImageCandidateSelector(_filter(session_factory, clock))
    with count_statements() as counter:
        pending = selector.get_pending_image_products()
    assert len(counter.statements) == 1
    assert [p.id for p in pending] == [without, newest]
    assert [p.id for p in selector.get_pending_image_products(limit=1)] == [without]
    assert selector.get_pending_image_products(limit=0) == []
    assert selector.count_pending() == 2
    assert selector.pending_product_ids() == [without, newest]
    assert selector.pending_product_ids(limit=1, exclude_ids=[without]) == [newest]
    assert selector.needs_images(without) == (True, None)
    assert selector.needs_images(with_images) == (False, "has_images")


def test_pending_products_come_back_detached_and_loaded(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product(description="Notebook Acme X1", specs={"brand": "Acme", "model": "X1"})
    with session_factory() as session, session.begin():
        session.add(MercadoLibreListing(product_master_id=pid, status=ListingStatus.PENDING))
    (product,) = ImageCandidateSelector(_filter(session_factory, clock)).get_pending_image_products()
    assert sa.inspect(product).detached
    assert product.description == "Notebook Acme X1"
    assert product.specs == {"brand": "Acme", "model": "X1"}
    assert product.price == Decimal("1500.00")
    assert product.last_updated.tzinfo is not None
    assert product.images == []
    assert product.listing is not None
    assert product.listing.status == ListingStatus.PENDING


def _attempt(
    session_factory: sessionmaker[Session],
    product_id: int,
    outcome: ProductStatus,
    started: timedelta,
    finished: timedelta | None,
    clock: Any,
) -> None:
    with session_factory() as session, session.begin():
        session.add(
            ImageFetchAttempt(
                product_id=product_id,
                started_at=clock() - started,
                finished_at=None if finished is None else clock() - finished,
                outcome=outcome.value,
            )
        )


def test_cooldown_after_a_fruitless_attempt(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    fruitless = make_product()
    failed = make_product()
    old_fruitless = make_product()
    retried = make_product()
    hour = timedelta(hours=1)
    _attempt(session_factory, fruitless, ProductStatus.NO_IMAGES, 2 * hour, hour, clock)
    _attempt(session_factory, failed, ProductStatus.FAILED, 2 * hour, hour, clock)
    _attempt(session_factory, old_fruitless, ProductStatus.NO_IMAGES, 26 * hour, 25 * hour, clock)
    # the last attempt counts: nothing found 2 h ago, then a transient failure 1 h ago -> not cooling down
    _attempt(session_factory, retried, ProductStatus.NO_IMAGES, 3 * hour, 2 * hour, clock)
    _attempt(session_factory, retried, ProductStatus.FAILED, 2 * hour, hour, clock)
    product_filter = _filter(session_factory, clock)
    selector = ImageCandidateSelector(product_filter, cooldown_hours=24)

    assert {p.id for p in selector.get_pending_image_products()} == {failed, old_fruitless, retried}
    assert selector.count_pending() == 3
    assert selector.pending_product_ids() == [p.id for p in selector.get_pending_image_products()]
    assert fruitless in {p.id for p in selector.get_pending_image_products(ignore_cooldown=True)}
    assert fruitless in {
        p.id for p in ImageCandidateSelector(product_filter, cooldown_hours=0.5).get_pending_image_products()
    }
    # needs_images is the processing step's check: the cooldown is the selection's business only
    assert selector.needs_images(fruitless) == (True, None)

    # the fruitless attempt finished at T-1h: still cooling down at T+22h59m, free again at T+23h01m
    with session_factory() as session, session.begin():
        session.execute(
            sa.update(ProductMaster).values(last_updated=clock() + timedelta(hours=23))
        )  # keep every product fresh
    clock.advance(hours=22, minutes=59)
    assert fruitless not in {p.id for p in selector.get_pending_image_products()}
    clock.advance(minutes=2)
    assert fruitless in {p.id for p in selector.get_pending_image_products()}


def test_in_flight_products_can_be_excluded(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    busy = make_product()  # started long ago, but its worker still beats
    abandoned = make_product()  # its worker stopped beating more than a lease ago
    legacy = make_product()  # an unfinished attempt without any heartbeat (written before heartbeats existed)
    idle = make_product()
    _attempt(session_factory, busy, ProductStatus.RUNNING, timedelta(hours=3), None, clock)
    _attempt(session_factory, abandoned, ProductStatus.RUNNING, timedelta(minutes=5), None, clock)
    _attempt(session_factory, legacy, ProductStatus.RUNNING, timedelta(seconds=30), None, clock)
    with session_factory() as session, session.begin():
        for product_id, beat in ((busy, timedelta(seconds=20)), (abandoned, timedelta(seconds=61))):
            session.execute(
                sa.update(ImageFetchAttempt)
                .where(ImageFetchAttempt.product_id == product_id)
                .values(heartbeat_at=clock() - beat)
            )
    selector = ImageCandidateSelector(_filter(session_factory, clock), claim_lease_seconds=60)
    assert {p.id for p in selector.get_pending_image_products()} == {busy, abandoned, legacy, idle}
    assert {p.id for p in selector.get_pending_image_products(exclude_in_flight=True)} == {abandoned, idle}
    assert selector.count_pending(exclude_in_flight=True) == 2
    clock.advance(seconds=31)  # the legacy claim's start is now older than the lease
    assert {p.id for p in selector.get_pending_image_products(exclude_in_flight=True)} == {abandoned, legacy, idle}


def test_product_ids_and_exclude_ids(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    a = make_product()
    b = make_product()
    c = make_product(is_for_mercadolibre=False)
    selector = ImageCandidateSelector(_filter(session_factory, clock))
    assert [p.id for p in selector.get_pending_image_products(product_ids=[b, c])] == [b]
    assert selector.get_pending_image_products(product_ids=[]) == []
    assert [p.id for p in selector.get_pending_image_products(exclude_ids={a})] == [b]
    # long id lists travel as one array / JSON parameter (SQLite caps the number of bound parameters)
    many = list(range(100_000, 140_000))
    assert [p.id for p in selector.get_pending_image_products(product_ids=[a, *many])] == [a]
    assert [p.id for p in selector.get_pending_image_products(exclude_ids={a, *many})] == [b]
    assert selector.count_pending(exclude_ids={b, *many}) == 1


def test_needs_images_reason_codes(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    stale = make_product(last_updated=clock() - timedelta(days=3))
    selector = ImageCandidateSelector(_filter(session_factory, clock))
    assert selector.needs_images(stale) == (False, "not_eligible")
    assert selector.needs_images(987654) == (False, "not_found")


def test_bad_arguments_are_refused(session_factory: sessionmaker[Session], clock: Any) -> None:
    product_filter = _filter(session_factory, clock)
    with pytest.raises(ValueError, match="limit"):
        product_filter.get_eligible_products(limit=-1)
    with pytest.raises(ValueError, match="freshness_hours"):
        MercadoLibreFilter(session_factory, RULES, freshness_hours=-1)
    with pytest.raises(ValueError, match="cooldown_hours"):
        ImageCandidateSelector(product_filter, cooldown_hours=-1)
    with pytest.raises(ValueError, match="claim_lease_seconds"):
        ImageCandidateSelector(product_filter, claim_lease_seconds=0)
