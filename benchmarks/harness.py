"""Shared pieces of the benchmarks: ports, a moto S3 server process, catalog databases, synthetic product photos,
process monitoring (wall time, peak RSS of a process tree) and medians.

Everything runs on 127.0.0.1. Servers and databases made here are torn down by their context managers.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
PHOTO_GENERATOR_VERSION = "2"


def bench_root() -> Path:
    """Work folder of the benchmarks (caches, throw-away homes); under ML_IMAGES_HOME like the rest of `make`."""
    home = Path(os.environ.get("ML_IMAGES_HOME") or REPO_ROOT / "var").expanduser().resolve()
    root = home / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def venv_script(name: str) -> str:
    """A console script of the interpreter running the benchmarks (``ml-images``, ``moto_server``)."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise FileNotFoundError(f"{candidate} not found; run `make install` first")
    return str(candidate)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Summary:
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.values)) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def fmt(self, digits: int = 1) -> str:
        """``median (min–max)``, or just the value for a single sample."""
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def summarize(values: Sequence[float]) -> Summary:
    return Summary(tuple(float(v) for v in values))


def load_average() -> float:
    return os.getloadavg()[0]


def _die_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when the process that started it dies, so a killed benchmark leaves no
    server or pipeline process behind: util-linux's ``setpriv --pdeathsig`` sets it and execs the command (same
    process, so wait4's figures are the command's); unchanged where ``setpriv`` is missing.

    Not a ``preexec_fn``: that makes ``subprocess`` fork instead of vfork, and the fork runs the parent's atfork
    handlers (gRPC's, once Dagster has started its threads), which can block the child before its exec for good.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)


# ------------------------------------------------------------------------------------------------- S3 (moto)


class MotoS3Server:
    """moto's S3 API in its own process (so its request handling does not share the benchmark's GIL)."""

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 30.0) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoS3Server:
        self._process = subprocess.Popen(
            _die_with_parent([venv_script("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode} at start-up")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"moto_server did not listen on port {self.port} within {self._startup_timeout_s:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self) -> float:
        """CPU the server process has used so far (it shares the machine with the pipeline it serves)."""
        return _tree_cpu_seconds(self.pid) if self.pid is not None else 0.0

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        bucket = name or f"bench-{uuid.uuid4().hex[:10]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto accepts any credentials
        )
        client.create_bucket(Bucket=bucket)
        return bucket

    def env(self, bucket: str) -> dict[str, str]:
        """What the pipeline needs in its environment to use this server."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }

    def object_count(self, bucket: str) -> int:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto accepts any credentials
        )
        total = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            total += int(page.get("KeyCount", 0))
        return total


# --------------------------------------------------------------------------------------------- catalog database


def postgres_admin_url() -> str | None:
    """The PostgreSQL server to create throw-away databases on, or None when none answers on it."""
    import sqlalchemy as sa

    url = (
        os.environ.get("ML_IMAGES_BENCH_POSTGRES_URL")
        or os.environ.get("ML_IMAGES_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_ADMIN_URL
    )
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:  # any driver error means "no usable server here"
        return None
    finally:
        engine.dispose()
    return url


@dataclass(frozen=True)
class CatalogDatabase:
    url: str
    backend: str  # "postgresql" | "sqlite"


@contextlib.contextmanager
def catalog_database(
    workdir: Path, *, prefer_postgres: bool = True, name_prefix: str = "mlimg_bench"
) -> Iterator[CatalogDatabase]:
    """A fresh, migrated catalog: a new PostgreSQL database when a server answers, else a SQLite file. Dropped after."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from ml_images.catalog.db import upgrade_schema

    admin_url = postgres_admin_url() if prefer_postgres else None
    if admin_url is None:
        url = f"sqlite:///{workdir / 'catalog.db'}"
        upgrade_schema(url)
        yield CatalogDatabase(url, "sqlite")
        return
    name = f"{name_prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_schema(url)
        yield CatalogDatabase(url, "postgresql")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class BenchProduct:
    """One catalog product of the benchmark and the candidate photos the fixture search returns for it."""

    code: str
    brand: str
    model: str
    description: str
    photos: tuple[Path, ...]

    @property
    def query_terms(self) -> str:
        return f"{self.brand} {self.model}"


def make_products(count: int, photos: Sequence[Sequence[Path]]) -> list[BenchProduct]:
    """``count`` eligible monitors (category MONITOR, price ≥ 0 rule), each with its own distinct candidates."""
    brands = ("Samsung", "LG", "Dell", "Asus", "Acer", "BenQ", "AOC", "Philips", "ViewSonic", "Lenovo")
    products = []
    for i in range(count):
        brand = brands[i % len(brands)]
        model = f"BX{1000 + i}Q"
        products.append(
            BenchProduct(
                code=f"BENCH-{i:05d}",
                brand=brand,
                model=model,
                description=f'Monitor {brand} {model} 27" IPS 1440p',
                photos=tuple(photos[i]),
            )
        )
    return products


def seed_catalog(database_url: str, products: Sequence[BenchProduct]) -> list[int]:
    """Insert the products as fresh, active, Mercado Libre-eligible rows; returns their ids in order."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from ml_images.catalog.models import ProductMaster

    engine = sa.create_engine(database_url)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            rows = [
                ProductMaster(
                    code=p.code,
                    sku=p.code,
                    description=p.description,
                    price=Decimal("199.90"),
                    category="MONITOR",
                    is_active=True,
                    is_for_mercadolibre=True,
                    specs={"brand": p.brand, "model": p.model},
                    last_updated=now,
                )
                for p in products
            ]
            session.add_all(rows)
            session.flush()
            ids = [int(r.id) for r in rows]
    finally:
        engine.dispose()
    return ids


def stored_image_counts(database_url: str) -> dict[int, int]:
    """product id → number of ``product_image`` rows."""
    import sqlalchemy as sa

    from ml_images.catalog.models import ProductImage

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(ProductImage.product_id, sa.func.count()).group_by(ProductImage.product_id)
            ).all()
    finally:
        engine.dispose()
    return {int(pid): int(n) for pid, n in rows}


# ------------------------------------------------------------------------------------------- synthetic photos


_SHAPES = 5  # silhouettes; a product's k-th candidate uses shape k % 5, so its pictures never look alike


def render_photo(size: int, seed: int, shape: int = 0) -> bytes:
    """A product-like photo: a shaded object with a highlight and a drop shadow on a striped, noisy background.

    Built like the test images measured in docs/decisions.md (same size, noise and JPEG q90, so its per-image costs
    apply), with five silhouettes (bottle, box, pair, lying can, ring) and varied backdrops (stripe direction,
    gradient side, object placement): the candidates of one product stay far apart for the perceptual-hash
    de-duplication. The backdrop stays light enough for the processor's dark-background check.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    w = h = size
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bgc = r.uniform(120, 235, 3).astype(np.float32)
    angle = [0.0, np.pi / 2, np.pi / 4, -np.pi / 4, np.pi / 3][shape % _SHAPES]
    along = (xx * np.cos(angle) + yy * np.sin(angle)) / w
    stripes = 14 * np.sin(along * r.uniform(20, 60) + 3 * np.sin(yy / h * 7))
    ramp = [yy / h, xx / w, 1 - yy / h, 1 - xx / w, (xx + yy) / (w + h)][(shape + seed) % 4]
    bg = bgc[None, None, :] * (0.8 + 0.3 * ramp[..., None]) + stripes[..., None]
    bg += r.normal(0, 8, (h, w, 3)).astype(np.float32)

    cx, cy = w * r.uniform(0.35, 0.65), h * r.uniform(0.4, 0.6)
    ax, ay = w * r.uniform(0.16, 0.26), h * r.uniform(0.22, 0.34)
    mask_img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask_img)
    kind = shape % _SHAPES
    if kind == 0:  # bottle: body and neck
        draw.ellipse([cx - ax, cy - ay, cx + ax, cy + ay], fill=255)
        draw.rectangle([cx - ax * 0.3, cy - ay * 1.35, cx + ax * 0.3, cy - ay * 0.8], fill=255)
    elif kind == 1:  # box seen at an angle: a wide parallelogram
        draw.polygon(
            [(cx - ax * 1.5, cy - ay * 0.5), (cx + ax * 1.1, cy - ay * 0.7), (cx + ax * 1.5, cy + ay * 0.6),
             (cx - ax * 1.1, cy + ay * 0.8)],
            fill=255,
        )  # fmt: skip
    elif kind == 2:  # a pair: a tall block and a round object beside it
        draw.rectangle([cx - ax * 1.4, cy - ay * 1.2, cx - ax * 0.2, cy + ay], fill=255)
        draw.ellipse([cx + ax * 0.1, cy - ay * 0.1, cx + ax * 1.5, cy + ay * 1.0], fill=255)
    elif kind == 3:  # a can lying down: wide and flat
        draw.ellipse([cx - ax * 1.7, cy - ay * 0.45, cx + ax * 1.7, cy + ay * 0.45], fill=255)
    else:  # a ring
        draw.ellipse([cx - ax * 1.2, cy - ax * 1.2, cx + ax * 1.2, cy + ax * 1.2], fill=255)
        draw.ellipse([cx - ax * 0.6, cy - ax * 0.6, cx + ax * 0.6, cy + ax * 0.6], fill=0)
    mask = np.asarray(mask_img.filter(ImageFilter.GaussianBlur(max(1, w / 600))), dtype=np.float32) / 255.0

    d = ((xx - cx) / (ax * 1.5)) ** 2 + ((yy - cy) / (ay * 1.2)) ** 2
    objc = r.uniform(20, 255, 3).astype(np.float32)
    shade = np.clip(1.15 - 0.6 * np.sqrt(np.minimum(d, 1.5)) + 0.25 * (cx - xx) / w, 0.2, 1.3)
    obj = objc[None, None, :] * shade[..., None]
    highlight = np.exp(-(((xx - (cx - ax * 0.4)) / (ax * 0.12)) ** 2 + ((yy - cy) / (ay * 0.5)) ** 2))
    obj += 120 * highlight[..., None] + r.normal(0, 4, (h, w, 3)).astype(np.float32)
    shadow = np.exp(-(((xx - cx - ax * 0.15) / (ax * 1.3)) ** 2 + ((yy - cy - ay * 1.0) / (ay * 0.2)) ** 2))
    bg *= (1 - 0.35 * shadow)[..., None]
    image = bg * (1 - mask[..., None]) + obj * mask[..., None]
    out = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _render_to(args: tuple[int, int, int, str]) -> None:
    size, seed, shape, path = args
    Path(path).write_bytes(render_photo(size, seed, shape))


def product_photos(
    products: int, per_product: int, *, size: int = 1000, cache_root: Path | None = None
) -> list[list[Path]]:
    """``per_product`` distinct photos for each of ``products`` products (deterministic; cached on disk).

    Every photo is different (its own seed), so neither de-duplication nor any cache can drop or reuse one.
    """
    root = (cache_root or bench_root() / "photos") / f"v{PHOTO_GENERATOR_VERSION}-{size}"
    root.mkdir(parents=True, exist_ok=True)
    paths = [[root / f"p{i:05d}_{k}.jpg" for k in range(per_product)] for i in range(products)]
    missing = [
        (size, 7919 * i + k, k, str(path))
        for i, row in enumerate(paths)
        for k, path in enumerate(row)
        if not path.exists()
    ]
    if missing:
        if len(missing) > 8:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                list(pool.map(_render_to, missing, chunksize=4))
        else:
            for item in missing:
                _render_to(item)
    return paths


def file_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --------------------------------------------------------------------------------------- process monitoring


def _read_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kib(status: Mapping[str, str], key: str) -> int:
    value = status.get(key, "").strip().split()
    return int(value[0]) if value else 0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: the ppid is the 2nd field after ")"
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) >= 2:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(root_pid: int) -> list[int]:
    children = _children_map()
    tree, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


