"""The settings of claims and unreachable candidates: ML_IMAGES_CLAIM_*, ML_IMAGES_UNREACHABLE_ATTEMPTS."""

from __future__ import annotations

import pytest

from ml_images.catalog.claims_defaults import DEFAULT_CLAIM_LEASE_SECONDS
from ml_images.catalog.db import create_catalog_engine, make_session_factory
from ml_images.catalog.recorder import ImageRecorder
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.errors import ConfigurationError
from ml_images.settings import Settings


def test_defaults_take_a_dead_claim_over_within_two_minutes():
    settings = Settings.from_env({})
    assert settings.unreachable_attempts == 3
    assert settings.claim_heartbeat_seconds * 2 <= settings.claim_lease_seconds <= 120


def test_values_from_the_environment():
    settings = Settings.from_env(
        {
            "ML_IMAGES_UNREACHABLE_ATTEMPTS": "5",
            "ML_IMAGES_CLAIM_LEASE_SECONDS": "6",
            "ML_IMAGES_CLAIM_HEARTBEAT_SECONDS": "0.5",
        }
    )
    assert (settings.unreachable_attempts, settings.claim_lease_seconds, settings.claim_heartbeat_seconds) == (
        5,
        6.0,
        0.5,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ML_IMAGES_UNREACHABLE_ATTEMPTS": "0"}, "ML_IMAGES_UNREACHABLE_ATTEMPTS must be >= 1"),
        ({"ML_IMAGES_UNREACHABLE_ATTEMPTS": "three"}, "ML_IMAGES_UNREACHABLE_ATTEMPTS must be a whole number"),
        ({"ML_IMAGES_CLAIM_LEASE_SECONDS": "0.5"}, "ML_IMAGES_CLAIM_LEASE_SECONDS must be >= 1"),
        ({"ML_IMAGES_CLAIM_HEARTBEAT_SECONDS": "40"}, "at most half of ML_IMAGES_CLAIM_LEASE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_the_recorder_and_the_selection_take_the_lease_of_the_settings_by_default(tmp_path):
    # One default (catalog/claims_defaults.py): a selector that counted a claim as in flight for longer or shorter
    # than the recorder keeps it would skip products nobody works on, or hand out products still being worked on.
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        sessions = make_session_factory(engine)
        recorder = ImageRecorder(sessions)
        selector = ImageCandidateSelector(MercadoLibreFilter(sessions, DEFAULT_PUBLICATION_RULES))
        lease = Settings.from_env({}).claim_lease_seconds
        assert recorder.lease_seconds == selector.claim_lease_seconds == lease == DEFAULT_CLAIM_LEASE_SECONDS == 60.0
    finally:
        engine.dispose()
