"""Reading the offline Delta table back: a chunk's committed rows for the online write, the whole
table for training data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.spark_job.predicates import (
    PARTITION_COLUMN,
    partition_predicate,
    partition_range,
    ranges_predicate,
)
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import on_sail

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def read_offline_ranges(
    spark: SparkSession, table_path: str, spec: FeatureSetSpec, ranges: Sequence[tuple[int, int]]
) -> DataFrame:
    """The feature rows of the windows `ranges` in the offline table (partition column dropped)."""
    start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
    first, last = partition_range(start, end)
    inside = ranges_predicate(spec.timestamp_column, ranges)
    files = _sail_files(spark, table_path, [(PARTITION_COLUMN, ">=", first), (PARTITION_COLUMN, "<=", last)])
    if files:
        return spark.read.parquet(*files).where(inside).drop(PARTITION_COLUMN)
    frame = spark.read.format("delta").load(table_path)
    return frame.where(f"({inside}) AND {partition_predicate(start, end)}").drop(PARTITION_COLUMN)


def read_offline_window(
    spark: SparkSession, table_path: str, spec: FeatureSetSpec, start: int, end: int
) -> DataFrame:
    """The feature rows of `[start, end)` in the offline table (partition column dropped)."""
    return read_offline_ranges(spark, table_path, spec, [(start, end)])


def read_offline_table(spark: SparkSession, table_path: str) -> DataFrame:
    """Every feature row of the offline table (partition column dropped)."""
    files = _sail_files(spark, table_path, None)
    if files:
        return spark.read.parquet(*files).drop(PARTITION_COLUMN)  # delta-spark writes it into its files
    return spark.read.format("delta").load(table_path).drop(PARTITION_COLUMN)


def _sail_files(spark: SparkSession, table_path: str, partition_filters: list | None) -> list[str]:
    """On Sail, the data files of the table's current snapshot (listed by delta-rs), to read with
    Sail's Parquet reader; elsewhere, or when there are none, [] (read as Delta).

    Sail's Delta reader answers a column whose min equals its max in a file from the file's JSON
    statistics, and parses some doubles one ulp off (0.9560017096289753 reads back as
    0.9560017096289752): constant columns, single-row files. Its Parquet reader is exact. The
    files delta-spark writes also hold the partition column (dropped by the callers) and, unless
    the writer set `spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS` (the JVM engines'
    default conf does), INT96 timestamps that this reader cannot merge with INT64 ones.
    """
    if not on_sail(spark):
        return []
    from deltalake import DeltaTable

    return list(DeltaTable(table_path).file_uris(file_pruning_predicate=partition_filters))
