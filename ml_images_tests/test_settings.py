"""Settings.from_env: defaults, parsing and clear configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_images.errors import ConfigurationError
from ml_images.settings import Settings, parse_host_list


def test_defaults_point_at_the_embedded_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"ML_IMAGES_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'catalog.db'}"
    assert settings.search_provider == "brave"
    assert settings.image_search_count == 5
    assert settings.rembg_model == "u2netp"
    assert settings.bucket is None
    assert settings.allowed_private_hosts == frozenset()
    assert settings.freshness_hours == 24.0
    assert settings.canvas_size == 1200


def test_values_are_read_and_trimmed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ML_IMAGES_HOME": str(tmp_path),
            "ML_IMAGES_DATABASE_URL": " postgresql+psycopg2://u@h/db ",
            "ML_IMAGES_SEARCH_PROVIDER": "SerpApi",
            "IMAGE_SEARCH_COUNT": "3",
            "AWS_STORAGE_BUCKET_NAME": "bucket",
            "ML_IMAGES_ALLOWED_PRIVATE_HOSTS": "127.0.0.1, LocalHost,[::1]",
            "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS": "12.5",
            "ML_IMAGES_REMBG_MODEL": "isnet-general-use",
            "ML_IMAGES_S3_ACL": "public-read",
        }
    )
    assert settings.database_url == "postgresql+psycopg2://u@h/db"
    assert settings.search_provider == "serpapi"
    assert settings.image_search_count == 3
    assert settings.bucket == "bucket"
    assert settings.allowed_private_hosts == frozenset({"127.0.0.1", "localhost", "::1"})
    assert settings.freshness_hours == 12.5
    assert settings.rembg_model == "isnet-general-use"
    assert settings.s3_acl == "public-read"


def test_blank_values_count_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env({"ML_IMAGES_HOME": str(tmp_path), "AWS_STORAGE_BUCKET_NAME": "  "})
    assert settings.bucket is None


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ML_IMAGES_SEARCH_PROVIDER", "bing", "ML_IMAGES_SEARCH_PROVIDER"),
        ("IMAGE_SEARCH_COUNT", "five", "IMAGE_SEARCH_COUNT"),
        ("IMAGE_SEARCH_COUNT", "0", "IMAGE_SEARCH_COUNT"),
        ("MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS", "-1", "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS"),
        ("ML_IMAGES_CANVAS_SIZE", "300", "ML_IMAGES_CANVAS_SIZE"),
        ("ML_IMAGES_S3_ACL", "public", "ML_IMAGES_S3_ACL"),
        ("ML_IMAGES_ALLOWED_PRIVATE_HOSTS", "127.0.0.1:0", "ML_IMAGES_ALLOWED_PRIVATE_HOSTS"),
        ("ML_IMAGES_ALLOWED_PRIVATE_HOSTS", "127.0.0.1, host:http", "ML_IMAGES_ALLOWED_PRIVATE_HOSTS"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env({"ML_IMAGES_HOME": str(tmp_path), name: value})


def test_credentials_are_kept_out_of_repr(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"ML_IMAGES_HOME": str(tmp_path), "BRAVE_SEARCH_API_KEY": "sekret-brave", "SERPAPI_API_KEY": "sekret-serp"}
    )
    assert settings.brave_api_key == "sekret-brave"
    assert "sekret" not in repr(settings)


def test_parse_host_list() -> None:
    assert parse_host_list(None) == frozenset()
    assert parse_host_list(" , ") == frozenset()
    assert parse_host_list("A.example,b.example ") == frozenset({"a.example", "b.example"})


def test_parse_host_list_keeps_ports_in_canonical_form() -> None:
    assert parse_host_list("127.0.0.1:8080, [::1]:9000, [0:0::1]:9000, LocalHost:80, ::1") == frozenset(
        {"127.0.0.1:8080", "[::1]:9000", "localhost:80", "::1"}
    )


def test_cover_settings_default_to_strict_and_three_attempts(tmp_path: Path) -> None:
    settings = Settings.from_env({"ML_IMAGES_HOME": str(tmp_path)})
    assert (settings.cover_policy, settings.cover_attempts) == ("strict", 3)
    lenient = Settings.from_env(
        {"ML_IMAGES_HOME": str(tmp_path), "ML_IMAGES_COVER_POLICY": " Lenient ", "ML_IMAGES_COVER_ATTEMPTS": "1"}
    )
    assert (lenient.cover_policy, lenient.cover_attempts) == ("lenient", 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ML_IMAGES_COVER_POLICY", "loose"),
        ("ML_IMAGES_COVER_ATTEMPTS", "0"),
        ("ML_IMAGES_COVER_ATTEMPTS", "-2"),
        ("ML_IMAGES_COVER_ATTEMPTS", "three"),
    ],
)
def test_bad_cover_settings_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({"ML_IMAGES_HOME": str(tmp_path), name: value})
