"""Steps on Celery workers (ML_IMAGES_EXECUTOR=celery): two real workers, RabbitMQ, Redis, PostgreSQL, moto S3.

Everything runs as it would on several machines: runs are launched with ``dagster job execute`` (their own
processes), the steps go through RabbitMQ to two ``ml-images worker`` processes with distinct node names, the Dagster
instance and the catalog are PostgreSQL databases, the pictures go to an S3 API server. Only the machines are one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from ml_images.catalog.models import ImageFetchAttempt, ListingStatus, MercadoLibreListing
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, plan_batches
from ml_images.outcomes import ProductStatus
from ml_images_tests.conftest import postgres_required
from ml_images_tests.pipeline.support import Catalog, ImageWeb, running_web, web_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
BACKEND = "redis://127.0.0.1:6379/0"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def _broker_and_backend() -> None:
    missing = [name for name, port in (("RabbitMQ", 5672), ("Redis", 6379)) if not _reachable(port)]
    if missing:
        message = (
            f"{' and '.join(missing)} not reachable on 127.0.0.1 (RabbitMQ :5672 guest/guest, Redis :6379): "
            "start them to run the Celery worker tests"
        )
        if postgres_required():
            pytest.fail(message + " (CI / ML_IMAGES_REQUIRE_POSTGRES is set: these tests must run)")
        pytest.skip(message)


@pytest.fixture
def web() -> Iterator[ImageWeb]:
    with running_web() as server:
        yield server


@pytest.fixture
def deployment(
    postgres_admin_url: str, postgres_url: str, s3_endpoint: dict[str, str], web: ImageWeb, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The environment every process of the deployment shares; the Dagster instance in its own database."""
    instance_db = f"mlimg_dagster_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{instance_db}"'))
    admin_url = sa.make_url(postgres_admin_url)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      username: {admin_url.username or 'postgres'}\n"
        f"      password: '{admin_url.password or ''}'\n"
        f"      hostname: {admin_url.host or '127.0.0.1'}\n"
        f"      db_name: {instance_db}\n"
        f"      port: {admin_url.port or 5432}\n"
        "      scheme: postgresql+psycopg2\n"
        "telemetry:\n  enabled: false\n"
    )
    env = {
        **os.environ,
        **web_environment(web),
        "DAGSTER_HOME": str(dagster_home),
        "ML_IMAGES_DATABASE_URL": postgres_url,
        "AWS_STORAGE_BUCKET_NAME": s3_endpoint["bucket"],
        "AWS_ENDPOINT_URL": s3_endpoint["endpoint_url"],
        "AWS_S3_REGION_NAME": s3_endpoint["region"],
        "ML_IMAGES_EXECUTOR": "celery",
        "ML_IMAGES_CELERY_BROKER_URL": BROKER,
        "ML_IMAGES_CELERY_BACKEND_URL": BACKEND,
        # Two workers share two cores here: one CPU thread each.
        "OMP_NUM_THREADS": "1",
    }
    env["ML_IMAGES_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
    # The instance's tables exist before any worker starts, as in a deployment where the webserver and the
    # daemon came first (two workers creating them at once on an empty database race each other).
    with DagsterInstance.from_config(str(dagster_home)):
        pass
    try:
        yield env
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{instance_db}" WITH (FORCE)'))
        admin.dispose()


class Workers:
    """``ml-images worker`` processes, each in its own process group (killed as a machine would be lost)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [str(BIN / "ml-images"), "worker", "--name", name],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, names: list[str], timeout: float = 120.0) -> None:
        from celery import Celery

        app = Celery(broker=BROKER, backend=BACKEND)
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        try:
            while time.monotonic() < deadline:
                for name, proc in self.procs.items():
                    assert proc.poll() is None, f"worker {name} exited {proc.returncode}:\n{self.log(name)[-3000:]}"
                replies = app.control.ping(timeout=1.0)
                seen = {node.split("@")[0] for reply in replies for node in reply}
                if set(names) <= seen:
                    return
            pytest.fail(f"workers {sorted(set(names) - seen)} did not answer a ping in {timeout:g} s")
        finally:
            app.close()

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _purge_queue() -> None:
    """Steps left in the shared broker by an earlier, interrupted test run are not this test's: the queue is
    deleted (the workers declare it again as they start)."""
    from celery import Celery

    app = Celery(broker=BROKER, backend=BACKEND)
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete("dagster")
    finally:
        app.close()


@pytest.fixture
def workers(deployment: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    _purge_queue()
    pool = Workers(deployment, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def _dagster(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "dagster"), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _select(env: dict[str, str]) -> None:
    code, out = _finish(_dagster(env, "job", "execute", "-m", "ml_images.definitions", "-j", "fetch_ml_images"))
    assert code == 0, out[-4000:]


def _launch_batches(env: dict[str, str], keys: list[str], batch_size: int) -> list[subprocess.Popen[str]]:
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        registered = instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME)
    batches = plan_batches(keys, registered, batch_size)
    return [
        _dagster(
            env,
            "job",
            "execute",
            "-m",
            "ml_images.definitions",
            "-j",
            "product_images_job",
            "--tags",
            json.dumps(batch.run_tags()),
        )
        for batch in batches
    ]


def _step_workers(instance: DagsterInstance, run_id: str, step: str = "product_images") -> list[str]:
    """The Celery node of each execution of a run's step, from the engine events dagster-celery writes."""
    nodes = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event is not None else None
        if record.step_key == step and data is not None and "Celery worker" in data.metadata:
            nodes.append(str(data.metadata["Celery worker"].value))
    return nodes


def _step_window(instance: DagsterInstance, run_id: str, step: str = "product_images") -> tuple[float, float]:
    records = [r for r in instance.all_logs(run_id) if r.step_key == step and r.dagster_event is not None]
    starts = [r.timestamp for r in records if r.dagster_event_type == DagsterEventType.STEP_START]
    ends = [
        r.timestamp
        for r in records
        if r.dagster_event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
    ]
    return min(starts), max(ends)


def _attempts(catalog: Catalog, pid: int) -> list[ImageFetchAttempt]:
    with catalog.session_factory() as session:
        return list(session.scalars(sa.select(ImageFetchAttempt).where(ImageFetchAttempt.product_id == pid)))


def _errors(catalog: Catalog) -> int:
    with catalog.session_factory() as session:
        query = sa.select(sa.func.count()).where(MercadoLibreListing.status == ListingStatus.ERROR)
        return int(session.scalar(query) or 0)


def _assert_each_stored_once(catalog: Catalog, ids: list[int], images: int = 2) -> None:
    for pid in ids:
        assert len(catalog.images(pid)) == images, pid
        assert [a.outcome for a in _attempts(catalog, pid)] == [ProductStatus.STORED.value]
    assert _errors(catalog) == 0


def _image_runs_on_workers(env: dict[str, str], runs: int) -> tuple[list[DagsterRun], dict[str, list[str]]]:
    """The image runs (all succeeded, ``runs`` of them) and the worker node of each one's step."""
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        image_runs = [r for r in instance.get_runs() if r.job_name == "product_images_job"]
        assert len(image_runs) == runs
        assert all(r.status == DagsterRunStatus.SUCCESS for r in image_runs)
        return image_runs, {r.run_id: _step_workers(instance, r.run_id) for r in image_runs}


def test_two_workers_share_the_batches_and_each_product_is_stored_once(
    deployment: dict[str, str], workers: Workers, web: ImageWeb
) -> None:
    catalog = Catalog(deployment["ML_IMAGES_DATABASE_URL"])
    try:
        ids = [catalog.add_product(f"CW{i:03d}") for i in range(8)]
        for i in range(8):
            web.add(f"CW{i:03d}", 2)
        web.image_latency = 0.5  # each step lasts a few seconds: enough for the two workers' steps to overlap
        workers.start("w1")
        workers.start("w2")
        workers.wait_ready(["w1", "w2"])

        _select(deployment)
        runs = _launch_batches(deployment, [str(i) for i in ids], batch_size=2)
        assert len(runs) == 4
        results = [_finish(proc) for proc in runs]
        assert all(code == 0 for code, _ in results), "\n".join(out[-3000:] for _, out in results)

        _assert_each_stored_once(catalog, ids)
        image_runs, node_of = _image_runs_on_workers(deployment, 4)
        with DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
            windows = {r.run_id: _step_window(instance, r.run_id) for r in image_runs}
        assert all(len(nodes) == 1 for nodes in node_of.values()), node_of
        names = {nodes[0].split("@")[0] for nodes in node_of.values()}
        assert names == {"w1", "w2"}, node_of
        # Steps on different workers ran at the same time.
        overlapping = [
            (a, b)
            for a in image_runs
            for b in image_runs
            if node_of[a.run_id] != node_of[b.run_id]
            and windows[a.run_id][0] < windows[b.run_id][1]
            and windows[b.run_id][0] < windows[a.run_id][1]
        ]
        assert overlapping, {k: [datetime.fromtimestamp(t).isoformat() for t in v] for k, v in windows.items()}
        for name in ("w1", "w2"):  # each worker logs the tasks it receives and finishes
            log = workers.log(name)
            assert re.search(r"Task execute_plan\[[0-9a-f-]+\] received", log), log[-2000:]
            assert re.search(r"Task execute_plan\[[0-9a-f-]+\] succeeded", log), log[-2000:]
            assert "guest:guest" not in log  # the broker's password is never printed
    finally:
        catalog.close()


def test_fetch_parallel_sends_its_batches_to_the_workers(
    deployment: dict[str, str], workers: Workers, web: ImageWeb
) -> None:
    """``ml-images fetch --parallel 2`` with ML_IMAGES_EXECUTOR=celery: the command orchestrates, the workers run
    the image steps (none runs in the command's own process), every product is stored once."""
    catalog = Catalog(deployment["ML_IMAGES_DATABASE_URL"])
    try:
        # The first test's products: their fixture pictures are known to pass the cover gate two by two.
        ids = [catalog.add_product(f"CW{i:03d}") for i in range(8)]
        for i in range(8):
            web.add(f"CW{i:03d}", 2)
        web.image_latency = 0.5  # each step lasts a few seconds: two batches in flight keep both workers busy
        workers.start("w1")
        workers.start("w2")
        workers.wait_ready(["w1", "w2"])

        proc = subprocess.run(
            [str(BIN / "ml-images"), "fetch", "--batch-size", "2", "--parallel", "2"],
            cwd=REPO,
            env=deployment,
            capture_output=True,
            text=True,
            timeout=400,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-4000:]
        assert "products done 8/8" in proc.stdout, output[-4000:]
        assert "guest:guest" not in output  # the broker's password is never printed

        _assert_each_stored_once(catalog, ids)
        _, node_of = _image_runs_on_workers(deployment, 4)
        # Every image step ran on a worker (dagster-celery names the worker in the step's engine event).
        assert all(len(nodes) == 1 for nodes in node_of.values()), node_of
        assert {nodes[0].split("@")[0] for nodes in node_of.values()} == {"w1", "w2"}, node_of
    finally:
        catalog.close()


def _wait_for_step_on_a_worker(env: dict[str, str], timeout: float = 120.0) -> tuple[str, str]:
    """(run id, worker name) of the first image step a worker has started."""
    deadline = time.monotonic() + timeout
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        while time.monotonic() < deadline:
            for run in instance.get_runs():
                if run.job_name != "product_images_job":
                    continue
                nodes = _step_workers(instance, run.run_id)
                if nodes:
                    return run.run_id, nodes[0].split("@")[0]
            time.sleep(0.5)
    pytest.fail("no image step started on a worker")


def test_a_worker_killed_mid_batch_loses_no_product(
    deployment: dict[str, str], workers: Workers, web: ImageWeb
) -> None:
    catalog = Catalog(deployment["ML_IMAGES_DATABASE_URL"])
    try:
        ids = [catalog.add_product(f"KW{i:03d}") for i in range(4)]
        for i in range(4):
            web.add(f"KW{i:03d}", 2)
        web.image_latency = 2.0  # the step is still downloading when its worker dies
        workers.start("w1")
        workers.start("w2")
        workers.wait_ready(["w1", "w2"])
        _select(deployment)

        [proc] = _launch_batches(deployment, [str(i) for i in ids], batch_size=4)
        run_id, victim = _wait_for_step_on_a_worker(deployment)
        time.sleep(1.0)
        workers.kill(victim)  # the whole process group, as when a machine is lost
        web.image_latency = 0.0
        code, out = _finish(proc)

        with DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            status = run.status
            nodes = _step_workers(instance, run_id)
        # The broker handed the step back and the surviving worker ran it, or the run failed: never a success
        # that lost products.
        assert status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE), status
        assert (code == 0) == (status == DagsterRunStatus.SUCCESS), out[-3000:]
        assert _errors(catalog) == 0
        for pid in ids:
            images = catalog.images(pid)
            assert len(images) in (0, 2), (pid, len(images))  # all of a product's pictures, or none yet

        if status == DagsterRunStatus.FAILURE or any(not catalog.images(pid) for pid in ids):
            # The next run completes what is left.
            _select(deployment)
            rest = [str(pid) for pid in ids if not catalog.images(pid)]
            reruns = _launch_batches(deployment, rest, batch_size=4)
            assert all(_finish(p)[0] == 0 for p in reruns)
        for pid in ids:
            assert len(catalog.images(pid)) == 2, pid
            outcomes = [a.outcome for a in _attempts(catalog, pid)]
            assert outcomes.count(ProductStatus.STORED.value) == 1, outcomes
            assert ProductStatus.NO_IMAGES.value not in outcomes
        assert _errors(catalog) == 0
        assert victim in {n.split("@")[0] for n in nodes}
        workers_left = {"w1", "w2"} - {victim}
        assert workers.procs[workers_left.pop()].poll() is None  # the other worker is still serving
    finally:
        catalog.close()
