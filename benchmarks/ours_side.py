"""Our side of `vs_feast.py` and `batches.py`, and the bare pipeline of `batches.py`: each mode
is one fresh process (our virtual environment, this checkout first on the path) that prints
one result line (`workload.emit`).

  ours_side.py backfill CONFIG NAME START END STORES   time FeatureStore.backfill of the window
  ours_side.py bare OPTIONS_JSON                       Sail Delta write + pipelined HSET, no package code
"""

from __future__ import annotations

import json
import sys
import time

from workload import ENTITY, TIMESTAMP, CheckFailed, emit, expect

HSET_CHUNK = 1_000  # HSET commands per pipeline execute in the bare pipeline


def backfill(config: str, name: str, start: str, end: str, stores: str) -> None:
    """`FeatureStore(config).backfill(store.backfill_request(name, start, end, stores=stores))`,
    the engine the config names (its start included: it happens inside the call)."""
    began = time.perf_counter()
    import airflow_provider_featurestore
    from airflow_provider_featurestore.core.featurestore import FeatureStore

    imported = time.perf_counter() - began
    began = time.perf_counter()
    store = FeatureStore(config)
    opened = time.perf_counter() - began
    lines: list[str] = []
    began = time.perf_counter()
    request = store.backfill_request(name, start, end, stores=stores)
    records = store.backfill(request, log=lines.append)
    call = time.perf_counter() - began
    store.close()
    failed = [record for record in records if record.state != "succeeded"]
    if failed or not records:
        raise CheckFailed(
            f"backfill of {name}: {len(failed)} of {len(records)} job(s) failed:\n" + "\n".join(lines)
        )
    written: dict[str, int] = {}
    for record in records:
        for store_name, count in record.rows_written.items():
            written[store_name] = written.get(store_name, 0) + count
    emit(
        {
            "call_s": call,
            "open_s": opened,
            "import_s": imported,
            "jobs": len(records),
            "rows_read": sum(record.rows_read or 0 for record in records),
            "rows_written": written,
            "job_seconds": sum(float(record.result.get("seconds") or 0) for record in records),
            "package": airflow_provider_featurestore.__file__,
            "log_tail": lines[-2:],
        }
    )


def bare(options: dict) -> None:  # type: ignore[type-arg]
    """The same work as a both-store backfill without the package: a Sail server and session
    (pysail, as the embedded engine starts them), `read.parquet` -> `event_date` ->
    `write.format("delta").partitionBy("event_date").mode("overwrite").save`, then the latest
    row per entity with pyarrow/numpy and one pipelined `HSET key f0 v0 .. _event_time t` per
    entity (values as repr text, 1,000 commands per execute, no guard, no TTL)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import redis
    from pysail.spark import SparkConnectServer
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812

    phases: dict[str, float] = {}
    began = whole = time.perf_counter()
    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    host, port = server.listening_address
    spark = (
        SparkSession.builder.remote(f"sc://{host}:{port}")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    phases["sail start"] = time.perf_counter() - began
    try:
        began = time.perf_counter()
        frame = spark.read.parquet(options["source"]).withColumn("event_date", F.to_date(F.col(TIMESTAMP)))
        frame.write.format("delta").partitionBy("event_date").mode("overwrite").save(options["delta"])
        phases["delta write"] = time.perf_counter() - began
    finally:
        spark.stop()
        server.stop()

    began = time.perf_counter()
    table = pq.read_table(options["source"])
    entity = table.column(ENTITY).to_numpy()
    event_us = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    order = np.lexsort((-event_us, entity))
    first = np.ones(len(order), dtype=bool)
    first[1:] = entity[order][1:] != entity[order][:-1]
    latest = table.take(pa.array(order[first]))
    phases["latest (pyarrow)"] = time.perf_counter() - began

    began = time.perf_counter()
    features = options["features"]
    keys = [f"{options['prefix']}{e}" for e in latest.column(ENTITY).to_pylist()]
    values = [[repr(v) for v in latest.column(name).to_pylist()] for name in features]
    times = [str(v) for v in latest.column(TIMESTAMP).cast(pa.int64()).to_pylist()]
    client = redis.Redis.from_url(options["redis_url"])
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        mapping = {name: column[i] for name, column in zip(features, values, strict=True)}
        mapping["_event_time"] = times[i]
        pipe.hset(key, mapping=mapping)
        if (i + 1) % HSET_CHUNK == 0:
            pipe.execute()
    pipe.execute()
    client.close()
    phases["HSET (redis-py pipeline)"] = time.perf_counter() - began
    expect(len(keys) == options["entities"], f"bare: {len(keys)} latest rows, expected {options['entities']}")
    emit({"call_s": time.perf_counter() - whole, "phases": phases, "rows": table.num_rows})


def main(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "backfill":
        backfill(*rest)
    elif mode == "bare":
        bare(json.loads(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
