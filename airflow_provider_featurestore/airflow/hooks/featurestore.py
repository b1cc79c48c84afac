"""`FeatureStoreHook`: a feature store as Airflow tasks see it.

It finds the config through the one resolver (`core/config/location.py`: `config_path`, else the
Airflow Variable `featurestore_config`, else $FEATURESTORE_CONFIG) and owns the Airflow
connections the config names (`AirflowConnections`: Redis through RedisHook, spark-submit
through SparkSubmitHook, Spark Connect through SparkConnectHook, the interval table's
database), their secrets masked in task logs. Loading happens on first use, never at DAG
parse time.
"""

from __future__ import annotations

from functools import cached_property

from airflow.sdk import BaseHook

from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.core.config import FeatureStoreConfig
from airflow_provider_featurestore.core.config.location import ConfigLocation, locate_config
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.materialization.engines import Engine, engine_for


class FeatureStoreHook(BaseHook):
    """Loads one feature store and hands out what tasks need from it."""

    hook_name = "Feature Store"

    def __init__(self, config_path: str | None = None, *, check_transformations: bool = True) -> None:
        """`check_transformations=False` skips importing the specs' transformations: for tasks
        that only read the interval table (a sensor, its trigger in the triggerer)."""
        super().__init__()
        self.config_path = config_path
        self.check_transformations = check_transformations
        self.connections = AirflowConnections()

    @cached_property
    def location(self) -> ConfigLocation:
        return locate_config(
            self.config_path, argument="config_path", resolver=self.connections, log=self.log.info
        )

    @cached_property
    def store(self) -> FeatureStore:
        return FeatureStore(
            self.location.path, resolver=self.connections, check_transformations=self.check_transformations
        )

    @property
    def config(self) -> FeatureStoreConfig:
        return self.store.config

    def engine(self) -> Engine:
        """The configured engine, its conn_id (spark-submit, Spark Connect) read through Airflow."""
        return engine_for(self.config, self.store.connections)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
