"""Benchmark: one feature set materialized on the embedded engine (Sail), offline and online.

Why: the materialization job (`core/materialization/spark_job/`) promises to cost little more than the
work itself. Each figure is printed beside a bare pipeline doing that work on the same data in
the same run, as a ratio:

* offline -- our job with stores ("offline",) for one day (read the source, check the columns,
  filter to the window, add the `event_date` partition column, `replaceWhere` overwrite of the
  window into a Delta table) against a bare pipeline on the same Sail session: read the same
  parquet, same window filter, same (no-op) transformation, plain
  `df.write.format("delta").mode("overwrite").save(other_path)`. Goal: ours/bare <= 1.25.
* online -- our job with stores ("online",) for the same day, timed from start to finish (read
  the source, latest row per entity with a window function, `mapInArrow` into
  `OnlineStore.write` with the Lua event-time guard) against a bare single-connection redis-py
  `pipeline(transaction=False)` of `HSET key f1 v1 ... f10 v10 _event_time t`, 1,000 commands per
  execute, no guard, of the same latest rows computed once with pyarrow and already turned into
  text (none of that timed). Goal: ours/bare entities/s >= 1.0. Shown too: our writer alone
  (`OnlineStore.write` of those precomputed rows, no Spark), the Sail part alone (read + latest
  per entity drained by a no-op `mapInArrow`), and the job's source rows/s and peak memory. Feast
  is run beside us, in the same run on its own benchmark data, by `benchmarks/vs_feast.py`. The
  latest rows are the one with the greatest event time per entity; the source has distinct event
  times, so there are no ties.
* both -- one job with stores ("offline", "online").

Every figure is the median of `--repeats` runs (time.perf_counter, wall clock), ours and bare
alternating order from run to run, after one untimed warm-up of each. Online runs come first,
while the process holds only Sail and the precomputed latest rows (for the memory figure); each
starts from an empty Redis database. The offline tables exist already (the warm-up created
them), so a timed run replaces the day as a daily re-run does. Also printed: this process's CPU
seconds (Sail runs inside this process) and the Redis server's CPU seconds per run (when Redis
is local; any other client of that server counts too). Peak memory is this process's RSS
sampled every 10 ms during the online jobs (Sail, the client and the benchmark's latest rows),
during the both-store jobs, and `ru_maxrss` for the whole run.

Correctness is checked, not only timed: the offline table holds exactly the window's rows with
the source's sum of `f0`; after each online write Redis holds exactly one key per entity; a few
random entities hold the source's latest row (values compared as doubles, the event time as
epoch microseconds).

Set-up (timed apart, in no figure): a parquet source written with pyarrow (`--files` files,
microsecond UTC timestamps, all on 2025-06-01, every event time distinct), `--entities` string
entity ids, `--features` double features; a feature store in a temporary folder with one
feature set taking the source columns as they are (no transformation), offline and online
enabled, no `online_ttl`, `max_job_window: 1d`.

The Redis database (default `/14`) is FLUSHDB'd before each online run and at the end: never
point this at a database holding anything else. The temporary folder is deleted at the end.

The machine is shared: with other work on its 2 cores, wall figures move by +-30% from run to
run; the CPU columns move far less. benchmarks/README.md has a real run and the profile.

Run: `python benchmarks/materialize.py [--rows 1000000] [--entities 100000] [--features 10]
[--files 4] [--repeats 3] [--redis-url redis://127.0.0.1:6379/14]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pysail
import redis
from workload import entity_keys

from airflow_provider_featurestore.core.config import FeatureStoreConfig, load_config
from airflow_provider_featurestore.core.materialization import spark_job
from airflow_provider_featurestore.core.materialization.engines import EmbeddedEngine, _Sail
from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, ChunkResult, ChunkSpec
from airflow_provider_featurestore.core.materialization.spark_job import (
    online_write,
    row_checks,
    sources,
    transformation,
)
from airflow_provider_featurestore.core.online import OnlineLayout, OnlineStore, online_store_for

DAY = datetime(2025, 6, 1, tzinfo=UTC)
START = int(DAY.timestamp())
END = START + 86_400
PROJECT, FEATURE_SET = "bench", "bench_features"
BARE_CHUNK = 1_000  # HSET commands per pipeline execute
SPOT_CHECKS = 5


class CheckFailed(AssertionError):
    """A correctness check of the benchmark failed: its figures would mean nothing."""


def expect(condition: bool, detail: object) -> None:
    """Like `assert`, but also under `python -O`."""
    if not condition:
        raise CheckFailed(str(detail))


# ---- set-up -------------------------------------------------------------------------------


@dataclass
class Source:
    """The generated source and, computed once with numpy, its latest row per entity."""

    path: str
    rows: int
    entities: int
    features: list[str]
    f0_sum: float
    latest: pa.Table  # entity_id, event_time, features...: one row per entity


def write_source(folder: str, rows: int, entities: int, features: int, files: int) -> Source:
    """`rows` rows over one day in `files` parquet files; event times distinct, in random order."""
    rng = np.random.default_rng(0)
    step = 86_400_000_000 // rows  # microseconds between consecutive event times
    event_us = START * 1_000_000 + rng.permutation(rows).astype(np.int64) * step
    entity = rng.permutation(np.arange(rows) % entities)
    names = pa.array([f"E{i:07d}" for i in range(entities)], pa.string())
    columns: dict[str, pa.Array] = {
        "entity_id": names.take(pa.array(entity)),
        "event_time": pa.array(event_us, pa.timestamp("us", tz="UTC")),
    }
    feature_names = [f"f{j}" for j in range(features)]
    for name in feature_names:
        columns[name] = pa.array(rng.normal(100.0, 50.0, rows))
    table = pa.table(columns)
    os.makedirs(folder)
    per_file = -(-rows // files)
    for k in range(files):
        pq.write_table(table.slice(k * per_file, per_file), os.path.join(folder, f"part-{k:03d}.parquet"))
    order = np.lexsort((-event_us, entity))  # by entity, latest first
    first = np.ones(rows, dtype=bool)
    first[1:] = entity[order][1:] != entity[order][:-1]
    latest = table.take(pa.array(order[first]))
    f0_sum = float(np.sum(columns["f0"].to_numpy())) if features else 0.0
    return Source(folder, rows, entities, feature_names, f0_sum, latest)


def write_feature_store(folder: str, source: Source, redis_url: str) -> FeatureStoreConfig:
    """featurestore.yaml and one feature set spec: the source columns as is, both stores, no TTL."""
    os.makedirs(os.path.join(folder, "featuresets"))
    with open(os.path.join(folder, "featurestore.yaml"), "w", encoding="utf-8") as handle:
        handle.write(
            f"project: {PROJECT}\n"
            "feature_sets: featuresets\n"
            "offline_store:\n  path: offline\n"
            f"online_store:\n  redis_url: {redis_url}\n"
            "interval_table:\n  url: sqlite:///intervals.db\n"
            "engine:\n  type: embedded\n"
        )
    features = "".join(f"  - {{name: {name}, type: double}}\n" for name in source.features)
    with open(os.path.join(folder, "featuresets", f"{FEATURE_SET}.yaml"), "w", encoding="utf-8") as handle:
        handle.write(
            f"name: {FEATURE_SET}\nversion: 1\n"
            "index_columns:\n  - {name: entity_id, type: string}\n"
            "timestamp_column: event_time\n"
            f"source:\n  format: parquet\n  path: {source.path}\n  timestamp_column: event_time\n"
            f"features:\n{features}"
            "materialization:\n  offline: true\n  online: true\n  start: 2025-06-01\n  max_job_window: 1d\n"
        )
    return load_config(os.path.join(folder, "featurestore.yaml"))


# ---- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu: float  # this process (Sail runs in it)
    redis_cpu: float | None


@dataclass
class Figure:
    label: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str = "seconds") -> float | None:
        values = [getattr(run, attribute) for run in self.runs]
        return None if any(v is None for v in values) else statistics.median(values)


class Meter:
    """Wall clock, this process's CPU, the Redis server's CPU; RSS sampled while `sampling`."""

    def __init__(self, client: redis.Redis) -> None:
        self.me = psutil.Process()
        self.redis_process: psutil.Process | None = None
        try:
            pid = int(client.info("server")["process_id"])
            host = client.connection_pool.connection_kwargs.get("host", "localhost")
            if host in ("127.0.0.1", "localhost", "::1"):
                self.redis_process = psutil.Process(pid)
        except (psutil.Error, KeyError, ValueError, redis.RedisError):
            self.redis_process = None
        self.peak_rss = 0  # over the runs measured with sample_memory, reset by the caller
        self.sampling = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            if self.sampling:
                self.peak_rss = max(self.peak_rss, self.me.memory_info().rss)

    def _redis_cpu(self) -> float | None:
        if self.redis_process is None:
            return None
        try:
            times = self.redis_process.cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    def measure(self, func: Callable[[], Any], *, sample_memory: bool = False) -> tuple[Run, Any]:
        redis_before = self._redis_cpu()
        cpu_before = time.process_time()
        self.sampling = sample_memory
        began = time.perf_counter()
        try:
            result = func()
        finally:
            seconds = time.perf_counter() - began
            self.sampling = False
        cpu = time.process_time() - cpu_before
        redis_after = self._redis_cpu()
        redis_cpu = None if redis_before is None or redis_after is None else redis_after - redis_before
        return Run(seconds, cpu, redis_cpu), result

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def alternating(repeats: int, pairs: list[tuple[Figure, Callable[[], Run]]]) -> None:
    """Run each figure's function `repeats` times, the order reversed on every other round."""
    for round_ in range(repeats):
        for figure, func in pairs if round_ % 2 == 0 else pairs[::-1]:
            figure.runs.append(func())


