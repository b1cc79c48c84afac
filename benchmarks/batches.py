"""Benchmark: what chunking a backfill costs, against bare pipelines measured in the same run.

Why: a backfill is cut into chunks of at most `max_job_window` (1d by default), run in batches
(one engine run each, one online write per batch). These figures show what chunking still
costs on the embedded engine (a 10-day both-store backfill against the same work done bare)
and on a JVM Spark (a backfill of many small chunks against one job over the same rows). Every job runs the code of this
checkout, whatever it does: nothing here assumes how chunks are run.

(a) `embedded`: the dataset of `vs_feast.py` (seeded, `--rows` 1,000,000, `--entities`
    100,000 int64 x 10 rows, 10 float64 features, `--days` 10 days, one parquet file). Ours: a
    fresh process timing `FeatureStore.backfill(...)` of the days with stores offline+online
    and the default spec (1d chunks, so one job per day). Bare, a fresh process doing the same
    work without the package: a Sail server and session, `read.parquet` ->
    `to_date(event_timestamp)` as `event_date` -> `write.format("delta").partitionBy(
    "event_date").mode("overwrite")`, then the latest row per entity with pyarrow/numpy and a
    redis-py pipelined `HSET key f0 v0 .. _event_time t` per entity (`ours_side.py bare`).
    Rounds alternate ours, bare, ours, bare...; each starts with an empty Redis database, no
    Delta table and no interval table.

(b) `jvm`: `engine: {type: spark-submit, master: "local[2]"}` (pyspark's spark-submit on the
    JVM), delta-spark's jars by their Maven coordinates (`scripts/delta-jars.sh`, the version
    setup.cfg pins, cached after the first run),
    with Delta's SQL extension and catalog. A smaller dataset (`--jvm-rows` 100,000 rows,
    `--jvm-entities` 10,000) over `--jvm-hours` (48) hours; a both-store backfill of the whole
    window with `max_job_window: 1h` (48 jobs) against the same window with `max_job_window`
    equal to the window (1 job), each a fresh process. Also timed: an empty spark-submit with
    the same jars (the per-job floor: JVM start, session start).

For each: the call (in-process), the process's wall clock, its peak RSS (`ru_maxrss` from
`wait4`: with spark-submit, the largest of the process and the JVMs it waited for), the Redis
server's CPU, and the ratio ours / bare (a) or chunked / one job (b). Checked, not only timed:
every Delta table holds exactly the source's rows (count and sum of f0, read with `deltalake`),
every Redis database one key per entity, and seeded entities their latest source row.

Redis: a throwaway `redis-server` on a free loopback port unless `--redis-url` names one
(databases 3-6 are then flushed). The working folder is deleted at the end unless `--keep`.

Run: `python benchmarks/batches.py [--rounds 3] [--rows 1000000] [--only embedded|jvm]
[--jvm-rounds 1] [--jvm-hours 48] [--quick] [--redis-url URL] [--keep]`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
import workload as wl  # first: it puts this checkout on the path before common imports the package
from common import aligned

sys.path.insert(0, str(wl.ROOT / "tests"))
from spark_cluster import delta_jars  # noqa: E402 - the tests' jar fetch, one mechanism

FEATURE_SET = "tenday"
DB = {"ours": 3, "bare": 4, "hourly": 5, "whole": 6}
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
}
PROBE = '''"""An empty job: a session with Delta, one tiny table written and read back."""
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("delta probe").getOrCreate()
spark.range(3).write.format("delta").mode("overwrite").save(sys.argv[1])
count = spark.read.format("delta").load(sys.argv[1]).count()
spark.stop()
print("BENCH_RESULT {\\"call_s\\": 0, \\"count\\": %d}" % count)
'''


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass
class Bench:
    options: argparse.Namespace
    folder: str
    base_url: str
    redis_pid: int

    def url(self, name: str) -> str:
        return f"{self.base_url}/{DB[name]}"

    def client(self, name: str) -> redis.Redis:
        return redis.Redis.from_url(self.url(name))

    def child(self, label: str, command: list[str], timeout: float | None = None) -> wl.ChildRun:
        return wl.run_child(
            label,
            command,
            log_dir=os.path.join(self.folder, "logs"),
            timeout=timeout or self.options.timeout,
            env=wl.child_env(),
            redis_pid_=self.redis_pid,
        )


def check_delta(path: str, source: wl.Source, what: str) -> None:
    """The table holds exactly the source's rows: their count and the sum of f0."""
    from deltalake import DeltaTable

    table = DeltaTable(path).to_pyarrow_table(columns=["f0"])
    wl.expect(
        table.num_rows == source.rows, f"{what}: {table.num_rows:,} rows in {path}, expected {source.rows:,}"
    )
    total = float(sum(chunk.to_numpy().sum() for chunk in table.column("f0").chunks))
    wl.expect(
        abs(total - source.f0_sum) <= 1e-9 * max(1.0, abs(source.f0_sum)),
        f"{what}: sum of f0 {total!r}, source {source.f0_sum!r}",
    )


