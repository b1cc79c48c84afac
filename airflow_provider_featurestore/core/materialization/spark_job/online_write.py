"""The online write: the latest row per entity over a batch's online chunks, written to the
online store once from the executors, each chunk credited with the keys whose latest row lies in
its window, and given a sample of them (`online/sample.py`) for the consistency check."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, ChunkResult, ChunkSpec
from airflow_provider_featurestore.core.materialization.spark_job.failures import one_line
from airflow_provider_featurestore.core.materialization.spark_job.offline_read import read_offline_ranges
from airflow_provider_featurestore.core.materialization.spark_job.row_checks import check_output
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import latest_method
from airflow_provider_featurestore.core.materialization.spark_job.sources import read_source_ranges
from airflow_provider_featurestore.core.online import OnlineLayout, online_store_for, sample
from airflow_provider_featurestore.core.online.protocol import OnlineStoreUnavailable
from airflow_provider_featurestore.core.online.sample import SampledKey

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, Row, SparkSession

OnlineRows = list[tuple[ChunkSpec, "DataFrame | None"]]
"""Per online chunk, where its rows come from: None, the offline table (committed, or
offline-Complete time); else the frame computed from its source."""


def write_online_batch(
    spark: SparkSession,
    config: FeatureStoreConfig,
    spec: FeatureSetSpec,
    table_path: str,
    batch: BatchSpec,
    online_rows: OnlineRows,
    results: dict[str, ChunkResult],
) -> list[tuple[ChunkSpec, str | None]]:
    """One online write of the latest row per entity over the batch's online chunks; each chunk
    is credited with the keys whose latest row lies in its window. When the write fails for a
    reason other than the store itself, each chunk is written alone, so that one chunk's bad
    rows do not cost the others their write (the event-time guard makes the order irrelevant)."""
    redis_url = batch.redis_url or config.redis_url
    chunks = [chunk for chunk, _rows in online_rows]
    if not redis_url:
        error = "ValueError: online_store: no redis_url (an Airflow conn_id is resolved only under Airflow)"
        return [(chunk, error) for chunk in chunks]
    layout = OnlineLayout.from_spec(config, spec)
    try:
        counts = write_online(_union_rows(spark, spec, table_path, online_rows), redis_url, layout, chunks)
    except OnlineStoreUnavailable as exc:  # the store itself: every chunk meets it alike
        return [(chunk, one_line(exc)) for chunk in chunks]
    except Exception as exc:  # noqa: BLE001 - reported per chunk
        if len(online_rows) == 1:
            return [(chunks[0], one_line(exc))]
        return [
            item
            for single in online_rows
            for item in write_online_batch(spark, config, spec, table_path, batch, [single], results)
        ]
    for chunk in chunks:
        wrote = counts.get(chunk.job_id, ChunkWrite())
        result = results[chunk.job_id]
        result.rows_written["online"], result.entities = wrote.written, wrote.entities
        result.completed["online"] = True
        result.online_marker = True
        result.online_sample = [[key, expires] for key, expires in wrote.sample]
    return [(chunk, None) for chunk in chunks]


def _union_rows(
    spark: SparkSession, spec: FeatureSetSpec, table_path: str, online_rows: OnlineRows
) -> DataFrame:
    """The feature rows of every online chunk: one read of the offline table over the committed
    (or offline-Complete) windows, and the frames of the online-only chunks computed from source."""
    committed = [(chunk.start, chunk.end) for chunk, rows in online_rows if rows is None]
    computed = [(chunk, rows) for chunk, rows in online_rows if rows is not None]
    frames: list[DataFrame]
    if spec.transformation is None and len(computed) > 1:
        # The source as is: the chunks' rows are the source's rows in their windows, in one read.
        frames = [
            check_output(read_source_ranges(spark, spec, [(c.start, c.end) for c, _r in computed]), spec)
        ]
    else:
        frames = [rows for _chunk, rows in computed]
    if committed:
        frames.insert(0, read_offline_ranges(spark, table_path, spec, committed))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def latest_per_entity(
    rows: DataFrame, index_names: list[str], timestamp_column: str, method: str = "window"
) -> DataFrame:
    """The row with the latest event time in the window, per entity key.

    `window` (the default): a row_number() window function, one row per entity; the faster
    on classic Spark (local[2], 1M rows: 1.1 s against 1.6 s). `join` (the embedded engine's):
    the latest time per entity by a hash aggregate, joined back to the rows on (key, time)
    with the aggregate as the build side: on Sail, which sorts the whole window for the
    window function, 2.5x faster and 100 MB less memory at 1M rows. Rows sharing their
    entity's latest time are all kept (the online write keeps the last one written, as
    arbitrary as row_number's pick). Rows with a null key value are passed through, so the
    online write still rejects them. (With a null-safe join condition instead, Sail hashed
    on the time alone: 114 s instead of 0.4 s when many entities share an event time.)
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    if method == "join":
        keys = [F.col(f"`{n}`") for n in index_names]
        latest = rows.groupBy(*keys).agg(F.max(F.col(f"`{timestamp_column}`")).alias(timestamp_column))
        joined = latest.join(rows, on=[*index_names, timestamp_column], how="inner")
        keyless = rows.where(" OR ".join(f"`{n}` IS NULL" for n in index_names))
        return joined.select(*[f"`{c}`" for c in rows.columns]).unionByName(keyless)
    order = Window.partitionBy(*[F.col(f"`{n}`") for n in index_names]).orderBy(
        F.col(f"`{timestamp_column}`").desc()
    )
    return rows.withColumn("_fs_rank", F.row_number().over(order)).where("_fs_rank = 1").drop("_fs_rank")


@dataclass
class ChunkWrite:
    """What the online write did for one chunk: keys written, entities (rows given), and a
    sample of the keys it stored (`online/sample.py`), which the consistency check looks up."""

    written: int = 0
    entities: int = 0
    sample: list[SampledKey] = field(default_factory=list)


TALLY_SCHEMA = "chunk long, rows long, written long, key string, expires long"
"""What each executor task sends back: per chunk one row of counts (key null), and one row per
sampled key (counts 0)."""


def write_online(
    rows: DataFrame, redis_url: str, layout: OnlineLayout, chunks: Sequence[ChunkSpec], partitions: int = 4
) -> dict[str, ChunkWrite]:
    """Write the latest row per entity to Redis from the executors, once for all `chunks` (in
    time order, disjoint); returns per chunk id what was written of the rows whose event time
    lies in that chunk's window.

    Each task opens its own connection and writes its partition in batches; only per-task,
    per-chunk counts and key samples come back to the driver.
    """
    # The marker first (see OnlineStore.mark): a flush between it and the rows costs a needless
    # repair, never an unnoticed loss.
    with online_store_for(redis_url) as marker:
        marker.mark(layout)
    index_names = [c.name for c in layout.index_columns]
    method = latest_method(rows.sparkSession)
    latest = latest_per_entity(rows, index_names, layout.timestamp_column, method).repartition(partitions)
    starts_us = [chunk.start * 1_000_000 for chunk in chunks]
    task = functools.partial(_write_partition, redis_url, layout, starts_us, int(time.time()))
    return _tally(latest.mapInArrow(task, TALLY_SCHEMA).collect(), chunks)


def _write_partition(
    redis_url: str, layout: OnlineLayout, starts_us: list[int], now: int, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """One executor task: write its rows chunk by chunk; yield the counts and key samples."""
    import numpy as np
    import pyarrow as pa

    store = online_store_for(redis_url)
    totals = np.zeros(len(starts_us), np.int64)
    written = np.zeros(len(starts_us), np.int64)
    samples: list[list[SampledKey]] = [[] for _ in starts_us]
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            stamp = batch.column(layout.timestamp_column).cast(pa.timestamp("us", tz="UTC"))
            index = (
                np.searchsorted(starts_us, stamp.cast(pa.int64()).to_numpy(zero_copy_only=False), "right") - 1
            )
            order = np.argsort(index, kind="stable")
            batch, index = batch.take(pa.array(order)), index[order]
            bounds = np.flatnonzero(np.diff(index)) + 1
            for lo, hi in zip([0, *bounds], [*bounds, len(index)], strict=True):
                part, chunk = batch.slice(lo, hi - lo), index[lo]
                stats = store.write(layout, part, now=now)
                totals[chunk] += stats.rows
                written[chunk] += stats.written
                samples[chunk] = sample.merge([*samples[chunk], *sample.sample_rows(layout, part)])
    finally:
        store.close()
    sampled = [(chunk, key, expires) for chunk, keys in enumerate(samples) for key, expires in keys]
    count = len(starts_us)
    yield pa.record_batch(
        [
            pa.array([*range(count), *(c for c, _k, _e in sampled)], pa.int64()),
            pa.array([*totals.tolist(), *[0] * len(sampled)], pa.int64()),
            pa.array([*written.tolist(), *[0] * len(sampled)], pa.int64()),
            pa.array([*[None] * count, *(k for _c, k, _e in sampled)], pa.string()),
            pa.array([*[None] * count, *(e for _c, _k, e in sampled)], pa.int64()),
        ],
        names=["chunk", "rows", "written", "key", "expires"],
    )


def _tally(rows: list[Row], chunks: Sequence[ChunkSpec]) -> dict[str, ChunkWrite]:
    """Per chunk id, the tasks' counts added up and their samples merged."""
    per_chunk = {chunk.job_id: ChunkWrite() for chunk in chunks}
    sampled: dict[str, list[SampledKey]] = {chunk.job_id: [] for chunk in chunks}
    for row in rows:
        job_id = chunks[row["chunk"]].job_id
        if row["key"] is not None:
            sampled[job_id].append((row["key"], row["expires"]))
            continue
        per_chunk[job_id].written += row["written"]
        per_chunk[job_id].entities += row["rows"]
    for job_id, keys in sampled.items():
        per_chunk[job_id].sample = sample.merge(keys)
    return per_chunk
