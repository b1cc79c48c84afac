"""Benchmark: what the sampled keys add to `featurestore check` (the online store's part).

Why: the check runs before every backfill (its planner) and by hand; finding partial loss from
each chunk's sampled keys (`core/online/sample.py`) must cost about what Redis and redis-py cost
for those keys anyway (goal: the extra time within 2x of a bare pipelined EXISTS of the same
keys), for thousands of Complete chunks.

Set-up (not timed): a copy of `examples/fraud` with a project name of its own and a SQLite
interval table in a temporary folder; `--chunks` one-day chunks of `transactions` claimed and
finished Complete on both stores, each job record holding the marker flag and a sample of 32
keys (the most a chunk keeps) whose hashes are written to Redis, with no TTL. Its keys are
purged at the end (the Redis database is not flushed).

What is timed, alternating, best of `--repeats`:
* sampled: `consistency.inspect(store, spec, ["online"])` over those records (the marker, then
  one batched pipeline of EXISTS over every sampled key);
* marker only: the same call after the samples are stripped from the records (what the check
  cost before), so sampled - marker only = the extra cost;
* bare: a redis-py pipeline (`transaction=False`) of one EXISTS per sampled key, 1,000 a round trip.

Run: `python benchmarks/online_check.py [--chunks 1000] [--repeats 5] [--redis-url URL]`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from airflow_provider_featurestore.core import consistency
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online.sample import SAMPLE_SIZE

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fraud"
DAY = 86400


def build(root: Path, chunks: int, client: redis.Redis) -> tuple[FeatureStore, list[str]]:
    """A feature store whose `chunks` Complete online chunks each recorded 32 sampled keys."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    config.write_text(config.read_text().replace("project: fraud", f"project: b{uuid.uuid4().hex[:10]}"))
    sys.path.insert(0, str(root))
    store = FeatureStore(str(config), check_transformations=False)
    spec = store.spec("transactions")
    layout = store.online_layout(spec)
    request = store.backfill_request("transactions", "2020-01-01", 1_577_836_800 + chunks * DAY)
    records = store.table.claim(
        request.key, request.start, request.end, request.statuses, request.stores, DAY, max_jobs=None
    )
    store.online_store().mark(layout)
    keys: list[str] = []
    pipe = client.pipeline(transaction=False)
    for n, record in enumerate(records):
        sample = [f"{layout.prefix}A{n:05d}{i:02d}" for i in range(SAMPLE_SIZE)]
        for key in sample:
            pipe.hset(key, "_event_time", "0")
        keys += sample
        store.table.start_job(record.id)
        result = {"online_marker": True, "online_sample": [[key, None] for key in sample]}
        store.table.finish_job(record.id, {"offline": True, "online": True}, result=result)
    pipe.execute()
    return store, keys


def strip_samples(store: FeatureStore) -> None:
    """The records as written before samples were kept."""
    with store.table.engine.begin() as conn:
        rows = conn.exec_driver_sql("SELECT id, result FROM fs_jobs").all()
        for job_id, text in rows:
            result = {k: v for k, v in json.loads(text).items() if k != "online_sample"}
            conn.exec_driver_sql("UPDATE fs_jobs SET result = ? WHERE id = ?", (json.dumps(result), job_id))


def best(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def bare_exists(client: redis.Redis, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + 1000]:
            pipe.exists(key)
        assert all(pipe.execute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    default_url = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-url", default=default_url)
    args = parser.parse_args()
    os.environ["FEATURESTORE_REDIS_URL"] = args.redis_url
    client = redis.Redis.from_url(args.redis_url)
    with tempfile.TemporaryDirectory() as folder:
        store, keys = build(Path(folder) / "fraud", args.chunks, client)
        spec = store.spec("transactions")
        try:

            def check() -> consistency.CheckReport:
                report, findings = consistency.inspect(store, spec, ["online"])
                assert findings == {}, findings
                return report

            print(f"{args.chunks} Complete chunks, {len(keys)} sampled keys; best of {args.repeats}")
            print("  sampled check says:", check().checked["online"])
            sampled = best(args.repeats, check)
            bare = best(args.repeats, lambda: bare_exists(client, keys))
            strip_samples(store)
            marker = best(args.repeats, check)
            extra = sampled - marker
            print(f"  check, sampled keys : {sampled * 1000:8.1f} ms")
            print(f"  check, marker only  : {marker * 1000:8.1f} ms")
            print(f"  extra (the samples) : {extra * 1000:8.1f} ms")
            print(f"  bare pipelined EXISTS of the same keys: {bare * 1000:8.1f} ms")
            print(f"  ratio extra / bare  : {extra / bare:8.2f}x (goal: within 2x)")
        finally:
            store.online_store().purge(store.online_layout(spec))
            store.close()
            client.close()


if __name__ == "__main__":
    main()
