"""`OnlineReader`: the one way live feature values are read, for models (`get_online_features`),
the feature server and the CLI's `get-online`.

A read is a few steps, each one method: resolve the refs (remembered per tuple of refs: a
model asks for the same refs on every call), check the entity rows, look every feature set up
in one pipelined round trip, refuse a feature set whose online store is disabled (its keys are
purged: blanks would look like unknown entities), and shape one dict per entity row. A step
that works on the looked-up rows (request-time features) is one more call after `shape`.

The reader keeps one online store open (one connection pool, made once however many threads
ask first) and the layouts of the feature set versions it has read. Which online stores are
disabled lives in the interval table: it is read at most every `DISABLED_MAX_AGE` seconds
(`Refreshed`), never per lookup, so a server refuses a store within that many seconds of
`featurestore disable-online` (whose keys are purged at once anyway).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy.exc import OperationalError

from airflow_provider_featurestore.core import on_demand
from airflow_provider_featurestore.core.config import Column, FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.config.connections import ConfigConnections
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable, redact_credentials
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey
from airflow_provider_featurestore.core.online import OnlineLayout, OnlineStore, online_store_for
from airflow_provider_featurestore.core.online.codec import python_array
from airflow_provider_featurestore.core.refreshed import Refreshed
from airflow_provider_featurestore.core.request_errors import describe
from airflow_provider_featurestore.core.retrieval import FeatureGroup, RetrievalSpec

DISABLED_MAX_AGE = 5.0  # seconds a disable-online may take to reach a running reader
ONLINE = "online"
Rows = list[dict[str, object]]

log = logging.getLogger(__name__)

# what each index column type takes, as a refusal says it
_EXPECTED = {
    "string": "a string",
    "int": "an integer",
    "long": "an integer",
    "float": "a number",
    "double": "a number",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a timestamp (ISO-8601)",
}


class OnlineDisabled(BadInput):
    """A read named a feature set version whose online store is disabled (`disable-online`):
    it holds nothing, and blanks would look like unknown entities. HTTP 409, exit status 2."""


class OnlineReader:
    """Live feature values of one feature store; thread-safe."""

    def __init__(
        self,
        config: FeatureStoreConfig,
        connections: ConfigConnections,
        table: Callable[[], IntervalTable],
        *,
        disabled_max_age: float = DISABLED_MAX_AGE,
    ) -> None:
        """`table` gives the interval table (opened on first use): where disabled stores are."""
        self.config = config
        self._connections = connections
        self._table = table
        self._layouts: dict[tuple[str, int], OnlineLayout] = {}
        self._resolutions: dict[tuple[str, ...], on_demand.Plan] = {}
        self._store: OnlineStore | None = None
        self._store_lock = threading.Lock()
        self._disabled_seen: frozenset[tuple[str, int]] = frozenset()
        self.disabled = Refreshed(self._read_disabled, disabled_max_age)

    # ---- the online store -----------------------------------------------------------------

    def connect(self) -> OnlineStore:
        """A new client of the configured online store (the caller closes it)."""
        url = self._connections.redis_url
        if not url:
            raise BadInput(f"{self.config.config_path}: online_store: not configured")
        return online_store_for(url)

    def store(self) -> OnlineStore:
        """The client this reader keeps open for lookups (its pool reused: one round trip per
        read); closed by `close()`."""
        with self._store_lock:  # threads of a server may ask at once: one store, one pool
            if self._store is None:
                self._store = self.connect()
            return self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def layout(self, spec: FeatureSetSpec) -> OnlineLayout:
        """The layout of a feature set version, built once per reader."""
        key = (spec.name, spec.version)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = OnlineLayout.from_spec(self.config, spec)
        return layout

    # ---- a read ---------------------------------------------------------------------------

    def read(
        self,
        features: Iterable[str] | RetrievalSpec,
        entity_rows: Sequence[Mapping[str, object]],
        *,
        event_timestamps: bool = False,
        argument: str = "entity_rows",
    ) -> Rows:
        """See `FeatureStore.get_online_features`; `argument` is how the caller names the
        entity rows in errors (`entities` over HTTP)."""
        plan = self.planned(features)
        groups = plan.groups
        rows = self.checked_rows(groups, entity_rows, argument)
        found = self.lookup(groups, rows, event_timestamps, argument)
        self.check_enabled(groups)  # after: an unreachable Redis is told first, the table untouched
        return plan.apply(self.shape(groups, rows, found, event_timestamps), rows, argument)

    def resolved(self, features: Iterable[str] | RetrievalSpec) -> list[FeatureGroup]:
        """What a read of `features` looks up (on-demand inputs included)."""
        return self.planned(features).groups

    def planned(self, features: Iterable[str] | RetrievalSpec) -> on_demand.Plan:
        """`on_demand.plan` (the refs resolved, on-demand inputs added), remembered per tuple of refs."""
        refs = features.features if isinstance(features, RetrievalSpec) else features
        if isinstance(refs, str) or not isinstance(refs, list | tuple):
            return on_demand.plan(self.config, features)
        key = tuple(refs)
        planned = self._resolutions.get(key)
        if planned is None:
            planned = self._resolutions[key] = on_demand.plan(self.config, key)
        return planned

    def check_enabled(self, groups: Sequence[FeatureGroup]) -> None:
        """OnlineDisabled for the first feature set version whose online store is disabled."""
        disabled = self.disabled.get()
        if not disabled:
            return
        for group in groups:
            spec = group.spec
            if (spec.name, spec.version) in disabled:
                latest = self.config.get(spec.name).version
                version = "" if spec.version == latest else f" --version {spec.version}"
                raise OnlineDisabled(
                    f"the online store of {spec.name} v{spec.version} is disabled: run "
                    f"`featurestore enable-online {spec.name}{version}`, then backfill it"
                )

    def checked_rows(
        self, groups: Sequence[FeatureGroup], entity_rows: Sequence[Mapping[str, object]], argument: str
    ) -> list[Mapping[str, object]]:
        """The rows, each a mapping with a value for every index column the groups need;
        BadInput naming the row (and column) otherwise. The values' types are judged by the
        lookup, which builds the keys (`lookup` words its refusal)."""
        needed = _index_columns(groups)
        rows = list(entity_rows)
        for number, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise BadInput(
                    f"{argument}[{number}]: expected an object of index column values, got {describe(row)}"
                )
            for name, column in needed.items():
                if row.get(name) is None:
                    if name in row:
                        raise BadInput(f"{argument}[{number}].{name}: is null; give {_EXPECTED[column.type]}")
                    missing = [n for n in needed if n not in row]
                    raise BadInput(f"{argument}[{number}]: missing index column(s) {', '.join(missing)}")
        return rows

    def lookup(
        self,
        groups: Sequence[FeatureGroup],
        rows: Sequence[Mapping[str, object]],
        event_timestamps: bool,
        argument: str = "entity_rows",
    ) -> list[list[dict[str, object] | None]]:
        """Every group's rows in one round trip: per group, per entity, the stored values (and
        the event time with `event_timestamps`) or None."""
        requests = [(self.layout(group.spec), group.features) for group in groups]
        try:
            return self.store().lookup(requests, rows, with_event_time=event_timestamps)
        except ValueError as exc:  # an index value that is not of its column's type
            raise _bad_index_value(groups, rows, argument) or BadInput(f"{argument}: {exc}") from None

    @staticmethod
    def shape(
        groups: Sequence[FeatureGroup],
        rows: Sequence[Mapping[str, object]],
        found: Sequence[Sequence[dict[str, object] | None]],
        event_timestamps: bool,
    ) -> Rows:
        """One dict per entity row: its index columns, then each group's output columns."""
        needed = list(_index_columns(groups))
        result = []
        for number, row in enumerate(rows):
            out: dict[str, object] = {name: row[name] for name in needed}
            for group, values in zip(groups, found, strict=True):
                value = values[number]
                for feature, column in zip(group.features, group.columns, strict=True):
                    out[column] = None if value is None else value[feature]
                if event_timestamps:
                    out[group.event_time_column] = (
                        None if value is None else value[group.spec.timestamp_column]
                    )
            result.append(out)
        return result

    # ---- disabled stores ------------------------------------------------------------------

    def _read_disabled(self) -> frozenset[tuple[str, int]]:
        """The feature set versions whose online store is disabled, from the interval table;
        when it cannot be reached, what was read last (a lookup does not need the table)."""
        try:
            table = self._table()
            found = frozenset(
                (spec.name, spec.version)
                for spec in self.config.feature_sets
                if spec.materialization.online
                and ONLINE in table.disabled_stores(StreamKey(spec.name, spec.version))
            )
        except (ServiceUnavailable, OperationalError) as exc:  # at start-up, or lost since
            log.warning("which online stores are disabled was not read: %s", redact_credentials(str(exc)))
            return self._disabled_seen
        self._disabled_seen = found
        return found


def _index_columns(groups: Sequence[FeatureGroup]) -> dict[str, Column]:
    """Every index column the groups need, by name, in order of first appearance."""
    columns: dict[str, Column] = {}
    for group in groups:
        for column in group.spec.index_columns:
            columns.setdefault(column.name, column)
    return columns


def _bad_index_value(
    groups: Sequence[FeatureGroup], rows: Sequence[Mapping[str, object]], argument: str
) -> BadInput | None:
    """The first index value (by row, then column) that its column's type refuses, worded:
    which row and column, what the column takes, what was given. Only on the error path: the
    lookup builds every key at once."""
    columns = _index_columns(groups)
    for number, row in enumerate(rows):
        for name, column in columns.items():
            value = row[name]
            try:
                python_array([value], column)
            except ValueError:
                return BadInput(
                    f"{argument}[{number}].{name}: expected {_EXPECTED[column.type]} "
                    f"({name} is a {column.type} index column), got {describe(value)}"
                )
    return None