def check_redis(
    client: redis.Redis, prefix: str, source: wl.Source, what: str, seed: int, sample: int
) -> None:
    keys = wl.entity_keys(client)
    wl.expect(keys == source.entities, f"{what}: {keys:,} keys, expected {source.entities:,}")
    wl.check_online_sample(client, prefix, source, wl.sample_entities(source.entities, sample, seed), what)


def backfill_command(config: str, name: str, source: wl.Source, stores: str) -> list[str]:
    return [
        sys.executable,
        str(wl.BENCH / "ours_side.py"),
        "backfill",
        config,
        name,
        iso(source.start),
        iso(source.end),
        stores,
    ]


def row(label: str, run: wl.ChildRun, entities: int) -> list[str]:
    timed = run.call > 0  # the empty spark-submit has no call, only its wall clock
    return [
        label,
        str(run.result.get("jobs", "-")),
        f"{run.call:.2f}" if timed else "-",
        f"{run.wall:.2f}",
        f"{run.rss_mb:,.0f}",
        f"{entities / run.call:,.0f}" if timed else "-",
        "-" if run.redis_cpu is None else f"{run.redis_cpu:.2f}",
    ]


HEADER = ["run", "jobs", "call s", "wall s", "peak RSS MB", "entities/s", "redis CPU s"]


# ---- (a) the embedded engine against a bare Sail + redis-py pipeline ---------------------------


def embedded(bench: Bench) -> list[list[str]]:
    options = bench.options
    source = wl.generate(
        os.path.join(bench.folder, "data", "tenday.parquet"),
        rows=options.rows,
        entities=options.entities,
        features=10,
        seconds=options.days * 86_400,
        seed=options.seed,
    )
    print(
        f"(a) embedded: {source.rows:,} rows, {source.entities:,} entities, {options.days} days "
        f"(generated in {source.seconds:.1f} s); {options.rounds} round(s) of ours then bare",
        flush=True,
    )
    store = os.path.join(bench.folder, "embedded")
    config = wl.write_feature_store(store, source, bench.url("ours"), {FEATURE_SET: None})
    bare_path = os.path.join(bench.folder, "bare_offline")
    prefix = f"{wl.PROJECT}:{FEATURE_SET}:v1:"
    bare_options = {
        "source": source.path,
        "delta": bare_path,
        "redis_url": bench.url("bare"),
        "prefix": prefix,
        "features": source.features,
        "entities": source.entities,
    }
    ours_runs: list[wl.ChildRun] = []
    bare_runs: list[wl.ChildRun] = []
    lines = [HEADER]
    ours_client, bare_client = bench.client("ours"), bench.client("bare")
    try:
        for number in range(1, options.rounds + 1):
            ours_client.flushdb()
            wl.reset_feature_store(store)
            ours = bench.child(
                f"embedded ours round {number}",
                backfill_command(config, FEATURE_SET, source, "offline,online"),
            )
            wl.check_package_root(str(ours.result["package"]))
            check_delta(os.path.join(store, "offline", FEATURE_SET, "v1"), source, f"ours round {number}")
            check_redis(
                ours_client, prefix, source, f"ours round {number}", options.seed + number, options.sample
            )
            ours_runs.append(ours)
            lines.append(row(f"round {number} ours: backfill offline+online", ours, source.entities))
            print(f"  round {number} ours  call {ours.call:6.2f} s  wall {ours.wall:6.2f} s", flush=True)

            bare_client.flushdb()
            shutil.rmtree(bare_path, ignore_errors=True)
            bare = bench.child(
                f"embedded bare round {number}",
                [sys.executable, str(wl.BENCH / "ours_side.py"), "bare", json.dumps(bare_options)],
            )
            check_delta(bare_path, source, f"bare round {number}")
            check_redis(
                bare_client, prefix, source, f"bare round {number}", options.seed + number, options.sample
            )
            bare_runs.append(bare)
            lines.append(row(f"round {number} bare: Sail delta write + HSET", bare, source.entities))
            phases = ", ".join(f"{k} {v:.2f}" for k, v in bare.result["phases"].items())  # type: ignore[union-attr]
            print(
                f"  round {number} bare  call {bare.call:6.2f} s  wall {bare.wall:6.2f} s  ({phases})",
                flush=True,
            )
    finally:
        ours_client.flushdb()
        bare_client.flushdb()
        ours_client.close()
        bare_client.close()
    print(f"\n(a) per round ({source.entities:,} entities; ours: {ours_runs[0].result['jobs']} jobs of 1d)")
    print(aligned(lines, text_columns=1))
    o_call, b_call = wl.median([r.call for r in ours_runs]), wl.median([r.call for r in bare_runs])
    o_wall, b_wall = wl.median([r.wall for r in ours_runs]), wl.median([r.wall for r in bare_runs])
    o_rss, b_rss = wl.median([r.rss_mb for r in ours_runs]), wl.median([r.rss_mb for r in bare_runs])
    return [
        [
            "(a) embedded, 10 days offline+online: call s",
            f"{o_call:.2f}",
            f"{b_call:.2f}",
            wl.ratio(o_call, b_call),
        ],
        ["(a) embedded: whole process wall s", f"{o_wall:.2f}", f"{b_wall:.2f}", wl.ratio(o_wall, b_wall)],
        ["(a) embedded: peak RSS MB", f"{o_rss:,.0f}", f"{b_rss:,.0f}", wl.ratio(o_rss, b_rss)],
    ]


