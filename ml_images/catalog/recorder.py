"""The "record" step: claims, attempts, ``product_image`` rows and the listing status, one transaction each.

A claim is an unfinished ``image_fetch_attempt`` row; the partial unique index ``uq_image_fetch_attempt_in_flight``
lets only one exist per product, so two overlapping runs can never both write a product's images. Every method
that finishes an attempt does so with a conditional UPDATE first (``... WHERE finished_at IS NULL``): if the claim
was taken over meanwhile, nothing is written and ``ClaimLostError`` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.models import (
    AttemptOutcome,
    ImageFetchAttempt,
    ListingStatus,
    MercadoLibreListing,
    ProductImage,
    ProductMaster,
    utcnow,
)
from ml_images.errors import TransientError
from ml_images.refusals import Refusal

IMAGE_ERROR_PREFIX = "images: "
STALE_CLAIM = "stale_claim"
RETRIED_IN_SAME_RUN = "retried_in_same_run"
_SYNC_ERROR_MAX = 4000  # a person reads it in an admin screen; the attempt row keeps the refusals in full


@dataclass(frozen=True)
class Claim:
    attempt_id: int
    product_id: int
    run_id: str | None


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


class ClaimLostError(TransientError):
    """The claim's attempt was finished by someone else (stale-claim takeover); nothing was written."""


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
        claim_ttl_hours: float = 2.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if claim_ttl_hours <= 0:
            raise ValueError(f"claim_ttl_hours must be > 0, got {claim_ttl_hours}")
        self.session_factory = session_factory
        self.claim_ttl_hours = claim_ttl_hours
        self.now = now

    def _url(self) -> sa.URL | None:
        bind = self.session_factory.kw.get("bind")
        return bind.url if isinstance(bind, sa.Engine) else None

    # -- claims -----------------------------------------------------------------------------------------------

    def claim(self, product_id: int, run_id: str | None) -> Claim | None:
        """Starts an attempt; None when another unfinished attempt younger than the claim TTL holds the product.

        A stale unfinished attempt (its run died) is closed as failed (``stale_claim``) and replaced.
        """
        now = self.now()
        stale_before = now - timedelta(hours=self.claim_ttl_hours)
        with translate_connection_errors(self._url()), self.session_factory() as session:
            try:
                with session.begin():
                    session.execute(
                        sa.update(ImageFetchAttempt)
                        .where(
                            ImageFetchAttempt.product_id == product_id,
                            ImageFetchAttempt.finished_at.is_(None),
                            ImageFetchAttempt.started_at < stale_before,
                        )
                        .values(
                            finished_at=now,
                            outcome=AttemptOutcome.FAILED.value,
                            reason_code=STALE_CLAIM,
                            reason=f"unfinished for more than {self.claim_ttl_hours:g} h; taken over",
                        )
                    )
                    if run_id is not None:
                        # A step retried inside the same Dagster run (RetryPolicy) finds the claims its first try
                        # could not release (e.g. the database was down then): they are its own, so it takes them
                        # over instead of skipping its products as "in flight" for the whole claim TTL.
                        session.execute(
                            sa.update(ImageFetchAttempt)
                            .where(
                                ImageFetchAttempt.product_id == product_id,
                                ImageFetchAttempt.finished_at.is_(None),
                                ImageFetchAttempt.run_id == run_id,
                            )
                            .values(
                                finished_at=now,
                                outcome=AttemptOutcome.FAILED.value,
                                reason_code=RETRIED_IN_SAME_RUN,
                                reason="left unfinished by an earlier try of the same run; taken over by its retry",
                            )
                        )
                    attempt = ImageFetchAttempt(
                        product_id=product_id, run_id=run_id, started_at=now, outcome=AttemptOutcome.RUNNING.value
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

    def _product_exists(self, product_id: int) -> bool:
        with self.session_factory() as session:
            return bool(session.scalar(sa.select(sa.exists().where(ProductMaster.id == product_id))))

    def _finish(
        self,
        session: Session,
        claim: Claim,
        outcome: AttemptOutcome,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        search_calls: int = 0,
        candidates_found: int = 0,
        images_stored: int = 0,
        refusals: Sequence[Refusal] = (),
    ) -> None:
        # First statement of the transaction: it takes the write lock (SQLite) / the row lock (PostgreSQL), so a
        # concurrent takeover either happened before (rowcount 0) or waits until this transaction ends.
        result = session.execute(
            sa.update(ImageFetchAttempt)
            .where(
                ImageFetchAttempt.id == claim.attempt_id,
                ImageFetchAttempt.product_id == claim.product_id,
                ImageFetchAttempt.finished_at.is_(None),
            )
            .values(
                finished_at=self.now(),
                outcome=outcome.value,
                reason_code=reason_code,
                reason=reason,
                search_calls=search_calls,
                candidates_found=candidates_found,
                images_stored=images_stored,
                refusals=[r.to_dict() for r in refusals],
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
        query = (
            sa.select(ProductImage.storage_key)
            .where(ProductImage.product_id == product_id, ProductImage.storage_key.is_not(None))
            .order_by(ProductImage.order)
        )
        with translate_connection_errors(self._url()), self.session_factory() as session:
            return [key for key in session.scalars(query) if key is not None]

    def last_attempts(self, product_ids: Iterable[int]) -> dict[int, ImageFetchAttempt]:
        """The latest attempt of each product that has one (detached objects)."""
        ids = sorted({int(i) for i in product_ids})
        found: dict[int, ImageFetchAttempt] = {}
        with translate_connection_errors(self._url()), self.session_factory() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                latest = (
                    sa.select(sa.func.max(ImageFetchAttempt.id))
                    .where(ImageFetchAttempt.product_id.in_(chunk))
                    .group_by(ImageFetchAttempt.product_id)
                )
                for attempt in session.scalars(sa.select(ImageFetchAttempt).where(ImageFetchAttempt.id.in_(latest))):
                    found[attempt.product_id] = attempt
        return found

    # -- outcomes ---------------------------------------------------------------------------------------------

    def commit_images(
        self,
        claim: Claim,
        records: Sequence[ImageRecord],
        *,
        search_calls: int,
        candidates_found: int,
        refusals: Sequence[Refusal],
    ) -> list[str]:
        """Replaces the product's images with ``records`` and finishes the attempt as stored, in one transaction.

        Returns the storage keys of the replaced rows that the new set no longer uses: the caller deletes those
        objects from the store after this commit (deleting before would lose images if the commit failed).
        """
        if not records:
            raise ValueError("commit_images needs at least one image; use record_no_images when none survived")
        _check_records(records)
        now = self.now()
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                AttemptOutcome.STORED,
                search_calls=search_calls,
                candidates_found=candidates_found,
                images_stored=len(records),
                refusals=refusals,
            )
            old_keys = [
                key
                for key in session.scalars(
                    sa.select(ProductImage.storage_key).where(ProductImage.product_id == claim.product_id)
                )
                if key is not None
            ]
            session.execute(sa.delete(ProductImage).where(ProductImage.product_id == claim.product_id))
            session.execute(
                sa.insert(ProductImage),
                [
                    {
                        "product_id": claim.product_id,
                        "url": record.url,
                        "order": record.order,
                        "is_processed": True,
                        "storage_key": record.storage_key,
                        "source_url": record.source_url,
                        "width": record.width,
                        "height": record.height,
                        "content_hash": record.content_hash,
                        "background_removed": record.background_removed,
                        "created_at": now,
                    }
                    for record in sorted(records, key=lambda r: r.order)
                ],
            )
            # Only an ERROR this pipeline wrote is cleared: a publication error from the Mercado Libre sync stays.
            session.execute(
                sa.update(MercadoLibreListing)
                .where(
                    MercadoLibreListing.product_master_id == claim.product_id,
                    MercadoLibreListing.status == ListingStatus.ERROR,
                    MercadoLibreListing.sync_error.startswith(IMAGE_ERROR_PREFIX, autoescape=True),
                )
                .values(status=ListingStatus.PENDING, sync_error=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        new_keys = {record.storage_key for record in records}
        return [key for key in dict.fromkeys(old_keys) if key not in new_keys]

    def record_no_images(
        self,
        claim: Claim,
        reason_code: str,
        reason: str,
        *,
        search_calls: int,
        candidates_found: int,
        refusals: Sequence[Refusal],
    ) -> None:
        """Nothing usable was found: the listing (created if missing) goes to ERROR with the reason."""
        now = self.now()
        sync_error = (IMAGE_ERROR_PREFIX + reason)[:_SYNC_ERROR_MAX]
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                AttemptOutcome.NO_IMAGES,
                reason_code=reason_code,
                reason=reason,
                search_calls=search_calls,
                candidates_found=candidates_found,
                refusals=refusals,
            )
            values: dict[str, Any] = {"status": ListingStatus.ERROR, "sync_error": sync_error, "updated_at": now}
            updated = session.execute(
                sa.update(MercadoLibreListing)
                .where(MercadoLibreListing.product_master_id == claim.product_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(updated, "rowcount", 0) == 0:
                session.add(MercadoLibreListing(product_master_id=claim.product_id, created_at=now, **values))

    def record_skipped(self, claim: Claim, reason_code: str, reason: str) -> None:
        """The product no longer needs images (it has some, or is no longer eligible); nothing else changes."""
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(session, claim, AttemptOutcome.SKIPPED, reason_code=reason_code, reason=reason)

    def record_failed(
        self,
        claim: Claim,
        reason_code: str,
        reason: str,
        *,
        search_calls: int = 0,
        candidates_found: int = 0,
        refusals: Sequence[Refusal] = (),
    ) -> None:
        """A transient fault: the attempt is closed, the listing is left alone and the product stays pending."""
        with translate_connection_errors(self._url()), self.session_factory() as session, session.begin():
            self._finish(
                session,
                claim,
                AttemptOutcome.FAILED,
                reason_code=reason_code,
                reason=reason,
                search_calls=search_calls,
                candidates_found=candidates_found,
                refusals=refusals,
            )
