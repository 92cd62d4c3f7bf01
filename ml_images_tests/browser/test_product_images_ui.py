"""The ``product_images`` asset in a real browser, over a finished demo-like run (one product stored, one whose
listing went to ERROR): the asset page, its partitions, each product's partition and the run's page."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from selenium.webdriver.common.by import By

from ml_images_tests.browser.chromium import Browser
from ml_images_tests.browser.conftest import StartDagsterUI
from ml_images_tests.browser.demo_run import materialise_demo_run
from ml_images_tests.browser.pages import metadata_rows, wait_for_partition_rows
from ml_images_tests.pipeline.support import ImageWeb

pytestmark = pytest.mark.slow

STORED_PRODUCT_KEYS = {"status", "images_stored", "search_calls", "candidates_found", "search_query", "image_urls"}


def test_product_images_pages_show_each_product_and_its_metadata(
    tmp_path: Path, web: ImageWeb, dagster_ui: StartDagsterUI, browser: Browser
):
    run = materialise_demo_run(web, tmp_path / "dagster_home")
    with DagsterInstance.from_config(str(run.dagster_home)) as instance:
        [images_run] = [r for r in instance.get_runs() if r.job_name == "product_images_job"]
    stored, error = str(run.stored_id), str(run.error_id)
    ui = dagster_ui(run.dagster_home, run.env)

    browser.open(ui.url("/assets/product_images"))
    overview = browser.wait_for_text("Latest materialization", "product_images_job", "new_eligible_products_sensor")
    browser.shot("asset_overview")
    assert "images" in overview  # the group

    browser.open(ui.url("/assets/product_images?view=partitions"))
    rows = wait_for_partition_rows(browser, 2)
    browser.wait_for_text("Materialized (2)")
    browser.shot("partitions")
    assert sorted(r.key for r in rows) == sorted([stored, error])
    assert {r.key: r.status for r in rows}[stored] == "materialized"

    browser.open(ui.url(f"/assets/product_images?view=partitions&partition={stored}"))
    browser.wait_for_text("images_stored", "main_picture")
    stored_metadata = metadata_rows(browser)
    browser.shot(f"partition_{stored}_stored")
    assert stored_metadata.keys() >= STORED_PRODUCT_KEYS, stored_metadata
    assert (stored_metadata["status"], stored_metadata["images_stored"]) == ("stored", "2")
    assert "Acme ZX8100 MONITOR" in stored_metadata["search_query"]

    # The run that materialised it: its link leads to the run's page, /runs/<run id> (focused on the step's logs).
    browser.driver.find_element(By.CSS_SELECTOR, f'a[href^="/runs/{images_run.run_id}"]').click()
    browser.wait(lambda b: b.driver.current_url.startswith(ui.url(f"/runs/{images_run.run_id}")), what="run page")
    run_page = browser.wait_for_text("Success", "Run of", "product_images_job", f"product {stored}: stored")
    browser.shot("run")
    assert f"product {error}: no_images (no_search_results)" in run_page

    browser.open(ui.url(f"/assets/product_images?view=partitions&partition={error}"))
    browser.wait_for_text("reason_code")
    error_metadata = metadata_rows(browser)
    browser.shot(f"partition_{error}_listing_error")
    assert (error_metadata["status"], error_metadata["images_stored"]) == ("no_images", "0")
    assert error_metadata["reason_code"] == "no_search_results"
    assert "main_picture" not in error_metadata

    assert [p.name for p in browser.shots] == [
        "asset_overview.png",
        "partitions.png",
        f"partition_{stored}_stored.png",
        "run.png",
        f"partition_{error}_listing_error.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in browser.shots)
