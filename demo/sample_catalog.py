"""The demo's sample catalog: 20 products of an Argentine computer shop, chosen to walk every path.

* eligible, with brand/model specs (the search query is "brand model") — most of them;
* eligible without specs (the query falls back to the cleaned description);
* eligible, but the search finds nothing → the Mercado Libre listing goes to ERROR;
* eligible, but it already has an image → not pending;
* not eligible: inactive, not for Mercado Libre, a NOTEBOOK under the 1000 price threshold, stale
  (``last_updated`` three days ago), a category without a publication rule;
* a category spelt " monitor " (odd case, blanks) that the selection must still recognise;
* a distributor photo (``image_url``) for some products: a thumbnail address on the fixture server that the demo's
  ``ML_IMAGES_DISTRIBUTOR_URL_REWRITES`` rule turns into the large one; one of them points at a photo the
  distributor no longer has (a 404: refused like any candidate, the search fills the places).

``last_updated`` is computed from the time of loading (``age_hours`` before it), so the fresh products are fresh
whenever the demo seeds the catalog. The ``expected`` field documents the intent for people and tests; the demo's
summary reports what the database and the real selection say, not this field.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from demo.photos import PhotoSpec
from demo.product_models import ProductKind, ProductLook
from demo.scenes import Scene, Shot

ELIGIBLE = "eligible"
NO_RESULTS = "eligible_no_results"
HAS_IMAGES = "has_images"
INACTIVE = "inactive"
NOT_FOR_ML = "not_for_mercadolibre"
TOO_CHEAP = "below_price_threshold"
STALE = "stale"
NO_RULE = "no_rule_for_category"

#: Where the sample catalog's distributor photos live: thumbnails, without the fixture server's port (it changes
#: every run). ``distributor_url_rewrites`` points them at the large photo on the running server.
DISTRIBUTOR_THUMBNAILS = "http://127.0.0.1/distributor/sm/"


def distributor_url_rewrites(server_base_url: str) -> str:
    """The demo's ``ML_IMAGES_DISTRIBUTOR_URL_REWRITES``: thumbnail → large photo, on the running fixture server."""
    return json.dumps([[r"^http://127\.0\.0\.1(?::\d+)?/distributor/sm/", f"{server_base_url}/distributor/lg/"]])


@dataclass(frozen=True)
class DemoProduct:
    code: str
    sku: str
    description: str
    price: Decimal
    category: str
    expected: str
    search_key: str | None  # fixture server match key; None = the search finds nothing
    photos: tuple[PhotoSpec, ...] = ()
    specs: dict[str, Any] | None = None
    is_active: bool = True
    is_for_mercadolibre: bool = True
    age_hours: float = 1.0
    gtin: str | None = None
    seo_title: str | None = None
    distributor_photo: str | None = None  # file name of the distributor's photo (one of ``photos``, or missing)

    @property
    def image_url(self) -> str | None:
        """The distributor's thumbnail address, as a distributor's catalog gives it (no port: see
        ``distributor_url_rewrites``)."""
        return f"{DISTRIBUTOR_THUMBNAILS}{self.distributor_photo}" if self.distributor_photo else None

    @property
    def normalized_name(self) -> str:
        return " ".join(self.description.lower().replace('"', " ").split())

    @property
    def model_name(self) -> str | None:
        return str(self.specs["model"]) if self.specs and "model" in self.specs else None

    def row(self, now: datetime, seo_title_max: int = 120) -> dict[str, Any]:
        """One JSON Lines record for ``ml-images catalog load`` (product_master columns).

        ``seo_title_max``: the catalog's ``seo_title`` length (60 in a Django catalog's table)."""
        return {
            "code": self.code,
            "sku": self.sku,
            "description": self.description,
            "price": str(self.price),
            "category": self.category,
            "image_url": self.image_url,
            "last_updated": (now - timedelta(hours=self.age_hours)).isoformat(),
            "is_active": self.is_active,
            "is_for_mercadolibre": self.is_for_mercadolibre,
            "specs": self.specs,
            "normalized_name": self.normalized_name,
            "model_name": self.model_name,
            "gtin": self.gtin,
            "seo_title": (self.seo_title or self.description)[:seo_title_max],
        }


# --- photo helpers -----------------------------------------------------------------------------------------------

_SIZES = {
    "L": (1200, 900),
    "XL": (1600, 1200),
    "SQ": (1000, 1000),
    "P": (900, 1200),
    "M": (1024, 768),
    "THUMB": (300, 225),
}