# ---- the bench ----------------------------------------------------------------------------


class Bench:
    def __init__(
        self, options: argparse.Namespace, folder: str, source: Source, config: FeatureStoreConfig
    ) -> None:
        self.options = options
        self.folder = folder
        self.source = source
        self.config = config
        self.spec = config.get(FEATURE_SET, 1)
        self.layout = OnlineLayout.from_spec(config, self.spec)
        self.table_path = config.offline_table_path(self.spec)
        self.bare_path = os.path.join(folder, "bare_offline")
        self.client = redis.Redis.from_url(options.redis_url)
        self.meter = Meter(self.client)
        self.spark = EmbeddedEngine(config).session()
        self.window_rows = source.rows  # every source row is inside the day
        self.rng = np.random.default_rng(1)  # which entities are spot-checked

    # -- one run of each thing measured --

    def job(self, stores: tuple[str, ...]) -> ChunkResult:
        chunk = ChunkSpec("bench-" + "-".join(stores), START, END, stores)
        reports: list[ChunkResult] = []
        batch = BatchSpec(self.config.config_path, FEATURE_SET, 1, (chunk,))
        spark_job.materialize_batch(self.spark, batch, reports.append, self.config)
        result = reports[-1]
        if result.error is not None:
            raise SystemExit(f"job {stores} failed: {result.error}")
        return result

    def offline_ours(self) -> Run:
        run, result = self.meter.measure(lambda: self.job(("offline",)))
        expect(result.rows_written["offline"] == self.window_rows, result)
        return run

    def offline_bare(self) -> Run:
        end = datetime.fromtimestamp(END, UTC)
        predicate = f"event_time >= timestamp'{DAY:%Y-%m-%d %H:%M:%S}' AND event_time < timestamp'{end:%Y-%m-%d %H:%M:%S}'"

        def bare() -> None:
            frame = self.spark.read.format("parquet").load(self.source.path).where(predicate)
            frame.write.format("delta").mode("overwrite").save(self.bare_path)

        run, _ = self.meter.measure(bare)
        return run

    def online_ours(self) -> Run:
        self.client.flushdb()
        run, result = self.meter.measure(lambda: self.job(("online",)), sample_memory=True)
        expect(
            result.entities == self.source.entities and result.rows_written["online"] == self.source.entities,
            result,
        )
        self.check_online()
        return run

    def online_writer(self, store: OnlineStore) -> Run:
        self.client.flushdb()
        run, stats = self.meter.measure(lambda: store.write(self.layout, self.source.latest))
        expect(stats.written == self.source.entities, stats)
        self.check_online()
        return run

    def online_bare(self) -> Run:
        self.client.flushdb()
        commands = self.bare_commands()  # the values turned into text: not timed

        def bare() -> None:
            pipe = self.client.pipeline(transaction=False)
            for i, command in enumerate(commands, 1):
                pipe.execute_command("HSET", *command)
                if i % BARE_CHUNK == 0:
                    pipe.execute()
            pipe.execute()

        run, _ = self.meter.measure(bare)
        self.check_online()
        return run

    def sail_latest(self) -> Run:
        """Our read + check + window + latest_per_entity, drained by a no-op mapInArrow (no Redis)."""

        def drain(batches):  # type: ignore[no-untyped-def]
            rows = sum(batch.num_rows for batch in batches)
            yield pa.record_batch([pa.array([rows], pa.int64())], names=["rows"])

        def latest() -> int:
            spec = self.spec
            source = sources.read_source(self.spark, spec, START, END)
            rows = transformation.in_window(row_checks.check_output(source, spec), spec, START, END)
            names = [c.name for c in spec.index_columns]
            frame = online_write.latest_per_entity(rows, names, spec.timestamp_column).repartition(4)
            return sum(row["rows"] for row in frame.mapInArrow(drain, "rows long").collect())

        run, count = self.meter.measure(latest)
        expect(count == self.source.entities, count)
        return run

    def both(self) -> Run:
        self.client.flushdb()
        run, result = self.meter.measure(lambda: self.job(("offline", "online")), sample_memory=True)
        expect(result.rows_written == {"offline": self.window_rows, "online": self.source.entities}, result)
        self.check_online()
        return run

    # -- checks --

    def bare_commands(self) -> list[tuple[str, ...]]:
        """`key f0 v0 ... _event_time t` per entity, every value already text."""
        latest = self.source.latest
        keys = [self.layout.prefix + key for key in latest.column("entity_id").to_pylist()]
        values = [[str(v) for v in latest.column(name).to_pylist()] for name in self.source.features]
        event_us = [str(v) for v in latest.column("event_time").cast(pa.int64()).to_pylist()]
        commands = []
        for i, key in enumerate(keys):
            command = [key]
            for name, column in zip(self.source.features, values, strict=True):
                command += [name, column[i]]
            commands.append((*command, "_event_time", event_us[i]))
        return commands

    def check_online(self) -> None:
        """One key per entity; a few random entities hold exactly the source's latest row."""
        keys = entity_keys(self.client)
        expect(keys == self.source.entities, f"{keys} keys in Redis, expected {self.source.entities}")
        latest = self.source.latest
        for i in self.rng.choice(
            latest.num_rows, size=min(SPOT_CHECKS, latest.num_rows), replace=False
        ).tolist():
            row = latest.slice(i, 1).to_pylist()[0]
            stored = self.client.hgetall(self.layout.prefix + row["entity_id"])
            expected_us = int(latest.column("event_time").cast(pa.int64())[i].as_py())
            expect(int(stored[b"_event_time"]) == expected_us, (row, stored))
            for name in self.source.features:
                expect(float(stored[name.encode()]) == row[name], (name, row, stored))

    def check_offline(self, path: str) -> None:
        from pyspark.sql import functions as F  # noqa: N812

        frame = self.spark.read.format("delta").load(path)
        got = frame.agg(F.count("*").alias("n"), F.sum("f0").alias("s")).collect()[0]
        expect(got["n"] == self.window_rows, f"{path}: {got['n']} rows, expected {self.window_rows}")
        expect(
            abs(got["s"] - self.source.f0_sum) <= 1e-6 * max(1.0, abs(self.source.f0_sum)),
            (got, self.source.f0_sum),
        )


