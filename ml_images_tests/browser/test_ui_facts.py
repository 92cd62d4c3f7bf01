"""What Dagster 1.13's UI shows, checked in a real browser on a throw-away code location (``ui_probe_defs.py``,
copied under the test's temporary folder): the facts the operator-facing features rely on.

* A markdown image whose source is a ``data:`` URI (or a reachable ``http://`` URL) renders and loads; a
  ``file://`` one is shown as a broken image with its source removed; raw HTML ``<img>`` is not rendered; a
  multi-line markdown value (a table of thumbnails) is behind "[Show Markdown]", where its images load.
* The Partitions tab: a partition whose run failed in its step is red ("Failed"), with "Run … failed, and did not
  materialize this asset."; one never run is gray ("Missing"); one whose partitioned check failed stays green.
  A failed partitioned check shows per partition only in the check's own Partitions view (Checks tab).
* A partitioned check run over a range of partitions (a batched run, as ``product_images`` does) gives one
  result with no partition: "Failed" as the latest execution, "Skipped" for each partition of the range.
* An ``AssetMaterialization`` logged with ``context.log_event`` by an ``output_required=False`` asset counts as
  a materialised partition; a partition of the same run without such an event stays "Missing" (not failed).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, materialize
from PIL import Image
from pytest_httpserver import HTTPServer
from selenium.webdriver.common.by import By

from ml_images_tests.browser import ui_probe_defs as probe
from ml_images_tests.browser.chromium import Browser
from ml_images_tests.browser.dagster_ui import DagsterUI, prepare_dagster_home, running_dagster_ui
from ml_images_tests.browser.pages import image, metadata_rows, partition_rows, wait_for_partition_rows

pytestmark = pytest.mark.slow

PICTURE_WIDTH = 64


@dataclass(frozen=True)
class Probe:
    ui: DagsterUI
    failed_run_id: str


def _probe_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (PICTURE_WIDTH, 48), (200, 40, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _materialise_probe(instance: DagsterInstance, jpeg_path: Path, http_url: str) -> str:
    instance.add_dynamic_partitions(probe.PARTITIONS_NAME, list(probe.PROBE_KEYS))
    instance.add_dynamic_partitions(probe.LOGGED_PARTITIONS_NAME, list(probe.LOGGED_KEYS))
    instance.add_dynamic_partitions(probe.BATCHED_PARTITIONS_NAME, list(probe.BATCHED_KEYS))
    config = {"ops": {"probe_products": {"config": {"jpeg_path": str(jpeg_path), "http_url": http_url}}}}
    checked = [probe.probe_products, probe.probe_products_check, probe.probe_products_batch_check]
    outcomes = {}
    for key in ("stored", "step_failed", "check_failed"):  # "never" is never run
        result = materialize(checked, partition_key=key, instance=instance, run_config=config, raise_on_error=False)
        outcomes[key] = (result.success, result.run_id)
    logged = materialize(
        [probe.logged_products],
        selection=AssetSelection.assets(probe.logged_products),
        instance=instance,
        tags={"dagster/asset_partition_range_start": "logged", "dagster/asset_partition_range_end": "not_logged"},
    )
    assert logged.success
    batched = materialize(
        [probe.batched_products, probe.batched_products_check],
        instance=instance,
        tags={"dagster/asset_partition_range_start": "batched_a", "dagster/asset_partition_range_end": "batched_b"},
    )
    assert batched.success
    assert {k: ok for k, (ok, _) in outcomes.items()} == {"stored": True, "step_failed": False, "check_failed": True}
    return outcomes["step_failed"][1]


@pytest.fixture(scope="module")
def probe_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    folder = tmp_path_factory.mktemp("ui_probe")
    jpeg = folder / "probe.jpg"
    jpeg.write_bytes(_probe_jpeg())
    location = folder / "probe_defs.py"
    shutil.copyfile(probe.__file__, location)
    home = prepare_dagster_home(folder / "dagster_home")
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/probe.jpg").respond_with_data(jpeg.read_bytes(), content_type="image/jpeg")
    server.start()
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            failed_run_id = _materialise_probe(instance, jpeg, server.url_for("/probe.jpg"))
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "LANG": "C.UTF-8"}
        with running_dagster_ui(home, env, folder / "webserver.log", code=("-f", str(location))) as ui:
            yield Probe(ui=ui, failed_run_id=failed_run_id)
    finally:
        server.clear()
        server.stop()


def _partition_page(asset: str, key: str) -> str:
    return f"/assets/{asset}?view=partitions&partition={key}"


def test_markdown_pictures_load_from_data_uris_and_http_not_from_file_uris(probe_ui: Probe, browser: Browser):
    browser.open(probe_ui.ui.url(_partition_page("probe_products", "stored")))

    def loaded(b: Browser) -> bool:
        shown = [image(b, alt) for alt in ("probe-data", "probe-http", "probe-file")]
        return all(i is not None and i["complete"] for i in shown)

    browser.wait(loaded, what="the probe pictures")
    browser.shot("markdown_pictures")
    data, http, file = (image(browser, alt) for alt in ("probe-data", "probe-http", "probe-file"))
    assert data is not None
    assert data["naturalWidth"] == PICTURE_WIDTH
    assert str(data["src"]).startswith("data:image/jpeg;base64,")
    assert http is not None
    assert http["naturalWidth"] == PICTURE_WIDTH
    # The file:// picture is an <img> without a source: the broken-image icon and its alt text.
    assert file is not None
    assert (file["naturalWidth"], file["src"]) == (0, "")
    # Raw HTML is not rendered: no <img>, an empty cell.
    assert image(browser, "probe-html") is None
    metadata = metadata_rows(browser)
    assert metadata["html_img_picture"] == ""
    # A multi-line markdown value hides behind a link to a dialog, where its pictures load.
    assert metadata["thumbnail_table"] == "[Show Markdown]"
    browser.driver.find_element(By.XPATH, "//*[text()='[Show Markdown]']").click()
    browser.wait(
        lambda b: all((i := image(b, f"probe-table-{n}")) and i["naturalWidth"] == PICTURE_WIDTH for n in (0, 1)),
        what="the pictures of the markdown table",
    )
    browser.shot("markdown_table_dialog")


def test_partitions_tab_shows_failed_missing_and_materialised_partitions(probe_ui: Probe, browser: Browser):
    browser.open(probe_ui.ui.url("/assets/probe_products?view=partitions"))
    rows = wait_for_partition_rows(browser, len(probe.PROBE_KEYS))
    browser.wait_for_text("Failed (1)", "Materialized (2)", "Missing (1)")
    browser.shot("probe_partitions")
    assert {r.key: r.status for r in rows} == {
        "stored": "materialized",
        "step_failed": "failed",
        "check_failed": "materialized",  # a failed check does not change the partition's status
        "never": "missing",
    }

    browser.open(probe_ui.ui.url(_partition_page("probe_products", "step_failed")))
    browser.wait_for_text(f"Run {probe_ui.failed_run_id[:8]} failed, and did not materialize this asset.")
    browser.shot("partition_step_failed")

    browser.open(probe_ui.ui.url(_partition_page("probe_products", "never")))
    never = browser.wait_for_text("No metadata entries")
    browser.shot("partition_never")
    assert "Materialized" not in never.split("never", 2)[-1]  # no status badge after the key
    assert "did not materialize" not in never


def test_a_failed_partitioned_check_shows_per_partition_in_its_checks_tab(probe_ui: Probe, browser: Browser):
    browser.open(probe_ui.ui.url(_partition_page("probe_products", "check_failed")))
    detail = browser.wait_for_text("Latest materialization", "status")
    browser.shot("partition_check_failed")
    assert "probe_products_check" not in detail  # the asset's partition view says nothing of checks

    browser.open(probe_ui.ui.url("/assets/probe_products?view=checks&checkDetail=probe_products_check"))
    browser.wait_for_text("Latest execution", "Partition\ncheck_failed")
    browser.shot("check_latest_execution")
    [partitions_tab] = [e for e in browser.elements("button, a, [role=tab]") if e.text == "Partitions"][-1:]
    partitions_tab.click()
    browser.wait_for_text("Passed (1)", "Failed (1)", "Missing (")
    colours = {r.key: r.colour for r in partition_rows(browser)}
    browser.shot("check_partitions")
    # Passed green, failed red (also "execution failed": the check did not run because its step failed), gray.
    assert colours == {"stored": "green", "step_failed": "red", "check_failed": "red", "never": "gray"}

    # An unpartitioned check of the partitioned asset: one result, no partition, only its metadata says which.
    browser.open(probe_ui.ui.url("/assets/probe_products?view=checks&checkDetail=probe_products_batch_check"))
    batch = browser.wait_for_text("Latest execution", "Partition\n—")
    browser.shot("batch_check")
    assert "Failed" in batch


def test_a_logged_materialisation_counts_as_a_materialised_partition(probe_ui: Probe, browser: Browser):
    browser.open(probe_ui.ui.url("/assets/logged_products?view=partitions"))
    rows = wait_for_partition_rows(browser, len(probe.LOGGED_KEYS))
    browser.wait_for_text("Failed (0)", "Materialized (1)", "Missing (1)")
    browser.shot("logged_partitions")
    assert {r.key: r.status for r in rows} == {"logged": "materialized", "not_logged": "missing"}

    browser.open(probe_ui.ui.url(_partition_page("logged_products", "logged")))
    browser.wait_for_text("images_stored")
    browser.shot("logged_partition")
    assert metadata_rows(browser)["images_stored"] == "1"


def test_a_partitioned_check_in_a_batched_run_fails_no_single_partition(probe_ui: Probe, browser: Browser):
    browser.open(probe_ui.ui.url("/assets/batched_products?view=checks&checkDetail=batched_products_check"))
    latest = browser.wait_for_text("Latest execution", "Partition\n—", "batched_a, batched_b")
    browser.shot("batched_check_latest_execution")
    assert "Failed" in latest  # the latest execution failed, for no partition in particular...
    [partitions_tab] = [e for e in browser.elements("button, a, [role=tab]") if e.text == "Partitions"][-1:]
    partitions_tab.click()
    browser.wait_for_text("Skipped (2)", "Failed (0)")
    colours = {r.key: r.colour for r in partition_rows(browser)}
    browser.shot("batched_check_partitions")
    assert colours == {"batched_a": "yellow", "batched_b": "yellow"}  # ...and every partition says "Skipped"
