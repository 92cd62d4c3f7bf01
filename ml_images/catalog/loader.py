"""Loads products into ``product_master`` from JSON Lines or CSV (``ml-images catalog load FILE``).

Columns are the product table's own (except ``id``): ``product_master``'s, or on a Django catalog
(``ML_IMAGES_CATALOG_LAYOUT=django``) those of ``{app_label}_productmaster`` with their lengths; ``code`` is
required and is the upsert key. Every row is checked before anything is written. By default one bad row rejects
the whole file (nothing written, every bad row reported with its line number); ``partial=True`` writes the good
rows and lists the rejected ones. (Over ~300 lines: reading, checking and writing share one set of column rules.)

Values: booleans accept true/false/1/0/yes/no; ``price`` is a decimal with at most 2 decimal places; ``specs`` is a
JSON object (in CSV, a JSON string); ``last_updated`` is ISO 8601 (naive means UTC). An empty CSV cell is NULL; for
the columns that cannot be NULL (``is_active``, ``is_for_mercadolibre``, ``last_updated``) an empty or null value
means "not given": the default on insert, unchanged on update. Updating a product bumps ``last_updated`` to now
unless the row gives it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.layout import models_of
from ml_images.catalog.models import ProductMaster, utcnow
from ml_images.errors import MlImagesError

FORMATS = ("jsonl", "csv")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json-lines": "jsonl", ".csv": "csv"}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_BOOLEAN_COLUMNS = ("is_active", "is_for_mercadolibre")
# Columns that cannot be NULL: an empty / null value means "not given" (default on insert, unchanged on update).
_NOT_GIVEN_WHEN_EMPTY = frozenset({*_BOOLEAN_COLUMNS, "last_updated"})
_PRICE_MAX = Decimal("99999999.99")  # Numeric(10, 2)
_CHUNK = 500
_MAX_MESSAGE_ROWS = 50
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _string_lengths(product: Any = ProductMaster) -> dict[str, int | None]:
    lengths: dict[str, int | None] = {}
    for column in product.__table__.columns:
        if isinstance(column.type, sa.String) and column.name != "id":
            lengths[column.name] = column.type.length
    return lengths


_STRING_COLUMNS = _string_lengths()
COLUMNS: tuple[str, ...] = tuple(c.name for c in ProductMaster.__table__.columns if c.name != "id")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class LoadReport:
    inserted: int
    updated: int
    rejected: list[RowError] = field(default_factory=list)


class CatalogLoadError(MlImagesError):
    """The file was rejected; ``errors`` lists every bad row with its line number. Nothing was written."""

    def __init__(self, path: Path, errors: list[RowError]) -> None:
        self.path = path
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:_MAX_MESSAGE_ROWS])
        more = f"\n  ... and {len(errors) - _MAX_MESSAGE_ROWS} more" if len(errors) > _MAX_MESSAGE_ROWS else ""
        super().__init__(f"{path}: {len(errors)} bad row(s); nothing was written\n{shown}{more}")


class _RowProblem(ValueError):
    pass


@dataclass
class _Row:
    line: int
    values: dict[str, Any]


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        normalized = fmt.lower().replace("ndjson", "jsonl")
        if normalized not in FORMATS:
            raise CatalogLoadError(path, [RowError(0, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")])
        return normalized
    found = _SUFFIX_FORMATS.get(path.suffix.lower())
    if found is None:
        raise CatalogLoadError(
            path, [RowError(0, f"cannot tell the format from the suffix {path.suffix!r}; pass --format jsonl or csv")]
        )
    return found


# -- reading ------------------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                yield number, None, "not valid UTF-8"
                continue
            if not text.strip():
                continue
            try:
                data = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(data, dict):
                yield number, None, f"expected a JSON object, got {type(data).__name__}"
                continue
            yield number, data, None


def _undecodable(cell: str) -> str | None:
    """The first byte that was not valid UTF-8 in ``cell`` (read with ``surrogateescape``), as ``0xNN``."""
    match = _ESCAPED_BYTE.search(cell)
    return f"0x{ord(match.group()) - 0xDC00:02x}" if match else None


def _read_csv(
    path: Path, columns: tuple[str, ...] = COLUMNS
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate in its own cell instead of an exception
    # from the decoder, which reads ahead in 8 KB chunks (the error would name a wrong line and end the file).
    # The CSV structure is unaffected: only bytes >= 0x80 can be undecodable, and none of them is a delimiter.
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise CatalogLoadError(path, [RowError(1, f"unreadable header ({exc})")]) from None
        if header is None:
            return
        bad_byte = next((b for b in map(_undecodable, header) if b), None)
        if bad_byte is not None:
            raise CatalogLoadError(path, [RowError(1, f"the header is not valid UTF-8 (byte {bad_byte})")])
        names = [h.strip() for h in header]
        unknown = [n for n in names if n not in columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if unknown or duplicated or "code" not in names:
            problems = []
            if unknown:
                problems.append(f"unknown column(s) {', '.join(map(repr, unknown))} (known: {', '.join(columns)})")
            if duplicated:
                problems.append(f"repeated column(s) {', '.join(map(repr, duplicated))}")
            if "code" not in names:
                problems.append("the required column 'code' is missing")
            # A bad header makes every row unreadable: the file is rejected even in partial mode.
            raise CatalogLoadError(path, [RowError(1, "; ".join(problems))])
        previous_end = reader.line_num
        while True:
            start = previous_end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, f"malformed CSV ({exc}; the rest of the file was not read)"
                return
            previous_end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            bad = next(((i, b) for i, b in enumerate(map(_undecodable, cells)) if b), None)
            if bad is not None:
                column = names[bad[0]] if bad[0] < len(names) else f"cell {bad[0] + 1}"
                yield start, None, f"not valid UTF-8 (byte {bad[1]} in {column})"
                continue
            if len(cells) != len(names):
                yield start, None, f"expected {len(names)} cells, got {len(cells)}"
                continue
            yield start, {name: (cell if cell != "" else None) for name, cell in zip(names, cells, strict=True)}, None


# -- validating ---------------------------------------------------------------------------------------------------


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _RowProblem(f"{name} must be true/false/1/0/yes/no, got {value!r}")


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _RowProblem(f"price must be a number, got {value!r}")
    try:
        price = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise _RowProblem(f"price must be a number, got {value!r}") from None
    if not price.is_finite():
        raise _RowProblem(f"price must be a finite number, got {value!r}")
    if price < 0:
        raise _RowProblem(f"price must be >= 0, got {value!r}")
    if price != price.quantize(Decimal("0.01")):
        raise _RowProblem(f"price has more than 2 decimal places: {value!r}")
    if price > _PRICE_MAX:
        raise _RowProblem(f"price must be at most {_PRICE_MAX}, got {value!r}")
    return price.quantize(Decimal("0.01"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _specs(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise _RowProblem(f"specs is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise _RowProblem(f"specs must be a JSON object, got {type(value).__name__}")
    _storable_json("specs", value)
    return dict(_jsonable(value))


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _RowProblem(f"last_updated must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _RowProblem(f"last_updated is not an ISO 8601 date-time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _storable_text(name: str, text: str) -> None:
    """Text both databases can store: PostgreSQL refuses NUL in text and JSON, and a lone surrogate (from a JSON
    ``\\ud800`` escape) cannot be encoded as UTF-8 by either driver. Refused here, the row is a rejected line
    instead of a failed transaction."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    char, position = found.group(), found.start()
    if char == "\x00":
        raise _RowProblem(f"{name} contains a NUL character (U+0000) at position {position}")
    raise _RowProblem(f"{name} contains a lone surrogate (U+{ord(char):04X}) at position {position}")


