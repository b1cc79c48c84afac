"""The materialization job every engine runs, in the Spark layer: `materialize_batch()` (batch)
over the source reader (sources), the transformation, the row checks, the offline commit and
read-back (offline_commit, offline_read) and the online write (online_write)."""

from airflow_provider_featurestore.core.materialization.spark_job.batch import materialize_batch
from airflow_provider_featurestore.core.materialization.spark_job.offline_read import read_offline_table
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import (
    ENGINE_CONF,
    LATEST_METHOD_CONF,
    quiet_pandas_warning,
    quiet_pandas_warning_option,
)

__all__ = [
    "ENGINE_CONF",
    "LATEST_METHOD_CONF",
    "materialize_batch",
    "quiet_pandas_warning",
    "quiet_pandas_warning_option",
    "read_offline_table",
]
