"""Reading a feature set's source: the rows of a chunk's read range, and what each chunk read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.job_model import ChunkSpec
from airflow_provider_featurestore.core.materialization.spark_job.predicates import (
    ranges_predicate,
    ts_literal,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def read_range(chunk: ChunkSpec, spec: FeatureSetSpec) -> tuple[int, int]:
    """What a chunk reads of its source: its window with the lookback before it."""
    return chunk.start - spec.source_lookback, chunk.end


def read_source(spark: SparkSession, spec: FeatureSetSpec, start: int, end: int) -> DataFrame:
    """The source rows with event time in `[start, end)`; the filter is pushed down to the scan."""
    return read_source_ranges(spark, spec, [(start, end)])


def read_source_ranges(
    spark: SparkSession, spec: FeatureSetSpec, ranges: Sequence[tuple[int, int]]
) -> DataFrame:
    """The source rows with event time in any of the windows `ranges`."""
    source = spec.source
    reader = spark.read.format(source.format)
    if source.format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    frame = reader.load(source.path)
    if not frame.columns:  # Sail reads a missing path as no rows and no columns; Spark raises
        raise ValueError(f"source {source.path}: no {source.format} data there: check source.path")
    if source.timestamp_column not in frame.columns:
        raise ValueError(
            f"source {source.path}: no column {source.timestamp_column!r} (source.timestamp_column)"
        )
    if source.format == "csv":  # CSV types differ between engines: the event time is read as UTC text
        frame = frame.withColumn(source.timestamp_column, frame[source.timestamp_column].cast("timestamp"))
    return frame.where(ranges_predicate(source.timestamp_column, ranges))


def rows_read(spark: SparkSession, spec: FeatureSetSpec, chunks: Sequence[ChunkSpec]) -> dict[str, int]:
    """How many source rows each chunk reads (its window with the lookback before it), counted in
    one pass over the batch's source: rows are counted per stretch between consecutive window
    edges (found by a binary search written as nested CASE), and each chunk sums its stretches."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    windows = {c.job_id: read_range(c, spec) for c in chunks}
    edges = sorted({edge for window in windows.values() for edge in window})
    stamp = F.col(f"`{spec.source.timestamp_column}`")

    def stretch(lo: int, hi: int) -> Column:  # the index j with edges[j] <= t < edges[j + 1]
        if hi - lo == 1:
            return F.lit(lo)
        mid = (lo + hi) // 2
        return F.when(stamp < F.expr(ts_literal(edges[mid])), stretch(lo, mid)).otherwise(stretch(mid, hi))

    frame = read_source_ranges(spark, spec, list(windows.values()))
    counts = {
        row[0]: row[1] for row in frame.groupBy(stretch(0, len(edges) - 1).alias("j")).count().collect()
    }
    position = {edge: j for j, edge in enumerate(edges)}
    return {
        job_id: sum(counts.get(j, 0) for j in range(position[lo], position[hi]))
        for job_id, (lo, hi) in windows.items()
    }
