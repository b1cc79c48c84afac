"""Reading a feature set's source: the rows of a chunk's read range, and what each chunk read
(its rows, and whether the source covered its read range: `partial_lookback`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


COVERAGE_SLACK = 86400
"""How late the first source row of a read range may come, at most, for the range to count as
covered: a source with one row a day starts each day's rows some hours in."""


@dataclass(frozen=True)
class SourceRead:
    """What one chunk read of its source: the rows, the first row's event time (epoch seconds,
    None when it read none), and whether its read range was covered (`partial_lookback`)."""

    rows: int
    first: int | None
    partial_lookback: bool


def partial_lookback(spec: FeatureSetSpec, read_start: int, first: int | None) -> bool:
    """Whether a chunk's lookback was short of source data (the rule the README states).

    Only a lookback can be partial: with `source_lookback: 0s` this is False. Otherwise a chunk
    is partial when its read range starts before `source.start` (when the spec declares one),
    when it read no row at all, or when its first row comes later than `read_start +
    min(1 day, lookback / 2)`: then the rolling aggregates of its first rows saw less history
    than the lookback promises (a backfill that starts at the source's first day). A hole in the
    middle of the range is not looked for: one min per range is what the counting pass gives.
    """
    lookback = spec.source_lookback
    if lookback <= 0:
        return False
    declared = spec.source.start
    if declared is not None and read_start < declared:
        return True
    return first is None or first > read_start + min(COVERAGE_SLACK, lookback // 2)


def stretch_index(stamp: Column, edges: Sequence[int]) -> Column:
    """The index j with edges[j] <= stamp < edges[j + 1] (for a stamp inside the edges): a
    binary search written as nested CASE, so that one groupBy splits a batch's rows by window."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    def search(lo: int, hi: int) -> Column:
        if hi - lo == 1:
            return F.lit(lo)
        mid = (lo + hi) // 2
        return F.when(stamp < F.expr(ts_literal(edges[mid])), search(lo, mid)).otherwise(search(mid, hi))

    return search(0, len(edges) - 1)


def rows_read(
    spark: SparkSession, spec: FeatureSetSpec, chunks: Sequence[ChunkSpec]
) -> dict[str, SourceRead]:
    """What each chunk reads (its window with the lookback before it), in one pass over the
    batch's source: rows are counted, and their first event time taken, per stretch between
    consecutive window edges (found by a binary search written as nested CASE); each chunk sums
    its stretches' counts and takes the least of their first times."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    windows = {c.job_id: read_range(c, spec) for c in chunks}
    edges = sorted({edge for window in windows.values() for edge in window})
    stamp = F.col(f"`{spec.source.timestamp_column}`")
    frame = read_source_ranges(spark, spec, list(windows.values()))
    grouped = frame.groupBy(stretch_index(stamp, edges).alias("j")).agg(
        F.count(F.lit(1)).alias("rows"), F.min(stamp).cast("long").alias("first")
    )
    stretches = {row["j"]: (row["rows"], row["first"]) for row in grouped.collect()}
    position = {edge: j for j, edge in enumerate(edges)}
    reads = {}
    for job_id, (lo, hi) in windows.items():
        mine = [stretches[j] for j in range(position[lo], position[hi]) if j in stretches]
        firsts = [first for _rows, first in mine if first is not None]
        first = min(firsts) if firsts else None
        reads[job_id] = SourceRead(
            sum(rows for rows, _first in mine), first, partial_lookback(spec, lo, first)
        )
    return reads
