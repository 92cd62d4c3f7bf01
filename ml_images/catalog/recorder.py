"""The "record" step: claims, attempts, ``product_image`` rows and the listing status, one transaction each.

(Longer than the project's ~300 lines: one class whose methods share the claim's conditional-finish rule; the
picture-row helpers at the end could move to a module of their own.)

A claim is an unfinished ``image_fetch_attempt`` row; the partial unique index ``uq_image_fetch_attempt_in_flight``
lets only one exist per product, so two overlapping runs can never both write a product's images. Every method
that finishes an attempt does so with a conditional UPDATE first (``... WHERE finished_at IS NULL``): if the claim
was taken over meanwhile, nothing is written and ``ClaimLostError`` is raised.

A claim is a lease: the worker holding it refreshes ``heartbeat_at`` (see ``heartbeat``); the next claimer takes
over a claim whose heartbeat is older than ``lease_seconds`` (``stale_claim``) or whose holder process is provably
dead on this machine (``holder_died``, at once: see ``ml_images.catalog.holder``).

Object keys: an object may be deleted only when no ``product_image`` row of *any* product references it
(``referenced_keys``; ``commit_images`` applies the rule to the keys it replaces).

On a Django catalog (``layout.py``) the same statements run on its tables: a picture row gets only ``url``,
``order`` and ``is_processed``; its storage key and everything else go to ``ml_images_image`` in the same
transaction, and a key counts as referenced only while its Django picture row exists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.claims_defaults import DEFAULT_CLAIM_LEASE_SECONDS
from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.holder import Liveness, ProcessHolder, current_holder, liveness_of
from ml_images.catalog.layout import CatalogLayout, CatalogModels, layout_of
from ml_images.catalog.models import ImageFetchAttempt, ListingStatus, utcnow
from ml_images.errors import ClaimLostError
from ml_images.outcomes import AttemptStats, ProductStatus, ReasonCode, Refusal

IMAGE_ERROR_PREFIX = "images: "
#: At most this many refusals are stored per attempt (a sample); ``refusal_counts`` counts all of them.
MAX_STORED_REFUSALS = 50
_SYNC_ERROR_MAX = 4000  # a person reads it in an admin screen
_REFUSAL_URL_MAX = 2000
_REFUSAL_DETAIL_MAX = 500
_KEY_CHUNK = 500  # keys per IN (...) list: below SQLite's bound-parameter limit
#: At most this many ranked candidates are kept per attempt (the ones an operator compares).
MAX_STORED_CANDIDATES = 20


@dataclass(frozen=True)
class Claim:
    attempt_id: int
    product_id: int
    run_id: str | None


@dataclass(frozen=True)
class ImageDetailRecord:
    """Provenance and judgement of one stored picture (a row of ``ml_images_image``); every field is optional."""

    source_kind: str | None = None  # "distributor" | "search"
    page_url: str | None = None
    provider: str | None = None
    provider_rank: int | None = None
    rank_score: float | None = None
    rank_parts: Mapping[str, Any] | None = None
    background_method: str | None = None
    quality_score: float | None = None
    cover_compliant: bool | None = None
    checks: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ImageRecord:
    order: int
    url: str
    storage_key: str
    source_url: str | None
    width: int
    height: int
    content_hash: str
    background_removed: bool
    detail: ImageDetailRecord = field(default_factory=ImageDetailRecord)


@dataclass(frozen=True)
class PastAttempt:
    """A finished attempt of a product, as the pipeline reads its history."""

    attempt_id: int
    run_id: str | None
    outcome: str
    reason_code: str | None
    search_calls: int


def stored_refusals(refusals: Sequence[Refusal]) -> list[dict[str, Any]]:
    """At most ``MAX_STORED_REFUSALS`` refusals as JSON, their free-text fields clipped (a bounded row)."""
    out = []
    for refusal in refusals[:MAX_STORED_REFUSALS]:
        data = refusal.to_dict()
        if isinstance(data.get("url"), str):
            data["url"] = data["url"][:_REFUSAL_URL_MAX]
        data["detail"] = str(data.get("detail") or "")[:_REFUSAL_DETAIL_MAX]
        out.append(data)
    return out


def _check_records(records: Sequence[ImageRecord]) -> None:
    orders = [r.order for r in records]
    if any(o < 0 for o in orders):
        raise ValueError(f"image orders must be >= 0, got {orders}")
    if len(set(orders)) != len(orders):
        raise ValueError(f"image orders must be distinct, got {orders}")


class ImageRecorder:
    """Writes what the image pipeline decided about one product. Every public method is one transaction."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS,
        now: Callable[[], datetime] = utcnow,
        holder: Callable[[], ProcessHolder] = current_holder,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        self.session_factory = session_factory
        self.layout: CatalogLayout = layout_of(session_factory)
        self.models: CatalogModels = self.layout.models
        self._attempt = self.models.ImageFetchAttempt
        self._listing = self.models.MercadoLibreListing
        self.lease_seconds = lease_seconds
        self.now = now
        self.holder = holder

    def _url(self) -> sa.URL | None:
        bind = self.session_factory.kw.get("bind")
        return bind.url if isinstance(bind, sa.Engine) else None

    # -- claims -----------------------------------------------------------------------------------------------

    def claim(self, product_id: int, run_id: str | None) -> Claim | None:
        """Starts an attempt; None when another live claim holds the product.

        A claim is taken over (closed as failed, then replaced) when its heartbeat is older than the lease
        (``stale_claim``), when its holder process is provably dead (``holder_died``), or when it belongs to an
        earlier try of the same run (``retried_in_same_run``).
        """
        now = self.now()
        stale_before = now - timedelta(seconds=self.lease_seconds)
        holder = self.holder()
        unfinished = (self._attempt.product_id == product_id, self._attempt.finished_at.is_(None))
        with translate_connection_errors(self._url()), self.session_factory() as session:
            try:
                with session.begin():
                    session.execute(
                        sa.update(self.models.ImageFetchAttempt)
                        .where(
                            *unfinished,
                            sa.func.coalesce(self._attempt.heartbeat_at, self._attempt.started_at) < stale_before,
                        )
                        .values(
                            finished_at=now,
                            outcome=ProductStatus.FAILED.value,
                            reason_code=ReasonCode.STALE_CLAIM,
                            reason=f"no heartbeat for more than {self.lease_seconds:g} s; taken over",
                        )
                    )
                    if run_id is not None:
                        # A step retried inside the same Dagster run (RetryPolicy) finds the claims its first try
                        # could not release (e.g. the database was down then): they are its own, so it takes them
                        # over instead of skipping its products as "in flight" until the lease ends.
                        session.execute(
                            sa.update(self.models.ImageFetchAttempt)
                            .where(*unfinished, self._attempt.run_id == run_id)
                            .values(
                                finished_at=now,
                                outcome=ProductStatus.FAILED.value,
                                reason_code=ReasonCode.RETRIED_IN_SAME_RUN,
                                reason="left unfinished by an earlier try of the same run; taken over by its retry",
                            )
                        )
                    self._take_over_dead_holder(session, product_id, now)
                    if self.layout.is_django:
                        # No foreign key into a Django table stands guard here (it would alter their schema).
                        product = self.models.ProductMaster
                        if not session.scalar(sa.select(sa.exists().where(product.id == product_id))):
                            raise LookupError(f"product {product_id} is not in the catalog")
                    attempt = self.models.ImageFetchAttempt(
                        product_id=product_id,
                        run_id=run_id,
                        started_at=now,
                        heartbeat_at=now,
                        outcome=ProductStatus.RUNNING.value,
                        holder_host=holder.host,
                        holder_node=holder.node,
                        holder_pid=holder.pid,
                        holder_started=holder.started,
                    )
                    session.add(attempt)
                    session.flush()
                    attempt_id = attempt.id
            except sa.exc.IntegrityError:
                # Either the in-flight index refused a second claim (expected under concurrency) or the product
                # does not exist (a foreign-key failure: a caller's error, which must not look like "busy").
                if self._product_exists(product_id):
                    return None
                raise
        return Claim(attempt_id=attempt_id, product_id=product_id, run_id=run_id)

    def _take_over_dead_holder(self, session: Session, product_id: int, now: datetime) -> None:
        row = session.execute(
            sa.select(
                self._attempt.id,
                self._attempt.holder_host,
                self._attempt.holder_node,
                self._attempt.holder_pid,
                self._attempt.holder_started,
            ).where(self._attempt.product_id == product_id, self._attempt.finished_at.is_(None))
        ).first()
        if row is None or liveness_of(row.holder_node, row.holder_pid, row.holder_started) is not Liveness.DEAD:
            return
        session.execute(
            sa.update(self.models.ImageFetchAttempt)
            .where(self._attempt.id == row.id, self._attempt.finished_at.is_(None))
            .values(
                finished_at=now,
                outcome=ProductStatus.FAILED.value,
                reason_code=ReasonCode.HOLDER_DIED,
                reason=f"its process (pid {row.holder_pid} on {row.holder_host}) is no longer running; taken over",
            )
            .execution_options(synchronize_session=False)
        )

    def heartbeat(self, attempt_ids: Collection[int]) -> int:
        """Keeps the given claims alive (``heartbeat_at`` = now); returns how many were still unfinished."""
        ids = sorted({int(i) for i in attempt_ids})
        if not ids:
            return 0
        alive = 0
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            for start in range(0, len(ids), _KEY_CHUNK):
                result = session.execute(
                    sa.update(self.models.ImageFetchAttempt)
                    .where(self._attempt.id.in_(ids[start : start + _KEY_CHUNK]))
                    .where(self._attempt.finished_at.is_(None))
                    .values(heartbeat_at=self.now())
                    .execution_options(synchronize_session=False)
                )
                alive += int(getattr(result, "rowcount", 0) or 0)
        return alive

    def _product_exists(self, product_id: int) -> bool:
        with self.session_factory() as session:
            product = self.models.ProductMaster
            return bool(session.scalar(sa.select(sa.exists().where(product.id == product_id))))

    def _finish(
        self,
        session: Session,
        claim: Claim,
        outcome: ProductStatus,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        stats: AttemptStats | None = None,
        images_stored: int = 0,
    ) -> None:
        stats = stats or AttemptStats()
        counts = (
            dict(stats.refusal_counts)
            if stats.refusal_counts is not None
            else dict(Counter(r.reason for r in stats.refusals))
        )
        # First statement of the transaction: it takes the write lock (SQLite) / the row lock (PostgreSQL), so a
        # concurrent takeover either happened before (rowcount 0) or waits until this transaction ends.
        result = session.execute(
            sa.update(self.models.ImageFetchAttempt)
            .where(
                self._attempt.id == claim.attempt_id,
                self._attempt.product_id == claim.product_id,
                self._attempt.finished_at.is_(None),
            )
            .values(
                finished_at=self.now(),
                outcome=outcome.value,
                reason_code=reason_code,
                reason=reason,
                search_calls=stats.search_calls,
                candidates_found=stats.candidates_found,
                images_stored=images_stored,
                refusals=stored_refusals(stats.refusals),
                refusal_counts=counts,
                provider=stats.provider,
                search_calls_by_provider=dict(stats.search_calls_by_provider) or None,
                search_cache_hits=stats.search_cache_hits,
                downloads=stats.downloads,
                candidates=[dict(c) for c in stats.candidates[:MAX_STORED_CANDIDATES]] or None,
                cover_report=dict(stats.cover_report) if stats.cover_report is not None else None,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise ClaimLostError(
                f"product {claim.product_id}: attempt {claim.attempt_id} is no longer running "
                "(taken over as stale, or already finished); nothing was written"
            )

    # -- reads ------------------------------------------------------------------------------------------------

    def existing_storage_keys(self, product_id: int) -> list[str]:
        image, keys = self.models.ProductImage, self.layout.storage_keys()
        query = sa.select(keys).where(image.product_id == product_id, keys.is_not(None)).order_by(image.order)
        if self.layout.is_django:
            query = query.join_from(
                image, self.models.ImageDetail, self.models.ImageDetail.product_image_id == image.id
            )
        with translate_connection_errors(self._url()), self.session_factory() as session:
            return [key for key in session.scalars(query) if key is not None]

    def referenced_keys(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that a ``product_image`` row of any product references."""
        with translate_connection_errors(self._url()), self.session_factory() as session:
            return _referenced(session, self.layout, keys)

    def previous_attempts(self, product_id: int, before_attempt_id: int, limit: int = 50) -> list[PastAttempt]:
        """The product's finished attempts older than ``before_attempt_id``, newest first (at most ``limit``)."""
        query = (
            sa.select(
                self._attempt.id,
                self._attempt.run_id,
                self._attempt.outcome,
                self._attempt.reason_code,
                self._attempt.search_calls,
            )
            .where(
                self._attempt.product_id == product_id,
                self._attempt.id < before_attempt_id,
                self._attempt.finished_at.is_not(None),
            )
            .order_by(self._attempt.id.desc())
            .limit(limit)
        )
        with translate_connection_errors(self._url()), self.session_factory() as session:
            return [
                PastAttempt(row.id, row.run_id, row.outcome, row.reason_code, int(row.search_calls or 0))
                for row in session.execute(query)
            ]

    def last_attempts(self, product_ids: Iterable[int]) -> dict[int, ImageFetchAttempt]:
        """The latest attempt of each product that has one (detached objects)."""
        ids = sorted({int(i) for i in product_ids})
        found: dict[int, ImageFetchAttempt] = {}
        with translate_connection_errors(self._url()), self.session_factory() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                latest = (
                    sa.select(sa.func.max(self._attempt.id))
                    .where(self._attempt.product_id.in_(chunk))
                    .group_by(self._attempt.product_id)
                )
                for attempt in session.scalars(sa.select(self._attempt).where(self._attempt.id.in_(latest))):
                    found[attempt.product_id] = attempt
        return found

    # -- outcomes ---------------------------------------------------------------------------------------------

    def commit_images(
        self,
        claim: Claim,
        records: Sequence[ImageRecord],
        *,
        stats: AttemptStats,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> list[str]:
        """Replaces the product's images with ``records`` and finishes the attempt as stored, in one transaction.

        ``reason_code``/``reason`` flag a stored attempt (``no_compliant_cover`` under the lenient cover policy).

        Returns the storage keys of the replaced rows that no row of any product references any more (after the
        switch, in the same transaction): the caller deletes those objects from the store after this commit
        (deleting before would lose images if the commit failed).
        """
        if not records:
            raise ValueError("commit_images needs at least one image; use record_no_images when none survived")
        _check_records(records)
        now = self.now()
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                ProductStatus.STORED,
                reason_code=reason_code,
                reason=reason,
                stats=stats,
                images_stored=len(records),
            )
            old_keys = _replace_picture_rows(session, self.layout, claim.product_id, records, now)
            _insert_details(session, self.layout, claim.product_id, records, now)
            # Only an ERROR this pipeline wrote is cleared: a publication error from the Mercado Libre sync stays.
            session.execute(
                sa.update(self.models.MercadoLibreListing)
                .where(
                    self._listing.product_master_id == claim.product_id,
                    self._listing.status == ListingStatus.ERROR,
                    self._listing.sync_error.startswith(IMAGE_ERROR_PREFIX, autoescape=True),
                )
                .values(status=ListingStatus.PENDING, sync_error=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            new_keys = {record.storage_key for record in records}
            replaced = [key for key in dict.fromkeys(old_keys) if key not in new_keys]
            # Another product's rows may point at the same object (keys written under the earlier layout,
            # ``products/{code or id}/``, could coincide): such objects stay.
            still_used = _referenced(session, self.layout, replaced)
        return [key for key in replaced if key not in still_used]

    def record_no_images(
        self,
        claim: Claim,
        reason_code: str,
        reason: str,
        *,
        stats: AttemptStats,
    ) -> None:
        """Nothing usable was found: the listing (created if missing) goes to ERROR with the reason."""
        now = self.now()
        sync_error = (IMAGE_ERROR_PREFIX + reason)[:_SYNC_ERROR_MAX]
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                ProductStatus.NO_IMAGES,
                reason_code=reason_code,
                reason=reason,
                stats=stats,
            )
            values: dict[str, Any] = {"status": ListingStatus.ERROR, "sync_error": sync_error, "updated_at": now}
            updated = session.execute(
                sa.update(self.models.MercadoLibreListing)
                .where(self._listing.product_master_id == claim.product_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(updated, "rowcount", 0) == 0:
                session.add(
                    self.models.MercadoLibreListing(product_master_id=claim.product_id, created_at=now, **values)
                )

    def record_skipped(self, claim: Claim, reason_code: str, reason: str) -> None:
        """The product no longer needs images (it has some, or is no longer eligible); nothing else changes."""
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(session, claim, ProductStatus.SKIPPED, reason_code=reason_code, reason=reason)

    def record_failed(
        self,
        claim: Claim,
        reason_code: str,
        reason: str,
        *,
        stats: AttemptStats | None = None,
    ) -> None:
        """A transient fault: the attempt is closed, the listing is left alone and the product stays pending."""
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                ProductStatus.FAILED,
                reason_code=reason_code,
                reason=reason,
                stats=stats,
            )


def _replace_picture_rows(
    session: Session, layout: CatalogLayout, product_id: int, records: Sequence[ImageRecord], now: datetime
) -> list[str]:
    """Deletes the product's picture rows and inserts ``records`` (inside the caller's transaction).

    Returns the storage keys the deleted rows referenced. On a Django catalog a picture row gets only the columns
    its app reads (every NOT NULL one: Django keeps its defaults in Python); the rest goes to ``ml_images_image``.
    """
    m = layout.models
    image, keys = m.ProductImage, layout.storage_keys()
    query = sa.select(keys).where(image.product_id == product_id)
    if layout.is_django:
        query = query.join_from(image, m.ImageDetail, m.ImageDetail.product_image_id == image.id)
        # No cascade into the project's table here: its rows for this product go with the rows they describe
        # (and any left by a picture row Django deleted).
        old_keys = [key for key in session.scalars(query) if key is not None]
        session.execute(sa.delete(m.ImageDetail).where(m.ImageDetail.product_id == product_id))
    else:
        old_keys = [key for key in session.scalars(query) if key is not None]
    session.execute(sa.delete(image).where(image.product_id == product_id))
    rows: list[dict[str, Any]] = []
    for record in sorted(records, key=lambda r: r.order):
        row: dict[str, Any] = {"product_id": product_id, "url": record.url, "order": record.order, "is_processed": True}
        if not layout.is_django:
            row.update(_stored_picture_columns(record), created_at=now)
        rows.append(row)
    session.execute(sa.insert(image), rows)
    return old_keys


def _stored_picture_columns(record: ImageRecord) -> dict[str, Any]:
    return {
        "storage_key": record.storage_key,
        "source_url": record.source_url,
        "width": record.width,
        "height": record.height,
        "content_hash": record.content_hash,
        "background_removed": record.background_removed,
    }


def _insert_details(
    session: Session, layout: CatalogLayout, product_id: int, records: Sequence[ImageRecord], now: datetime
) -> None:
    """One ``ml_images_image`` row per new ``product_image`` row (the old ones went with their images)."""
    image, detail_model = layout.models.ProductImage, layout.models.ImageDetail
    query = sa.select(image.order, image.id).where(image.product_id == product_id)
    ids: dict[int, int] = {row[0]: row[1] for row in session.execute(query)}
    rows = []
    for record in records:
        detail = record.detail
        extra = _stored_picture_columns(record) if layout.is_django else {}
        rows.append(
            {
                **extra,
                "product_image_id": ids[record.order],
                "product_id": product_id,
                "source_kind": detail.source_kind,
                "page_url": detail.page_url[:_REFUSAL_URL_MAX] if detail.page_url else None,
                "provider": detail.provider,
                "provider_rank": detail.provider_rank,
                "rank_score": detail.rank_score,
                "rank_parts": dict(detail.rank_parts) if detail.rank_parts is not None else None,
                "background_method": detail.background_method,
                "quality_score": detail.quality_score,
                "cover_compliant": detail.cover_compliant,
                "checks": dict(detail.checks) if detail.checks is not None else None,
                "created_at": now,
            }
        )
    # The old rows' details went with them only where the database enforces the cascade (SQLite needs the
    # foreign-keys pragma): remove any left by id first, so a reused id never meets a stale detail.
    session.execute(
        sa.delete(detail_model).where(detail_model.product_image_id.in_([r["product_image_id"] for r in rows]))
    )
    session.execute(sa.insert(detail_model), rows)


def _referenced(session: Session, layout: CatalogLayout, keys: Iterable[str]) -> set[str]:
    wanted = sorted(set(keys))
    found: set[str] = set()
    column = layout.storage_keys()
    m = layout.models
    for start in range(0, len(wanted), _KEY_CHUNK):
        chunk = wanted[start : start + _KEY_CHUNK]
        query = sa.select(column).where(column.in_(chunk)).distinct()
        if layout.is_django:
            # A detail whose Django picture row is gone references nothing.
            query = query.join_from(m.ImageDetail, m.ProductImage, m.ProductImage.id == m.ImageDetail.product_image_id)
        found.update(key for key in session.scalars(query) if key is not None)
    return found
