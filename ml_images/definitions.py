"""The Dagster code location: ``ml_images.definitions:defs`` (loaded by ``workspace.yaml``).

eligible_products ──> pending_image_products ──> product_images[product id]
(group selection)     (registers partitions)     (group images; dynamic partitions "products")

image_coverage (group reports): the coverage report, materialised after selection and image runs.
"""

from __future__ import annotations

from dagster import Definitions

from ml_images.defs.assets.coverage import image_coverage
from ml_images.defs.assets.images import build_product_images_asset
from ml_images.defs.assets.selection import eligible_products, pending_image_products
from ml_images.defs.checks import stored_images_are_valid
from ml_images.defs.executor import ExecutionSettings, build_executor, refuse_unshared_store
from ml_images.defs.jobs import fetch_ml_images, product_images_job
from ml_images.defs.resources import default_resources
from ml_images.defs.sensors.coverage import image_coverage_job, image_coverage_sensor
from ml_images.defs.sensors.new_products import build_new_eligible_products_sensor
from ml_images.malloc_tuning import limit_heap_fragmentation
from ml_images.settings import current_settings

# Every process that loads the code location (a run, the daemon, a Celery worker's task) keeps its heap compact.
limit_heap_fragmentation()

# Every variable is read and validated here, once, when the code location loads: a bad value stops the load with
# one line naming it, instead of failing later inside a step.
_settings = current_settings()
_execution = ExecutionSettings.from_settings(_settings)
refuse_unshared_store(_execution, _settings.bucket)

defs = Definitions(
    assets=[eligible_products, pending_image_products, build_product_images_asset(settings=_settings), image_coverage],
    asset_checks=[stored_images_are_valid],
    jobs=[fetch_ml_images, product_images_job, image_coverage_job],
    sensors=[build_new_eligible_products_sensor(_settings.sensor), image_coverage_sensor],
    resources=default_resources(_settings),
    # In process by default: every run is a short chain of steps, and a subprocess per step would add seconds
    # each and reload rembg (the image step parallelises inside itself). ML_IMAGES_EXECUTOR=celery sends the
    # steps to `ml-images worker` processes on any number of machines.
    executor=build_executor(_execution),
)