def _shot(name: str, scene: Scene, size: str, *, yaw: float = -25.0, shift: float | None = None) -> Shot:
    """A shot whose framing (camera height, product size and position) varies per photo, as a photographer's
    would: pictures of one product on different sets must not look alike to a perceptual hash."""
    w, h = _SIZES[size]
    seed = zlib.crc32(name.encode())
    pitch = 12.0 + seed % 17  # 12-28 degrees
    fill = round(0.58 + (seed >> 5) % 23 / 100, 2)  # 0.58-0.80 of the shorter side
    if shift is None:
        shift = ((seed >> 11) % 25 - 12) / 100  # -0.12..0.12 of the width
    return Shot(scene, w, h, yaw=yaw, pitch=pitch, fill=fill, shift=shift, seed=seed)


_WALLPAPERS = ("astronaut", "rocket", "coffee", "chelsea", "hubble", "motorcycle", "retina")


def _photos(code: str, look: ProductLook, plan: Sequence[tuple[Any, ...]]) -> tuple[PhotoSpec, ...]:
    """``plan`` rows: (scene, size, yaw, fmt), ("dup", index of the original) or ("thumb",)."""
    specs: list[PhotoSpec] = []
    stem = code.lower()
    for i, row in enumerate(plan, start=1):
        name = f"{stem}-{i}"
        if row[0] == "dup":  # an exact copy, as when two shops publish the same press photo
            original = specs[row[1]]
            specs.append(PhotoSpec(name, original.look, original.shot, original.format, duplicate_of=original.name))
            continue
        if row[0] == "thumb":  # a 300 px picture, the kind search results are full of
            specs.append(PhotoSpec(name, look, _shot(name, Scene.STUDIO, "THUMB", yaw=-20, shift=0.0)))
            continue
        scene, size, yaw, fmt = row
        shift = 0.1 if scene is Scene.CAFE else None  # room for the cup on the left
        # shop photos of one product show different things on screen; it also keeps them apart for a phash
        shown = replace(look, wallpaper=_WALLPAPERS[(_WALLPAPERS.index(look.wallpaper) + i - 1) % len(_WALLPAPERS)])
        specs.append(PhotoSpec(name, shown, _shot(name, scene, size, yaw=yaw, shift=shift), fmt))
    return tuple(specs)


def _nb(brand: str, body: tuple[int, int, int], wallpaper: str, *, metal: bool = False) -> ProductLook:
    return ProductLook(ProductKind.NOTEBOOK, brand, body=body, wallpaper=wallpaper, metal=metal)


def _mon(brand: str, body: tuple[int, int, int], wallpaper: str) -> ProductLook:
    return ProductLook(ProductKind.MONITOR, brand, body=body, wallpaper=wallpaper)


def _tower(brand: str, body: tuple[int, int, int], *, glass: bool, accent: tuple[int, int, int]) -> ProductLook:
    return ProductLook(ProductKind.TOWER, brand, body=body, glass_side=glass, accent=accent)


B, LO, W, C, S, D = Scene.BRICK_DESK, Scene.LOFT, Scene.WORKSHOP, Scene.CAFE, Scene.STUDIO, Scene.DARK

# --- the catalog -------------------------------------------------------------------------------------------------

_LENOVO_IP3 = _nb("lenovo", (72, 74, 80), "astronaut")
_HP_15 = _nb("hp", (196, 198, 202), "coffee", metal=True)
_DELL_INS = _nb("DELL", (30, 31, 35), "rocket")
_ASUS_VIVO = _nb("ASUS", (52, 64, 92), "chelsea")
_MAC = _nb("", (188, 190, 194), "hubble", metal=True)
_THINKPAD = _nb("ThinkPad", (26, 26, 28), "motorcycle")
_SAM_24 = _mon("SAMSUNG", (28, 28, 32), "rocket")
_LG_27 = _mon("LG", (34, 34, 38), "chelsea")
_AOC_24 = _mon("AOC", (24, 24, 26), "hubble")
_ODYSSEY = _mon("SAMSUNG", (40, 40, 46), "retina")
_PHILIPS = _mon("PHILIPS", (30, 30, 34), "coffee")
_OPTIPLEX = _tower("DELL", (36, 37, 42), glass=False, accent=(240, 240, 240))
_GAMER = _tower("RGB", (22, 22, 26), glass=True, accent=(80, 160, 255))
_HP_PRO = _tower("hp", (40, 41, 46), glass=False, accent=(220, 220, 220))
_AIO = ProductLook(ProductKind.ALL_IN_ONE, "lenovo", body=(196, 198, 202), wallpaper="astronaut", metal=True)

PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        "NB-LEN-IP3-15ITL6", "LEN82H803RAR",
        'Notebook Lenovo IdeaPad 3 15ITL6 Intel Core i5-1135G7 8GB 512GB SSD 15.6"',
        Decimal("849999.00"), "NOTEBOOK", ELIGIBLE, "IdeaPad 3 15ITL6",
        _photos("NB-LEN-IP3-15ITL6", _LENOVO_IP3, [(B, "L", -25, "jpeg"), (C, "L", 20, "jpeg"),
                                                   (LO, "SQ", -40, "jpeg"), (S, "M", 15, "jpeg"), ("dup", 0)]),
        specs={"brand": "Lenovo", "model": "IdeaPad 3 15ITL6", "processor": "Intel Core i5-1135G7", "ram": "8GB",
               "storage": "512GB SSD", "screen": '15.6" FHD'},
        gtin="0196380123456",
    ),
    DemoProduct(
        "NB-HP-15-FD0033LA", "HP7Z2K3LA", 'Notebook HP 15-fd0033la Intel Core i3-1315U 8GB 256GB SSD 15.6" Plata',
        Decimal("629999.00"), "NOTEBOOK", ELIGIBLE, "15-fd0033la",
        _photos("NB-HP-15-FD0033LA", _HP_15, [(LO, "L", -30, "jpeg"), ("thumb",), (W, "L", 25, "jpeg"),
                                              (B, "SQ", -15, "jpeg")]),
        specs={"brand": "HP", "model": "15-fd0033la", "processor": "Intel Core i3-1315U", "ram": "8GB"},
    ),
    DemoProduct(
        "NB-DELL-INS-3520", "DELL3520I7", "Notebook Dell Inspiron 15 3520 Intel Core i7-1255U 16GB 512GB SSD",
        Decimal("1199999.00"), "NOTEBOOK", ELIGIBLE, "Inspiron 15 3520",
        _photos("NB-DELL-INS-3520", _DELL_INS, [(S, "L", -20, "png"), (B, "L", 25, "webp"), (LO, "SQ", 15, "jpeg"),
                                                (C, "L", -35, "jpeg")]),
        specs={"brand": "Dell", "model": "Inspiron 15 3520", "processor": "Intel Core i7-1255U", "ram": "16GB"},
        distributor_photo="nb-dell-ins-3520-1.png",
    ),
    DemoProduct(
        "NB-ASUS-X1504ZA", "ASX1504ZABQ", "Notebook ASUS Vivobook 15 X1504ZA Core i5-1235U 8GB 512GB SSD Azul",
        Decimal("779999.00"), "NOTEBOOK", ELIGIBLE, "Vivobook 15 X1504ZA",
        _photos("NB-ASUS-X1504ZA", _ASUS_VIVO, [(B, "L", -25, "jpeg"), (D, "L", 30, "jpeg"), (LO, "M", -10, "jpeg"),
                                                (C, "L", 25, "jpeg")]),
        specs={"brand": "ASUS", "model": "Vivobook 15 X1504ZA", "processor": "Intel Core i5-1235U"},
    ),
    DemoProduct(
        "NB-APPLE-MBA-M1", "MGN63LLA", "Notebook Apple MacBook Air 13 M1 8GB 256GB SSD Gris Espacial",
        Decimal("1349999.00"), "NOTEBOOK", ELIGIBLE, "MacBook Air M1",
        _photos("NB-APPLE-MBA-M1", _MAC, [(LO, "XL", -25, "jpeg"), (C, "L", 25, "jpeg"), (S, "SQ", -35, "jpeg")]),
        specs={"brand": "Apple", "model": "MacBook Air M1", "ram": "8GB", "storage": "256GB SSD"},
        gtin="0194252056639",
    ),
    DemoProduct(
        "MN-SAM-LF24T350", "LF24T350FHLCZB", 'Monitor Samsung 24" LF24T350FHL IPS Full HD 75Hz HDMI',
        Decimal("189999.00"), "MONITOR", ELIGIBLE, "LF24T350FHL",
        _photos("MN-SAM-LF24T350", _SAM_24, [(LO, "L", -30, "jpeg"), (B, "L", 20, "jpeg"), (W, "SQ", -20, "jpeg"),
                                             (S, "M", 30, "webp")]),
        specs={"brand": "Samsung", "model": "LF24T350FHL", "screen": '24" IPS'},
    ),
    DemoProduct(
        "MN-LG-27MP400", "27MP400-B.AWH", 'Monitor LG 27MP400-B 27" IPS Full HD FreeSync',
        Decimal("259999.00"), " monitor ", ELIGIBLE, "27MP400-B",
        _photos("MN-LG-27MP400", _LG_27, [(S, "L", -25, "jpeg"), (B, "L", 25, "jpeg"), (C, "L", -20, "jpeg")]),
        specs={"brand": "LG", "model": "27MP400-B", "screen": '27" IPS'},
        distributor_photo="mn-lg-27mp400-1.jpg",
    ),
    DemoProduct(
        "MN-AOC-24G2", "24G2/BK", 'Monitor Gamer AOC 24G2 24" IPS 144Hz 1ms FreeSync Premium',
        Decimal("299999.00"), "MONITOR", ELIGIBLE, "24G2",
        _photos("MN-AOC-24G2", _AOC_24, [(W, "L", -30, "jpeg"), (D, "L", 20, "jpeg"), (LO, "SQ", 25, "png")]),
        specs={"brand": "AOC", "model": "24G2", "refresh": "144Hz"},
    ),
    DemoProduct(
        "MN-SAM-ODYSSEY-G5", "LC27G55TQBLXZB", 'Monitor Gamer Curvo Samsung Odyssey G5 27" QHD 165Hz',
        Decimal("459999.00"), "MONITOR", ELIGIBLE, "Odyssey G5",
        _photos("MN-SAM-ODYSSEY-G5", _ODYSSEY, [(B, "L", -25, "jpeg"), (LO, "L", 30, "jpeg"), (S, "SQ", -15, "jpeg")]),
        specs=None,  # no specs: the query comes from the description
    ),
    DemoProduct(
        "MN-PHILIPS-221V8", "221V8/77", 'Monitor Philips 221V8 21.5" VA Full HD 75Hz',
        Decimal("139999.00"), "MONITOR", ELIGIBLE, "221V8",
        _photos("MN-PHILIPS-221V8", _PHILIPS, [(LO, "L", 25, "jpeg"), (B, "M", -30, "webp"), (W, "L", 20, "jpeg")]),
        specs={"brand": "Philips", "model": "221V8"},
        distributor_photo="mn-philips-221v8-discontinued.jpg",  # gone from the distributor: a 404
    ),
    DemoProduct(
        "PC-DELL-OPTIPLEX-3000", "OPTI3000TI5", "PC Escritorio Dell OptiPlex 3000 Tower Intel Core i5-12500 8GB 256GB",
        Decimal("749999.00"), "COMPUTER", ELIGIBLE, "OptiPlex 3000",
        _photos("PC-DELL-OPTIPLEX-3000", _OPTIPLEX, [(LO, "P", -30, "jpeg"), (W, "L", 35, "jpeg"),
                                                     (B, "SQ", -35, "jpeg")]),
        specs={"brand": "Dell", "model": "OptiPlex 3000 Tower", "processor": "Intel Core i5-12500"},
    ),
    DemoProduct(
        "PC-LEN-AIO3-24ALC6", "F0G100QXAR", 'All in One Lenovo IdeaCentre AIO 3 24ALC6 Ryzen 5 5500U 8GB 512GB 23.8"',
        Decimal("899999.00"), "COMPUTER", ELIGIBLE, "IdeaCentre AIO 3 24ALC6",
        _photos("PC-LEN-AIO3-24ALC6", _AIO, [(S, "L", -20, "jpeg"), (C, "L", 25, "jpeg"), (LO, "SQ", -30, "jpeg")]),
        specs={"brand": "Lenovo", "model": "IdeaCentre AIO 3 24ALC6", "processor": "AMD Ryzen 5 5500U"},
        distributor_photo="pc-len-aio3-24alc6-1.jpg",
    ),
    DemoProduct(
        "PC-GAMER-R7-4060", "PCG-R7-4060-32", "PC Gamer AMD Ryzen 7 5700X RTX 4060 32GB DDR4 1TB NVMe",
        Decimal("1499999.00"), "COMPUTER", ELIGIBLE, "Ryzen 5700X",
        _photos("PC-GAMER-R7-4060", _GAMER, [(W, "P", 35, "jpeg"), (D, "L", -30, "jpeg"), (B, "L", 30, "jpeg")]),
        specs=None,  # a shop-assembled PC: no brand/model, the description drives the query
    ),
    DemoProduct(
        "PC-MINI-N100", "MINIPC-N100-16", "Mini PC Genérico N100 16GB 512GB Sin Marca",
        Decimal("389999.00"), "COMPUTER", NO_RESULTS, None,
        (),
        specs={"brand": "Genérico", "model": "MiniBox N100 Pro"},
    ),
    DemoProduct(
        "NB-LEN-TP-E14-G5", "21JK0057AR", "Notebook Lenovo ThinkPad E14 Gen 5 Intel Core i7-1355U 16GB 512GB",
        Decimal("1399999.00"), "NOTEBOOK", HAS_IMAGES, "ThinkPad E14 Gen 5",
        _photos("NB-LEN-TP-E14-G5", _THINKPAD, [(LO, "L", -25, "jpeg"), (B, "L", 25, "jpeg")]),
        specs={"brand": "Lenovo", "model": "ThinkPad E14 Gen 5", "processor": "Intel Core i7-1355U"},
    ),
    DemoProduct(
        "NB-HP-PAV-14-DV2022LA", "HP14DV2022", "Notebook HP Pavilion 14-dv2022la Core i5-1235U 16GB 512GB",
        Decimal("999999.00"), "NOTEBOOK", INACTIVE, "Pavilion 14-dv2022la",
        _photos("NB-HP-PAV-14-DV2022LA", _HP_15, [(B, "L", -25, "jpeg"), (S, "L", 25, "jpeg")]),
        specs={"brand": "HP", "model": "Pavilion 14-dv2022la"},
        is_active=False,
    ),
    DemoProduct(
        "MN-DELL-P2422H", "DELLP2422H", 'Monitor Dell P2422H 24" IPS Full HD USB Hub',
        Decimal("279999.00"), "MONITOR", NOT_FOR_ML, "P2422H",
        _photos("MN-DELL-P2422H", _mon("DELL", (26, 26, 30), "astronaut"), [(LO, "L", -25, "jpeg"),
                                                                            (W, "L", 25, "jpeg")]),
        specs={"brand": "Dell", "model": "P2422H"},
        is_for_mercadolibre=False,
    ),
    DemoProduct(
        "NB-ACER-A315-58", "NXADDAL00E", "Notebook Acer Aspire 3 A315-58 Core i3-1115G4 8GB 256GB (precio a confirmar)",
        Decimal("999.00"), "NOTEBOOK", TOO_CHEAP, "Aspire 3 A315-58",
        _photos("NB-ACER-A315-58", _nb("acer", (40, 42, 46), "rocket"), [(B, "L", -25, "jpeg"),
                                                                         (LO, "L", 25, "jpeg")]),
        specs={"brand": "Acer", "model": "Aspire 3 A315-58"},
    ),
    DemoProduct(
        "PC-HP-PRO-400-G9", "6U4Z2LT", "PC Escritorio HP Pro Tower 400 G9 Core i5-12500 8GB 512GB",
        Decimal("689999.00"), "COMPUTER", STALE, "Pro Tower 400 G9",
        _photos("PC-HP-PRO-400-G9", _HP_PRO, [(LO, "P", -30, "jpeg"), (W, "L", 30, "jpeg")]),
        specs={"brand": "HP", "model": "Pro Tower 400 G9"},
        age_hours=72.0,
    ),
    DemoProduct(
        "AC-LOGI-M170", "910-004940", "Mouse Inalámbrico Logitech M170 Gris",
        Decimal("12999.00"), "PERIFERICOS", NO_RULE, "M170",
        (),
        specs={"brand": "Logitech", "model": "M170"},
    ),
)  # fmt: skip


