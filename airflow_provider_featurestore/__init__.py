"""airflow-provider-featurestore: batch materialization of ML feature sets, orchestrated by Airflow.

Two layers, one folder each:
- `core/`: the feature store without Airflow (specs and config, intervals and planner, the
  interval table, materialization, the online and offline stores, retrieval, the CLI and the
  feature server). It never imports Airflow or the Airflow layer.
- `airflow/`: the hook that owns the connections, the operators, the DAG factory, assets and the
  status-page plugin. Airflow loads it; it imports the core.

`spark_jobs/` of the source tree installs as `airflow_provider_featurestore.spark_jobs`: the
job's spark-submit entry point. The README's architecture section has every module's one job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_featurestore.core import __version__

__all__ = ["FeatureStore", "RetrievalSpec", "__version__", "get_provider_info"]

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.featurestore import FeatureStore
    from airflow_provider_featurestore.core.retrieval import RetrievalSpec


def __getattr__(name: str) -> Any:
    """`FeatureStore` and `RetrievalSpec`, imported on first use: Airflow imports this package
    for `get_provider_info` alone and should not pay for the feature store's dependencies."""
    if name == "FeatureStore":
        from airflow_provider_featurestore.core.featurestore import FeatureStore

        return FeatureStore
    if name == "RetrievalSpec":
        from airflow_provider_featurestore.core.retrieval import RetrievalSpec

        return RetrievalSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider_info() -> dict:
    """What Airflow's provider manager shows for this package (`airflow providers list`)."""
    return {
        "package-name": "airflow-provider-featurestore",
        "name": "Feature Store",
        "description": "Batch materialization of ML feature sets into a Delta offline store and a "
        "Redis online store, planned from a per-store interval table.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Feature Store",
                "tags": ["software"],
            }
        ],
        # The hook reads the Redis, Spark (spark-submit, Spark Connect) and database connections a
        # config names, whose types the Redis and Apache Spark providers declare: no type of its own.
        "hooks": [
            {
                "integration-name": "Feature Store",
                "python-modules": [
                    "airflow_provider_featurestore.airflow.hooks.featurestore",
                    "airflow_provider_featurestore.airflow.hooks.connections",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Feature Store",
                "python-modules": [
                    "airflow_provider_featurestore.airflow.operators.featurestore",
                    "airflow_provider_featurestore.airflow.operators.monitor",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Feature Store",
                "python-modules": ["airflow_provider_featurestore.airflow.sensors.featurestore"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Feature Store",
                "python-modules": ["airflow_provider_featurestore.airflow.triggers.featurestore"],
            }
        ],
    }
