"""The OpenLineage parent job of a spark-submit: the Airflow task that submitted it.

As Airflow's Spark provider does (`inject_parent_job_information_into_spark_properties`), the
`spark.openlineage.parentJobNamespace`, `parentJobName`, `parentRunId` and the root ones go into
the batch's Spark conf, so the OpenLineage Spark listener (when the cluster runs it) links the
Spark application's events to the Airflow task's. Only for the spark-submit engine, only with
apache-airflow-providers-openlineage installed and enabled; a `spark.openlineage.parent*` the
user set in `engine.conf` or `spark_conf` wins (the provider's helper leaves them alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_featurestore.core.materialization.engines import Engine, SparkSubmitEngine
from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, Report, Stopped


def with_parent_job(engine: Engine, context: Any) -> Engine:
    """`engine` itself, or, for spark-submit under an enabled OpenLineage provider, the same
    engine whose batches carry the task's parent job properties."""
    if not isinstance(engine, SparkSubmitEngine) or not openlineage_enabled():
        return engine
    return ParentJobEngine(engine, context)


def openlineage_enabled() -> bool:
    """The provider is installed and configured (a transport): `is_disabled()` is its own test."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:  # not installed
        return False
    return not is_disabled()


class ParentJobEngine:
    """An engine whose `launch_batch` adds the parent job properties to the conf; everything
    else is the wrapped engine's."""

    def __init__(self, engine: Engine, context: Any) -> None:
        self.engine = engine
        self.context = context

    def launch_batch(
        self, batch: BatchSpec, conf: Mapping[str, str], report: Report, stopped: Stopped | None = None
    ) -> None:
        from airflow.providers.openlineage.utils.spark import (
            inject_parent_job_information_into_spark_properties,
        )

        conf = inject_parent_job_information_into_spark_properties(dict(conf), self.context)
        self.engine.launch_batch(batch, conf, report, stopped)

    def close(self) -> None:
        self.engine.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
