"""Upload a product's processed pictures and switch its rows in one transaction; nothing is ever half-written.

New objects are uploaded before the rows switch; if anything fails in between, the new objects that no row
references are deleted (best effort) and the old rows and objects are untouched. An object is only ever deleted
when no ``product_image`` row of any product references it.
"""

from __future__ import annotations

import logging
from typing import Any

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.recorder import Claim, ImageDetailRecord, ImageRecord, ImageRecorder
from ml_images.errors import ClaimLostError
from ml_images.outcomes import ProductStatus, ReasonCode
from ml_images.pipeline.attempt_state import ProductState
from ml_images.pipeline.cover_report import no_compliant_cover_reason
from ml_images.pipeline.reports import ProductReport, StoredImage
from ml_images.processing.results import ProcessingOutcome
from ml_images.storage.base import ImageStore
from ml_images.storage.keys import image_key

logger = logging.getLogger(__name__)


class ImageCommitter:
    """Stores the pictures of a product whose processing kept some, and records the attempt as stored."""

    def __init__(self, recorder: ImageRecorder, store: ImageStore) -> None:
        self._recorder = recorder
        self._store = store

    def store_and_commit(
        self, product: ProductMaster, claim: Claim, state: ProductState, processed: ProcessingOutcome
    ) -> ProductReport:
        pid = product.id
        keys = [image_key(pid, product.code, order, image.content_hash) for order, image in enumerate(processed.images)]
        # Keys are content-addressed, so a re-processed product may produce a key that rows already use (its own
        # current rows, or, under the earlier key layout, another product's): such objects must survive a failure.
        protected = self._recorder.referenced_keys(keys)
        uploaded: list[str] = []
        records: list[ImageRecord] = []
        stored: list[StoredImage] = []
        try:
            for order, (key, image) in enumerate(zip(keys, processed.images, strict=True)):
                url = self._store.put(key, image.jpeg)
                uploaded.append(key)
                # What the row and the report both say of the picture; the row adds the content hash, the report
                # has the detail's fields (provenance and judgement) flattened in.
                picture: dict[str, Any] = {
                    "order": order,
                    "url": url,
                    "storage_key": key,
                    "source_url": image.source_url,
                    "width": image.width,
                    "height": image.height,
                    "background_removed": image.background_removed,
                }
                detail = ImageDetailRecord(
                    **state.provenance(image.source_url).fields(),
                    background_method=image.background_method,
                    quality_score=round(image.quality_score, 4),
                    cover_compliant=image.cover_compliant,
                    checks=image.checks_dict(),
                )
                records.append(ImageRecord(**picture, content_hash=image.content_hash, detail=detail))
                stored.append(StoredImage(**picture, **vars(detail)))
            # Lenient policy without a compliant cover: stored, the attempt flagged with the checks that failed.
            flagged = processed.cover_flagged
            flag_code = ReasonCode.NO_COMPLIANT_COVER if flagged else None
            flag_reason = no_compliant_cover_reason(processed, stored=True) if flagged else None
            unreferenced = self._recorder.commit_images(
                claim, records, stats=state.stats(), reason_code=flag_code, reason=flag_reason
            )
        except BaseException as exc:
            self._clean_up_after_failure(uploaded, protected, pid, claim_lost=isinstance(exc, ClaimLostError))
            raise
        now_used = set(uploaded)
        stale = [k for k in unreferenced if k not in now_used]
        deleted = self._delete_quietly(stale, pid, "no longer referenced")
        return state.report(
            ProductStatus.STORED,
            images=stored,
            replaced_objects=deleted,
            reason_code=flag_code,
            reason=flag_reason,
            cover_flagged=flagged,
        )

    def _clean_up_after_failure(
        self, uploaded: list[str], protected: set[str], product_id: int, *, claim_lost: bool
    ) -> None:
        if not uploaded:
            return
        if claim_lost:
            # Another run took the product over and may be writing these very keys (same photos, same names):
            # an orphan object is harmless, a row pointing at a deleted one is not.
            logger.warning(
                "product %s was taken over by another run; leaving its %d uploaded objects", product_id, len(uploaded)
            )
            return
        try:
            protected = protected | self._recorder.referenced_keys(uploaded)
        except Exception:
            logger.warning("could not re-check the references of product %s's objects", product_id, exc_info=True)
        self._delete_quietly([k for k in uploaded if k not in protected], product_id, "uploaded before the failure")

    def _delete_quietly(self, keys: list[str], product_id: int, why: str) -> int:
        if not keys:
            return 0
        try:
            self._store.delete(keys)
        except Exception:
            # The rows are consistent either way; a leftover object is an orphan, not a wrong picture.
            logger.warning("could not delete %d objects of product %s (%s)", len(keys), product_id, why, exc_info=True)
            return 0
        return len(keys)
