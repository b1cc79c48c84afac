"""airflow-provider-featurestore: batch materialization of ML feature sets, orchestrated by Airflow.

The core (specs, intervals, planner, engines, online client) never imports Airflow; the
Airflow layer lives in `airflow_provider_featurestore.airflow` and is loaded by Airflow only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FeatureStore", "RetrievalSpec", "get_provider_info"]

if TYPE_CHECKING:
    from .featurestore import FeatureStore
    from .retrieval import RetrievalSpec


def __getattr__(name: str) -> Any:
    """`FeatureStore` and `RetrievalSpec`, imported on first use: Airflow imports this package
    for `get_provider_info` alone and should not pay for the feature store's dependencies."""
    if name == "FeatureStore":
        from .featurestore import FeatureStore

        return FeatureStore
    if name == "RetrievalSpec":
        from .retrieval import RetrievalSpec

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
    }