# ---- (b) spark-submit on the JVM: many small jobs against one ----------------------------------


def delta_version() -> str:
    return importlib.metadata.version("delta-spark")


def probe(bench: Bench, jars: str, number: int) -> wl.ChildRun:
    """An empty spark-submit with the Delta jars: the floor every job pays (JVM, session, Delta)."""
    from airflow_provider_featurestore.core.materialization.engines import spark_submit_binary

    script = os.path.join(bench.folder, "delta_probe.py")
    Path(script).write_text(PROBE)
    command = [spark_submit_binary(), "--master", "local[2]"]
    for key, value in {**DELTA_CONF, "spark.jars": jars}.items():
        command += ["--conf", f"{key}={value}"]
    command += [script, os.path.join(bench.folder, f"probe_table_{number}")]
    run = wl.run_child(
        f"delta probe {number}",
        command,
        log_dir=os.path.join(bench.folder, "logs"),
        timeout=900,
        env={**wl.child_env(), "PYSPARK_PYTHON": sys.executable},
    )
    wl.expect(run.result.get("count") == 3, f"delta probe read back {run.result}")
    return run


def jvm(bench: Bench) -> list[list[str]]:
    options = bench.options
    hours = options.jvm_hours
    wl.expect(wl.START % (hours * 3600) == 0, f"--jvm-hours {hours}: the window start is no multiple of it")
    from pyspark import __version__ as pyspark_version

    print(
        f"\n(b) jvm: spark-submit --master local[2], pyspark {pyspark_version}, delta-spark {delta_version()}"
    )
    began = time.perf_counter()
    jars = delta_jars()
    fetch_s = time.perf_counter() - began
    floor = probe(bench, jars, 1)
    print(
        f"  delta-spark jars {jars} (scripts/delta-jars.sh: {fetch_s:.0f} s); "
        f"an empty spark-submit with them: {floor.wall:.1f} s wall, {floor.rss_mb:,.0f} MB",
        flush=True,
    )
    source = wl.generate(
        os.path.join(bench.folder, "data", "jvm.parquet"),
        rows=options.jvm_rows,
        entities=options.jvm_entities,
        features=10,
        seconds=hours * 3600,
        seed=options.seed + 7,
    )
    conf = {**DELTA_CONF, "spark.jars": jars}
    engine = "engine:\n  type: spark-submit\n  master: local[2]\n  conf:\n" + "".join(
        f"    {key}: {value}\n" for key, value in conf.items()
    )
    stores = {
        "hourly": wl.write_feature_store(
            os.path.join(bench.folder, "jvm_hourly"),
            source,
            bench.url("hourly"),
            {"hourly": "1h"},
            engine=engine,
        ),
        "whole": wl.write_feature_store(
            os.path.join(bench.folder, "jvm_whole"),
            source,
            bench.url("whole"),
            {"whole": f"{hours}h"},
            engine=engine,
        ),
    }
    print(
        f"  data: {source.rows:,} rows, {source.entities:,} entities over {hours} h; "
        f"{options.jvm_rounds} round(s) of one job then {hours} jobs",
        flush=True,
    )
    runs: dict[str, list[wl.ChildRun]] = {"hourly": [], "whole": []}
    lines = [HEADER, row("empty spark-submit with the Delta jars", floor, source.entities)]
    for number in range(1, options.jvm_rounds + 1):
        for name, label in (("whole", f"max_job_window {hours}h"), ("hourly", "max_job_window 1h")):
            client = bench.client(name)
            try:
                client.flushdb()
                wl.reset_feature_store(os.path.dirname(stores[name]))
                got = bench.child(
                    f"jvm {name} round {number}",
                    backfill_command(stores[name], name, source, "offline,online"),
                    timeout=options.jvm_timeout,
                )
                expected_jobs = hours if name == "hourly" else 1
                wl.expect(
                    got.result["jobs"] == expected_jobs,
                    f"{name}: {got.result['jobs']} jobs, expected {expected_jobs}",
                )
                check_delta(
                    os.path.join(os.path.dirname(stores[name]), "offline", name, "v1"), source, f"jvm {name}"
                )
                check_redis(
                    client,
                    f"{wl.PROJECT}:{name}:v1:",
                    source,
                    f"jvm {name}",
                    options.seed + number,
                    options.sample,
                )
            finally:
                client.flushdb()
                client.close()
            runs[name].append(got)
            lines.append(row(f"round {number}: {label}", got, source.entities))
            print(
                f"  round {number} {label:<20} {got.result['jobs']:>3} job(s)  call {got.call:7.2f} s  "
                f"wall {got.wall:7.2f} s  peak RSS {got.rss_mb:,.0f} MB",
                flush=True,
            )
    print(f"\n(b) per round ({source.entities:,} entities)")
    print(aligned(lines, text_columns=1))
    h_call, w_call = wl.median([r.call for r in runs["hourly"]]), wl.median([r.call for r in runs["whole"]])
    h_wall, w_wall = wl.median([r.wall for r in runs["hourly"]]), wl.median([r.wall for r in runs["whole"]])
    h_rss, w_rss = wl.median([r.rss_mb for r in runs["hourly"]]), wl.median([r.rss_mb for r in runs["whole"]])
    return [
        [
            f"(b) jvm, {hours} jobs of 1h vs 1 job of {hours}h: call s",
            f"{h_call:.2f}",
            f"{w_call:.2f}",
            wl.ratio(h_call, w_call),
        ],
        ["(b) jvm: whole process wall s", f"{h_wall:.2f}", f"{w_wall:.2f}", wl.ratio(h_wall, w_wall)],
        ["(b) jvm: peak RSS MB (largest process)", f"{h_rss:,.0f}", f"{w_rss:,.0f}", wl.ratio(h_rss, w_rss)],
        ["(b) jvm: empty spark-submit x jobs, s", f"{floor.wall * hours:.2f}", f"{floor.wall:.2f}", ""],
    ]


