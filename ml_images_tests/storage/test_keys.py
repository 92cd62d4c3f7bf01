from __future__ import annotations

import pytest

from ml_images.storage.keys import image_key, safe_product_ref, validate_key

HASH = "0123456789abcdef" * 4


def test_key_layout():
    assert image_key("SKU-123.a_b", 0, HASH) == "products/SKU-123.a_b/0-0123456789ab.jpg"
    assert image_key("42", 4, HASH.upper()) == "products/42/4-0123456789ab.jpg"


def test_unsafe_refs_are_sanitised_and_never_collide():
    first, second = safe_product_ref("AB/1"), safe_product_ref("AB 1")
    assert first.startswith("AB_1-")
    assert second.startswith("AB_1-")
    assert first != second
    for ref in ("..", ".", "../../etc", "ñandú", "a" * 500, ""):
        key = image_key(ref, 1, HASH)
        assert validate_key(key) == key
        assert len(key) < 200


@pytest.mark.parametrize(("order", "digest"), [(-1, HASH), (0, "abc"), (0, "z" * 64)])
def test_bad_order_or_hash_is_refused(order, digest):
    with pytest.raises(ValueError, match=r"order|content_hash"):
        image_key("x", order, digest)


@pytest.mark.parametrize(
    "key", ["", "/abs/key.jpg", "a/../b.jpg", "a//b.jpg", "./a.jpg", "a\\b.jpg", "a/b c.jpg", "a/" + "x" * 1100]
)
def test_unsafe_keys_are_refused(key):
    with pytest.raises(ValueError, match="key"):
        validate_key(key)
