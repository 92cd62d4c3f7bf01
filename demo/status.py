"""What happened to each demo product, read back from the catalog database (for the summary and contact sheet).

Everything here is read from the tables the pipeline writes — ``product_image``, ``image_fetch_attempt``,
``mercadolibre_listing`` — and eligibility comes from the real :class:`MercadoLibreFilter`, so the demo reports
what the pipeline did, not what the sample catalog intended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from demo.sample_catalog import DemoProduct
from ml_images.catalog.layout import layout_of
from ml_images.catalog.models import ProductImage, ProductMaster
from ml_images.catalog.rules import normalize_category
from ml_images.catalog.selection import MercadoLibreFilter
from ml_images.outcomes import Refusal
from ml_images.pipeline.reports import source_label


@dataclass(frozen=True)
class Candidate:
    """One photo the fixture search returns for the product ("before")."""

    path: Path
    width: int
    height: int
    format: str
    refusal: Refusal | None = None  # why the pipeline did not use it, when it said so
    stored_as: int | None = None  # order of the stored image made from it


@dataclass(frozen=True)
class StoredImage:
    """One ``product_image`` row ("after"); ``path`` is the local file when the store is a local folder."""

    order: int
    url: str
    path: Path | None
    width: int | None
    height: int | None
    background_removed: bool
    source_name: str | None
    created_at: datetime | None
    pre_existing: bool  # not written by the pipeline (no storage key): the demo's "already has images" product
    source_label: str | None = None  # "distributor" or "search brave #2" (from ml_images_image)
    background_method: str | None = None  # from ``ml_images_image``: "studio", the model's name, or None
    quality_score: float | None = None
    cover_compliant: bool | None = None  # None: never judged as a cover
    checks: Mapping[str, Any] | None = None  # ``ProcessedImage.checks_dict()``


@dataclass
class ProductStatus:
    product: DemoProduct
    product_id: int | None = None
    eligible: bool = False
    ineligible_reason: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    stored: list[StoredImage] = field(default_factory=list)
    attempt_outcome: str | None = None
    attempt_reason_code: str | None = None
    attempt_reason: str | None = None
    attempt_started_at: datetime | None = None
    search_calls: int = 0
    candidates_found: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    listing_status: str | None = None
    sync_error: str | None = None
    cover_report: Mapping[str, Any] | None = None  # the latest attempt's (policy, status, flagged, attempts)


def explain_ineligibility(product: ProductMaster, product_filter: MercadoLibreFilter) -> str | None:
    """Why the filter rejects ``product`` (None when eligible), checking the filter's own rules in turn."""
    if product_filter.is_eligible(product):
        return None
    if not product.is_for_mercadolibre:
        return "not for Mercado Libre"
    if not product.is_active:
        return "inactive"
    if product.price is None:
        return "no price"
    if product.category is None:
        return "no category"
    cutoff = product_filter.freshness_cutoff()
    if product.last_updated is None or product.last_updated < cutoff:
        hours = product_filter.freshness_hours
        return f"stale (last updated {product.last_updated:%Y-%m-%d %H:%M} UTC, more than {hours:g} h ago)"
    threshold = product_filter.rules.threshold_for(product.category)
    if threshold is None:
        return f"no publication rule for category {normalize_category(product.category)!r}"
    if product.price < threshold:
        return f"price {product.price} below the {normalize_category(product.category)} threshold {threshold}"
    return "not eligible under the publication rules"


def _name_of(url: str | None) -> str | None:
    if not url:
        return None
    return Path(unquote(urlsplit(url).path)).name or None


def _local_path(image: ProductImage, store_root: Path | None) -> Path | None:
    if image.storage_key and store_root is not None:
        candidate = store_root.joinpath(*image.storage_key.split("/"))
        if candidate.is_file():
            return candidate
    parts = urlsplit(image.url)
    if parts.scheme == "file":
        path = Path(url2pathname(parts.path))
        return path if path.is_file() else None
    return None


def _picture_of(row: Any, detail: Any) -> Any:
    fields = ("storage_key", "width", "height", "source_url", "created_at")
    values = {name: getattr(detail, name, None) for name in fields}
    values["background_removed"] = bool(getattr(detail, "background_removed", False))
    return SimpleNamespace(id=row.id, order=row.order, url=row.url, product_id=row.product_id, **values)


def _refusals(raw: Any) -> list[Refusal]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    out = []
    for item in raw or []:
        if isinstance(item, dict) and "stage" in item and "reason" in item:
            out.append(Refusal.from_dict(item))
    return out


