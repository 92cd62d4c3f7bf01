"""``ml-images fetch`` killed mid-batch (SIGKILL) or stopped (SIGTERM/SIGINT), with real subprocesses.

The image server is slow on purpose so the run is in the middle of its batch (products claimed, downloads in
flight) when the signal arrives. After SIGKILL the next run takes the products over (at once on this machine,
where the dead holder is recognised; when the lease ends otherwise) and the killed Dagster run is marked failed
instead of counting as active for ever; after SIGTERM/SIGINT the claims are released and recorded as interrupted.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterRunStatus

from ml_images.catalog.models import ImageFetchAttempt
from ml_images.catalog.recorder import ImageRecorder
from ml_images.defs.jobs import PRODUCT_IMAGES_JOB
from ml_images_tests.cli.fetch_support import RunningFetch, fetch, instance_at
from ml_images_tests.pipeline.builders import pending_ids
from ml_images_tests.pipeline.support import Catalog, ImageWeb

pytestmark = pytest.mark.slow

WAIT_S = 150.0
IN_PROGRESS = {DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
# A pool limit as in the shipped dagster.yaml: a dead run's step keeps its slot until someone frees it.
POOLED_INSTANCE = "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\ntelemetry:\n  enabled: false\n"


@pytest.fixture
def shop(database_url: str) -> Iterator[Catalog]:
    """The catalog, on SQLite and on PostgreSQL (the claims are rows of it)."""
    db = Catalog(database_url)
    try:
        yield db
    finally:
        db.close()


def _unfinished(catalog: Catalog) -> list[ImageFetchAttempt]:
    with catalog.session_factory() as session:
        query = sa.select(ImageFetchAttempt).where(ImageFetchAttempt.finished_at.is_(None))
        return list(session.scalars(query.order_by(ImageFetchAttempt.id)))


def _wait_for_claims_mid_download(catalog: Catalog, web: ImageWeb, running: RunningFetch, *, beats: bool) -> None:
    """Until products are claimed and their downloads are in flight (and, if asked, a heartbeat has come)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        assert running.process.poll() is None, running.output()[-3000:]
        claims = _unfinished(catalog)
        beaten = any(c.heartbeat_at is not None and c.heartbeat_at > c.started_at for c in claims)
        if claims and web.image_requests and (beaten or not beats):
            return
        assert time.monotonic() < deadline, f"no claim in flight after {WAIT_S:.0f} s: {running.output()[-3000:]}"
        time.sleep(0.2)


def _start(web: ImageWeb, catalog: Catalog, tmp_path: Path, dagster_home: Path, **env: str) -> RunningFetch:
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(POOLED_INSTANCE)
    return RunningFetch(
        web,
        tmp_path,
        "--batch-size",
        "10",
        DAGSTER_HOME=str(dagster_home),
        ML_IMAGES_DATABASE_URL=catalog.url,
        ML_IMAGES_CLAIM_HEARTBEAT_SECONDS="0.5",
        **env,
    )


