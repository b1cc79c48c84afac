"""What the runner and the consistency check need of a feature store, as a protocol.

`FeatureStore` (featurestore.py) is the one implementation. The runner and the consistency
check take this view instead of importing it, because the feature store calls them: the
dependency points one way, and a test or another front end can hand them any object with these
members.
"""

from __future__ import annotations

from typing import Protocol

from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.config.connections import ConfigConnections
from airflow_provider_featurestore.core.interval_table import IntervalTable
from airflow_provider_featurestore.core.online import OnlineLayout, OnlineStore


class StoreView(Protocol):
    @property
    def config(self) -> FeatureStoreConfig: ...

    @property
    def connections(self) -> ConfigConnections: ...

    @property
    def table(self) -> IntervalTable: ...

    def spec(self, name: str, version: int | None = None) -> FeatureSetSpec: ...

    def online_layout(self, spec: FeatureSetSpec) -> OnlineLayout: ...

    def online_store(self) -> OnlineStore: ...
