"""The user's transformation, called on a chunk's source rows, and the cut to the chunk's window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.job_model import ChunkSpec
from airflow_provider_featurestore.core.materialization.spark_job.predicates import window_predicate
from airflow_provider_featurestore.core.timeutil import to_datetime

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class TransformationOutputError(ValueError):
    """The transformation returned a frame that does not match the spec's declared columns."""


@dataclass(frozen=True)
class FeatureWindow:
    """The window a transformation is asked for: `[start, end)` as UTC datetimes."""

    start: datetime
    end: datetime


def apply_transformation(spec: FeatureSetSpec, source: DataFrame, chunk: ChunkSpec) -> DataFrame:
    """The transformation's output for the chunk (the source as is without one); user code that
    exits or returns no DataFrame fails the chunk with a line saying so."""
    transform = spec.load_transformation()
    if transform is None:
        return source
    window = FeatureWindow(to_datetime(chunk.start), to_datetime(chunk.end))
    try:
        output = transform(source, window)
    except SystemExit as exc:  # user code ending "the program" must fail its chunk, not end the backfill
        raise TransformationOutputError(
            f"transformation {spec.transformation} called exit({exc.code!r}) instead of returning a DataFrame"
        ) from None
    if output is None or not hasattr(output, "columns"):
        raise TransformationOutputError(
            f"transformation {spec.transformation} returned {type(output).__name__}, not a DataFrame"
        )
    return output


def in_window(frame: DataFrame, spec: FeatureSetSpec, start: int, end: int) -> DataFrame:
    """Only the rows whose event time is inside the job's window."""
    return frame.where(window_predicate(spec.timestamp_column, start, end))
