"""What `vs_feast.py` and `batches.py` share: the seeded Feast-shaped dataset, our feature store
written for it, a throwaway Redis server, child processes measured from the outside (wall
clock, peak RSS), medians and the printed tables.

Runs in our own virtual environment only (numpy, pyarrow, redis); the Feast side lives in
`feast_side.py`, which imports nothing from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis

ROOT = Path(__file__).resolve().parent.parent  # the checkout these benchmarks measure
BENCH = Path(__file__).resolve().parent
DAY0 = datetime(2025, 6, 1, tzinfo=UTC)  # a day boundary, also a multiple of 2d since the epoch
START = int(DAY0.timestamp())
PROJECT = "bench"  # our key prefix: bench:<feature set>:v1:<entity_id>
ENTITY, TIMESTAMP = "entity_id", "event_timestamp"
RESULT_MARKER = "BENCH_RESULT "  # the last stdout line of a child: its JSON result


class CheckFailed(AssertionError):
    """A correctness check failed: the figures of this run would mean nothing."""


def expect(condition: object, detail: object) -> None:
    """Like `assert`, but also under `python -O`; the run stops with the detail."""
    if not condition:
        raise CheckFailed(str(detail))


def child_env() -> dict[str, str]:
    """The environment of our child processes: this checkout first on the path (the venv's
    editable install may point at another checkout), Sail's logs quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("RUST_LOG", "error")
    return env


# Our package from this checkout, in this process too (see child_env): set when this module is
# imported, so import it before anything that imports the package (common.py does).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def use_this_checkout() -> None:
    """Fail unless our package is (or now gets) imported from this checkout."""
    import airflow_provider_featurestore

    check_package_root(airflow_provider_featurestore.__file__ or "")


def check_package_root(path: str) -> None:
    expect(
        Path(path).resolve().is_relative_to(ROOT),
        f"airflow_provider_featurestore imported from {path}, not from this checkout {ROOT}",
    )


# ---- the dataset ----------------------------------------------------------------------------


@dataclass
class Source:
    """The parquet file and, computed with numpy, the latest row of every entity."""

    path: str
    rows: int
    entities: int
    features: list[str]
    start: int  # epoch seconds: event times are uniform over [start, end)
    end: int
    f0_sum: float
    latest: pa.Table  # entity_id, event_timestamp, f0..: one row per entity, by entity_id
    seconds: float = 0.0  # to generate and write

    def latest_row(self, entity: int) -> dict[str, object]:
        return self.latest.slice(entity, 1).to_pylist()[0]

    def latest_us(self, entity: int) -> int:
        return int(self.latest.column(TIMESTAMP).cast(pa.int64())[entity].as_py())


