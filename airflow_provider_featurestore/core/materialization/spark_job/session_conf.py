"""What the engines tell the job through its session's conf: which engine it runs on, and how
to pick the latest row per entity there."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENGINE_CONF = "featurestore.engine"  # "sail" on the embedded engine's session
LATEST_METHOD_CONF = "featurestore.latestPerEntity"  # "window" (default) or "join": see latest_per_entity


def on_sail(spark: SparkSession) -> bool:
    """Whether the session is the embedded engine's (Sail): its Delta tables are read and their
    log is asked through delta-rs, which Sail's own readers differ from (see offline_read)."""
    return spark.conf.get(ENGINE_CONF, "") == "sail"


def latest_method(spark: SparkSession) -> str:
    return str(spark.conf.get(LATEST_METHOD_CONF, "window"))  # Spark raises without a default
