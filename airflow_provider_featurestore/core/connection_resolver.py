"""What a config names by Airflow conn_id, resolved without the core importing Airflow.

A config may name Airflow connections (`online_store.conn_id`, `interval_table.conn_id`,
`engine.conn_id`) and the config file may be named by the Airflow Variable `featurestore_config`.
The core asks a `ConnectionResolver` for them. Under Airflow the hook passes its own; elsewhere
(the CLI, user code) the installed one is found through the entry point group
`airflow_provider_featurestore.connection_resolver`, loaded only when a config names a conn_id
or the Variable is consulted. Without one, a conn_id is refused in one line naming its field.
"""

from __future__ import annotations

import functools
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_featurestore.core.errors import BadInput

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.config import FeatureStoreConfig
    from airflow_provider_featurestore.core.materialization.engines import Submitter

ENTRY_POINT_GROUP = "airflow_provider_featurestore.connection_resolver"


class ConnectionResolver(Protocol):
    """Turns conn_ids into what the core uses. A conn_id that names no connection raises
    LookupError whose message says how to create it; the core adds the config field."""

    def redis_url(self, conn_id: str) -> str:
        """A redis:// or rediss:// URL carrying every setting of the connection (TLS files
        included): the materialization job reopens the online store from it."""
        ...

    def database_url(self, conn_id: str) -> str:
        """A SQLAlchemy URL of the interval table's database."""
        ...

    def spark_submitter(self, conn_id: str) -> Submitter:
        """A submitter that runs spark-submit as the Spark connection says."""
        ...

    def spark_connect_remote(self, conn_id: str) -> str:
        """An sc:// URL of a Spark Connect server."""
        ...

    def variable(self, name: str) -> str | None:
        """The Variable's value; None where it is unset or cannot be read from here."""
        ...


@functools.cache
def installed_resolver() -> ConnectionResolver | None:
    """The first installed resolver that loads (one whose Airflow is missing does not), else None."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            return entry_point.load()()
        except ImportError:
            continue
    return None


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
