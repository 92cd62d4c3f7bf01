"""A search answering 50,000 identical results: a small attempt row and a small Dagster event, counts of all.

Before the refusals were bounded, that search made a 7 MB ``image_fetch_attempt`` row and a 9 MB event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance, serialize_value
from werkzeug import Request, Response

from ml_images_tests.defs.helpers import observed_partition_metadata, register, resources, run_images
from ml_images_tests.pipeline.support import ImageWeb, running_web

FLOOD = 50_000


@dataclass
class FloodedWeb(ImageWeb):
    """Every search answers ``FLOOD`` results, all the same missing image (compact, about 3 MB of JSON)."""

    def _search(self, request: Request) -> Response:
        with self._lock:
            self.queries.append(request.args.get("q", ""))
        item = {"properties": {"url": self.url("gone.jpg")}}
        body = json.dumps({"type": "images", "results": [item] * FLOOD})
        return Response(body, content_type="application/json")


def test_fifty_thousand_identical_results_make_a_small_row_and_event(sqlite_catalog, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX5500")
    with running_web() as plain:
        plain.server.clear()  # drop the plain web's handlers: the flooded one answers instead
        web = FloodedWeb(plain.server)
        keys = register(instance, [pid])

        result = run_images(instance, resources(sqlite_catalog, web), keys, with_check=False, raise_on_error=False)

    assert not result.success  # the product got no pictures: its partition fails (see test_product_images_asset)
    metadata = observed_partition_metadata(result, instance)[keys[0]]
    assert (metadata["status"], metadata["reason_code"]) == ("no_images", "no_usable_image")
    assert metadata["refusal_counts"] == {"duplicate": FLOOD - 1, "http_404": 1}
    assert metadata["refusals_total"] == FLOOD
    rows = metadata["refused_candidates"].records
    assert len(rows) == 50
    assert {row.data["reason"] for row in rows} == {"duplicate", "http_404"}  # the one download refusal is shown
    [entry] = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION)
    event = entry.asset_observation
    assert len(serialize_value(event)) < 100_000

    [attempt] = sqlite_catalog.attempts(pid)
    assert attempt.refusals is not None
    assert len(attempt.refusals) == 50
    assert attempt.refusal_counts == {"duplicate": FLOOD - 1, "http_404": 1}
    assert len(json.dumps(attempt.refusals)) < 50_000
    listing = sqlite_catalog.listing(pid)
    assert listing is not None
    assert "duplicate×49999" in str(listing.sync_error)
