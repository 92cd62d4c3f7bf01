"""Contact sheet of the demo: per product, the candidates the search returned ("before") and the images the
pipeline stored ("after"), with why candidates were refused or why the product got nothing.

Every picture judged as a cover shows its checks (README, "The cover"): the verdict, text share, white-border share,
fill, parts or cut-off edges, the cut-out's doubtful share and core; a failed check is red. A stored picture also
shows how its background was separated and its quality score.

Two renderings of the same content: ``contact_sheet.html`` (relative links to the photo files and the local
store, so the folder can be moved or zipped) and ``contact_sheet.png`` (composed with Pillow, viewable anywhere).
"""

from __future__ import annotations

import functools
import html
import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from demo.status import Candidate, ProductStatus, StoredImage
from ml_images.pipeline.reports import summarise_checks
from ml_images.processing.cover_gate import CoverRules

HTML_NAME = "contact_sheet.html"
PNG_NAME = "contact_sheet.png"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1f23;background:#f4f5f7}
h1{font-size:22px;margin:0 0 4px} .sub{color:#5b606b;margin:0 0 18px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08)}
td,th{border-bottom:1px solid #e3e5e9;padding:10px;vertical-align:top;text-align:left}
th{background:#fafbfc;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b606b}
.code{font-weight:600} .desc{color:#3b3f47;font-size:13px;max-width:320px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;margin:2px 4px 2px 0}
.ok{background:#e3f6e8;color:#17692f} .err{background:#fde7e7;color:#a11d1d} .na{background:#eceef2;color:#4a4f59}
.info{background:#e7effd;color:#1d4aa1}
figure{display:inline-block;margin:0 8px 8px 0;width:150px;vertical-align:top}
figure img{width:150px;height:112px;object-fit:contain;background:#e9ebef;border:1px solid #d8dbe1;display:block}
.after figure img{height:150px;background:#fff}
figcaption{font-size:11px;color:#4a4f59;line-height:1.35;margin-top:3px;word-break:break-word}
figcaption .why{color:#a11d1d;font-weight:600} figcaption .kept{color:#17692f;font-weight:600}
figcaption .checks{font-family:ui-monospace,Menlo,monospace;font-size:10.5px}
.reason{font-size:12px;color:#a11d1d;margin-top:6px} .muted{color:#8a8f99;font-size:12px}
"""


@dataclass(frozen=True)
class Figure:
    """One measured value as the sheet shows it; ``failed``: the rule it belongs to failed (drawn red)."""

    text: str
    failed: bool = False


# Which failed rule makes which figure red.
_TEXT_RULES = frozenset({"cover_text", "wrong_product"})


def check_lines(checks: Mapping[str, Any] | None) -> list[list[Figure]]:
    """The cover checks of one picture as short lines of figures (``checks`` as ``ProcessedImage.checks_dict()``
    gives them); a picture never judged as a cover gets one line saying so."""
    if not checks or not checks.get("cover"):
        return [[Figure("not judged as cover")]]
    summary = summarise_checks(checks)
    failed = set(summary["failed"])
    lines = [[Figure("✗ " + ", ".join(summary["failed"]), True)] if failed else [[Figure("cover ✓")]][0]]

    def number(value: Any) -> str:
        return "–" if value is None else f"{value:.2f}"

    lines.append(
        [
            Figure(f"text {number(summary['text_share'])}", bool(failed & _TEXT_RULES)),
            Figure(f"white {number(summary['white_border_share'])}", "cover_not_white" in failed),
        ]
    )
    mask = summary["mask"] or {}
    edges = summary["truncated_edges"]
    props = mask.get("props_removed") or 0  # a cup beside the product, removed from the cut-out (one item only)
    parts = (
        Figure("cut off " + "+".join(edges), True)
        if edges
        else Figure(
            f"parts {mask.get('objects', '–')}" + (f" −{props} prop" if props else ""),
            "cover_multiple_objects" in failed,
        )
    )
    lines.append([Figure(f"fill {number(summary['fill'])}"), parts])
    if mask:
        # A cover_mask failure names its figure in the detail; each figure is red when it is past its own limit.
        bad_mask = "cover_mask" in failed
        rules = CoverRules()
        doubtful, left_out, core = (mask.get(k) for k in ("doubtful_share", "left_out_share", "core_share"))
        lines.append(
            [
                Figure(f"unsure {number(doubtful)}", bad_mask and (doubtful or 0) > rules.max_doubtful_share),
                Figure(f"left out {number(left_out)}", bad_mask and (left_out or 0) > rules.max_left_out_share),
            ]
        )
        lines.append([Figure(f"core {number(core)}", bad_mask and core is not None and core < rules.min_core_share)])
    return lines


def _image_line(i: StoredImage, *, short: bool = False) -> list[Figure]:
    removed = "bg removed" if short else "background removed"
    method = i.background_method or (removed if i.background_removed else "as shot")
    quality = f" · q {i.quality_score:.2f}" if i.quality_score is not None else ""
    return [Figure(f"{method}{quality}")]


def _tried_checks(s: ProductStatus) -> dict[str, Mapping[str, Any]]:
    """Candidate file name → the checks of its cover trial, from the attempt's ``cover_report``."""
    out: dict[str, Mapping[str, Any]] = {}
    for attempt in (s.cover_report or {}).get("attempts") or []:
        if isinstance(attempt, Mapping) and attempt.get("checks"):
            name = str(attempt.get("url") or "").rsplit("/", 1)[-1]
            out.setdefault(name, {"cover": attempt["checks"]})
    return out


def _html_lines(lines: Sequence[Sequence[Figure]]) -> str:
    return "<br>".join(
        " · ".join(f'<span class="why">{html.escape(f.text)}</span>' if f.failed else html.escape(f.text) for f in line)
        for line in lines
    )


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _status_badges(s: ProductStatus) -> list[tuple[str, str]]:
    """(css class, text) badges for a product's state."""
    badges: list[tuple[str, str]] = []
    if not s.eligible:
        badges.append(("na", f"not eligible: {s.ineligible_reason}"))
    elif s.stored and all(i.pre_existing for i in s.stored):
        badges.append(("info", "already had images: not searched"))
    if s.attempt_outcome == "stored":
        badges.append(("ok", f"{len(s.stored)} images stored"))
    elif s.attempt_outcome:
        badges.append(("err" if s.attempt_outcome in ("no_images", "failed") else "na", s.attempt_outcome))
    elif s.eligible and not s.stored:
        badges.append(("na", "pending"))
    if s.listing_status:
        badges.append(("err" if s.listing_status == "ERROR" else "info", f"listing {s.listing_status}"))
    return badges


def _no_candidates(s: ProductStatus) -> str:
    if not s.eligible:
        return "not searched (not eligible)"
    return "no candidates: the search returns nothing"


def _candidate_caption(c: Candidate, checks: Mapping[str, Any] | None) -> str:
    ext = {"jpeg": "jpg"}.get(c.format, c.format)
    text = f"{html.escape(c.path.name)}<br>{c.width}×{c.height} {ext}"
    if c.stored_as is not None:
        text += f'<br><span class="kept">→ stored as #{c.stored_as}</span>'
    elif c.refusal is not None:
        detail = f" — {html.escape(c.refusal.detail)}" if c.refusal.detail else ""
        text += f'<br><span class="why">{html.escape(c.refusal.stage)}: {html.escape(c.refusal.reason)}</span>{detail}'
    if checks is not None:
        text += f'<br><span class="checks">{_html_lines(check_lines(checks))}</span>'
    return text


def _stored_caption(i: StoredImage) -> str:
    parts = [f"#{i.order}" + (" main picture" if i.order == 0 else "")]
    if i.width and i.height:
        parts.append(f"{i.width}×{i.height}")
    if i.pre_existing:
        parts.append("existing image (not touched)")
        return "<br>".join(parts)
    parts.append(_html_lines([_image_line(i)]))
    if i.source_name:
        parts.append(f"from {html.escape(i.source_name)}")
    if i.source_label:  # issue 13: where the picture came from
        parts.append(f'<span class="source">{html.escape(i.source_label)}</span>')
    parts.append(f'<span class="checks">{_html_lines(check_lines(i.checks))}</span>')
    return "<br>".join(parts)


def _figure(src: str, caption: str) -> str:
    link = html.escape(src)
    image = f'<a href="{link}"><img loading="lazy" alt="" src="{link}"></a>'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def render_html(statuses: Sequence[ProductStatus], out_dir: Path, *, title: str, generated_at: datetime) -> str:
    rows = []
    for s in statuses:
        p = s.product
        badges = "".join(f'<span class="badge {cls}">{html.escape(text)}</span>' for cls, text in _status_badges(s))
        reason = ""
        if s.attempt_outcome and s.attempt_outcome != "stored" and (s.attempt_reason or s.sync_error):
            reason = f'<div class="reason">{html.escape(s.sync_error or s.attempt_reason or "")}</div>'
        tried = _tried_checks(s)
        before = (
            "".join(_figure(_rel(c.path, out_dir), _candidate_caption(c, tried.get(c.path.name))) for c in s.candidates)
            or f'<span class="muted">{_no_candidates(s)}</span>'
        )
        after = (
            "".join(
                _figure(_rel(i.path, out_dir) if i.path is not None else i.url, _stored_caption(i)) for i in s.stored
            )
            or '<span class="muted">nothing stored</span>'
        )
        rows.append(
            f'<tr><td><div class="code">{html.escape(p.code)}</div><div class="desc">{html.escape(p.description)}'
            f'</div><div class="muted">{html.escape(p.category.strip() or "?")} · $ {p.price:,.2f}</div>'
            f'<div>{badges}</div>{reason}</td><td>{before}</td><td class="after">{after}</td></tr>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=sub>Generated {generated_at:%Y-%m-%d %H:%M} UTC. Before: what the "
        "search returned. After: what the pipeline stored (1200×1200 JPEG on white; #0 is the main picture). Each "
        "picture judged as a cover shows its checks (text and white-border shares, fill, parts, the cut-out's "
        "doubtful share and core); a failed check is in red.</p>"
        "<table><thead><tr><th>Product</th><th>Candidates (before)</th><th>Stored images (after)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )


# --- PNG ---------------------------------------------------------------------------------------------------------

_W_INFO, _THUMB_W, _THUMB_H, _AFTER = 430, 150, 112, 140
_CAPTION_H, _PAD = 90, 12
_LINE = 13
_ROW_H = max(_THUMB_H, _AFTER) + _CAPTION_H + 2 * _PAD
_BEFORE_SLOTS, _AFTER_SLOTS = 6, 5


# Pillow's built-in font (Aileron) has no accents, ×, → or —: use DejaVu Sans when the system has it, and fall
# back to plain ASCII text with the built-in font, so the PNG reads everywhere.
_ASCII = str.maketrans({"×": "x", "→": "->", "—": "-", "✗": "x", "–": "-", "·": "|"})
_SYSTEM_FONT = "DejaVuSans.ttf"


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(_SYSTEM_FONT, size)
    except OSError:
        return ImageFont.load_default(size=size)


def _has_full_font() -> bool:
    font = _font(12)
    return isinstance(font, ImageFont.FreeTypeFont) and font.getname()[0] == "DejaVu Sans"


def _plain(text: str) -> str:
    if _has_full_font():
        return text
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(c for c in folded if not unicodedata.combining(c))


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    fill: tuple[int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    draw.text(xy, _plain(text), fill=fill, font=font)


def _thumb(path: Path | None, box: tuple[int, int], background: tuple[int, int, int]) -> Image.Image:
    tile = Image.new("RGB", box, background)
    if path is None or not path.is_file():
        return tile
    try:
        with Image.open(path) as im:
            im.draft("RGB", (box[0] * 2, box[1] * 2))
            img = ImageOps.contain(im.convert("RGB"), box, Image.Resampling.LANCZOS)
    except (OSError, ValueError):
        return tile
    tile.paste(img, ((box[0] - img.width) // 2, (box[1] - img.height) // 2))
    return tile


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int
) -> list[str]:
    lines: list[str] = []
    for paragraph in _plain(text).split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    lines: Sequence[Sequence[Figure]],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    *,
    limit: int,
) -> None:
    """Figures left to right, a line each; a failed one red."""
    x0, y = xy
    for line in lines[:limit]:
        x = x0
        for k, figure in enumerate(line):
            text = ("  " if k else "") + figure.text
            _text(draw, (x, y), text, (161, 29, 29) if figure.failed else (74, 79, 89), font)
            x += draw.textlength(_plain(text), font=font)
        y += _LINE


def render_png(statuses: Sequence[ProductStatus], *, title: str) -> Image.Image:
    before_w = _BEFORE_SLOTS * (_THUMB_W + 8)
    after_x = _W_INFO + before_w + 30
    width = after_x + _AFTER_SLOTS * (_AFTER + 8) + _PAD
    header = 64
    sheet = Image.new("RGB", (width, header + _ROW_H * len(statuses)), (244, 245, 247))
    d = ImageDraw.Draw(sheet)
    _text(d, (_PAD, 12), title, (29, 31, 35), _font(24))
    _text(d, (_W_INFO, 44), "candidates (before)", (91, 96, 107), _font(14))
    _text(d, (after_x, 44), "stored images (after) — #0 main picture", (91, 96, 107), _font(14))
    small, tiny, micro = _font(14), _font(11), _font(10)
    colors = {"ok": (23, 105, 47), "err": (161, 29, 29), "na": (74, 79, 89), "info": (29, 74, 161)}
    for row, s in enumerate(statuses):
        y = header + row * _ROW_H
        d.rectangle([0, y, width, y + _ROW_H - 1], (255, 255, 255) if row % 2 == 0 else (250, 251, 252))
        _text(d, (_PAD, y + _PAD), s.product.code, (29, 31, 35), _font(16))
        ty = y + _PAD + 22
        for line in _wrap(d, s.product.description, tiny, _W_INFO - 2 * _PAD)[:2]:
            _text(d, (_PAD, ty), line, (59, 63, 71), tiny)
            ty += 14
        ty += 4
        for cls, text in _status_badges(s):
            for line in _wrap(d, text, small, _W_INFO - 2 * _PAD)[:2]:
                _text(d, (_PAD, ty), line, colors[cls], small)
                ty += 17
        if s.attempt_outcome and s.attempt_outcome != "stored" and (s.sync_error or s.attempt_reason):
            for line in _wrap(d, s.sync_error or s.attempt_reason or "", tiny, _W_INFO - 2 * _PAD)[:3]:
                if ty < y + _ROW_H - 14:
                    _text(d, (_PAD, ty), line, colors["err"], tiny)
                    ty += 13
        tried = _tried_checks(s)
        for k, c in enumerate(s.candidates[:_BEFORE_SLOTS]):
            x = _W_INFO + k * (_THUMB_W + 8)
            sheet.paste(_thumb(c.path, (_THUMB_W, _THUMB_H), (233, 235, 239)), (x, y + _PAD))
            cap = f"{c.width}×{c.height} {c.format}"
            _text(d, (x, y + _PAD + _THUMB_H + 3), cap, (74, 79, 89), tiny)
            if c.stored_as is not None:
                _text(d, (x, y + _PAD + _THUMB_H + 17), f"→ stored #{c.stored_as}", colors["ok"], tiny)
            elif c.refusal is not None:
                _text(d, (x, y + _PAD + _THUMB_H + 17), f"✗ {c.refusal.reason}", colors["err"], tiny)
            checks = tried.get(c.path.name)
            if checks is not None:  # the verdict is on the line above; its figures below
                _draw_lines(d, (x, y + _PAD + _THUMB_H + 31), check_lines(checks)[1:], micro, limit=4)
        if not s.candidates:
            _text(d, (_W_INFO, y + _PAD + 40), _no_candidates(s), (138, 143, 153), small)
        _text(d, (after_x - 24, y + _PAD + _AFTER // 2 - 10), "→", (138, 143, 153), _font(20))
        for k, i in enumerate(s.stored[:_AFTER_SLOTS]):
            x = after_x + k * (_AFTER + 8)
            tile = _thumb(i.path, (_AFTER, _AFTER), (255, 255, 255))
            ImageDraw.Draw(tile).rectangle([0, 0, _AFTER - 1, _AFTER - 1], outline=(216, 219, 225))
            sheet.paste(tile, (x, y + _PAD))
            label_y = y + _PAD + _AFTER + 3
            if i.pre_existing:
                _text(d, (x, label_y), f"#{i.order} existing", (74, 79, 89), tiny)
                continue
            _draw_lines(d, (x, label_y), [[Figure(f"#{i.order}"), *_image_line(i, short=True)]], micro, limit=1)
            if i.source_label:  # where the picture came from, on a line of its own (a tile is narrow)
                _text(d, (x, label_y + _LINE), i.source_label, (74, 79, 89), micro)
                label_y += _LINE
            lines = check_lines(i.checks)
            verdict = lines[0][0]
            judged = i.checks is not None and bool(i.checks.get("cover"))
            color = colors["err"] if verdict.failed else colors["ok"] if judged else colors["na"]
            _text(d, (x, label_y + _LINE), verdict.text, color, micro)
            _draw_lines(d, (x, label_y + 2 * _LINE), lines[1:], micro, limit=4)
        if not s.stored:
            _text(d, (after_x, y + _PAD + 40), "nothing stored", (138, 143, 153), small)
    return sheet


def write_contact_sheet(
    statuses: Sequence[ProductStatus], out_dir: Path, *, title: str = "ml_images demo — contact sheet"
) -> tuple[Path, Path]:
    """Write ``contact_sheet.html`` and ``contact_sheet.png`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, png_path = out_dir / HTML_NAME, out_dir / PNG_NAME
    now = datetime.now(UTC)
    tmp = html_path.with_name(f".{HTML_NAME}.tmp")
    tmp.write_text(render_html(statuses, out_dir, title=title, generated_at=now), encoding="utf-8")
    os.replace(tmp, html_path)
    tmp_png = png_path.with_name(f".{PNG_NAME}.tmp")
    render_png(statuses, title=title).save(tmp_png, "PNG", optimize=False)
    os.replace(tmp_png, png_path)
    return html_path, png_path
