"""The outcome vocabulary: the README's reason-code table and ``ReasonCode`` name the same codes."""

from __future__ import annotations

import re
from pathlib import Path

from ml_images.outcomes import (
    FINISHED_STATUSES,
    HTTP_STATUS_PREFIX,
    ProductStatus,
    ReasonCode,
    Refusal,
    Refused,
    http_status_reason,
)
from ml_images.processing.results import CheckFailure, ProcessingOutcome

README = Path(__file__).resolve().parents[1] / "README.md"
# A code is a lower-case snake_case word in backticks; ``http_<status>`` is the one family.
_CODE = re.compile(r"`([a-z][a-z0-9_]*(?:<status>)?)`")


def _readme_codes() -> set[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("| stage | reason codes |")
    table = text[start : text.index("\n\n", start)]
    return set(_CODE.findall(table))


def test_readme_table_and_reason_code_enum_agree() -> None:
    listed = _readme_codes()
    assert f"{HTTP_STATUS_PREFIX}<status>" in listed
    listed.discard(f"{HTTP_STATUS_PREFIX}<status>")
    members = {code.value for code in ReasonCode}
    assert listed - members == set(), "in the README but not in ReasonCode"
    assert members - listed == set(), "in ReasonCode but not in the README"


def test_http_status_reason() -> None:
    assert http_status_reason(404) == "http_404"


def test_stored_status_values_are_the_catalogs() -> None:
    # image_fetch_attempt.outcome holds these strings: changing one would need a data migration.
    assert {s.value for s in ProductStatus} == {"running", "stored", "no_images", "skipped", "deferred", "failed"}
    assert ProductStatus.RUNNING not in FINISHED_STATUSES


def test_a_raised_refusal_becomes_the_refusal_value() -> None:
    refused = Refused(ReasonCode.TOO_LARGE, "body exceeds 10 bytes")
    assert refused.at("download", "https://shop.example.test/a.jpg") == Refusal(
        "download", "too_large", "https://shop.example.test/a.jpg", "body exceeds 10 bytes"
    )
    with_url = Refused(ReasonCode.BAD_URL, "no host", url="https://first.example.test/")
    assert with_url.at("download", "https://other.example.test/").url == "https://first.example.test/"
    assert Refusal.from_dict(refused.at("download").to_dict()) == refused.at("download")


def test_processing_keeps_its_reason_codes_as_plain_str():
    # Processing raises and records ReasonCode members; what it hands on (to records and Dagster metadata, whose
    # serialiser refuses enum members) holds the same values as plain str.
    failure = CheckFailure(ReasonCode.COVER_MASK, "thin remnants")
    assert type(failure.code) is str
    assert failure.to_dict() == {"code": "cover_mask", "detail": "thin remnants"}
    outcome = ProcessingOutcome(images=[], cover_status=ReasonCode.NO_COMPLIANT_COVER)
    assert type(outcome.cover_status) is str
    assert outcome.reason_code == "no_compliant_cover"
    assert type(outcome.reason_code) is str
    refusal = Refused(ReasonCode.CORRUPT, "empty file").at("process", "http://127.0.0.1/a.jpg")
    assert refusal.to_dict() == {
        "stage": "process",
        "reason": "corrupt",
        "url": "http://127.0.0.1/a.jpg",
        "detail": "empty file",
    }
    assert type(refusal.reason) is str
