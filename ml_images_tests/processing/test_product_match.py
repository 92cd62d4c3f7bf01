"""Words read on a picture against the product's brand, model, SKU and GTIN."""

from __future__ import annotations

import pytest

from ml_images.processing.product_match import ProductIdentity, is_model_number, match_words, normalise, tokens

SAMSUNG_24 = ProductIdentity(brand="Samsung", model="LF24T350FHL", sku="LF24T350FHLCZB", gtin="8806090572654")


def test_normalise_drops_case_accents_and_separators():
    assert normalise("Envío GRATIS") == "enviogratis"
    assert normalise("LF24T350-FHL") == normalise("lf24t350 fhl") == "lf24t350fhl"
    assert normalise("Güémes 27MP400-B.AWH") == "guemes27mp400bawh"
    assert tokens("Samsung  LF24T350-FHL /  24”") == ["samsung", "lf24t350fhl", "24"]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("lf24t350fhl", True),
        ("27mp400b", True),
        ("x1504za", True),
        ("24g2", True),
        ("144hz", False),  # a unit
        ("512gb", False),
        ("usb3", False),  # an interface
        ("hdmi2", False),
        ("oferta30", False),  # a word with a number: letter run longer than four
        ("tienda24", False),
        ("2024", False),  # digits only
        ("g5", False),  # too short to tell
    ],
)
def test_what_counts_as_a_model_number(token, expected):
    assert is_model_number(token) is expected


def test_the_products_own_model_read_in_any_spelling_names_it():
    match = match_words(["SAMSUNG", "lf24t350 fhl"], SAMSUNG_24)
    assert match.brand_named
    assert match.model_named
    assert match.names_product
    assert match.other_model is None


def test_another_model_of_the_same_brand_is_the_wrong_product():
    match = match_words(["SAMSUNG LF27T350FHL"], SAMSUNG_24)
    assert match.brand_named
    assert not match.model_named
    assert match.other_model == "lf27t350fhl"


def test_a_model_of_the_same_family_is_recognised_without_the_brand():
    assert match_words(["LF27T350"], SAMSUNG_24).other_model == "lf27t350"


def test_a_model_number_of_an_unrelated_family_without_the_brand_is_not_judged():
    # "GX450" could be anything (a shop's reference, another brand's model): only the same family counts.
    match = match_words(["GX450"], SAMSUNG_24)
    assert match.other_model is None
    assert not match.names_product


def test_promotional_words_and_specifications_are_not_model_numbers():
    match = match_words(["SAMSUNG", "OFERTA 30% OFF", "144Hz 1ms", "ENVIO GRATIS"], SAMSUNG_24)
    assert match.brand_named
    assert match.other_model is None


def test_sku_and_gtin_name_the_product():
    assert match_words(["LF24T350FHLCZB"], SAMSUNG_24).sku_named
    gtin = match_words(["EAN 8 806090 572654"], SAMSUNG_24)
    assert gtin.gtin_named
    assert gtin.names_product


def test_a_model_code_inside_a_longer_model_string():
    ideapad = ProductIdentity(brand="Lenovo", model="IdeaPad 3 15ITL6")
    assert ideapad.model_codes() == {"15itl6", "ideapad315itl6"}
    assert match_words(["lenovo 15ITL6"], ideapad).model_named
    assert match_words(["LENOVO 14ITL6"], ideapad).other_model == "14itl6"
    lg = ProductIdentity(brand="LG", model="27MP400-B")
    assert match_words(["27MP400"], lg).other_model is None  # a shorter spelling of its own model ...
    assert match_words(["27MP400"], lg).model_named  # ... names it
    assert match_words(["SAMSUNG LF24T350"], SAMSUNG_24).model_named  # the family without the variant suffix


def test_no_identity_or_no_words_matches_nothing():
    assert match_words(["SAMSUNG"], None).brand_named is False
    assert match_words([], SAMSUNG_24) == match_words([""], SAMSUNG_24)
    assert not match_words([], SAMSUNG_24).names_product
