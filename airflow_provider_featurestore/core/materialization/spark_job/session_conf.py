"""What the engines tell the job through its session's conf: which engine it runs on, and how
to pick the latest row per entity there."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENGINE_CONF = "featurestore.engine"  # "sail" on the embedded engine's session
LATEST_METHOD_CONF = "featurestore.latestPerEntity"  # "window" (default) or "join": see latest_per_entity

# pyspark 4.2 warns beside pandas 3 that it "does not yet fully support pandas >= 3.0.0", in
# every process that starts a session (and every Python worker). The job converts nothing
# through pyspark's pandas path (Arrow only), so the line is noise no user can act on: this one
# warning, by its message and category, is ignored wherever a session is created (and by
# `FeatureStore`, before the specs' transformations import pyspark); nothing else. At runtime,
# not at import: Airflow parses a DAG file inside `warnings.catch_warnings()`, which drops a
# filter set while the file's imports run.
PANDAS_WARNING = "PySpark does not yet fully support pandas"


def quiet_pandas_warning() -> None:
    """Ignore pyspark's pandas 3 warning in this process (called before a session is made)."""
    warnings.filterwarnings("ignore", message=re.escape(PANDAS_WARNING), category=FutureWarning)


def quiet_pandas_warning_option(existing: str | None) -> str:
    """PYTHONWARNINGS with the same filter, for the processes spark-submit starts (the driver
    and, on a local master, its Python workers), which run no code of ours before pyspark."""
    option = f"ignore:{PANDAS_WARNING}:FutureWarning"
    return f"{existing},{option}" if existing else option


def on_sail(spark: SparkSession) -> bool:
    """Whether the session is the embedded engine's (Sail): its Delta tables are read and their
    log is asked through delta-rs, which Sail's own readers differ from (see offline_read)."""
    return spark.conf.get(ENGINE_CONF, "") == "sail"


def latest_method(spark: SparkSession) -> str:
    return str(spark.conf.get(LATEST_METHOD_CONF, "window"))  # Spark raises without a default
