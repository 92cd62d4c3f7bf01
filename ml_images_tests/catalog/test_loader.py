"""CatalogLoader: JSON Lines and CSV, upsert by code, every bad row reported with its line number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.loader import CatalogLoader, CatalogLoadError, RowError
from ml_images.catalog.models import ProductMaster, utcnow
from ml_images.errors import MlImagesError


def _jsonl(path: Path, *rows: dict[str, Any] | str) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _products(session_factory: sessionmaker[Session]) -> dict[str, ProductMaster]:
    with session_factory() as session:
        return {p.code or "": p for p in session.scalars(sa.select(ProductMaster))}


def test_jsonl_rows_are_inserted_with_typed_values(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "products.jsonl",
        {
            "code": "NB-1",
            "sku": 12345,
            "description": 'Notebook Lenovo IdeaPad 3 15" Ryzen 5',
            "price": 1299.9,
            "category": "NOTEBOOK",
            "is_for_mercadolibre": "yes",
            "is_active": 1,
            "specs": {"brand": "Lenovo", "model": "IdeaPad 3", "ram_gb": 16, "weight_kg": 1.65},
            "gtin": "0195348123456",
            "last_updated": "2026-05-01T10:00:00",
        },
        "",
        {"code": "MON-1", "price": "199", "category": "monitor"},
    )
    report = CatalogLoader(session_factory).load(path)
    assert (report.inserted, report.updated, report.rejected) == (2, 0, [])
    products = _products(session_factory)
    notebook = products["NB-1"]
    assert notebook.price == Decimal("1299.90")
    assert notebook.sku == "12345"
    assert notebook.is_for_mercadolibre is True
    assert notebook.is_active is True
    assert notebook.specs == {"brand": "Lenovo", "model": "IdeaPad 3", "ram_gb": 16, "weight_kg": 1.65}
    assert notebook.last_updated == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # naive means UTC
    monitor = products["MON-1"]
    assert (monitor.is_active, monitor.is_for_mercadolibre) == (True, False)  # defaults
    assert abs(monitor.last_updated - utcnow()) < timedelta(minutes=1)


def test_csv_with_json_specs_booleans_and_multiline_cells(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "products.csv"
    path.write_text(
        "code,description,price,category,is_for_mercadolibre,is_active,specs,last_updated\n"
        'A1,"Monitor 24""\nFull HD",150.5,MONITOR,Yes,,"{""brand"": ""LG""}",2026-05-01T10:00:00+02:00\n'
        "A2,,,COMPUTER,no,false,,\n",
        encoding="utf-8",
    )
    report = CatalogLoader(session_factory).load(path)
    assert (report.inserted, report.updated) == (2, 0)
    products = _products(session_factory)
    assert products["A1"].description == 'Monitor 24"\nFull HD'
    assert products["A1"].price == Decimal("150.50")
    assert products["A1"].specs == {"brand": "LG"}
    assert (products["A1"].is_for_mercadolibre, products["A1"].is_active) == (True, True)
    assert products["A1"].last_updated == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert products["A2"].price is None
    assert products["A2"].description is None
    assert (products["A2"].is_for_mercadolibre, products["A2"].is_active) == (False, False)


def test_upsert_by_code_bumps_last_updated_unless_given(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    old = "2020-01-01T00:00:00+00:00"
    loader = CatalogLoader(session_factory)
    loader.load(
        _jsonl(
            tmp_path / "v1.jsonl",
            {"code": "A", "price": 10, "last_updated": old, "description": "first"},
            {"code": "B", "price": 20, "last_updated": old},
        )
    )
    report = loader.load(
        _jsonl(
            tmp_path / "v2.jsonl",
            {"code": "A", "price": 11},
            {"code": "B", "price": 21, "last_updated": "2020-06-01T00:00:00Z"},
            {"code": "C", "price": 30},
        )
    )
    assert (report.inserted, report.updated) == (1, 2)
    products = _products(session_factory)
    assert products["A"].price == Decimal("11.00")
    assert products["A"].description == "first"  # columns the row does not name stay as they were
    assert abs(products["A"].last_updated - utcnow()) < timedelta(minutes=1)
    assert products["B"].last_updated == datetime(2020, 6, 1, tzinfo=UTC)  # the demo's stale product
    assert len(products) == 3


def test_bad_rows_reject_the_whole_file_with_line_numbers(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "bad.jsonl",
        {"code": "OK-1", "price": 10},
        {"description": "no code", "price": 10},
        {"code": "P-2", "price": "ten"},
        {"code": "P-3", "colour": "red"},
        {"code": "P-4", "specs": "{not json"},
        "{broken json",
        {"code": "OK-1", "price": 11},
        {"code": "P-5", "is_active": "maybe", "price": 1.234},
        {"code": "P-6", "last_updated": "yesterday"},
        {"code": "P-7", "specs": [1, 2]},
        {"code": "x" * 65},
        "[1, 2]",
    )
    with pytest.raises(CatalogLoadError) as info:
        CatalogLoader(session_factory).load(path)
    errors = {e.line: e.message for e in info.value.errors}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "code is missing" in errors[2]
    assert "price must be a number" in errors[3]
    assert "unknown column(s) 'colour'" in errors[4]
    assert "specs is not valid JSON" in errors[5]
    assert "not valid JSON" in errors[6]
    assert "already appears on line 1" in errors[7]
    assert "is_active must be" in errors[8]
    assert "more than 2 decimal places" in errors[8]
    assert "ISO 8601" in errors[9]
    assert "specs must be a JSON object" in errors[10]
    assert "longer than 64" in errors[11]
    assert "expected a JSON object" in errors[12]
    assert isinstance(info.value, MlImagesError)
    assert "line 3: price must be a number" in str(info.value)
    assert _products(session_factory) == {}  # the good row was not written either


def test_csv_bad_cells_and_bad_specs_json(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        'code,price,specs,description\nA,10,"{}",ok\n,5,,no code\nB,abc,,bad price\nC,1,"{""a"": }",bad specs\n'
        'D,1,,"two\nlines"\nE,1,,too,many\n',
        encoding="utf-8",
    )
    with pytest.raises(CatalogLoadError) as info:
        CatalogLoader(session_factory).load(path)
    assert [(e.line, e.message.split(" (")[0]) for e in info.value.errors] == [
        (3, "code is missing"),
        (4, "price must be a number, got 'abc'"),
        (5, "specs is not valid JSON"),
        (8, "expected 4 cells, got 5"),
    ]
    assert _products(session_factory) == {}


def test_csv_unknown_column_rejects_the_header(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("code,price,colour\nA,1,red\n", encoding="utf-8")
    with pytest.raises(CatalogLoadError) as info:
        CatalogLoader(session_factory).load(path)
    assert info.value.errors == [RowError(1, info.value.errors[0].message)]
    assert "unknown column(s) 'colour'" in info.value.errors[0].message
    with pytest.raises(CatalogLoadError, match="line 1"):
        CatalogLoader(session_factory).load(path, partial=True)  # no row can be read: not a partial success
    assert _products(session_factory) == {}


def test_partial_mode_loads_good_rows_and_lists_the_rejected(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "mixed.ndjson",
        {"code": "G1", "price": 1},
        {"code": "B1", "price": "n/a"},
        {"code": "G2", "price": 2},
        {"price": 3},
    )
    report = CatalogLoader(session_factory).load(path, partial=True)
    assert (report.inserted, report.updated) == (2, 0)
    assert [(e.line, e.message) for e in report.rejected] == [
        (2, "price must be a number, got 'n/a'"),
        (4, "code is missing"),
    ]
    assert set(_products(session_factory)) == {"G1", "G2"}


def test_ambiguous_code_in_the_database_is_a_bad_row(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    with session_factory() as session, session.begin():
        session.add_all([ProductMaster(code="DUP"), ProductMaster(code="DUP")])
    path = _jsonl(tmp_path / "p.jsonl", {"code": "NEW"}, {"code": "DUP", "price": 5})
    with pytest.raises(CatalogLoadError, match="line 2: code 'DUP' matches 2 products"):
        CatalogLoader(session_factory).load(path)
    assert set(_products(session_factory)) == {"DUP"}
    report = CatalogLoader(session_factory).load(path, partial=True)
    assert (report.inserted, report.updated, [e.line for e in report.rejected]) == (1, 0, [2])


def test_format_detection(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    loader = CatalogLoader(session_factory)
    odd = tmp_path / "products.txt"
    odd.write_text('{"code": "A"}\n', encoding="utf-8")
    with pytest.raises(CatalogLoadError, match="--format"):
        loader.load(odd)
    assert loader.load(odd, fmt="jsonl").inserted == 1
    with pytest.raises(CatalogLoadError, match="no such file"):
        loader.load(tmp_path / "missing.csv")


# -- text neither database can store, and bytes that are not UTF-8 (issue 10.11) ----------------------------------

_UNSTORABLE_ROWS = [
    ('{"code": "N\\u0000UL"}', "code contains a NUL character (U+0000) at position 1"),
    ('{"code": "S1", "description": "bad \\u0000 text"}', "description contains a NUL character"),
    ('{"code": "S2", "category": "MONITOR\\ud800"}', "category contains a lone surrogate (U+D800) at position 7"),
    ('{"code": "S3", "gtin": "\\udfff"}', "gtin contains a lone surrogate (U+DFFF)"),
    ('{"code": "S4", "specs": {"brand": "Acme\\u0000"}}', "specs['brand'] contains a NUL character"),
    ('{"code": "S5", "specs": {"mo\\u0000del": "X"}}', "specs (a key) contains a NUL character"),
    ('{"code": "S6", "specs": {"tags": ["ok", "\\ud83d"]}}', "specs['tags'][1] contains a lone surrogate (U+D83D)"),
    ('{"code": "S\\udc80"}', "code contains a lone surrogate (U+DC80)"),
]


def test_nul_and_lone_surrogates_are_rejected_lines_in_jsonl(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    lines = ['{"code": "GOOD-1", "description": "Monitor \\u00e9 \\ud83d\\ude00"}']  # an escaped pair is fine
    lines += [row for row, _ in _UNSTORABLE_ROWS]
    lines.append('{"code": "GOOD-2"}')
    path = _jsonl(tmp_path / "unstorable.jsonl", *lines)

    with pytest.raises(CatalogLoadError) as info:
        CatalogLoader(session_factory).load(path)
    assert [e.line for e in info.value.errors] == list(range(2, 2 + len(_UNSTORABLE_ROWS)))
    for error, (_, expected) in zip(info.value.errors, _UNSTORABLE_ROWS, strict=True):
        assert expected in error.message
    assert _products(session_factory) == {}  # nothing written without --partial

    report = CatalogLoader(session_factory).load(path, partial=True)
    assert (report.inserted, report.updated, len(report.rejected)) == (2, 0, len(_UNSTORABLE_ROWS))
    products = _products(session_factory)
    assert set(products) == {"GOOD-1", "GOOD-2"}
    assert products["GOOD-1"].description == "Monitor é 😀"


def test_nul_and_lone_surrogates_are_rejected_lines_in_csv(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "unstorable.csv"
    path.write_text(
        "code,description,specs\n"
        "GOOD-1,fine,\n"
        "BAD-1,nul \x00 inside,\n"
        'BAD-2,,"{""brand"": ""\\ud800""}"\n'
        "BAD\x00-3,,\n"
        "GOOD-2,also fine,\n",
        encoding="utf-8",
    )
    report = CatalogLoader(session_factory).load(path, partial=True)
    assert [(e.line, e.message) for e in report.rejected] == [
        (3, "description contains a NUL character (U+0000) at position 4"),
        (4, "specs['brand'] contains a lone surrogate (U+D800) at position 0"),
        (5, "code contains a NUL character (U+0000) at position 3"),
    ]
    assert set(_products(session_factory)) == {"GOOD-1", "GOOD-2"}


def test_a_csv_decoding_error_names_its_line_and_drops_no_good_row(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # Far enough into the file that the decoder's read-ahead (8 KB chunks) would reach it long before the reader.
    good = [f"G{i:04d},Monitor {i} {'x' * 80}\n".encode() for i in range(300)]
    rows = [b"code,description\n", *good[:150], b"BAD-1,caf\xe9 latin-1\n", *good[150:]]
    rows += [b'BAD-2,"multi\nline \xff\xfe"\n', b"G-LAST,last\n"]
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"".join(rows))

    with pytest.raises(CatalogLoadError) as info:
        CatalogLoader(session_factory).load(path)
    assert [(e.line, e.message) for e in info.value.errors] == [
        (152, "not valid UTF-8 (byte 0xe9 in description)"),
        (303, "not valid UTF-8 (byte 0xff in description)"),
    ]
    assert _products(session_factory) == {}

    report = CatalogLoader(session_factory).load(path, partial=True)
    assert report.inserted == 301
    assert [e.line for e in report.rejected] == [152, 303]
    assert {"G0000", "G0299", "G-LAST"} <= set(_products(session_factory))


def test_a_csv_header_that_is_not_utf8(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"code,descripci\xf3n\nA,x\n")
    with pytest.raises(CatalogLoadError, match=r"line 1: the header is not valid UTF-8 \(byte 0xf3\)"):
        CatalogLoader(session_factory).load(path, partial=True)


def test_jsonl_bytes_that_are_not_utf8_name_their_line(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"code": "A"}\n{"code": "caf\xe9"}\n{"code": "B"}\n')
    report = CatalogLoader(session_factory).load(path, partial=True)
    assert [(e.line, e.message) for e in report.rejected] == [(2, "not valid UTF-8")]
    assert set(_products(session_factory)) == {"A", "B"}
