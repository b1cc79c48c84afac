"""The model the rest of the code uses: frozen, hashable dataclasses with durations in seconds,
times in UTC epoch seconds and paths absolute.

Each field is declared once, with its field type from fields.py: that declaration is also the
schema a spec file or featurestore.yaml section is validated against (schema.py), so a field
added here is read from YAML, checked and documented by its type. Building an object in code
checks nothing, as with any dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config.checks import QualityCheck
from airflow_provider_featurestore.core.config.fields import (
    ColumnType,
    Conf,
    Description,
    Duration,
    EngineType,
    FeatureRefText,
    Identifier,
    Location,
    Name,
    OnDemandMode,
    PositiveDuration,
    Schedule,
    SourceFormat,
    Text,
    Timestamp,
    TransformationRef,
    Version,
    at_least_one,
    strict,
)
from airflow_provider_featurestore.core.config.transformations import import_transformation
from airflow_provider_featurestore.core.errors import BadInput

STATUSES = iv.STATUSES  # re-exported: the one spelling of the data statuses
STORES = ("offline", "online")
# How much chunk time one engine run (a batch) takes at most: its online write holds the latest
# row per entity of all of it. 30 days of daily chunks is one batch; so are 720 hourly ones.
DEFAULT_MAX_BATCH_WINDOW = 30 * 86400
DEFAULT_MONITOR_SCHEDULE = "*/15 * * * *"  # the featurestore_monitor DAG: every 15 minutes
# Marks a field the loader sets (where a spec was read): a file that names it is refused.
SET_BY_LOADER = {"set_by_loader": True}


@strict
@dataclass(frozen=True)
class Column:
    """A typed column of a feature row (an index column or a feature)."""

    name: Identifier
    type: ColumnType


@strict
@dataclass(frozen=True)
class SourceSpec:
    """Where a feature set reads its input; `path` is absolute or a URI."""

    format: SourceFormat
    path: Location
    # Left out of a spec file, it is the spec's timestamp_column: the loader fills it in.
    timestamp_column: Identifier | None = None
    source_delay: Duration = 0
    # The source's first time: no backfill takes time before it, no scheduled run plans it,
    # and a read range that starts before it is partial (see spark_job/sources.partial_lookback).
    start: Timestamp | None = None


@strict
@dataclass(frozen=True)
class Materialization:
    """Which stores a feature set fills, when, and in chunks of what size (seconds)."""

    offline: bool = True
    online: bool = False
    schedule: Schedule | None = None
    start: Timestamp | None = None
    online_ttl: PositiveDuration | None = None
    max_job_window: PositiveDuration = 86400
    max_batch_window: PositiveDuration = DEFAULT_MAX_BATCH_WINDOW  # the chunks one engine run takes, added up
    # The freshness SLA: Complete time must reach at most this far behind now (`featurestore
    # status`, the featurestore_monitor DAG); None: no SLA, the lag is only reported.
    freshness: PositiveDuration | None = None
    spark_conf: Conf = field(default_factory=dict, hash=False)


@strict
@dataclass(frozen=True, kw_only=True)
class FeatureSetSpec:
    """One version of a feature set, read from one spec file."""

    name: Name
    version: Version
    description: Description = ""
    index_columns: Annotated[tuple[Column, ...], at_least_one("at least one index column is required")]
    timestamp_column: Identifier
    source: SourceSpec
    source_lookback: Duration = 0
    transformation: TransformationRef | None = None
    features: Annotated[tuple[Column, ...], at_least_one("at least one feature is required")]
    temporal_join_lookback: PositiveDuration | None = (
        None  # a training row takes feature rows at most this old
    )
    materialization: Materialization = field(default_factory=Materialization)
    checks: tuple[QualityCheck, ...] = ()  # evaluated on each chunk's rows before any store is written
    spec_path: str = field(default="", metadata=SET_BY_LOADER)
    config_dir: str = field(default="", metadata=SET_BY_LOADER)

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.index_columns)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features)

    def enabled_stores(self) -> tuple[str, ...]:
        """The stores this version materializes to, in `STORES` order."""
        enabled = {"offline": self.materialization.offline, "online": self.materialization.online}
        return tuple(store for store in STORES if enabled[store])

    def load_transformation(self) -> Callable[..., Any] | None:
        """The `transform(df, window)` function, imported with the config folder on sys.path.

        Raises ConfigError naming the spec file and `transformation` when it cannot be loaded.
        """
        if self.transformation is None:
            return None
        return import_transformation(self.transformation, self.config_dir, self.spec_path)


@strict
@dataclass(frozen=True)
class OnDemandInputs:
    """What an on-demand transformation reads: looked-up features and fields of the request."""

    features: Annotated[tuple[FeatureRefText, ...], at_least_one("at least one input feature is required")]
    request: dict[Identifier, ColumnType] = field(default_factory=dict, hash=False)  # name -> type


@strict
@dataclass(frozen=True, kw_only=True)
class OnDemandSpec:
    """A feature set computed at request time (`kind: on_demand`), by one function for both the
    online lookup and the point-in-time join: no source, no store, no interval, no DAG. It lives in
    `FeatureStoreConfig.on_demand`, apart from the materialized `feature_sets`, so nothing that
    plans, checks or serves stored data ever meets one (see core/on_demand.py)."""

    name: Name
    version: Version
    description: Description = ""
    inputs: OnDemandInputs
    transformation: TransformationRef
    mode: OnDemandMode = "pandas"  # what the function receives: a DataFrame or a dict of numpy arrays
    features: Annotated[tuple[Column, ...], at_least_one("at least one feature is required")]
    spec_path: str = field(default="", metadata=SET_BY_LOADER)
    config_dir: str = field(default="", metadata=SET_BY_LOADER)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features)

    def load_transformation(self) -> Callable[..., Any]:
        return import_transformation(self.transformation, self.config_dir, self.spec_path)


@strict
@dataclass(frozen=True)
class EngineConfig:
    """Where materialization jobs run."""

    type: EngineType = "embedded"
    conn_id: Text | None = None
    master: Text | None = None
    remote: Text | None = None
    conf: Conf = field(default_factory=dict, hash=False)


@strict
@dataclass(frozen=True)
class FeatureServerConfig:
    """Who may call the feature server (`featurestore serve`): see api_keys.py."""

    # Secrets: never in a repr or log. Checked by api_keys.load when serving.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_key_file: Location | None = None
    header_timeout: PositiveDuration = 10  # seconds for a request's line and headers to arrive whole
    body_timeout: PositiveDuration = 30  # seconds for its body


@strict
@dataclass(frozen=True)
class MonitorConfig:
    """The featurestore_monitor DAG: how often it checks lost state and freshness SLAs."""

    schedule: Schedule = DEFAULT_MONITOR_SCHEDULE


@dataclass(frozen=True)
class FeatureStoreConfig:
    """One feature store: its config file and every feature set spec, validated.

    The loader builds it from featurestore.yaml (schema.ConfigFile) with its sections resolved:
    the store's paths and URLs made absolute, the feature sets read from their folder.
    """

    project: str
    config_path: str
    config_dir: str
    feature_sets_dir: str
    offline_path: str
    redis_url: str | None
    redis_conn_id: str | None
    interval_table_url: str
    engine: EngineConfig
    feature_sets: tuple[FeatureSetSpec, ...]  # the materialized ones: every planner, DAG and check
    lease_seconds: int = 600  # a job not heard from for this long is dead: its Pending turns Incomplete
    interval_table_conn_id: str | None = None  # resolved by connections.interval_table_url
    feature_server: FeatureServerConfig = field(default_factory=FeatureServerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    on_demand: tuple[OnDemandSpec, ...] = ()  # computed at request time, never materialized

    def get(self, name: str, version: int | None = None) -> FeatureSetSpec:
        """A materialized feature set version; the latest version when `version` is None.

        An on-demand set is refused here, the one place every command that plans, checks,
        inspects or reads stored data looks a feature set up."""
        versions = [spec for spec in self.feature_sets if spec.name == name]
        if not versions and any(spec.name == name for spec in self.on_demand):
            raise BadInput(
                f"feature set {name!r} is on-demand: computed at request time from its inputs, it "
                "has no source, stores, intervals or jobs; read it with get_online_features, "
                "POST /get-online-features or get_historical_features"
            )
        if not versions:
            known = ", ".join(sorted({spec.name for spec in self.feature_sets})) or "(none)"
            raise BadInput(f"feature set {name!r} not found; known: {known}")
        return _pick_version(versions, name, version)

    def get_on_demand(self, name: str, version: int | None = None) -> OnDemandSpec | None:
        """An on-demand set version (the latest when `version` is None); None when `name` is not
        one. BadInput when it is one but has no such version."""
        versions = [spec for spec in self.on_demand if spec.name == name]
        if not versions:
            return None
        return _pick_version(versions, name, version)

    def offline_table_path(self, spec: FeatureSetSpec) -> str:
        """The Delta table of one feature set version: `<offline path>/<name>/v<version>`."""
        return f"{self.offline_path.rstrip('/')}/{spec.name}/v{spec.version}"

    def online_key_prefix(self, spec: FeatureSetSpec) -> str:
        """The Redis key prefix of one feature set version: `<project>:<name>:v<version>:`."""
        return f"{self.project}:{spec.name}:v{spec.version}:"


_Versioned = TypeVar("_Versioned", FeatureSetSpec, OnDemandSpec)


def _pick_version(versions: list[_Versioned], name: str, version: int | None) -> _Versioned:
    """`version` of the versions of feature set `name` (the latest when None); BadInput listing
    the versions there are when it is not one of them."""
    if version is None:
        return max(versions, key=lambda spec: spec.version)
    for spec in versions:
        if spec.version == version:
            return spec
    listed = ", ".join(str(spec.version) for spec in versions)
    raise BadInput(f"feature set {name!r} has no version {version}; versions: {listed}")