def _storable_json(name: str, value: Any) -> None:
    if isinstance(value, str):
        _storable_text(name, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_text(f"{name} (a key)", key)
            _storable_json(f"{name}[{key!r}]", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable_json(f"{name}[{index}]", item)


def _string(name: str, value: Any, lengths: dict[str, int | None]) -> str:
    if isinstance(value, bool) or (isinstance(value, Decimal) and value != value.to_integral_value()):
        raise _RowProblem(f"{name} must be text, got {value!r}")
    if isinstance(value, int | Decimal):
        value = str(int(value))
    if not isinstance(value, str):
        raise _RowProblem(f"{name} must be text, got {type(value).__name__}")
    _storable_text(name, value)
    length = lengths.get(name)
    if length is not None and len(value) > length:
        raise _RowProblem(f"{name} is longer than {length} characters ({len(value)})")
    return value


def _validate(
    data: dict[str, Any], columns: tuple[str, ...] = COLUMNS, lengths: dict[str, int | None] = _STRING_COLUMNS
) -> dict[str, Any]:
    unknown = [k for k in data if k not in columns]
    if unknown:
        raise _RowProblem(f"unknown column(s) {', '.join(map(repr, unknown))}")
    code = data.get("code")
    if code is None or (isinstance(code, str) and not code.strip()):
        raise _RowProblem("code is missing")
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in data.items():
        if value is None:
            if name not in _NOT_GIVEN_WHEN_EMPTY:
                values[name] = None
            continue
        try:
            if name in _BOOLEAN_COLUMNS:
                values[name] = _boolean(name, value)
            elif name == "price":
                values[name] = _price(value)
            elif name == "specs":
                values[name] = _specs(value)
            elif name == "last_updated":
                values[name] = _timestamp(value)
            else:
                values[name] = _string(name, value, lengths)
        except _RowProblem as exc:
            problems.append(str(exc))
    if problems:
        raise _RowProblem("; ".join(problems))
    values["code"] = values["code"].strip()
    return values


# -- loading ------------------------------------------------------------------------------------------------------


class CatalogLoader:
    """Upserts products by ``code``; see the module docstring for the accepted values."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        # The product table of the catalog's layout: its columns and lengths are what a row is checked against.
        self.product: Any = models_of(session_factory).ProductMaster
        self.columns: tuple[str, ...] = tuple(c.name for c in self.product.__table__.columns if c.name != "id")
        self.lengths = _string_lengths(self.product)

    def _url(self) -> sa.URL | None:
        bind = self.session_factory.kw.get("bind")
        return bind.url if isinstance(bind, sa.Engine) else None

    def parse(self, path: Path, fmt: str | None = None) -> tuple[list[_Row], list[RowError]]:
        """Reads and checks every row without touching the database."""
        kind = detect_format(path, fmt)
        if not path.is_file():
            raise CatalogLoadError(path, [RowError(0, "no such file")])
        reader = _read_jsonl(path) if kind == "jsonl" else _read_csv(path, self.columns)
        rows: list[_Row] = []
        errors: list[RowError] = []
        first_line_of_code: dict[str, int] = {}
        for line, data, problem in reader:
            if data is None:
                errors.append(RowError(line, problem or "unreadable row"))
                continue
            try:
                values = _validate(data, self.columns, self.lengths)
            except _RowProblem as exc:
                errors.append(RowError(line, str(exc)))
                continue
            code = values["code"]
            if code in first_line_of_code:
                errors.append(RowError(line, f"code {code!r} already appears on line {first_line_of_code[code]}"))
                continue
            first_line_of_code[code] = line
            rows.append(_Row(line, values))
        return rows, errors

    def load(self, path: Path, *, fmt: str | None = None, partial: bool = False) -> LoadReport:
        rows, errors = self.parse(path, fmt)
        if errors and not partial:
            raise CatalogLoadError(path, sorted(errors, key=lambda e: e.line))
        now = utcnow()
        inserted = updated = 0
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            existing = self._existing_by_code(session, self.product, [row.values["code"] for row in rows])
            writable: list[_Row] = []
            for row in rows:
                matches = existing.get(row.values["code"], [])
                if len(matches) > 1:
                    errors.append(
                        RowError(
                            row.line, f"code {row.values['code']!r} matches {len(matches)} products; cannot update"
                        )
                    )
                else:
                    writable.append(row)
            if errors and not partial:  # raising inside the transaction rolls it back
                raise CatalogLoadError(path, sorted(errors, key=lambda e: e.line))
            for row in writable:
                matches = existing.get(row.values["code"], [])
                if matches:
                    product = matches[0]
                    for name, value in row.values.items():
                        setattr(product, name, value)
                    if "last_updated" not in row.values:
                        product.last_updated = now
                    updated += 1
                else:
                    session.add(self.product(**{"last_updated": now, **row.values}))
                    inserted += 1
        return LoadReport(inserted=inserted, updated=updated, rejected=sorted(errors, key=lambda e: e.line))

    @staticmethod
    def _existing_by_code(session: Session, model: Any, codes: list[str]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for start in range(0, len(codes), _CHUNK):
            chunk = codes[start : start + _CHUNK]
            for product in session.scalars(sa.select(model).where(model.code.in_(chunk))):
                if product.code is not None:
                    found.setdefault(product.code, []).append(product)
        return found
