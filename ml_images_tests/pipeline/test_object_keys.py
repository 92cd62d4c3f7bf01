"""Object keys unique per product, and objects deleted only when no row of any product references them.

Under the earlier layout (``products/{code or id}/…``) a product coded ``2`` and the product with id 2, or two
products sharing a code, wrote the same keys (identical photos give identical names); re-processing one of them,
or a failed commit, then deleted objects the other's rows still pointed at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ml_images.catalog.models import ProductImage, ProductMaster
from ml_images.errors import CatalogUnavailableError
from ml_images.outcomes import ProductStatus
from ml_images_tests.pipeline.builders import CommitFails, make_pipeline
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under, photo_bytes


def _set_code(catalog: Catalog, product_id: int, code: str | None) -> None:
    with catalog.session_factory() as session, session.begin():
        session.execute(sa.update(ProductMaster).where(ProductMaster.id == product_id).values(code=code))


def _keys(catalog: Catalog, product_id: int) -> list[str]:
    return [str(row.storage_key) for row in catalog.images(product_id)]


def _all_exist(root: Path, keys: list[str]) -> bool:
    return all((root / key).is_file() for key in keys)


def test_a_code_equal_to_another_products_id_never_touches_its_objects(
    catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    coded = catalog.add_product("ZX2001")
    plain = catalog.add_product("ZX2002")
    _set_code(catalog, plain, None)
    _set_code(catalog, coded, str(plain))  # the code of one is the id of the other
    photos = [photo_bytes(2001), photo_bytes(2002)]
    web.add("ZX2001", photos)
    web.add("ZX2002", photos)  # the same photos: the same content hashes
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    assert pipeline.process_product(plain, "run-1").status is ProductStatus.STORED
    theirs = _keys(catalog, plain)
    assert all(key.startswith(f"products/{plain}/") for key in theirs)

    # The coded product finds the same photos; its commit fails: its cleanup must not touch the other's objects.
    failing = make_pipeline(catalog, web, remover, root=image_root, recorder=CommitFails(catalog.session_factory))
    with pytest.raises(CatalogUnavailableError):
        failing.process_product(coded, "run-2")
    assert files_under(image_root) == sorted(theirs)
    assert _keys(catalog, plain) == theirs

    assert pipeline.process_product(coded, "run-3").status is ProductStatus.STORED
    mine = _keys(catalog, coded)
    assert all(key.startswith(f"products/{coded}-{plain}/") for key in mine)
    assert set(mine).isdisjoint(theirs)

    # Re-processing the other one (forced, like `ml-images fetch --id`) with new photos leaves these intact.
    web.add("ZX2002", [photo_bytes(2003)])
    fresh = make_pipeline(catalog, web, remover, root=image_root, search_cache=False)
    report = fresh.process_product(plain, "run-4", force=True)
    assert (report.status, report.replaced_objects) == (ProductStatus.STORED, 2)
    assert _all_exist(image_root, mine)
    assert files_under(image_root) == sorted([*mine, *_keys(catalog, plain)])


def test_products_sharing_a_code_keep_their_own_objects(catalog: Catalog, web: ImageWeb, remover, image_root: Path):
    first = catalog.add_product("ZX2011", code="DUP-1")
    second = catalog.add_product("ZX2012", code="DUP-1")
    photos = [photo_bytes(2011), photo_bytes(2012)]
    web.add("ZX2011", photos)
    web.add("ZX2012", photos)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    for pid in (first, second):
        assert pipeline.process_product(pid, "run-1").status is ProductStatus.STORED
    firsts, seconds = _keys(catalog, first), _keys(catalog, second)
    assert all(key.startswith(f"products/{first}-DUP-1/") for key in firsts)
    assert all(key.startswith(f"products/{second}-DUP-1/") for key in seconds)

    web.add("ZX2011", [photo_bytes(2013)])
    fresh = make_pipeline(catalog, web, remover, root=image_root, search_cache=False)
    assert fresh.process_product(first, "run-2", force=True).replaced_objects == 2
    assert _keys(catalog, second) == seconds
    assert _all_exist(image_root, seconds)


def test_objects_shared_under_the_old_layout_stay_until_no_row_references_them(
    catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    coded = catalog.add_product("ZX2021")
    plain = catalog.add_product("ZX2022")
    _set_code(catalog, plain, None)
    _set_code(catalog, coded, str(plain))
    photos = [photo_bytes(2021), photo_bytes(2022)]
    web.add("ZX2022", photos)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    assert pipeline.process_product(plain, "run-1").status is ProductStatus.STORED
    shared = catalog.images(plain)  # products/{plain}/...: the old layout's key of both products
    # Under the old layout the coded product wrote the very same keys: rows of both products point at them.
    with catalog.session_factory() as session, session.begin():
        for row in shared:
            session.add(
                ProductImage(
                    product_id=coded,
                    url=row.url,
                    order=row.order,
                    is_processed=True,
                    storage_key=row.storage_key,
                    content_hash=row.content_hash,
                    width=row.width,
                    height=row.height,
                )
            )
    shared_keys = [str(row.storage_key) for row in shared]
    before = files_under(image_root)
    web.add("ZX2021", [photo_bytes(2023), photo_bytes(2024)])

    # Forced re-processing of the coded product whose commit fails: nothing shared goes, its uploads do.
    failing = make_pipeline(
        catalog, web, remover, root=image_root, recorder=CommitFails(catalog.session_factory), search_cache=False
    )
    with pytest.raises(CatalogUnavailableError):
        failing.process_product(coded, "run-2", force=True)
    assert files_under(image_root) == before
    assert _keys(catalog, coded) == shared_keys

    # Forced re-processing that succeeds: the coded product moves to its own folder; the shared objects stay,
    # since the other product's rows still point at them.
    fresh = make_pipeline(catalog, web, remover, root=image_root, search_cache=False)
    report = fresh.process_product(coded, "run-3", force=True)
    assert (report.status, report.replaced_objects) == (ProductStatus.STORED, 0)
    mine = _keys(catalog, coded)
    assert all(key.startswith(f"products/{coded}-{plain}/") for key in mine)
    assert _all_exist(image_root, shared_keys)
    assert _keys(catalog, plain) == shared_keys

    # Once the other product is re-processed too, no row references the old objects: they are deleted.
    web.add("ZX2022", [photo_bytes(2025)])
    report = fresh.process_product(plain, "run-4", force=True)
    assert (report.status, report.replaced_objects) == (ProductStatus.STORED, len(shared_keys))
    assert files_under(image_root) == sorted([*mine, *_keys(catalog, plain)])
