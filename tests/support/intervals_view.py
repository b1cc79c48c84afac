"""The tests' view of a feature store's interval table: (start, end, status) per store, ISO times."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso


def statuses(config: str | Path, name: str = "transactions") -> dict[str, list[tuple[str, str, str]]]:
    """The data intervals of feature set `name` in the store configured by `config`."""
    store = FeatureStore(str(config), check_transformations=False)
    try:
        return {
            s: [(iso(i.start), iso(i.end), i.status) for i in items]
            for s, items in store.intervals(name).items()
        }
    finally:
        store.close()
