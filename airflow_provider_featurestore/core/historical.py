"""The point-in-time join behind `FeatureStore.get_historical_features`.

Each observation (index columns + a timestamp t) takes, per requested feature set, the feature
row of its entity with the greatest event time <= t (and > t - temporal_join_lookback when the
spec sets one), so no training row ever sees a value from its own future. Per feature set: an
equi-join on the index columns with the time condition, then `max_by` of the features by event
time per observation. Plain joins and aggregates only: the same plan runs on Sail and on Spark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.materialization.spark_job import read_offline_table
from airflow_provider_featurestore.core.retrieval import FeatureGroup, index_columns

ROW = "__fs_row"
OBS_TIME = "__fs_obs_time"
FEATURE_TIME = "__fs_feature_time"


def point_in_time_join(
    spark: Any,
    observations: Any,
    groups: Sequence[FeatureGroup],
    tables: Mapping[tuple[str, int], str],
    timestamp_column: str | None,
    finish: Callable[[Any], Any] = lambda frame: frame,
) -> Any:
    """The observations with one column per requested feature (see the module docstring);
    `finish` (the on-demand features) runs over the joined frame before its rows are ordered."""
    from pyspark.sql import functions as F

    obs = _spark_frame(spark, observations)
    time_column = timestamp_column or groups[0].spec.timestamp_column
    needed = index_columns(groups)
    given = [c for c in obs.columns if c != ROW]
    missing = [name for name in [*needed, time_column] if name not in given]
    if missing:
        raise BadInput(
            f"observations: missing column(s) {', '.join(missing)} (they hold {', '.join(given)}); "
            "pass timestamp_column= when the time has another name"
        )
    taken = [c for group in groups for c in group.columns if c in obs.columns]
    if taken:
        raise BadInput(f"observations: already have column(s) {', '.join(taken)} that features would fill")
    result = obs
    for group in groups:
        spec = group.spec
        keys = list(spec.index_names)
        left = obs.select(ROW, *keys, F.col(time_column).cast("timestamp").alias(OBS_TIME))
        right = read_offline_table(spark, tables[(spec.name, spec.version)]).select(
            *[F.col(k).alias(f"__fs_key_{i}") for i, k in enumerate(keys)],
            F.col(spec.timestamp_column).alias(FEATURE_TIME),
            *group.features,
        )
        condition = [left[k] == right[f"__fs_key_{i}"] for i, k in enumerate(keys)]
        condition.append(right[FEATURE_TIME] <= left[OBS_TIME])
        if spec.temporal_join_lookback is not None:
            lookback_us = spec.temporal_join_lookback * 1_000_000
            condition.append(F.unix_micros(right[FEATURE_TIME]) > F.unix_micros(left[OBS_TIME]) - lookback_us)
        latest = (
            left.join(right, condition, "inner")
            .groupBy(ROW)
            .agg(F.max_by(F.struct(*group.features), F.col(FEATURE_TIME)).alias("__fs_latest"))
            .select(
                ROW,
                *[
                    F.col(f"__fs_latest.{feature}").alias(column)
                    for feature, column in zip(group.features, group.columns, strict=True)
                ],
            )
        )
        result = result.join(latest, ROW, "left")
    return finish(result).orderBy(ROW).drop(ROW)


def _spark_frame(spark: Any, observations: Any) -> Any:
    """A Spark DataFrame of the observations with a row number `ROW`.

    A pandas frame is numbered in pandas (its order); a Spark frame by
    `monotonically_increasing_id`, which is stable for a frame read from files or local data.
    """
    import pandas as pd
    import pyarrow as pa

    if isinstance(observations, pd.DataFrame):
        if observations.empty:
            raise BadInput("observations: no rows")
        if ROW in observations.columns:
            raise BadInput(f"observations: the column name {ROW} is reserved")
        numbered = observations.assign(**{ROW: range(len(observations))})
        # Through Arrow: pyspark's own pandas conversion fails on pandas 3 string columns held
        # in several Arrow chunks (any frame read from a folder of parquet files).
        return spark.createDataFrame(pa.Table.from_pandas(numbered, preserve_index=False))
    if hasattr(observations, "sparkSession") and hasattr(observations, "columns"):
        from pyspark.sql import functions as F

        return observations.withColumn(ROW, F.monotonically_increasing_id())
    raise BadInput(f"observations: expected a Spark or pandas DataFrame, got {type(observations).__name__}")