# ---- report -------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(
    options: argparse.Namespace,
    bench: Bench,
    figures: dict[str, Figure],
    setup: dict[str, float],
    memory: dict[str, float],
) -> None:
    src = bench.source
    entities, rows = src.entities, src.rows
    med = {name: figure.median() for name, figure in figures.items()}

    print()
    print(
        f"materialize benchmark: {rows:,} source rows on {DAY:%Y-%m-%d} ({options.files} parquet files), "
        f"{entities:,} entities, {len(src.features)} double features; embedded engine Sail {pysail.__version__}; "
        f"{options.redis_url}; {os.cpu_count()} cores; load average at end {os.getloadavg()[0]:.1f}"
    )
    print("set-up, in no figure: " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()))
    print(f"median of {options.repeats} (ours and bare alternating); CPU = seconds of CPU in the run\n")
    header = f"{'what':<58} {'median s':>8} {'runs s':>20} {'entities/s':>11} {'rows/s':>10} {'this CPU':>8} {'redis CPU':>9}"
    print(header)
    print("-" * len(header))

    def line(name: str, *, count_entities: bool = False, count_rows: bool = False) -> None:
        figure = figures[name]
        seconds = med[name]
        runs = " ".join(f"{run.seconds:.2f}" for run in figure.runs)
        ent = f"{entities / seconds:,.0f}" if count_entities and seconds else ""
        rps = f"{rows / seconds:,.0f}" if count_rows and seconds else ""
        print(
            f"{figure.label:<58} {fmt(seconds, '.3f'):>8} {runs:>20} {ent:>11} {rps:>10} "
            f"{fmt(figure.median('cpu')):>8} {fmt(figure.median('redis_cpu')):>9}"
        )

    print("offline (Delta)")
    line("offline_ours", count_rows=True)
    line("offline_bare", count_rows=True)
    print("online (Redis)")
    line("online_ours", count_entities=True, count_rows=True)
    line("online_bare", count_entities=True)
    line("online_writer", count_entities=True)
    line("sail_latest", count_rows=True)
    print("both stores")
    line("both", count_entities=True, count_rows=True)

    mb = {name: value / 2**20 for name, value in memory.items()}
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    online_s = med["online_ours"]
    print(
        f"\nonline job end to end (read + latest + guarded write): {online_s:.2f} s, "
        f"{entities / online_s:,.0f} entities/s, {rows / online_s:,.0f} source rows/s, "
        f"peak RSS {mb['online']:,.0f} MB (this whole process: Sail, client, the benchmark's latest rows; "
        f"{mb['before']:,.0f} MB before the first timed run)"
    )
    print(
        f"peak RSS during the both-store jobs {mb['both']:,.0f} MB; ru_maxrss over the whole run "
        f"(set-up included) {max_rss_mb:,.0f} MB"
    )

    offline_ratio = med["offline_ours"] / med["offline_bare"]
    online_ratio = med["online_bare"] / online_s  # entities/s ours over bare
    writer_ratio = med["online_bare"] / med["online_writer"]
    print(f"\n{'goal':<58} {'figure':>8} {'target':>8}  met")
    goals = [
        ("offline: ours / bare seconds", offline_ratio, "<= 1.25", offline_ratio <= 1.25),
        ("online: ours (whole job) / bare entities/s", online_ratio, ">= 1.0", online_ratio >= 1.0),
        (
            "online: our writer alone (no Spark) / bare entities/s",
            writer_ratio,
            ">= 1.0",
            writer_ratio >= 1.0,
        ),
    ]
    for label, value, target, met in goals:
        print(f"{label:<58} {value:>8.2f} {target:>8}  {'yes' if met else 'NO'}")


