"""airflow-provider-featurestore: batch materialization of ML feature sets, orchestrated by Airflow.

The core (specs, intervals, planner, engines, online client) never imports Airflow; the
Airflow layer lives in `airflow_provider_featurestore.airflow` and is loaded by Airflow only.
"""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """What Airflow's provider manager shows for this package (`airflow providers list`)."""
    return {
        "package-name": "airflow-provider-featurestore",
        "name": "Feature Store",
        "description": "Batch materialization of ML feature sets into a Delta offline store and a "
        "Redis online store, planned from a per-store interval table.",
        "versions": [__version__],
    }
