"""The ``product_images`` asset in a real browser, over a finished demo-like run (one product stored, one whose
listing went to ERROR): the asset page, its partitions (the failed product stands out), each product's partition
(the cover thumbnail loads), the run's page, and the ``image_coverage`` report."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from selenium.webdriver.common.by import By

from ml_images_tests.browser.chromium import Browser
from ml_images_tests.browser.conftest import StartDagsterUI
from ml_images_tests.browser.demo_run import materialise_demo_run
from ml_images_tests.browser.pages import image, metadata_rows, wait_for_partition_rows
from ml_images_tests.pipeline.support import ImageWeb

pytestmark = pytest.mark.slow

STORED_PRODUCT_KEYS = {
    "product_code",
    "product_description",
    "status",
    "images_stored",
    "search_calls",
    "candidates_found",
    "search_query",
    "image_1_cover",
    "image_2",
    "thumbnails",
    "full_image_links",
    "image_urls",
    "run_products",
}


def test_product_images_pages_show_pictures_and_failed_products(
    tmp_path: Path, web: ImageWeb, dagster_ui: StartDagsterUI, browser: Browser
):
    run = materialise_demo_run(web, tmp_path / "dagster_home")
    with DagsterInstance.from_config(str(run.dagster_home)) as instance:
        [images_run] = [r for r in instance.get_runs() if r.job_name == "product_images_job"]
    stored, error = str(run.stored_id), str(run.error_id)
    ui = dagster_ui(run.dagster_home, run.env)

    browser.open(ui.url("/assets/product_images"))
    overview = browser.wait_for_text("product_images_job", "new_eligible_products_sensor")
    browser.shot("asset_overview")
    assert "images" in overview  # the group

    browser.open(ui.url("/assets/product_images?view=partitions"))
    rows = wait_for_partition_rows(browser, 2)
    browser.wait_for_text("Materialized (1)", "Failed (1)")
    browser.shot("partitions")
    assert {r.key: r.status for r in rows} == {stored: "materialized", error: "failed"}

    browser.open(ui.url(f"/assets/product_images?view=partitions&partition={stored}"))
    browser.wait_for_text("images_stored", "image_1_cover")
    cover_alt = "cover of SKU-STORED"

    def cover_loaded(b: Browser) -> dict[str, object] | None:
        # Scrolled into view: the metadata table is long, and the page may load pictures lazily.
        b.run("const i = [...document.images].find(i => i.alt === arguments[0]); if (i) i.scrollIntoView()", cover_alt)
        cover = image(b, cover_alt)
        return cover if cover is not None and cover["complete"] else None

    cover = browser.wait(cover_loaded, what="the cover thumbnail")
    assert cover is not None
    stored_metadata = metadata_rows(browser)
    browser.shot(f"partition_{stored}_stored")
    assert int(str(cover["naturalWidth"])) > 0  # the picture rendered
    assert str(cover["src"]).startswith("data:image/jpeg;base64,")
    second = image(browser, "image 2 of SKU-STORED")
    assert second is not None
    assert int(str(second["naturalWidth"])) > 0
    assert stored_metadata.keys() >= STORED_PRODUCT_KEYS, stored_metadata
    assert (stored_metadata["status"], stored_metadata["images_stored"]) == ("stored", "2")
    assert stored_metadata["product_code"] == "SKU-STORED"
    assert stored_metadata["product_description"] == "Monitor Acme ZX8100 24 pulgadas"
    assert stored_metadata["image_1_cover"] == "cover"  # the picture (no text) and the word "cover" in bold
    assert stored_metadata["thumbnails"] == "[Show Markdown]"  # the larger thumbnails, in a dialog
    assert "Acme ZX8100 MONITOR" in stored_metadata["search_query"]

    # The run that materialised it: its link leads to the run's page, /runs/<run id> (focused on the step's logs).
    browser.driver.find_element(By.CSS_SELECTOR, f'a[href^="/runs/{images_run.run_id}"]').click()
    browser.wait(lambda b: b.driver.current_url.startswith(ui.url(f"/runs/{images_run.run_id}")), what="run page")
    run_page = browser.wait_for_text("Failure", "product_images_job", f"product {stored}: stored")
    browser.shot("run")
    assert f"product {error}: no_images (no_search_results)" in run_page
    assert f"1 of 2 products got no pictures: {error} SKU-NOTHING (no_search_results)" in run_page

    browser.open(ui.url(f"/assets/product_images?view=partitions&partition={error}"))
    browser.wait_for_text(f"Run {images_run.run_id[:8]} failed, and did not materialize this asset.")
    browser.shot(f"partition_{error}_failed")
    # What happened to it is the partition's observation: its event history leads to it in the run's log.
    [history] = [b for b in browser.elements("button") if "View all historical events" in b.text]
    history.click()
    browser.wait_for_text("Historical events for", "Observation")
    # The dialog's table renders after its title: wait for the observation's row itself.
    observed = browser.wait(
        lambda b: [e for e in b.elements("tr") if "Observation" in e.text], what="the observation's row"
    )
    assert len(observed) == 1
    observed[0].click()
    browser.wait_for_text("SKU-NOTHING", "no_search_results", "Monitor Acme ZX8200 24 pulgadas")
    browser.shot(f"partition_{error}_observation")

    browser.open(ui.url("/assets/image_coverage"))
    coverage_page = browser.wait_for_text("eligible", "with_pictures", "needing_attention_products")
    coverage = metadata_rows(browser)
    browser.shot("image_coverage")
    assert "reports" in coverage_page  # the group
    assert (coverage["eligible"], coverage["with_pictures"], coverage["in_cooldown"]) == ("2", "1", "1")
    assert coverage["listings_in_error"] == "1"

    assert [p.name for p in browser.shots] == [
        "asset_overview.png",
        "partitions.png",
        f"partition_{stored}_stored.png",
        "run.png",
        f"partition_{error}_failed.png",
        f"partition_{error}_observation.png",
        "image_coverage.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in browser.shots)
