from __future__ import annotations

import pytest

from ml_images.storage.keys import code_slug, image_key, product_folder, validate_key

HASH = "0123456789abcdef" * 4


def test_key_layout():
    assert image_key(7, "SKU-123.a_b", 0, HASH) == "products/7-SKU-123.a_b/0-0123456789ab.jpg"
    assert image_key(42, None, 4, HASH.upper()) == "products/42/4-0123456789ab.jpg"


def test_the_id_first_keeps_every_product_apart_whatever_the_codes():
    # A product whose code is "2" and the product with id 2 (no code) wrote the same keys under the earlier
    # layout (products/{code or id}/...); so did two products sharing a code.
    assert image_key(7, "2", 0, HASH) != image_key(2, None, 0, HASH)
    assert image_key(7, "DUP", 0, HASH) != image_key(8, "DUP", 0, HASH)
    assert image_key(2, "2", 0, HASH) != image_key(2, None, 0, HASH)  # same product, different code: both its own
    folders = {product_folder(i, code) for i in range(1, 60) for code in (None, "", "2", "23", "3-x", "x", "DUP")}
    owners = {folder.split("-", 1)[0] for folder in folders}
    assert owners == {str(i) for i in range(1, 60)}  # the folder's first part is always the id


def test_unsafe_codes_are_slugged_into_one_safe_segment():
    assert code_slug("AB/1") == "AB_1"
    assert code_slug("  a  b  ") == "a_b"
    assert code_slug("ñandú") == "and"  # characters outside [A-Za-z0-9._-] become "_", trimmed at the ends
    for code in ("..", ".", "../../etc", "ñandú", "a" * 500, "", "   ", "/", None):
        key = image_key(5, code, 1, HASH)
        assert validate_key(key) == key
        assert key.startswith("products/5")
        assert len(key) < 120
    assert product_folder(5, "../../etc") == "5-etc"
    assert product_folder(5, "..") == "5"
    assert product_folder(5, None) == "5"


@pytest.mark.parametrize(("order", "digest"), [(-1, HASH), (0, "abc"), (0, "z" * 64)])
def test_bad_order_or_hash_is_refused(order, digest):
    with pytest.raises(ValueError, match=r"order|content_hash"):
        image_key(1, "x", order, digest)


@pytest.mark.parametrize("product_id", [0, -3, True])
def test_bad_product_id_is_refused(product_id):
    with pytest.raises(ValueError, match="product_id"):
        image_key(product_id, "x", 0, HASH)


@pytest.mark.parametrize(
    "key", ["", "/abs/key.jpg", "a/../b.jpg", "a//b.jpg", "./a.jpg", "a\\b.jpg", "a/b c.jpg", "a/" + "x" * 1100]
)
def test_unsafe_keys_are_refused(key):
    with pytest.raises(ValueError, match="key"):
        validate_key(key)
