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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol

ENTRY_POINT_GROUP = "airflow_provider_featurestore.connection_resolver"


@dataclass(frozen=True)
class Submission:
    """One spark-submit of the job. Nothing here is secret except the contents of `batch_file`:
    `args` and `conf` go on a command line (any local user's `ps`) and into the Spark UI and
    event log, so they hold paths and settings only."""

    args: tuple[str, ...]  # the job's arguments: `--batch-file PATH --result-dir DIR`
    conf: Mapping[str, str]
    py_files: str  # the package zip
    batch_file: str  # the BatchSpec JSON, mode 0600: ship it with `--files` in cluster deploy mode
    name: str  # the application's name (Spark UI, cluster manager)
    # Set when every chunk left in the batch was cancelled: the submitter ends its spark-submit
    # (a chunk's Delta commit is atomic: one not committed yet is simply not there).
    stop: threading.Event = field(default_factory=threading.Event, compare=False)


Submitter = Callable[[Submission], "str | None"]
"""Runs `spark-submit` for a `Submission`; raises on failure; returns the driver's stdout when it
has it (the result's marker line is read from it when no file was written)."""


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
