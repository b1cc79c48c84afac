"""Checks on the transformation's output rows: the declared columns and their types, and keys
and event times that are never null. (Quality checks declared in a spec join this module.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.column_types import TYPES
from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.spark_job.transformation import (
    TransformationOutputError,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def output_source(spec: FeatureSetSpec) -> str:
    """Who produced the rows, as errors name it: the transformation, or the source taken as is."""
    return f"transformation {spec.transformation}" if spec.transformation else f"source {spec.source.path}"


def check_output(frame: DataFrame, spec: FeatureSetSpec) -> DataFrame:
    """Every index column, the timestamp and every feature present with its declared type;
    the result holds exactly those columns, in that order."""
    actual = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    declared = [*spec.index_columns, *spec.features]
    where = output_source(spec)
    for column in [*declared, None]:
        name = column.name if column else spec.timestamp_column
        wanted = TYPES[column.type].spark if column else "timestamp"
        if name not in actual:
            raise TransformationOutputError(
                f"{where} output has no column {name!r} declared in {spec.spec_path} (columns: {', '.join(actual)})"
            )
        got = actual[name]
        if got != wanted and not (column is None and got == "timestamp_ntz"):
            raise TransformationOutputError(
                f"{where} output column {name!r} is {got}, declared {column.type if column else 'timestamp'} "
                f"in {spec.spec_path}: cast it in the transformation"
            )
    names = [c.name for c in spec.index_columns] + [spec.timestamp_column] + [c.name for c in spec.features]
    frame = frame.select(
        *[_not_null(n, where) for n in names[: len(spec.index_columns) + 1]],
        *[f"`{n}`" for n in names[len(spec.index_columns) + 1 :]],
    )
    if actual[spec.timestamp_column] == "timestamp_ntz":
        frame = frame.withColumn(spec.timestamp_column, frame[spec.timestamp_column].cast("timestamp"))
    return frame


def _not_null(name: str, where: str) -> Column:
    """Column `name`, failing the query that reads a null in it: a row without its entity key or
    event time cannot be stored in either store. Checked as the rows are written, so a chunk
    with such rows fails whole (its commit never happens) at no extra pass over the data."""
    from pyspark.sql import functions as F  # noqa: N812

    column = F.col(f"`{name}`")
    message = f"{where} output has a null in {name!r}: filter or fill those rows in the transformation"
    return F.when(column.isNull(), F.raise_error(F.lit(message))).otherwise(column).alias(name)