def test_a_killed_fetch_is_taken_over_at_once_by_the_next_run(shop: Catalog, web: ImageWeb, tmp_path: Path) -> None:
    ids = [shop.add_product(f"ZX81{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX81{i:02d}", 2)
    web.image_latency = 6.0
    dagster_home = tmp_path / "dagster_home"
    running = _start(web, shop, tmp_path, dagster_home)
    try:
        _wait_for_claims_mid_download(shop, web, running, beats=True)
        running.process.send_signal(signal.SIGKILL)
        assert running.wait(timeout=30) == -signal.SIGKILL
    finally:
        running.stop()
    left = _unfinished(shop)
    assert left, "the killed run left no claim: the test did not kill it mid-batch"
    with instance_at(dagster_home) as instance:
        [killed] = [r for r in instance.get_runs() if r.job_name == PRODUCT_IMAGES_JOB]
        assert killed.status == DagsterRunStatus.STARTED  # nobody else would ever finish it

    web.image_latency = 0.0
    first = left[0].product_id
    # `--id` (forced) takes a claimed product over at once; then a plain run takes the rest.
    forced = fetch(web, "--id", str(first), DAGSTER_HOME=str(dagster_home), ML_IMAGES_DATABASE_URL=shop.url)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"marked 1 run(s) of a dead ml-images process as failed: {killed.run_id}" in forced.stdout
    assert len(shop.images(first)) == 2
    again = fetch(web, DAGSTER_HOME=str(dagster_home), ML_IMAGES_DATABASE_URL=shop.url)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "marked" not in again.stdout  # already done by the run before
    assert [len(shop.images(pid)) for pid in ids] == [2, 2, 2]
    assert _unfinished(shop) == []
    taken_over = {a.id: a for pid in ids for a in shop.attempts(pid)}
    for claim in left:  # its holder was provably dead: taken over at once, not after the lease
        assert (taken_over[claim.id].outcome, taken_over[claim.id].reason_code) == ("failed", "holder_died")
    with instance_at(dagster_home) as instance:
        runs = {r.run_id: r for r in instance.get_runs()}
        assert runs[killed.run_id].status == DagsterRunStatus.FAILURE
        assert not [r for r in runs.values() if r.status in IN_PROGRESS]


def test_a_claim_whose_holder_cannot_be_checked_is_taken_over_when_its_lease_ends(
    catalog: Catalog, web: ImageWeb, tmp_path: Path
) -> None:
    lease = 10.0  # long enough for the probe below to run inside it, even on a loaded machine
    ids = [catalog.add_product(f"ZX82{i:02d}") for i in range(2)]
    for i in range(2):
        web.add(f"ZX82{i:02d}", 1)
    web.image_latency = 6.0
    dagster_home = tmp_path / "dagster_home"
    running = _start(web, catalog, tmp_path, dagster_home, ML_IMAGES_CLAIM_LEASE_SECONDS=str(lease))
    try:
        _wait_for_claims_mid_download(catalog, web, running, beats=True)
        running.process.send_signal(signal.SIGKILL)
        running.wait(timeout=30)
    finally:
        running.stop()
    # As if the killed process had run on another machine: its death cannot be proved from here, only its silence.
    with catalog.session_factory() as session, session.begin():
        session.execute(
            sa.update(ImageFetchAttempt)
            .where(ImageFetchAttempt.finished_at.is_(None))
            .values(holder_host="another-host", holder_node="f" * 32)
        )
    left = _unfinished(catalog)
    assert left
    last_beat = max(c.heartbeat_at for c in left if c.heartbeat_at is not None)
    probe = ImageRecorder(catalog.session_factory, lease_seconds=lease)
    assert probe.claim(left[0].product_id, "probe") is None  # still leased: it might be alive elsewhere

    time.sleep(max(0.0, lease + 0.5 - (time.time() - last_beat.timestamp())))
    web.image_latency = 0.0
    again = fetch(
        web,
        DAGSTER_HOME=str(dagster_home),
        ML_IMAGES_CLAIM_LEASE_SECONDS=str(lease),
        ML_IMAGES_CLAIM_HEARTBEAT_SECONDS="0.5",
    )

    assert again.returncode == 0, again.stdout + again.stderr
    assert [len(catalog.images(pid)) for pid in ids] == [1, 1]
    reasons = {a.id: a.reason_code for pid in ids for a in catalog.attempts(pid)}
    assert {reasons[claim.id] for claim in left} == {"stale_claim"}
    assert _unfinished(catalog) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_fetch_releases_its_claims_as_interrupted(
    signum: signal.Signals, shop: Catalog, web: ImageWeb, tmp_path: Path
) -> None:
    ids = [shop.add_product(f"ZX83{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX83{i:02d}", 2)
    web.image_latency = 4.0
    dagster_home = tmp_path / "dagster_home"
    # Step retries on: Dagster retries an interrupted step under a RetryPolicy, which a stop request must not do.
    running = _start(
        web, shop, tmp_path, dagster_home, ML_IMAGES_STEP_MAX_RETRIES="2", ML_IMAGES_STEP_RETRY_DELAY_SECONDS="1"
    )
    try:
        _wait_for_claims_mid_download(shop, web, running, beats=False)
        claimed = {c.product_id for c in _unfinished(shop)}
        running.process.send_signal(signum)
        code = running.wait(timeout=90)
    finally:
        running.stop()

    output = running.output()
    assert code == 130, output[-3000:]
    assert "interrupted" in output
    assert _unfinished(shop) == []  # every claim released
    attempts = [a for pid in ids for a in shop.attempts(pid)]
    assert {a.product_id for a in attempts} >= claimed
    assert {(a.outcome, a.reason_code) for a in attempts} == {("failed", "interrupted")}
    assert len(attempts) == len({a.product_id for a in attempts})  # nothing claimed again by a retry
    assert all(shop.images(pid) == [] and shop.listing(pid) is None for pid in ids)
    assert sorted(pending_ids(shop)) == ids  # all still pending, none in a cooldown
    with instance_at(dagster_home) as instance:
        [stopped] = [r for r in instance.get_runs() if r.job_name == PRODUCT_IMAGES_JOB]
        assert stopped.status == DagsterRunStatus.FAILURE