def generate(
    path: str,
    *,
    rows: int,
    entities: int,
    features: int,
    seconds: int,
    seed: int = 0,
    start: int = START,
    first_row: int | None = None,
) -> Source:
    """`entities` int64 entities x `rows // entities` rows each, in random order, `features`
    float64 features (normal 100 +- 50), event times uniform over `[start, start + seconds)` in
    microseconds (UTC); one parquet file. The latest event time of every entity is unique (the
    seed is stepped until it is), so "the latest row" is one row.

    With `first_row`, the features say which row they come from instead: feature j of the
    file's row i is `first_row + i + j / 16` (exact in a double), so a lookup that mixes two
    rows of an entity is seen in its values alone (serve_vs_feast.py)."""
    expect(rows % entities == 0, f"rows ({rows:,}) must be a multiple of entities ({entities:,})")
    began = time.perf_counter()
    for attempt in range(seed, seed + 100):
        rng = np.random.default_rng(attempt)
        entity = rng.permutation(np.repeat(np.arange(entities, dtype=np.int64), rows // entities))
        event_us = rng.integers(start * 1_000_000, (start + seconds) * 1_000_000, size=rows, dtype=np.int64)
        order = np.lexsort((-event_us, entity))  # by entity, latest first
        first = np.ones(rows, dtype=bool)
        first[1:] = entity[order][1:] != entity[order][:-1]
        heads = np.flatnonzero(first)  # each entity's latest row in `order`; heads + 1 its runner-up
        sorted_us = event_us[order]
        if rows // entities < 2 or not np.any(sorted_us[heads + 1] == sorted_us[heads]):
            break
    else:
        raise CheckFailed("no seed within 100 gives unique latest event times")
    columns: dict[str, pa.Array] = {
        ENTITY: pa.array(entity),
        TIMESTAMP: pa.array(event_us, pa.timestamp("us", tz="UTC")),
    }
    names = [f"f{j}" for j in range(features)]
    for j, name in enumerate(names):
        if first_row is None:
            columns[name] = pa.array(rng.normal(100.0, 50.0, rows))
        else:
            columns[name] = pa.array(np.arange(first_row, first_row + rows, dtype=np.float64) + j / 16)
    table = pa.table(columns)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path)
    latest = table.take(pa.array(order[first]))  # sorted by entity: row i is entity i
    expect(latest.column(ENTITY).to_numpy().tolist() == list(range(entities)), "latest rows out of order")
    return Source(
        path=path,
        rows=rows,
        entities=entities,
        features=names,
        start=start,
        end=start + seconds,
        f0_sum=float(np.sum(columns["f0"].to_numpy())) if names else 0.0,
        latest=latest,
        seconds=time.perf_counter() - began,
    )


# ---- our feature store ------------------------------------------------------------------------


def write_feature_store(
    folder: str,
    source: Source,
    redis_url: str,
    specs: dict[str, str | None],
    *,
    engine: str = "engine:\n  type: embedded\n",
) -> str:
    """featurestore.yaml (SQLite interval table, Delta under offline/) and one spec per entry of
    `specs` (feature set name -> max_job_window, None for the default): index `entity_id`
    long, the source's timestamp, its features as doubles, no transformation, both stores
    enabled, no TTL. Returns the config path."""
    os.makedirs(os.path.join(folder, "featuresets"), exist_ok=True)
    config = os.path.join(folder, "featurestore.yaml")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(
            f"project: {PROJECT}\n"
            "feature_sets: featuresets\n"
            "offline_store:\n  path: offline\n"
            f"online_store:\n  redis_url: {redis_url}\n"
            "interval_table:\n  url: sqlite:///intervals.db\n"
            f"{engine}"
        )
    features = "".join(f"  - {{name: {name}, type: double}}\n" for name in source.features)
    for name, window in specs.items():
        extra = f"  max_job_window: {window}\n" if window else ""
        with open(os.path.join(folder, "featuresets", f"{name}.yaml"), "w", encoding="utf-8") as handle:
            handle.write(
                f"name: {name}\nversion: 1\n"
                f"index_columns:\n  - {{name: {ENTITY}, type: long}}\n"
                f"timestamp_column: {TIMESTAMP}\n"
                f"source:\n  format: parquet\n  path: {source.path}\n  timestamp_column: {TIMESTAMP}\n"
                f"features:\n{features}"
                f"materialization:\n  offline: true\n  online: true\n{extra}"
            )
    return config


def reset_feature_store(folder: str) -> None:
    """Fresh state for a round: no interval table, no offline tables."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(folder, "intervals.db"))
    shutil.rmtree(os.path.join(folder, "offline"), ignore_errors=True)


def check_online_sample(
    client: redis.Redis, prefix: str, source: Source, sample: Sequence[int], what: str
) -> None:
    """Each sampled entity's hash holds exactly its latest source row (doubles compared exactly)."""
    pipe = client.pipeline(transaction=False)
    fields = ["_event_time", *source.features]
    for entity in sample:
        pipe.hmget(f"{prefix}{entity}", fields)
    for entity, got in zip(sample, pipe.execute(), strict=True):
        row = source.latest_row(entity)
        expect(got[0] is not None, f"{what}: entity {entity} has no key {prefix}{entity}")
        expect(int(got[0]) == source.latest_us(entity), f"{what}: entity {entity}: _event_time {got[0]!r}")
        for name, value in zip(source.features, got[1:], strict=True):
            expect(
                value is not None and float(value) == row[name],
                f"{what}: entity {entity} {name}: {value!r}, source {row[name]!r}",
            )


def entity_keys(client: redis.Redis) -> int:
    """The keys of the database, less the online store's markers (one per feature set version
    written, beside its entities' keys: see OnlineLayout.marker_key)."""
    from airflow_provider_featurestore.core.online import MARKER_SUFFIX

    markers = sum(1 for _ in client.scan_iter(f"*:{MARKER_SUFFIX}", count=10_000))
    return int(client.dbsize()) - markers


def sample_entities(entities: int, count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(int(e) for e in rng.choice(entities, size=min(count, entities), replace=False))


# ---- a throwaway Redis --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """`url` as given (a server someone else runs), or a `redis-server` of our own on a free
    loopback port, no persistence, stopped at the end. Yields `redis://host:port` (no db)."""
    if url:
        client = redis.Redis.from_url(url)
        client.ping()
        client.close()
        parts = url.split("/")
        yield "/".join(parts[:3])
        return
    binary = shutil.which("redis-server")
    expect(binary, "redis-server not found: install it (apt-get install redis-server) or pass --redis-url")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="fs_bench_redis_")
    command = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", folder, "--databases", "16", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"redis://127.0.0.1:{port}"
    try:
        client = redis.Redis.from_url(base)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise CheckFailed(f"redis-server on port {port} did not answer")
        client.close()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def redis_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process of this machine (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- child processes ----------------------------------------------------------------------------


@dataclass
class ChildRun:
    """One measured child process: its JSON result and what the parent saw of it."""

    label: str
    wall: float  # seconds from spawn to exit (interpreter start, imports, work, exit)
    max_rss_kib: int  # ru_maxrss of the child (wait4): its peak, or its largest descendant's
    result: dict[str, object]
    redis_cpu: float | None = None  # the Redis server's CPU seconds over the child's life
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def call(self) -> float:
        return float(self.result["call_s"])  # type: ignore[arg-type]

    @property
    def rss_mb(self) -> float:
        return self.max_rss_kib / 1024


def run_child(
    label: str,
    command: list[str],
    *,
    log_dir: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    redis_pid_: int | None = None,
) -> ChildRun:
    """Run `command` in a fresh process (its own process group), stdout and stderr to files in
    `log_dir`; killed with its group after `timeout` s. Its last stdout line starting with
    RESULT_MARKER is its result. Fails loudly (with the stderr tail) on a non-zero exit."""
    os.makedirs(log_dir, exist_ok=True)
    stem = os.path.join(log_dir, label.replace(" ", "_").replace("/", "_"))
    out_path, err_path = f"{stem}.out", f"{stem}.err"
    redis_before = process_cpu(redis_pid_) if redis_pid_ else None
    with open(out_path, "w") as out, open(err_path, "w") as err:
        spawned = time.time()
        began = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
    redis_cpu = process_cpu(redis_pid_) - redis_before if redis_pid_ and redis_before is not None else None
    with open(err_path, errors="replace") as handle:
        tail = "".join(handle.readlines()[-25:])
    if timed_out.is_set():
        raise CheckFailed(f"{label}: killed after {timeout:.0f} s; stderr tail:\n{tail}")
    if process.returncode != 0:
        raise CheckFailed(f"{label}: exit {process.returncode}; stderr tail ({err_path}):\n{tail}")
    result = None
    with open(out_path, errors="replace") as handle:
        for line in handle:
            if line.startswith(RESULT_MARKER):
                result = json.loads(line[len(RESULT_MARKER) :])
    expect(result is not None, f"{label}: printed no result line; stderr tail:\n{tail}")
    run = ChildRun(label, wall, usage.ru_maxrss, result, redis_cpu)  # type: ignore[arg-type]
    if "emitted_at" in result:  # type: ignore[operator]
        run.extra["exit_s"] = wall - (float(result["emitted_at"]) - spawned)  # type: ignore[index]
    return run


def emit(result: dict[str, object]) -> None:
    """A child's result: one marker line on stdout (and the peak RSS it saw of itself)."""
    result.setdefault("vmhwm_kib", vmhwm_kib())
    result.setdefault("emitted_at", time.time())
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def vmhwm_kib() -> int:
    """This process's peak resident set (/proc/self/status VmHWM), KiB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ---- figures ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "-"


def markdown(lines: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """Rows of cells (the first the header) as a GitHub markdown table, figures right-aligned."""
    header, *body = lines
    rule = [":---" if i < text_columns else "---:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(row) + " |" for row in (header, rule, *body))


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# ---- lookups --------------------------------------------------------------------------------------


def bare_hmget(
    client: redis.Redis, prefix: str, fields: Sequence[str], entities: Sequence[int]
) -> list[list]:
    """The raw baseline of a lookup: one redis-py pipeline (`transaction=False`) of
    `HMGET <prefix><entity> _event_time f0 .. f9` per entity, the features decoded to floats."""
    pipe = client.pipeline(transaction=False)
    for entity in entities:
        pipe.hmget(f"{prefix}{entity}", fields)
    return [[None if v is None else float(v) for v in reply[1:]] for reply in pipe.execute()]


def percentiles_ms(seconds: Sequence[float], points: Sequence[int] = (50, 99)) -> list[float]:
    return [float(v) * 1e3 for v in np.percentile(np.asarray(seconds), points)]
