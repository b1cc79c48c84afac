"""Benchmark: our jobs on a standalone Spark cluster against bare delta-spark and redis-py, one run.

Why: the cluster path is what a team moves to when it outgrows one machine; its cost over the
bare tools must be known, not guessed. The cluster is the tests' own (`tests/spark_cluster.py`:
a master and two workers from the pinned PySpark's distribution, delta-spark's jars by Maven
coordinates, `docker/featurestore.yaml`'s engine.conf).

Data: the `vs_feast.py` shape, smaller (`--rows` 200,000, `--entities` 20,000 int64 x 10 rows, 10
float64 features, event times over `--days` 2 days), one parquet file. Each figure is one fresh
process on the cluster (`spark-submit --master spark://...`), each from an empty Delta folder and
Redis database:

| ours | bare baseline (same run, same cluster) |
|---|---|
| backfill of the days, stores offline (default spec: 1d chunks, one batch) | spark-submit: read parquet, `event_date`, one Delta `overwrite` |
| backfill of the days, stores online | spark-submit: the latest row per entity (window function), collected, redis-py pipelined `HSET` |
| backfill of the days, both stores | the two bare jobs' sum |

Checked, not only timed: the Delta tables hold the source's rows (count and sum of f0, read with
delta-rs), Redis one key per entity, and sampled entities their latest source row.

Run: `python benchmarks/cluster.py [--rows 200000] [--entities 20000] [--days 2] [--keep]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import workload as wl  # first: it puts this checkout on the path
from batches import check_delta, check_redis, iso
from common import aligned

sys.path.insert(0, str(wl.ROOT / "tests"))
from spark_cluster import SparkServices  # noqa: E402 - the tests' cluster, one mechanism

BARE = '''"""The bare baseline on the cluster: no package code."""
import json, sys, time
from pyspark.sql import SparkSession, Window, functions as F

options = json.loads(sys.argv[1])
began = time.perf_counter()  # like ours, the call includes the session's start on the cluster
spark = SparkSession.builder.appName("bare " + options["what"]).getOrCreate()
frame = spark.read.parquet(options["source"])
if options["what"] == "offline":
    frame.withColumn("event_date", F.to_date("event_timestamp")).write.format("delta") \\
        .partitionBy("event_date").mode("overwrite").save(options["delta"])
else:
    import redis
    rank = F.row_number().over(Window.partitionBy("entity_id").orderBy(F.col("event_timestamp").desc()))
    latest = frame.withColumn("r", rank).where("r = 1").drop("r").toArrow()
    client = redis.Redis.from_url(options["redis_url"])
    pipe = client.pipeline(transaction=False)
    names = options["features"]
    columns = {n: latest.column(n).to_pylist() for n in names}
    times = latest.column("event_timestamp").cast("int64").to_pylist()
    for i, entity in enumerate(latest.column("entity_id").to_pylist()):
        mapping = {n: repr(columns[n][i]) for n in names}
        mapping["_event_time"] = str(times[i])
        pipe.hset(options["prefix"] + str(entity), mapping=mapping)
        if (i + 1) % 1000 == 0:
            pipe.execute()
    pipe.execute()
call = time.perf_counter() - began
spark.stop()
print("BENCH_RESULT " + json.dumps({"call_s": call}))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="fs_bench_cluster_")
    services = SparkServices(Path(folder) / "spark")
    (Path(folder) / "spark").mkdir()
    print(f"cluster: working folder {folder}; 2 cores; load average {wl.load_average()}", flush=True)
    try:
        with wl.redis_server(None) as base_url:
            master = services.cluster()
            print(
                f"  standalone cluster {master}: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in services.started_s.items())
            )
            source = wl.generate(
                os.path.join(folder, "data", "source.parquet"),
                rows=options.rows,
                entities=options.entities,
                features=10,
                seconds=options.days * 86400,
            )
            conf = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in services.submit_conf().items())
            engine = f"engine:\n  type: spark-submit\n  master: {master}\n  conf:\n{conf}"
            import redis

            pid = wl.redis_pid(redis.Redis.from_url(base_url))
            log_dir = os.path.join(folder, "logs")
            env = {**wl.child_env(), **{k: v for k, v in services.env().items() if k == "SPARK_HOME"}}
            runs: dict[str, wl.ChildRun] = {}
            for number, stores in enumerate(("offline", "online", "offline,online"), start=1):
                url = f"{base_url}/{number}"
                root = os.path.join(folder, f"ours_{number}")
                config = wl.write_feature_store(root, source, url, {"cluster": None}, engine=engine)
                command = [sys.executable, str(wl.BENCH / "ours_side.py"), "backfill", config, "cluster",
                           iso(source.start), iso(source.end), stores]  # fmt: skip
                runs[f"ours {stores}"] = wl.run_child(
                    f"ours {stores}", command, log_dir=log_dir, timeout=1800, env=env, redis_pid_=pid
                )
                if "offline" in stores:
                    check_delta(os.path.join(root, "offline", "cluster", "v1"), source, f"ours {stores}")
                if "online" in stores:
                    client = redis.Redis.from_url(url)
                    check_redis(client, f"{wl.PROJECT}:cluster:v1:", source, f"ours {stores}", 0, 50)
                print(f"  ours {stores:<15} call {runs[f'ours {stores}'].call:7.2f} s", flush=True)
            script = os.path.join(folder, "bare.py")
            Path(script).write_text(BARE)
            for what in ("offline", "online"):
                url = f"{base_url}/{4 if what == 'offline' else 5}"
                delta = os.path.join(folder, "bare_delta")
                bare = {"what": what, "source": source.path, "delta": delta, "redis_url": url,
                        "prefix": f"{wl.PROJECT}:cluster:v1:", "features": source.features}  # fmt: skip
                command = [str(Path(sys.executable).with_name("spark-submit")), "--master", master]
                for key, value in services.submit_conf().items():
                    command += ["--conf", f"{key}={value}"]
                command += [script, json.dumps(bare)]
                runs[f"bare {what}"] = wl.run_child(
                    f"bare {what}", command, log_dir=log_dir, timeout=1800, env=env, redis_pid_=pid
                )
                if what == "offline":
                    check_delta(delta, source, "bare offline")
                else:
                    client = redis.Redis.from_url(url)
                    check_redis(client, f"{wl.PROJECT}:cluster:v1:", source, "bare online", 0, 50)
                print(f"  bare {what:<15} call {runs[f'bare {what}'].call:7.2f} s", flush=True)
    finally:
        services.stop()
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
    both_bare_call = runs["bare offline"].call + runs["bare online"].call
    both_bare_wall = runs["bare offline"].wall + runs["bare online"].wall
    lines = [["figure", "ours", "bare", "ours / bare"]]
    for what in ("offline", "online"):
        ours, bare = runs[f"ours {what}"], runs[f"bare {what}"]
        lines.append(
            [f"{what}: call s", f"{ours.call:.2f}", f"{bare.call:.2f}", wl.ratio(ours.call, bare.call)]
        )
        lines.append(
            [
                f"{what}: process wall s",
                f"{ours.wall:.2f}",
                f"{bare.wall:.2f}",
                wl.ratio(ours.wall, bare.wall),
            ]
        )
    both = runs["ours offline,online"]
    lines.append(
        [
            "both stores: call s",
            f"{both.call:.2f}",
            f"{both_bare_call:.2f}",
            wl.ratio(both.call, both_bare_call),
        ]
    )
    lines.append(
        [
            "both stores: process wall s",
            f"{both.wall:.2f}",
            f"{both_bare_wall:.2f}",
            wl.ratio(both.wall, both_bare_wall),
        ]
    )
    print(
        f"\n{source.rows:,} rows, {source.entities:,} entities, {options.days} days; load average {wl.load_average()}"
    )
    print(aligned(lines, text_columns=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
