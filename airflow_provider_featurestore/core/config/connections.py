"""A config's conn_ids resolved on first use, beside the plain values it gives instead.

The resolving itself is a `ConnectionResolver`'s (connection_resolver.py): the Airflow layer's
under Airflow, the installed one elsewhere.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow_provider_featurestore.core.config.model import FeatureStoreConfig
from airflow_provider_featurestore.core.connection_resolver import (
    ConnectionResolver,
    Submitter,
    installed_resolver,
)
from airflow_provider_featurestore.core.errors import BadInput


class ConfigConnections:
    """A config's conn_ids, each resolved on first use through `resolver` (else the installed
    one), and the plain values the config gives where it names no connection."""

    def __init__(self, config: FeatureStoreConfig, resolver: ConnectionResolver | None = None) -> None:
        self.config = config
        self._given = resolver

    def _resolve(self, field: str, conn_id: str, kind: str) -> Any:
        resolver = self._given or installed_resolver()
        if resolver is None:
            raise BadInput(
                f"{field}: {conn_id!r} names an Airflow connection, and no connection resolver is "
                "installed (install Airflow beside the provider, or give the URL instead)"
            )
        try:
            return getattr(resolver, kind)(conn_id)
        except LookupError as exc:
            raise BadInput(f"{field}: {exc.args[0] if exc.args else exc}") from None

    @cached_property
    def interval_table_url(self) -> str:
        """`interval_table.conn_id`'s URL, else `interval_table.url`."""
        conn_id = self.config.interval_table_conn_id
        if not conn_id:
            return self.config.interval_table_url
        return self._resolve("interval_table.conn_id", conn_id, "database_url")

    @cached_property
    def redis_url(self) -> str | None:
        """`online_store.redis_url`, else its `conn_id`'s URL; None without an online store."""
        conn_id = self.config.redis_conn_id
        if self.config.redis_url or not conn_id:
            return self.config.redis_url
        return self._resolve("online_store.conn_id", conn_id, "redis_url")

    @cached_property
    def spark_submitter(self) -> Submitter | None:
        """spark-submit through `engine.conn_id`; None: the plain submit to `engine.master`."""
        conn_id = self.config.engine.conn_id
        if self.config.engine.type != "spark-submit" or not conn_id:
            return None
        return self._resolve("engine.conn_id", conn_id, "spark_submitter")

    @cached_property
    def spark_connect_remote(self) -> str | None:
        """The Spark Connect URL: `engine.conn_id`'s, else `engine.remote`."""
        engine = self.config.engine
        if engine.type != "spark-connect" or not engine.conn_id:
            return engine.remote
        return self._resolve("engine.conn_id", engine.conn_id, "spark_connect_remote")