def collect_status(
    session_factory: sessionmaker[Session],
    products: Sequence[DemoProduct],
    product_filter: MercadoLibreFilter,
    photo_paths: Mapping[str, Path],
    photo_info: Mapping[str, Mapping[str, Any]],
    *,
    store_root: Path | None,
) -> list[ProductStatus]:
    """One :class:`ProductStatus` per demo product, in catalog order.

    ``photo_paths``/``photo_info`` come from the photo generator (name → file, name → manifest entry);
    ``store_root`` is the local image store's folder (None for S3: stored images are then shown by URL).
    """
    codes = [p.code for p in products]
    statuses: list[ProductStatus] = []
    layout = layout_of(session_factory)
    m = layout.models
    ProductMaster, ProductImage, ImageDetail = m.ProductMaster, m.ProductImage, m.ImageDetail
    ImageFetchAttempt, MercadoLibreListing = m.ImageFetchAttempt, m.MercadoLibreListing
    with session_factory() as session:
        rows = {pm.code: pm for pm in session.scalars(sa.select(ProductMaster).where(ProductMaster.code.in_(codes)))}
        ids = [pm.id for pm in rows.values()]
        images: dict[int, list[Any]] = {}
        for image in session.scalars(
            sa.select(ProductImage).where(ProductImage.product_id.in_(ids)).order_by(ProductImage.order)
        ):
            images.setdefault(image.product_id, []).append(image)
        details = {
            d.product_image_id: d
            for d in session.scalars(sa.select(ImageDetail).where(ImageDetail.product_id.in_(ids)))
        }
        latest = (
            sa.select(sa.func.max(ImageFetchAttempt.id))
            .where(ImageFetchAttempt.product_id.in_(ids))
            .group_by(ImageFetchAttempt.product_id)
        )
        attempts = {
            a.product_id: a
            for a in session.scalars(sa.select(ImageFetchAttempt).where(ImageFetchAttempt.id.in_(latest)))
        }
        listings = {
            li.product_master_id: li
            for li in session.scalars(
                sa.select(MercadoLibreListing).where(MercadoLibreListing.product_master_id.in_(ids))
            )
        }
        for demo in products:
            status = ProductStatus(product=demo)
            statuses.append(status)
            pm = rows.get(demo.code)
            if pm is None:
                status.ineligible_reason = "not in the catalog"
                continue
            status.product_id = pm.id
            status.ineligible_reason = explain_ineligibility(pm, product_filter)
            status.eligible = status.ineligible_reason is None
            attempt = attempts.get(pm.id)
            if attempt is not None:
                status.attempt_outcome = attempt.outcome
                status.attempt_reason_code = attempt.reason_code
                status.attempt_reason = attempt.reason
                status.attempt_started_at = attempt.started_at
                status.search_calls = attempt.search_calls
                status.candidates_found = attempt.candidates_found
                status.refusals = _refusals(attempt.refusals)
                status.cover_report = attempt.cover_report
            listing = listings.get(pm.id)
            if listing is not None:
                status.listing_status = str(listing.status) if listing.status is not None else None
                status.sync_error = listing.sync_error
            for row in images.get(pm.id, []):
                detail = details.get(row.id)
                # On a Django catalog the picture row holds url and order only; the rest is in the detail.
                image = _picture_of(row, detail) if layout.is_django else row
                status.stored.append(
                    StoredImage(
                        order=image.order,
                        url=image.url,
                        path=_local_path(image, store_root),
                        width=image.width,
                        height=image.height,
                        background_removed=image.background_removed,
                        source_name=_name_of(image.source_url),
                        created_at=image.created_at,
                        pre_existing=image.storage_key is None,
                        source_label=source_label(detail.source_kind, detail.provider, detail.provider_rank)
                        if detail
                        else None,
                        background_method=detail.background_method if detail else None,
                        quality_score=detail.quality_score if detail else None,
                        cover_compliant=detail.cover_compliant if detail else None,
                        checks=detail.checks if detail else None,
                    )
                )
    for status in statuses:
        refused: dict[str, Refusal] = {}
        for refusal in status.refusals:
            name = _name_of(refusal.url)
            if name is not None:
                refused.setdefault(name, refusal)
        stored_from = {s.source_name: s.order for s in status.stored if s.source_name}
        for spec in status.product.photos:
            info = photo_info.get(spec.name, {})
            path = photo_paths[spec.name]
            status.candidates.append(
                Candidate(
                    path=path,
                    width=int(info.get("width", 0)),
                    height=int(info.get("height", 0)),
                    format=spec.format,
                    refusal=refused.get(path.name),
                    stored_as=stored_from.get(path.name),
                )
            )
    return statuses
