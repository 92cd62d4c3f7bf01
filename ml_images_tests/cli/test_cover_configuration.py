"""A bad cover setting stops ``ml-images`` with one clear line and exit code 2, like every other variable."""

from __future__ import annotations

import pytest

from ml_images_tests.cli.test_configuration_errors import assert_one_clear_line, fetch_env, ml_images

pytestmark = pytest.mark.slow

__all__ = ["fetch_env"]


@pytest.mark.parametrize(("name", "value"), [("ML_IMAGES_COVER_POLICY", "loose"), ("ML_IMAGES_COVER_ATTEMPTS", "0")])
def test_a_bad_cover_setting_is_a_configuration_error(fetch_env: dict[str, str], name: str, value: str) -> None:
    result = ml_images("fetch", "--dry-run", **{**fetch_env, name: value})
    assert_one_clear_line(result, name)
