"""A throw-away code location that probes how the Dagster UI shows things (``test_ui_facts.py``).

The tests copy this file under their temporary folder and serve the copy with ``dagster-webserver -f``: none of
these assets belongs to the project. Partition keys name what happens to them:

* ``probe_products``: ``stored`` materialises with pictures in markdown metadata (a ``data:`` URI, a ``file://``
  path, a loopback ``http://`` URL, an HTML ``<img>``, a markdown table of thumbnails); ``step_failed`` raises
  (a step failure); ``check_failed`` materialises, then its partitioned check fails; ``never`` is never run.
* ``probe_products_batch_check``: an unpartitioned check on the partitioned asset (as the project's
  ``stored_images_are_valid``), failing when a run covers ``check_failed``.
* ``logged_products``: ``output_required=False``; it logs ``AssetMaterialization`` events for
  ``logged`` and returns no output, so ``not_logged`` in the same run gets no event.
* ``batched_products``: both partitions in one run (a range, as ``product_images`` batches products), with a
  partitioned check that fails: one result for the whole range, which no single partition carries.
"""

import base64
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

PARTITIONS_NAME, LOGGED_PARTITIONS_NAME, BATCHED_PARTITIONS_NAME = "probe_products", "probe_logged", "probe_batched"
PARTITIONS = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)
LOGGED_PARTITIONS = dg.DynamicPartitionsDefinition(name=LOGGED_PARTITIONS_NAME)
BATCHED_PARTITIONS = dg.DynamicPartitionsDefinition(name=BATCHED_PARTITIONS_NAME)
PROBE_KEYS = ("stored", "step_failed", "check_failed", "never")
LOGGED_KEYS = ("logged", "not_logged")
BATCHED_KEYS = ("batched_a", "batched_b")


class PictureConfig(dg.Config):
    jpeg_path: str = ""  # a small JPEG, embedded as a data: URI and referenced as file://
    http_url: str = ""  # the same JPEG served on loopback


def picture_metadata(config: PictureConfig) -> dict[str, dg.MetadataValue]:
    data = base64.b64encode(Path(config.jpeg_path).read_bytes()).decode("ascii")
    data_uri = f"data:image/jpeg;base64,{data}"
    file_uri = Path(config.jpeg_path).resolve().as_uri()
    return {
        "data_uri_picture": dg.MetadataValue.md(f"![probe-data]({data_uri})"),
        "file_uri_picture": dg.MetadataValue.md(f"![probe-file]({file_uri})"),
        "http_picture": dg.MetadataValue.md(f"![probe-http]({config.http_url})"),
        "html_img_picture": dg.MetadataValue.md(f'<img alt="probe-html" src="{data_uri}" width="48">'),
        "thumbnail_table": dg.MetadataValue.md(
            "| order | picture |\n|---|---|\n"
            f"| 0 (cover) | ![probe-table-0]({data_uri}) |\n| 1 | ![probe-table-1]({data_uri}) |"
        ),
        "images_stored": dg.MetadataValue.int(2),
    }


@dg.asset(partitions_def=PARTITIONS, group_name="probe")
def probe_products(context: dg.AssetExecutionContext, config: PictureConfig) -> dg.MaterializeResult:
    key = context.partition_key
    if key == "step_failed":
        raise RuntimeError("probe: this partition's step fails")
    metadata: dict[str, dg.MetadataValue] = {"status": dg.MetadataValue.text(key)}
    if key == "stored":
        metadata.update(picture_metadata(config))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=probe_products, partitions_def=PARTITIONS)
def probe_products_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    key = context.partition_key
    return dg.AssetCheckResult(passed=key != "check_failed", metadata={"partition": key})


@dg.asset_check(asset=probe_products)
def probe_products_batch_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    keys = list(context.partition_keys) if context.has_partition_key else []
    return dg.AssetCheckResult(passed="check_failed" not in keys, metadata={"partitions": ", ".join(keys)})


@dg.asset(
    partitions_def=LOGGED_PARTITIONS,
    group_name="probe",
    output_required=False,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def logged_products(context: dg.AssetExecutionContext) -> Iterator[dg.Output[None]]:
    for key in context.partition_keys:
        if key == "logged":
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=context.asset_key, partition=key, metadata={"images_stored": dg.MetadataValue.int(1)}
                )
            )
    return
    yield  # a generator that yields no output: the asset's output is not required


@dg.asset(partitions_def=BATCHED_PARTITIONS, group_name="probe", backfill_policy=dg.BackfillPolicy.single_run())
def batched_products(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"products": dg.MetadataValue.int(len(context.partition_keys))})


@dg.asset_check(asset=batched_products, partitions_def=BATCHED_PARTITIONS)
def batched_products_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={"partitions": ", ".join(context.partition_keys)})


defs = dg.Definitions(
    assets=[probe_products, logged_products, batched_products],
    asset_checks=[probe_products_check, probe_products_batch_check, batched_products_check],
)
