from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ml_images.catalog.models import ProductMaster
from ml_images.search.query import ProductLike, QueryConstructor


@dataclass
class Product:
    specs: dict[str, Any] | None = None
    normalized_name: str | None = None
    description: str | None = None
    category: str | None = None


def build(product: ProductLike, **kwargs: Any) -> str:
    return QueryConstructor(**kwargs).build(product)


@pytest.mark.parametrize(
    "specs",
    [
        {"brand": "Samsung", "model": "RT38K5930SL"},
        {"Brand": "Samsung", "Model": "RT38K5930SL"},
        {"Marca": "Samsung", "Modelo": "RT38K5930SL"},
        {"marca": " Samsung ", "modelo": "RT38K5930SL", "color": "gris"},
    ],
)
def test_brand_and_model_from_specs(specs: dict[str, Any]) -> None:
    product = Product(specs=specs, normalized_name="Heladera No Frost 382 litros Precio Stock")
    assert build(product) == "Samsung RT38K5930SL"


def test_category_is_added() -> None:
    product = Product(specs={"Marca": "Philips", "Modelo": "HD9252/90", "category": "Freidoras"}, category="Cocina")
    assert build(product) == "Philips HD9252/90 Freidoras"
    assert build(Product(specs={"Marca": "Philips", "Modelo": "HD9252/90"}, category="Cocina")) == (
        "Philips HD9252/90 Cocina"
    )


def test_brand_is_not_repeated_when_the_model_starts_with_it() -> None:
    assert build(Product(specs={"Marca": "HP", "Modelo": "HP 15-fd0011la"})) == "HP 15-fd0011la"


def test_brand_without_model_falls_back_to_the_name() -> None:
    product = Product(specs={"Marca": "Samsung"}, normalized_name="Smart TV Samsung 50 UN50CU7000 4K")
    assert build(product) == "Smart TV Samsung 50 UN50CU7000 4K"


def test_fallback_removes_noise_then_keeps_six_words() -> None:
    product = Product(
        normalized_name="Cop Precio: Cafetera Nespresso Essenza Mini C30 roja, Stock Si Garantía 12 meses",
    )
    assert build(product) == "Cafetera Nespresso Essenza Mini C30 roja"


def test_noise_is_whole_words_only() -> None:
    product = Product(normalized_name="Nokia No-Frost Nonstop Sillón Si No")
    assert build(product) == "Nokia No-Frost Nonstop Sillón"


def test_description_when_there_is_no_name() -> None:
    product = Product(
        normalized_name="  ", description="Auriculares inalámbricos JBL Tune 520BT azul, garantia oficial"
    )
    assert build(product) == "Auriculares inalámbricos JBL Tune 520BT azul"


def test_accents_enye_and_sku_tokens_survive() -> None:
    product = Product(normalized_name="Cámara Niño Señal Ñandú 15-fd0011la i5-1235U")
    assert build(product) == "Cámara Niño Señal Ñandú 15-fd0011la i5-1235U"
    product = Product(normalized_name='Disco SSD 2.5" (480GB) Kingston A400 - SATA')
    assert build(product) == "Disco SSD 2.5 480GB Kingston A400"


def test_suffix_is_appended_and_cleaned() -> None:
    product = Product(specs={"brand": "Motorola", "model": "Moto G54"})
    assert build(product, suffix="producto, fondo blanco!") == "Motorola Moto G54 producto fondo blanco"


def test_custom_noise_pattern() -> None:
    product = Product(normalized_name="Oferta Nuevo Taladro Bosch GSB 13 RE Precio")
    assert build(product, noise_pattern="oferta|nuevo") == "Taladro Bosch GSB 13 RE Precio"
    assert build(product, noise_pattern="") == "Oferta Nuevo Taladro Bosch GSB 13"


def test_cut_at_100_characters_on_a_word_boundary() -> None:
    model = " ".join(f"Modelo{i:02d}X" for i in range(20))  # 20 words of 9 characters
    query = build(Product(specs={"Marca": "Whirlpool", "Modelo": model}))
    assert len(query) <= 100
    assert query.startswith("Whirlpool Modelo00X")
    assert query.split(" ")[-1].startswith("Modelo")
    assert len(query.split(" ")[-1]) == len("Modelo00X")  # no word cut in half
    assert len(query) > 90  # and not cut shorter than needed


def test_a_single_overlong_word_is_cut_hard() -> None:
    assert build(Product(normalized_name="A" * 150)) == "A" * 100


def test_configurable_max_length() -> None:
    assert build(Product(normalized_name="Lavarropas Drean Next 8.14 Eco"), max_length=20) == "Lavarropas Drean"


def test_nothing_to_search_for() -> None:
    assert build(Product()) == ""
    assert build(Product(normalized_name="Precio Stock Si", description="¡¡!!")) == ""
    assert build(Product(normalized_name=None), suffix="fondo blanco") == ""


def test_deterministic() -> None:
    product = Product(normalized_name="Notebook Lenovo IdeaPad 3 15ALC6 Ryzen 5 8GB 256GB Precio")
    queries = {QueryConstructor().build(product) for _ in range(5)}
    assert queries == {"Notebook Lenovo IdeaPad 3 15ALC6 Ryzen"}


def test_product_master_satisfies_the_protocol() -> None:
    product = ProductMaster(
        specs={"Marca": "Atma", "Modelo": "CA8182"},
        normalized_name="Cafetera Atma CA8182",
        description=None,
        category="Pequeños electrodomésticos",
    )
    assert build(product) == "Atma CA8182 Pequeños electrodomésticos"


def test_non_mapping_specs_are_ignored() -> None:
    product = Product(normalized_name="Mouse Logitech M170")
    product.specs = ["not", "a", "mapping"]  # type: ignore[assignment]
    assert build(product) == "Mouse Logitech M170"