# ---- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--files", type=int, default=4, help="parquet files of the source")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="a database this FLUSHDBs")
    options = parser.parse_args()
    if not 0 < options.entities <= options.rows <= 86_400_000_000 or options.features < 1:
        parser.error("need 0 < entities <= rows <= 86.4e9 (distinct microseconds in a day) and features >= 1")

    client = redis.Redis.from_url(options.redis_url)
    client.ping()
    folder = tempfile.mkdtemp(prefix="fs_bench_materialize_")
    setup: dict[str, float] = {}
    bench: Bench | None = None
    try:
        began = time.perf_counter()
        source = write_source(
            os.path.join(folder, "source"), options.rows, options.entities, options.features, options.files
        )
        config = write_feature_store(os.path.join(folder, "store"), source, options.redis_url)
        setup["source and store"] = time.perf_counter() - began
        began = time.perf_counter()
        bench = Bench(options, folder, source, config)
        setup["engine start"] = time.perf_counter() - began
        figures = {
            name: Figure(label)
            for name, label in [
                ("offline_ours", "ours: job stores=(offline,), replaceWhere of the day"),
                ("offline_bare", "bare: parquet > window filter > delta overwrite"),
                ("online_ours", "ours: job stores=(online,): read, latest, guarded write"),
                ("online_bare", "bare: pipelined HSET of precomputed latest rows"),
                ("online_writer", "  our writer alone: OnlineStore.write, same rows"),
                ("sail_latest", "  Sail alone: read + latest_per_entity, no-op mapInArrow"),
                ("both", "ours: job stores=(offline, online)"),
            ]
        }
        memory: dict[str, float] = {}

        # Online first, while the process holds only Sail and the latest rows (memory figure).
        began = time.perf_counter()
        store = online_store_for(options.redis_url)
        bench.online_ours()  # warm-up: imports, script load, plan paths
        bench.online_writer(store)
        setup["online warm-up"] = time.perf_counter() - began
        pa.default_memory_pool().release_unused()
        memory["before"] = psutil.Process().memory_info().rss
        bench.meter.peak_rss = 0
        alternating(
            options.repeats,
            [
                (figures["online_ours"], bench.online_ours),
                (figures["online_bare"], bench.online_bare),
                (figures["online_writer"], lambda: bench.online_writer(store)),
                (figures["sail_latest"], bench.sail_latest),
            ],
        )
        store.close()
        memory["online"] = bench.meter.peak_rss

        began = time.perf_counter()
        bench.offline_ours()  # warm-up: creates both tables, so every timed run replaces the day
        bench.offline_bare()
        setup["offline warm-up"] = time.perf_counter() - began
        alternating(
            options.repeats,
            [(figures["offline_ours"], bench.offline_ours), (figures["offline_bare"], bench.offline_bare)],
        )
        bench.check_offline(bench.table_path)
        bench.check_offline(bench.bare_path)

        bench.meter.peak_rss = 0
        alternating(options.repeats, [(figures["both"], bench.both)])
        memory["both"] = bench.meter.peak_rss
        bench.check_offline(bench.table_path)
        print_report(options, bench, figures, setup, memory)
    finally:
        if bench is not None:
            bench.meter.close()
        _Sail.stop()  # the session, then the server: the process would hang at exit otherwise
        client.flushdb()
        client.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