@dataclass
class ProcessPeak:
    pid: int
    command: str
    peak_rss_mib: float  # VmHWM, last sampled value


@dataclass
class MonitoredRun:
    argv: list[str]
    returncode: int
    wall_s: float
    started_at: float  # time.time() just before the spawn
    ended_at: float  # time.time() when the exit was reaped
    max_rss_mib: float  # ru_maxrss from wait4: exact peak of the largest single process in the tree
    cpu_s: float = 0.0  # user + system CPU of the command and its reaped descendants (wait4 rusage)
    peaks: list[ProcessPeak] = field(default_factory=list)  # sampled VmHWM per process of the tree
    stdout: str = ""
    stderr: str = ""

    def check(self) -> MonitoredRun:
        if self.returncode != 0:
            tail = "\n".join((self.stdout + "\n" + self.stderr).strip().splitlines()[-40:])
            raise RuntimeError(f"{' '.join(self.argv[:3])}… exited with {self.returncode}:\n{tail}")
        return self


def run_monitored(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout_s: float = 1800.0,
    sample_interval_s: float = 0.1,
) -> MonitoredRun:
    """Run a command to completion, sampling the peak RSS (VmHWM) of it and every descendant from /proc.

    The exact peak of the largest process comes from ``wait4``'s rusage; the samples say which process it was.

    The command is started from a small forkserver worker, not from this process: Linux copies the forking
    process's RSS high-water mark into the child (``dup_mm``) and keeps it across ``exec``, so a command spawned
    from a benchmark process that already holds a rembg session would report *that* peak as its own.
    """
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_monitor_in_worker,
        args=(sender, list(argv), dict(env), cwd, timeout_s, sample_interval_s, os.getpid()),
        name="bench-monitor",
        daemon=True,
    )
    worker.start()
    sender.close()
    try:
        # The worker enforces the command's timeout; the margin covers its own start and the transfer.
        if not receiver.poll(timeout_s + 120):
            raise TimeoutError(f"the monitor of {argv[0]} did not answer within {timeout_s + 120:.0f} s")
        outcome = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the monitor process of {argv[0]} died (exit code {worker.exitcode})") from None
    finally:
        receiver.close()
        worker.join(timeout=30)
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=10)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _monitor_in_worker(
    sender: Any,
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None,
    timeout_s: float,
    interval_s: float,
    caller_pid: int,
) -> None:
    try:
        result: MonitoredRun | BaseException = _run_monitored_here(argv, env, cwd, timeout_s, interval_s, caller_pid)
    except Exception as exc:  # handed to the caller, which re-raises it
        result = exc
    with contextlib.suppress(OSError):  # the caller is gone: nobody to tell
        sender.send(result)
    sender.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_monitored_here(
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None,
    timeout_s: float,
    sample_interval_s: float,
    caller_pid: int | None = None,
) -> MonitoredRun:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_at = time.time()
        t0 = time.perf_counter()
        process = subprocess.Popen(
            _die_with_parent(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        peaks: dict[int, ProcessPeak] = {}
        deadline = t0 + timeout_s
        rusage = None
        status = 0
        try:
            while True:
                pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                for member in process_tree(process.pid):
                    hwm = _kib(_read_status(member), "VmHWM") / 1024
                    if hwm <= 0:
                        continue
                    known = peaks.get(member)
                    if known is None:
                        peaks[member] = ProcessPeak(member, _cmdline(member)[:160], hwm)
                    else:
                        known.peak_rss_mib = max(known.peak_rss_mib, hwm)
                if time.perf_counter() > deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    os.wait4(process.pid, 0)
                    raise TimeoutError(f"{argv[0]} did not finish within {timeout_s:.0f} s")
                if caller_pid is not None and not _pid_alive(caller_pid):
                    # the benchmark was stopped: do not leave a pipeline run behind on a shared machine
                    os.killpg(process.pid, signal.SIGKILL)
                    os.wait4(process.pid, 0)
                    raise RuntimeError(f"the benchmark process {caller_pid} is gone; {argv[0]} stopped")
                time.sleep(sample_interval_s)
        finally:
            process.returncode = process.returncode if process.returncode is not None else -1
        wall = time.perf_counter() - t0
        ended_at = time.time()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    returncode = os.waitstatus_to_exitcode(status)
    process.returncode = returncode
    return MonitoredRun(
        argv=list(argv),
        returncode=returncode,
        wall_s=wall,
        started_at=started_at,
        ended_at=ended_at,
        max_rss_mib=(rusage.ru_maxrss / 1024) if rusage is not None else 0.0,
        cpu_s=(rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0,
        peaks=sorted(peaks.values(), key=lambda p: -p.peak_rss_mib),
        stdout=stdout,
        stderr=stderr,
    )


def current_peak_rss_mib() -> float:
    """VmHWM of this process."""
    return _kib(_read_status(os.getpid()), "VmHWM") / 1024


class CpuMeter:
    """CPU seconds used by this process (all threads) and by other processes while a block ran."""

    def __enter__(self) -> CpuMeter:
        self._t0 = time.perf_counter()
        self._own0 = time.process_time()
        self._all0 = self._busy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.own_cpu_s = time.process_time() - self._own0
        total = self._busy() - self._all0
        self.foreign_cores = max(0.0, (total - self.own_cpu_s) / self.wall_s) if self.wall_s > 0 else 0.0

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds of a process tree: every live member's own time plus the time of the children it reaped."""
    ticks = 0
    for pid in process_tree(root_pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # after ")": state ppid … utime(12) stime(13) cutime(14) cstime(15), 0-based from "state"
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class ForeignLoad:
    """CPU that processes *outside* this benchmark's process tree used while a block ran, in cores.

    The machine may be shared; a figure taken while a neighbour burned a core says so in the table.
    """

    def __enter__(self) -> ForeignLoad:
        self._t0 = time.perf_counter()
        self._all0 = CpuMeter._busy()
        self._own0 = _tree_cpu_seconds(os.getpid())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        own = _tree_cpu_seconds(os.getpid()) - self._own0
        total = CpuMeter._busy() - self._all0
        self.foreign_cores = max(0.0, (total - own) / self.wall_s) if self.wall_s > 0 else 0.0


def wait_until_idle(*, timeout_s: float = 300.0, window_s: float = 5.0, max_foreign_cores: float = 0.1) -> float:
    """Wait (up to ``timeout_s``) until processes outside this benchmark stay under ``max_foreign_cores`` for a
    whole ``window_s``; returns the last window's reading. Unlike the load average it reacts within seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        with ForeignLoad() as load:
            time.sleep(window_s)
        if load.foreign_cores < max_foreign_cores or time.monotonic() >= deadline:
            return load.foreign_cores


def machine_description() -> str:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu or 'unknown CPU'}, {os.cpu_count()} CPUs, {mem_gib:.0f} GiB"
