"""`FeatureStoreHook`: a feature store as Airflow tasks see it.

It finds the config (`config_path`, else the Airflow Variable `featurestore_config`, else
`$FEATURESTORE_CONFIG`), resolves the Airflow connections it names (Redis, Spark, the
interval table's database) and masks their secrets in task logs. Loading happens on first
use, never at DAG parse time.
"""

from __future__ import annotations

import os
from functools import cached_property

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_featurestore.airflow.connections import redis_url
from airflow_provider_featurestore.core.config import CONFIG_ENV, FeatureStoreConfig, load_config
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.materialization.engines import Engine, engine_for

CONFIG_VARIABLE = "featurestore_config"


def config_path_from_airflow(config_path: str | None = None) -> str | None:
    """The feature store config's path: the argument, the Variable, or the environment."""
    if config_path:
        return config_path
    try:
        from airflow.sdk import Variable

        value = Variable.get(CONFIG_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - no metadata access (parsing, tests): fall through
        value = None
    return value or os.environ.get(CONFIG_ENV)


class FeatureStoreHook(BaseHook):
    """Loads one feature store and hands out what tasks need from it."""

    hook_name = "Feature Store"

    def __init__(self, config_path: str | None = None) -> None:
        super().__init__()
        self.config_path = config_path

    @cached_property
    def config(self) -> FeatureStoreConfig:
        config = load_config(config_path_from_airflow(self.config_path))
        url = redis_url(config)
        if url and "@" in url:
            password = url.split("@", 1)[0].rsplit(":", 1)[-1]
            if password:
                mask_secret(password)
        return config

    @cached_property
    def store(self) -> FeatureStore:
        return FeatureStore(self.config)

    def engine(self) -> Engine:
        """The configured engine; spark-submit goes through Airflow's Spark connection when named."""
        return engine_for(self.config)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
