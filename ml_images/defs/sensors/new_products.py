"""``new_eligible_products_sensor``: registers new pending products and requests batched runs for them.

Each tick (running by default, every ``minimum_interval_seconds``):

1. back-pressure: while ``max_active_runs`` image runs are queued or running, request nothing (a run of an
   ``ml-images fetch`` process that died is marked failed first, so it does not count as active for ever);
2. asks the catalog for pending products (eligible, no images, not in cooldown, not claimed by a run), oldest
   first, at most ``max_products_per_tick`` and leaving out those requested by recent ticks (the cursor);
3. registers the new ones as partitions and requests runs of at most ``batch_size`` products, each a partition
   range consecutive in the partition order (see ``partitions.plan_sensor_batches``).

The work per tick is bounded whatever the size of the catalog and the number of registered partitions: one indexed
query with a LIMIT, one look-up of which candidates are registered, one read of the last
``RECENT_KEYS_PER_CANDIDATE × max_products_per_tick`` registered keys (never every key), one run count.

``run_key`` is the tick's sequence number plus a digest of the batch, so a retried tick does not launch twice,
while the same product can be requested again later (``run_key`` = product id would block re-processing forever).
"""

import hashlib
import time

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from ml_images.defs.jobs import PRODUCT_IMAGES_JOB, product_images_job
from ml_images.defs.resources import CatalogDatabaseResource
from ml_images.orchestration.config import SensorSettings
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, plan_sensor_batches, products_partitions
from ml_images.orchestration.run_holders import fail_dead_runs
from ml_images.orchestration.sensor_cursor import SensorCursor

SENSOR_NAME = "new_eligible_products_sensor"
#: How far back the registration order is read to batch already-registered products by position (products retried
#: after a transient fault were registered recently); an older one gets a run of its own.
RECENT_KEYS_PER_CANDIDATE = 4
ACTIVE_RUN_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def _run_key(tick: int, keys: tuple[str, ...]) -> str:
    digest = hashlib.sha256(",".join(keys).encode()).hexdigest()[:16]
    return f"products-tick{tick}-{keys[0]}-{keys[-1]}-{digest}"


def build_new_eligible_products_sensor(limits: SensorSettings) -> SensorDefinition:
    """The sensor with ``limits`` (the code location passes the settings registry's ``sensor``)."""

    @sensor(
        name=SENSOR_NAME,
        job=product_images_job,
        minimum_interval_seconds=limits.minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Registers eligible products that need images and requests runs of at most {limits.batch_size} "
            f"products each (at most {limits.max_products_per_tick} per tick, {limits.max_active_runs} image runs "
            "queued or running at once)."
        ),
    )
    def new_eligible_products_sensor(
        context: SensorEvaluationContext, catalog: CatalogDatabaseResource
    ) -> SensorResult:
        now = time.time()
        cursor = SensorCursor.parse(context.cursor).pruned(now - limits.requested_ttl_hours * 3600)

        dead = fail_dead_runs(context.instance)
        if dead:
            context.log.warning(f"marked {len(dead)} runs of dead ml-images processes as failed: {', '.join(dead)}")
        active = context.instance.get_runs_count(RunsFilter(job_name=PRODUCT_IMAGES_JOB, statuses=ACTIVE_RUN_STATUSES))
        free_runs = limits.max_active_runs - active
        if free_runs <= 0:
            return SensorResult(
                skip_reason=f"{active} image runs queued or running (limit {limits.max_active_runs}); waiting",
                cursor=cursor.dump(),
            )

        budget = min(limits.max_products_per_tick, free_runs * limits.batch_size)
        selector = catalog.selection().selector
        candidates = selector.pending_product_ids(budget, exclude_ids=sorted(cursor.requested), exclude_in_flight=True)
        if not candidates:
            return SensorResult(skip_reason="no eligible product needs images", cursor=cursor.dump())

        keys = [str(pid) for pid in candidates]
        instance = context.instance
        existing = instance.get_existing_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys)
        window = RECENT_KEYS_PER_CANDIDATE * limits.max_products_per_tick
        tail = instance.get_paginated_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, limit=window, ascending=False)
        recent = list(reversed(tail.results))
        batches = plan_sensor_batches(keys, existing, recent, limits.batch_size)[:free_runs]
        requested_keys = [key for batch in batches for key in batch.keys]
        # Registered in batch order, so each batch of new keys is a consecutive range once added.
        new_keys = [key for key in requested_keys if key not in existing]

        run_requests = [
            RunRequest(run_key=_run_key(cursor.tick, batch.keys), tags=batch.run_tags()) for batch in batches
        ]
        next_cursor = SensorCursor({**cursor.requested, **{int(k): now for k in requested_keys}}, cursor.tick + 1)
        context.log.info(
            f"{len(requested_keys)} products in {len(run_requests)} runs ({len(new_keys)} newly registered); "
            f"{active} image runs were active"
        )
        return SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[products_partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=next_cursor.dump(),
        )

    return new_eligible_products_sensor