# ---- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("embedded", "jvm"), help="run only one part")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), ours then bare")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--jvm-rounds", type=int, default=1, help="rounds of (b), one job then many")
    parser.add_argument("--jvm-rows", type=int, default=100_000)
    parser.add_argument("--jvm-entities", type=int, default=10_000)
    parser.add_argument("--jvm-hours", type=int, default=48, help="the window of (b), in 1h jobs")
    parser.add_argument(
        "--jvm-timeout", type=float, default=3600, help="seconds before a (b) backfill is killed"
    )
    parser.add_argument("--quick", action="store_true", help="(a) 100,000 rows 1 round; (b) 6 hours")
    parser.add_argument("--sample", type=int, default=200, help="entities whose values are checked")
    parser.add_argument("--redis-url", help="an existing Redis server (default: a throwaway redis-server)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a child process is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the working folder (printed)")
    options = parser.parse_args()
    if options.quick:
        options.rows, options.entities, options.rounds = 100_000, 10_000, 1
        options.jvm_hours, options.sample = 6, 50
    wl.use_this_checkout()
    began = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="fs_bench_batches_")
    print(f"batches: working folder {folder}; {os.cpu_count()} cores; load average {wl.load_average()}")
    summary = [["figure (median of rounds)", "chunked (ours)", "baseline", "ratio"]]
    try:
        with wl.redis_server(options.redis_url) as base_url:
            client = redis.Redis.from_url(base_url)
            bench = Bench(options, folder, base_url, wl.redis_pid(client))
            client.close()
            if options.only in (None, "embedded"):
                summary += embedded(bench)
            if options.only in (None, "jvm"):
                summary += jvm(bench)
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nwhole run {time.perf_counter() - began:.0f} s; load average at end {wl.load_average()}\n")
    print(
        "### Chunked backfills against their baselines "
        "((a) baseline = bare Sail Delta write + pipelined HSET; (b) baseline = one job)\n"
    )
    print(wl.markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
