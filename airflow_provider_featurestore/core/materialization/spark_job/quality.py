"""When a chunk's quality checks are measured, and on which rows: the orchestration around
row_checks' aggregation.

- Rows taken as is (no transformation) are the source's rows in each chunk's window: one
  aggregation over the batch's source measures every chunk (grouped by chunk), so a batch pays
  one pass for its checks, not one per chunk. Should that query fail (a null key anywhere fails
  the whole query), each chunk is measured alone, and only the bad chunk fails.
- A transformation's output is snapshotted first, so that the checks and the commit (or the
  online write) read it instead of running the transformation again: `persist()` on Spark
  (released when the batch ends), `localCheckpoint()` on Sail, which ignores `persist()` (its
  snapshots live in a folder the embedded engine empties after every batch). On Spark Connect a
  localCheckpoint's relation was dropped under a later read of it ("remote checkpoint relation
  does not exist", seen in the cluster tier), hence persist() there.

Measured by benchmarks/quality_checks.py: see the README's quality checks section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.job_model import ChunkSpec
from airflow_provider_featurestore.core.materialization.spark_job.row_checks import (
    CheckOutcome,
    check_output,
    evaluate_checks,
    evaluate_checks_by,
)
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import on_sail
from airflow_provider_featurestore.core.materialization.spark_job.sources import (
    read_source_ranges,
    stretch_index,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CHUNK_COLUMN = "_fs_chunk"


def measure_batch(
    spark: SparkSession, spec: FeatureSetSpec, chunks: Sequence[ChunkSpec]
) -> dict[str, list[CheckOutcome]]:
    """Per chunk id, its checks' outcomes from one aggregation over the batch's source, for rows
    taken as is; {} when there is nothing to measure so or the query failed."""
    if not spec.checks or spec.transformation is not None or not chunks:
        return {}
    from pyspark.sql import functions as F  # noqa: N812

    ordered = sorted(chunks, key=lambda c: c.start)  # disjoint: a row's chunk is the last start before it
    edges = [c.start for c in ordered] + [ordered[-1].end]
    frame = check_output(read_source_ranges(spark, spec, [(c.start, c.end) for c in ordered]), spec)
    frame = frame.withColumn(CHUNK_COLUMN, stretch_index(F.col(f"`{spec.timestamp_column}`"), edges))
    try:
        measured = evaluate_checks_by(frame, spec.checks, _keys(spec), CHUNK_COLUMN, len(ordered))
    except Exception:  # noqa: BLE001 - each chunk is measured alone instead, meeting its own error
        return {}
    return {chunk.job_id: outcomes for chunk, outcomes in zip(ordered, measured, strict=True)}


class Snapshots:
    """A batch's snapshots of transformed rows, released when the batch ends."""

    def __init__(self, spark: SparkSession) -> None:
        self.on_sail = on_sail(spark)
        self.held: list[DataFrame] = []

    def take(self, rows: DataFrame) -> DataFrame:
        if self.on_sail:
            return rows.localCheckpoint()
        from pyspark import StorageLevel

        held = rows.persist(StorageLevel.MEMORY_AND_DISK)
        self.held.append(held)
        return held

    def release(self) -> None:
        for frame in self.held:
            frame.unpersist()
        self.held.clear()


def check_chunk(
    rows: DataFrame, spec: FeatureSetSpec, measured: list[CheckOutcome] | None, snapshots: Snapshots
) -> tuple[DataFrame, list[CheckOutcome]]:
    """The rows to commit and the chunk's outcomes (`measured` by the batch, else measured here);
    `row_checks.fail_on_errors` then decides whether the chunk may commit."""
    if measured is None:
        if spec.transformation is not None:
            rows = snapshots.take(rows)
        measured = evaluate_checks(rows, spec.checks, _keys(spec))
    return rows, measured


def _keys(spec: FeatureSetSpec) -> tuple[str, ...]:
    return (*spec.index_names, spec.timestamp_column)