def all_photos(products: Sequence[DemoProduct] = PRODUCTS) -> list[PhotoSpec]:
    return [spec for product in products for spec in product.photos]


def by_code(code: str) -> DemoProduct:
    for product in PRODUCTS:
        if product.code == code:
            return product
    raise KeyError(code)


def fixture_catalog_names(products: Sequence[DemoProduct] = PRODUCTS) -> dict[str, list[str]]:
    """Match key → photo file names, in search-result order (the fixture server's catalog, by name). A product's
    distributor photo is not among its search results (shops do not publish the distributor's studio shot)."""
    return {
        p.search_key: [s.filename for s in p.photos if s.filename != p.distributor_photo]
        for p in products
        if p.search_key and p.photos
    }


def distributor_photo_names(products: Sequence[DemoProduct] = PRODUCTS) -> list[str]:
    """The distributor photos the fixture server has (the missing one excluded)."""
    return [s.filename for p in products for s in p.photos if s.filename == p.distributor_photo]


__all__ = [
    "ELIGIBLE",
    "HAS_IMAGES",
    "INACTIVE",
    "NOT_FOR_ML",
    "NO_RESULTS",
    "NO_RULE",
    "PRODUCTS",
    "STALE",
    "TOO_CHEAP",
    "DemoProduct",
    "all_photos",
    "by_code",
    "distributor_photo_names",
    "distributor_url_rewrites",
    "fixture_catalog_names",
]
