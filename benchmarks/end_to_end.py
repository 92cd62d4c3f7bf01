"""Issue 7.1 — end to end: products per minute through the real Dagster path, against the compute floor and the
sequential original flow, on the same candidates in the same invocation.

Set-up (not timed): a catalog of N eligible products (PostgreSQL when a server answers, else SQLite) each with K
distinct 1000×1000 JPEG candidates; a local fixture search server answering in Brave's JSON format with realistic
latency (default 300 ms per search call, 150 ms per image); moto's S3 API server in its own process; a fresh
bucket, catalog database and ``DAGSTER_HOME`` per repeat.

Timed: ``ml-images fetch`` as a user runs it — a fresh process that runs the selection and then the batched
``product_images_job`` runs through Dagster, recording them in ``DAGSTER_HOME``. The wall clock covers the whole
command (interpreter start, imports and model load included). The figure is products stored per minute.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from benchmarks.baselines import (
    FloorResult,
    SequentialResult,
    compute_floor,
    reference_floor_products_per_minute,
    sequential_original_flow,
)
from benchmarks.harness import (
    BenchProduct,
    ForeignLoad,
    MonitoredRun,
    MotoS3Server,
    bench_root,
    catalog_database,
    make_products,
    product_photos,
    run_monitored,
    seed_catalog,
    stored_image_counts,
    summarize,
    venv_script,
    wait_until_idle,
)
from benchmarks.orchestration_overhead import RunTiming, breakdown, collect_run_timings

FLOOR_GOAL = 0.8  # at least 0.8 of the better compute floor layout (issue 16; issue 7 asked 0.7)
SEQUENTIAL_GOAL = 4.0  # at least 4× the sequential original flow
FLOOR_LAYOUTS = {
    2: "2 inferences at once × 1 ONNX thread",
    1: "1 inference at a time × 2 ONNX threads (the pipeline's default remover)",
}
FIXTURE_API_KEY = "bench-fixture-key"
T = TypeVar("T")
IMAGE_STEP = "product_images"
SELECTION_STEPS = ("eligible_products", "pending_image_products")

# Variables of the developer's shell that must not leak into the measured command.
_SCRUBBED_PREFIXES = ("AWS_", "ML_IMAGES_", "DAGSTER_", "BRAVE_", "SERPAPI_", "GOOGLE_", "SEARXNG_", "MERCADOLIBRE_")
_SCRUBBED = {"IMAGE_SEARCH_COUNT", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"}


@dataclass(frozen=True)
class EndToEndConfig:
    products: int = 100
    candidates: int = 5
    repeats: int = 3
    search_latency_s: float = 0.3
    image_latency_s: float = 0.15
    image_size: int = 1000
    batch_size: int = 25  # ml-images fetch's default
    sequential_products: int = 30  # the sequential flow is linear in products; a subset gives its rate
    prefer_postgres: bool = True
    run_sequential: bool = True
    run_floor: bool = True
    floor_layouts: tuple[int, ...] = (2, 1)  # concurrent inferences on the session (see FLOOR_LAYOUTS)
    timeout_s: float = 1800.0
    max_foreign_cores: float = 0.25  # a sample taken while other processes used more is measured again …
    max_attempts: int = 3  # … at most this many times in all
    quiet_wait_s: float = 300.0  # how long to wait for a quiet machine before measuring again


@dataclass
class RealPathRun:
    process: MonitoredRun
    timings: list[RunTiming]
    products: int
    products_stored: int
    images_stored: int
    objects_in_bucket: int
    backend: str
    foreign_cores: float
    s3_server_cpu_s: float = 0.0  # the local S3 server's CPU meanwhile (on the same 2 cores; elsewhere in production)
    fixture_cpu_s: float = 0.0  # this process's CPU meanwhile: the fixture search and image server threads

    @property
    def products_per_minute(self) -> float:
        return 60.0 * self.products_stored / self.process.wall_s


@dataclass
class EndToEndResult:
    config: EndToEndConfig
    backend: str
    real: list[RealPathRun] = field(default_factory=list)
    floor: list[FloorResult] = field(default_factory=list)
    sequential: list[SequentialResult] = field(default_factory=list)

    # -- the table ---------------------------------------------------------------------------------------------

    def floors_by_layout(self) -> dict[int, list[FloorResult]]:
        layouts: dict[int, list[FloorResult]] = {}
        for floor in self.floor:
            layouts.setdefault(floor.concurrent_inferences, []).append(floor)
        return layouts

    def floor_layout(self) -> int | None:
        """The layout whose median floor is highest: what this machine allows, the goal's yardstick."""
        layouts = self.floors_by_layout()
        if not layouts:
            return None
        return max(layouts, key=lambda k: summarize([f.products_per_minute for f in layouts[k]]).median)

    def floor_rate(self) -> float:
        layout = self.floor_layout()
        if layout is None:
            return float("nan")
        return summarize([f.products_per_minute for f in self.floors_by_layout()[layout]]).median

    def title(self) -> str:
        cfg = self.config
        return (
            f"End to end — {cfg.products} products × {cfg.candidates} candidates ({cfg.image_size}² JPEG), "
            f"search {cfg.search_latency_s * 1e3:.0f} ms, image {cfg.image_latency_s * 1e3:.0f} ms, "
            f"batch {cfg.batch_size}, {len(self.real)} repeat(s), median (min–max)"
        )

    def rows(self) -> list[dict[str, str]]:
        cfg = self.config
        real = summarize([r.products_per_minute for r in self.real])
        rows = [
            {
                "path": f"real Dagster path (`ml-images fetch`, catalog on {self.backend}, S3 on moto)",
                "products/min": real.fmt(1),
                "wall s": summarize([r.process.wall_s for r in self.real]).fmt(1),
                "ratio": "1.00",
                "goal": "",
                "note": f"{_span(r.products_stored for r in self.real)}/{cfg.products} products stored, "
                f"{_span(r.images_stored for r in self.real)} images; "
                f"foreign load {summarize([r.foreign_cores for r in self.real]).fmt(2)} cores",
            }
        ]
        yardstick = self.floor_layout()
        for layout, floors in sorted(self.floors_by_layout().items(), reverse=True):
            floor = summarize([f.products_per_minute for f in floors])
            ratio = real.median / floor.median
            rows.append(
                {
                    "path": f"compute floor, {FLOOR_LAYOUTS[layout]} (warm session, both cores, no network)",
                    "products/min": floor.fmt(1),
                    "wall s": summarize([f.wall_s for f in floors]).fmt(1),
                    "ratio": f"real/floor = {ratio:.2f}",
                    "goal": _verdict(ratio, FLOOR_GOAL, "of the floor")
                    if layout == yardstick
                    else "(the higher floor is the yardstick)",
                    "note": f"{floors[0].images_out}/{floors[0].images_in} images kept; "
                    f"foreign load {summarize([f.foreign_cores for f in floors]).fmt(2)} cores",
                }
            )
        reference = reference_floor_products_per_minute(cfg.candidates)
        rows.append(
            {
                "path": "reference floor (docs/decisions.md §10: 285 ms + 29 ms per later image, 800² canvas)",
                "products/min": f"{reference:.1f}",
                "wall s": f"{cfg.products * 60 / reference:.1f}",
                "ratio": f"real/reference = {real.median / reference:.2f}",
                "goal": "(reference only)",
                "note": "measured once on this machine; this run's floor above is the yardstick",
            }
        )
        if self.sequential:
            seq = summarize([s.products_per_minute for s in self.sequential])
            ratio = real.median / seq.median
            rows.append(
                {
                    "path": "sequential original flow (fresh processor + session per product, one image at a time)",
                    "products/min": seq.fmt(1),
                    "wall s": summarize([s.wall_s for s in self.sequential]).fmt(1),
                    "ratio": f"real/sequential = {ratio:.2f}×",
                    "goal": _verdict(ratio, SEQUENTIAL_GOAL, "× the sequential flow"),
                    "note": f"first {self.sequential[0].products} products, "
                    f"{self.sequential[0].images_stored} images stored; foreign load "
                    f"{summarize([s.foreign_cores for s in self.sequential]).fmt(2)} cores",
                }
            )
        return rows

    def notes(self) -> str:
        """Where the real path's time goes against the floor, and what bounds each missed goal (from this run)."""
        cfg = self.config
        real = sorted(self.real, key=lambda r: r.products_per_minute)[len(self.real) // 2]  # the median repeat
        wall = real.process.wall_s
        b = breakdown(real.process, real.timings, per_event_write_s=0.0)  # event writes stay inside step time
        image_s = b.step_s_by_key.get(IMAGE_STEP, 0.0)
        selection_s = sum(b.step_s_by_key.get(k, 0.0) for k in SELECTION_STEPS)
        other_steps = {k: v for k, v in b.step_s_by_key.items() if k != IMAGE_STEP and k not in SELECTION_STEPS}
        orchestration_s = b.setup_s + b.teardown_s + b.between_s + b.exit_s
        lines = [
            f"Where the median real run's {wall:.1f} s went: launch (interpreter, imports, definitions, instance) "
            f"{b.launch_s:.1f} s; selection steps {selection_s:.1f} s; image steps {image_s:.1f} s over "
            f"{b.image_runs} run(s); "
            + "".join(f"step `{k}` {v:.1f} s; " for k, v in other_steps.items())
            + f"run setup/teardown/gaps/exit {orchestration_s:.1f} s."
        ]
        real_rate = summarize([r.products_per_minute for r in self.real]).median
        floors = self.floors_by_layout()
        if floors:
            floor_rate = self.floor_rate()
            ratio = real_rate / floor_rate

            def layout_cpu(layout: int) -> float:
                # the floor's CPU scaled to the products the real run stored
                runs = floors[layout]
                return summarize([f.cpu_s * real.products_stored / f.products for f in runs]).median

            capacity = 2.0 * wall
            servers = real.s3_server_cpu_s + real.fixture_cpu_s
            foreign = real.foreign_cores * wall
            idle = max(0.0, capacity - real.process.cpu_s - servers - foreign)
            cpu_text = "; ".join(
                f"{layout_cpu(k):.1f} with {FLOOR_LAYOUTS[k].split(' (')[0]}" for k in sorted(floors, reverse=True)
            )
            lines.append(
                f"Machine time of that run, in core-seconds (2 cores × {wall:.1f} s = {capacity:.0f}): the "
                f"`ml-images fetch` process {real.process.cpu_s:.1f}; the local S3 server {real.s3_server_cpu_s:.1f} "
                f"and the fixture server {real.fixture_cpu_s:.1f} (on other machines in production); other "
                f"processes {foreign:.1f}; idle {idle:.1f}. The floor needs, for the same images, {cpu_text}."
            )
            if ratio < FLOOR_GOAL:
                text = (
                    f"Floor goal missed ({ratio:.2f} < {FLOOR_GOAL:g}; the command would have to take "
                    f"{60.0 * real.products_stored / floor_rate / FLOOR_GOAL:.1f} s). What bounds it, from the "
                    "figures above:"
                )
                pipeline_layout = floors.get(1)
                if pipeline_layout and self.floor_layout() != 1:
                    own = summarize([f.products_per_minute for f in pipeline_layout]).median
                    text += (
                        f" (1) the pipeline's remover runs one inference at a time (it keeps the run process under "
                        f"the 900 MB memory goal); that layout's floor is {own:.1f} products/min, "
                        f"{own / floor_rate:.2f} of the best one, and the real path reaches {real_rate / own:.2f} "
                        "of it;"
                    )
                    extra = real.process.cpu_s - layout_cpu(1)
                else:
                    extra = real.process.cpu_s - layout_cpu(self.floor_layout() or 2)
                text += (
                    f" (2) the run process spends {extra:.1f} core-seconds beyond that floor's CPU: the launch "
                    f"and exit ({b.launch_s + b.exit_s:.1f} s, mostly imports and interpreter teardown), Dagster's "
                    f"run set-up and events, the `{next(iter(other_steps), 'check')}` step reading "
                    "every stored object back to verify its recorded hash, the HTTP downloads, S3 uploads and "
                    "database writes;"
                    f" (3) {idle:.1f} core-seconds stay idle: the launch, each batch's start (a search, then "
                    f"downloads before its first image) and drain, and the single-threaded check step are not "
                    "overlapped with image work."
                )
                lines.append(text)
        if self.sequential:
            seq_rate = summarize([s.products_per_minute for s in self.sequential]).median
            per_product = 60.0 / seq_rate
            waits = cfg.search_latency_s + cfg.candidates * cfg.image_latency_s
            needed = SEQUENTIAL_GOAL * seq_rate
            text = (
                f"The sequential flow takes {per_product:.2f} s per product: {waits:.2f} s of fixture latency "
                f"(one search + {cfg.candidates} downloads one after another) and {per_product - waits:.2f} s of "
                "everything else (fresh session, removal on the main picture with 2 ONNX threads, later images, "
                "uploads, rows). It already uses the same optimised image code as the pipeline."
            )
            if real_rate < needed:
                text += f" Sequential goal missed: 4× is {needed:.0f} products/min"
                if floors:
                    floor_rate = self.floor_rate()
                    text += (
                        f", {needed / floor_rate:.2f} of this machine's best compute floor ({floor_rate:.0f}/min): "
                        "bounded by the u2netp floor on 2 cores, not by the orchestration"
                        if needed > floor_rate
                        else f", {needed / floor_rate:.2f} of the best compute floor ({floor_rate:.0f}/min), above "
                        f"the {FLOOR_GOAL:g} floor goal: the same bounds as the floor goal apply, more tightly"
                    )
                text += "."
            lines.append(text)
        return "\n\n".join(lines)


def _span(values: Iterable[int]) -> str:
    items = sorted(values)
    return f"{items[0]}" if items[0] == items[-1] else f"{items[0]}–{items[-1]}"


def _verdict(value: float, goal: float, what: str) -> str:
    if value >= goal:
        return f"met (≥ {goal:g} {what})"
    return f"MISSED by {goal - value:.2f} ({value:.2f} < {goal:g} {what}; {100 * (goal - value) / goal:.0f} % short)"


# ------------------------------------------------------------------------------------------------ environment


def clean_environment() -> dict[str, str]:
    """This process's environment without the pipeline's configuration variables, credentials or proxies."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in _SCRUBBED and not any(k.startswith(prefix) for prefix in _SCRUBBED_PREFIXES)
    }


def pipeline_environment(
    *, home: Path, dagster_home: Path, database_url: str, search_endpoint: str, s3_env: dict[str, str]
) -> dict[str, str]:
    env = clean_environment()
    env.update(
        {
            "ML_IMAGES_HOME": str(home),
            "DAGSTER_HOME": str(dagster_home),
            "ML_IMAGES_DATABASE_URL": database_url,
            "ML_IMAGES_SEARCH_PROVIDER": "brave",
            "BRAVE_SEARCH_API_KEY": FIXTURE_API_KEY,
            "ML_IMAGES_SEARCH_ENDPOINT": search_endpoint,
            "ML_IMAGES_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
            "IMAGE_SEARCH_COUNT": "5",
            # Brave's paid plans allow 50 requests/s; the free plan's 1/s (the default) would measure the plan,
            # not the pipeline.
            "ML_IMAGES_SEARCH_RATE_LIMIT": "50",
            "PYTHONUNBUFFERED": "1",
            **s3_env,
        }
    )
    # The catalog's category rule: MONITOR at any price (one of the original's three rules).
    env["MERCADOLIBRE_PUBLICATION_RULES"] = '{"MONITOR": 0}'
    return env


@contextmanager
def fixture_search(products: Sequence[BenchProduct], config: EndToEndConfig) -> Iterator[str]:
    """The fixture search server for these products; yields its Brave-format search endpoint."""
    from demo.fixture_server import FixtureSearchServer

    catalog = {p.query_terms: list(p.photos) for p in products}
    with FixtureSearchServer(
        catalog,
        search_latency=config.search_latency_s,
        image_latency=config.image_latency_s,
        api_key=FIXTURE_API_KEY,
    ) as server:
        yield server.search_endpoint


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=bench_root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -------------------------------------------------------------------------------------------------- the paths


def run_real_path(
    products: Sequence[BenchProduct],
    config: EndToEndConfig,
    *,
    search_endpoint: str,
    s3: MotoS3Server,
    fetch_args: Sequence[str] = (),
) -> RealPathRun:
    """One timed ``ml-images fetch`` over a freshly seeded catalog, bucket and Dagster instance."""
    with scratch_dir("e2e_") as work, catalog_database(work, prefer_postgres=config.prefer_postgres) as catalog:
        seed_catalog(catalog.url, products)
        bucket = s3.create_bucket()
        dagster_home = work / "dagster_home"
        dagster_home.mkdir()
        # No usage statistics from benchmark instances (it would also write a telemetry log line per run).
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = pipeline_environment(
            home=work / "home",
            dagster_home=dagster_home,
            database_url=catalog.url,
            search_endpoint=search_endpoint,
            s3_env=s3.env(bucket),
        )
        s3_cpu0, own_cpu0 = s3.cpu_seconds(), time.process_time()
        with ForeignLoad() as load:
            process = run_monitored(
                [venv_script("ml-images"), "fetch", "--batch-size", str(config.batch_size), *fetch_args],
                env=env,
                cwd=work,
                timeout_s=config.timeout_s,
            )
        s3_cpu, fixture_cpu = s3.cpu_seconds() - s3_cpu0, time.process_time() - own_cpu0
        process.check()
        counts = stored_image_counts(catalog.url)
        timings = collect_run_timings(dagster_home)
        return RealPathRun(
            process=process,
            timings=timings,
            products=len(products),
            products_stored=sum(1 for n in counts.values() if n > 0),
            images_stored=sum(counts.values()),
            objects_in_bucket=s3.object_count(bucket),
            backend=catalog.backend,
            foreign_cores=load.foreign_cores,
            s3_server_cpu_s=s3_cpu,
            fixture_cpu_s=fixture_cpu,
        )


def run_sequential(
    products: Sequence[BenchProduct], config: EndToEndConfig, *, search_endpoint: str, s3: MotoS3Server
) -> SequentialResult:
    """The sequential original flow in this process, over its own freshly seeded catalog and bucket."""
    with scratch_dir("seq_") as work, catalog_database(work, prefer_postgres=config.prefer_postgres) as catalog:
        ids = seed_catalog(catalog.url, products)
        env = pipeline_environment(
            home=work / "home",
            dagster_home=work,
            database_url=catalog.url,
            search_endpoint=search_endpoint,
            s3_env=s3.env(s3.create_bucket()),
        )
        with ForeignLoad() as load:
            result = sequential_original_flow(ids, settings_env=env)
        result = dataclasses.replace(result, foreign_cores=load.foreign_cores)
        if result.products_with_images != len(ids):
            raise RuntimeError(
                f"the sequential flow stored images for {result.products_with_images}/{len(ids)} products"
            )
        return result


def run(config: EndToEndConfig, *, log: bool = True) -> EndToEndResult:
    """All three paths, ``config.repeats`` times, interleaved so the machine's noise hits them alike.

    A sample taken while processes outside the benchmark used more than ``config.max_foreign_cores`` is measured
    again (after waiting for a quiet machine), up to ``config.max_attempts`` times; the table shows the foreign
    load of the samples kept.
    """
    photos = product_photos(config.products, config.candidates, size=config.image_size)
    products = make_products(config.products, photos)
    seq_products = products[: max(1, min(config.sequential_products, config.products))]
    result = EndToEndResult(config=config, backend="")

    def say(text: str) -> None:
        if log:
            print(text, flush=True)

    def quiet(measure: Callable[[], T], foreign: Callable[[T], float], label: str) -> T:
        for attempt in range(1, config.max_attempts + 1):
            sample = measure()
            load = foreign(sample)
            if load <= config.max_foreign_cores or attempt == config.max_attempts:
                return sample
            say(f"  {label}: other processes used {load:.2f} cores meanwhile; measuring again once it is quiet")
            wait_until_idle(timeout_s=config.quiet_wait_s)
        raise AssertionError("unreachable: the last attempt always returns")

    with MotoS3Server() as s3, fixture_search(products, config) as endpoint:
        for repeat in range(1, config.repeats + 1):
            real = quiet(
                lambda: run_real_path(products, config, search_endpoint=endpoint, s3=s3),
                lambda r: r.foreign_cores,
                "real path",
            )
            result.real.append(real)
            result.backend = real.backend
            say(
                f"  repeat {repeat}/{config.repeats}: real path {real.products_per_minute:.1f} products/min "
                f"({real.products_stored}/{real.products} stored, {real.process.wall_s:.1f} s, "
                f"peak RSS {real.process.max_rss_mib:.0f} MiB, foreign load {real.foreign_cores:.2f} cores)"
            )
            for layout in config.floor_layouts if config.run_floor else ():
                floor = quiet(
                    lambda layout=layout: compute_floor(photos, concurrent_inferences=layout),  # type: ignore[misc]
                    lambda f: f.foreign_cores,
                    "compute floor",
                )
                result.floor.append(floor)
                say(
                    f"  repeat {repeat}: compute floor ({FLOOR_LAYOUTS[layout]}) "
                    f"{floor.products_per_minute:.1f} products/min, foreign load {floor.foreign_cores:.2f} cores"
                )
            if config.run_sequential:
                seq = quiet(
                    lambda: run_sequential(seq_products, config, search_endpoint=endpoint, s3=s3),
                    lambda r: r.foreign_cores,
                    "sequential flow",
                )
                result.sequential.append(seq)
                say(
                    f"  repeat {repeat}: sequential flow {seq.products_per_minute:.1f} products/min, "
                    f"foreign load {seq.foreign_cores:.2f} cores"
                )
    return result
