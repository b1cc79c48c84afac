"""The feature store config (featurestore.yaml) and feature set specs: model and loader.

YAML is substituted (`${VAR}`), validated with pydantic (unknown fields are errors) and
turned into frozen dataclasses the rest of the code can rely on: durations in seconds,
times in UTC epoch seconds, paths absolute. Every problem is a `ConfigError` of one line,
`<file>: <field path>: <message>`, so the CLI can print it and exit 2 without a traceback.
This module imports neither Airflow nor Spark.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.column_types import COLUMN_TYPES
from airflow_provider_featurestore.core.config_location import CONFIG_ENV as CONFIG_ENV  # re-exported
from airflow_provider_featurestore.core.config_location import display_path as _display
from airflow_provider_featurestore.core.config_location import locate_config
from airflow_provider_featurestore.core.errors import BadInput, ConfigError
from airflow_provider_featurestore.core.timeutil import check_feature_time, parse_duration, to_epoch

STATUSES = iv.STATUSES  # re-exported: the one spelling of the data statuses
STORES = ("offline", "online")
SOURCE_FORMATS = ("parquet", "delta", "csv")
ENGINE_TYPES = ("embedded", "spark-submit", "spark-connect")
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
DEFAULT_INTERVAL_TABLE_URL = "sqlite:///data/intervals.db"
# How much chunk time one engine run (a batch) takes at most: its online write holds the latest
# row per entity of all of it. 30 days of daily chunks is one batch; so are 720 hourly ones.
DEFAULT_MAX_BATCH_WINDOW = 30 * 86400

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRANSFORMATION = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?):///(.*)$", re.DOTALL)
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# ---------------------------------------------------------------------------------------
# The model the rest of the code uses
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A typed column of a feature row (an index column or a feature)."""

    name: str
    type: str


@dataclass(frozen=True)
class SourceSpec:
    """Where a feature set reads its input; `path` is absolute or a URI."""

    format: str
    path: str
    timestamp_column: str
    source_delay: int = 0


@dataclass(frozen=True)
class Materialization:
    """Which stores a feature set fills, when, and in chunks of what size (seconds)."""

    offline: bool = True
    online: bool = False
    schedule: str | None = None
    start: int | None = None
    online_ttl: int | None = None
    max_job_window: int = 86400
    max_batch_window: int = DEFAULT_MAX_BATCH_WINDOW  # the chunks one engine run takes, added up
    spark_conf: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class FeatureSetSpec:
    """One version of a feature set, read from one spec file."""

    name: str
    version: int
    description: str
    index_columns: tuple[Column, ...]
    timestamp_column: str
    source: SourceSpec
    source_lookback: int = 0
    transformation: str | None = None
    features: tuple[Column, ...] = ()
    temporal_join_lookback: int | None = None  # a training row takes feature rows at most this old
    materialization: Materialization = field(default_factory=Materialization)
    spec_path: str = ""
    config_dir: str = ""

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
        module_name, _, function_name = self.transformation.partition(":")
        try:
            module = _import_from(module_name, self.config_dir)
        except (Exception, SystemExit) as exc:  # any failure importing user code is bad input (exit() too)
            reason = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
            raise _error(
                self.spec_path, "transformation", f"cannot import module {module_name!r}: {reason}"
            ) from None
        function = getattr(module, function_name, None)
        if function is None:
            raise _error(
                self.spec_path, "transformation", f"module {module_name!r} has no function {function_name!r}"
            )
        if not callable(function):
            kind = type(function).__name__
            article = "an" if kind[:1] in "aeiou" else "a"
            message = f"{self.transformation!r} is {article} {kind}, not a function"
            raise _error(self.spec_path, "transformation", message)
        return function


@dataclass(frozen=True)
class EngineConfig:
    """Where materialization jobs run."""

    type: str = "embedded"
    conn_id: str | None = None
    master: str | None = None
    remote: str | None = None
    conf: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class FeatureServerConfig:
    """Who may call the feature server (`featurestore serve`): see api_keys.py."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)  # secrets: never in a repr or log
    api_key_file: str | None = None
    header_timeout: int = 10  # seconds for a request's line and headers to arrive whole
    body_timeout: int = 30  # seconds for its body


@dataclass(frozen=True)
class FeatureStoreConfig:
    """One feature store: its config file and every feature set spec, validated."""

    project: str
    config_path: str
    config_dir: str
    feature_sets_dir: str
    offline_path: str
    redis_url: str | None
    redis_conn_id: str | None
    interval_table_url: str
    engine: EngineConfig
    feature_sets: tuple[FeatureSetSpec, ...]
    lease_seconds: int = 600  # a job not heard from for this long is dead: its Pending turns Incomplete
    interval_table_conn_id: str | None = None  # resolved by connections.interval_table_url
    feature_server: FeatureServerConfig = field(default_factory=FeatureServerConfig)

    def get(self, name: str, version: int | None = None) -> FeatureSetSpec:
        """A feature set version; the latest version when `version` is None."""
        versions = [spec for spec in self.feature_sets if spec.name == name]
        if not versions:
            known = ", ".join(sorted({spec.name for spec in self.feature_sets})) or "(none)"
            raise BadInput(f"feature set {name!r} not found; known: {known}")
        if version is None:
            return max(versions, key=lambda spec: spec.version)
        for spec in versions:
            if spec.version == version:
                return spec
        listed = ", ".join(str(spec.version) for spec in versions)
        raise BadInput(f"feature set {name!r} has no version {version}; versions: {listed}")

    def offline_table_path(self, spec: FeatureSetSpec) -> str:
        """The Delta table of one feature set version: `<offline path>/<name>/v<version>`."""
        return f"{self.offline_path.rstrip('/')}/{spec.name}/v{spec.version}"

    def online_key_prefix(self, spec: FeatureSetSpec) -> str:
        """The Redis key prefix of one feature set version: `<project>:<name>:v<version>:`."""
        return f"{self.project}:{spec.name}:v{spec.version}:"


# ---------------------------------------------------------------------------------------
# Value checks (each raises ValueError with the text the user sees after the field path)
# ---------------------------------------------------------------------------------------


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        raise ValueError(f"{_show(value)} is not one of {', '.join(choices)}")

    return check


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        raise ValueError(f"{_show(value)} is not {what}")

    return check


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _duration(value: Any) -> int:
    if value is None or isinstance(value, dict | list):
        return value  # let pydantic say what type it expected
    return parse_duration(value)


def _positive_duration(value: Any) -> int:
    seconds = _duration(value)
    if isinstance(seconds, int) and seconds <= 0:
        raise ValueError(f"must be longer than 0s, got {_show(value)}")
    return seconds


def _timestamp(value: Any) -> int:
    if isinstance(value, int | float):  # `start: 2024` would silently mean 33 minutes after 1970
        raise ValueError(
            f"{_show(value)} is not a date: use ISO-8601 such as 2024-01-01 or 2024-01-01T12:00:00Z"
        )
    try:
        return check_feature_time(to_epoch(value))
    except OverflowError as exc:
        raise ValueError(f"{_show(value)}: {exc}") from None


def _version(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{_show(value)} is not a positive integer")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise ValueError(f"{_show(value)} is not a positive integer")
    return number


def _schedule(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("@"):
        if text in SCHEDULE_PRESETS:
            return text
        raise ValueError(f"{text!r} is not a supported preset ({', '.join(SCHEDULE_PRESETS)})")
    from croniter import croniter  # only needed here; keeps import time down

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{text!r} is not a cron expression (5 fields: minute hour day month weekday) or a preset"
        )
    return text


def _conf(value: Any) -> Any:
    """Spark conf values are strings; YAML numbers and booleans are written as Spark reads them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        converted[str(key)] = item
    return converted


def _redis_url(value: Any) -> Any:
    """A redis://, rediss:// or unix:// URL whose port and database are numbers; an error shows
    the value with its password masked."""
    if not isinstance(value, str):
        return value
    shown = _show(re.sub(r"(?<=:)[^:@/\s]+(?=@)", "***", value))  # a password, even in a mistyped URL
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{shown} is not a Redis URL (redis://, rediss:// or unix://)")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{shown}: the port is not a number from 1 to 65535")
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise ValueError(f"{shown}: the database {database!r} is not a number (redis://host:6379/0)")
    return value


Name = Annotated[str, BeforeValidator(_matching(_NAME, "a valid name ([a-z][a-z0-9_]{0,62})"))]
Identifier = Annotated[
    str, BeforeValidator(_matching(_IDENTIFIER, "a valid column name (letters, digits, _)"))
]
Text = Annotated[str, BeforeValidator(_non_empty)]
Duration = Annotated[int, BeforeValidator(_duration)]
PositiveDuration = Annotated[int, BeforeValidator(_positive_duration)]
Conf = Annotated[dict[str, str], BeforeValidator(_conf)]


_M = TypeVar("_M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ColumnModel(_Model):
    name: Identifier
    type: Annotated[str, BeforeValidator(_one_of(COLUMN_TYPES))]


class _SourceModel(_Model):
    format: Annotated[str, BeforeValidator(_one_of(SOURCE_FORMATS))]
    path: Text
    timestamp_column: Identifier | None = None
    source_delay: Duration = 0


class _MaterializationModel(_Model):
    offline: bool = True
    online: bool = False
    schedule: Annotated[str, BeforeValidator(_schedule)] | None = None
    start: Annotated[int, BeforeValidator(_timestamp)] | None = None
    online_ttl: PositiveDuration | None = None
    max_job_window: PositiveDuration = 86400
    max_batch_window: PositiveDuration = DEFAULT_MAX_BATCH_WINDOW
    spark_conf: Conf = Field(default_factory=dict)


class _SpecModel(_Model):
    name: Name
    version: Annotated[int, BeforeValidator(_version)]
    description: Annotated[str, BeforeValidator(lambda value: "" if value is None else value)] = ""
    index_columns: list[_ColumnModel]
    timestamp_column: Identifier
    source: _SourceModel
    source_lookback: Duration = 0
    transformation: (
        Annotated[str, BeforeValidator(_matching(_TRANSFORMATION, "of the form module:function"))] | None
    ) = None
    features: list[_ColumnModel]
    temporal_join_lookback: PositiveDuration | None = None
    materialization: _MaterializationModel = Field(default_factory=_MaterializationModel)

    @field_validator("index_columns")
    @classmethod
    def _some_index(cls, value: list[_ColumnModel]) -> list[_ColumnModel]:
        if not value:
            raise ValueError("at least one index column is required")
        return value

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: list[_ColumnModel]) -> list[_ColumnModel]:
        if not value:
            raise ValueError("at least one feature is required")
        return value


class _OfflineStoreModel(_Model):
    path: Text


class _OnlineStoreModel(_Model):
    redis_url: Annotated[str, BeforeValidator(_redis_url)] | None = None
    conn_id: Text | None = None


class _IntervalTableModel(_Model):
    url: Text = DEFAULT_INTERVAL_TABLE_URL
    conn_id: Text | None = None  # an Airflow connection to the database; wins over url
    lease: PositiveDuration = 600


class _EngineModel(_Model):
    type: Annotated[str, BeforeValidator(_one_of(ENGINE_TYPES))] = "embedded"
    conn_id: Text | None = None
    master: Text | None = None
    remote: Text | None = None
    conf: Conf = Field(default_factory=dict)


class _FeatureServerModel(_Model):
    api_keys: list[str] = Field(default_factory=list)  # checked by api_keys.load when serving
    api_key_file: Text | None = None
    header_timeout: PositiveDuration = 10
    body_timeout: PositiveDuration = 30


class _ConfigModel(_Model):
    project: Name
    feature_sets: Text = "featuresets"
    offline_store: _OfflineStoreModel
    online_store: _OnlineStoreModel | None = None
    interval_table: _IntervalTableModel = Field(default_factory=_IntervalTableModel)
    engine: _EngineModel = Field(default_factory=_EngineModel)
    feature_server: _FeatureServerModel = Field(default_factory=_FeatureServerModel)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def resolve_config_path(path: str | None) -> str:
    """The config file to use (absolute): see `config_location.locate_config`."""
    return locate_config(path, log=None).path


def load_config(path: str | None = None, *, check_transformations: bool = True) -> FeatureStoreConfig:
    """Read and validate featurestore.yaml and every feature set spec of its folder.

    With `check_transformations`, every transformation is imported to prove it is callable
    (this imports user code, and with it usually pyspark); DAG parsing may skip that.
    """
    config_path = resolve_config_path(path)
    config_dir = os.path.dirname(config_path)
    raw = _read_yaml(config_path)
    model = _validate(_ConfigModel, raw, config_path)

    online = model.online_store or _OnlineStoreModel()
    if model.online_store is not None and (online.redis_url is None) == (online.conn_id is None):
        raise _error(config_path, "online_store", "give exactly one of redis_url or conn_id")
    engine = _engine(model.engine, config_path)
    feature_sets_dir = _local_path(model.feature_sets, config_dir)
    if not os.path.isdir(feature_sets_dir):
        raise _error(config_path, "feature_sets", f"folder not found: {_display(feature_sets_dir)}")

    specs: list[FeatureSetSpec] = []
    defined_in: dict[tuple[str, int], str] = {}
    for spec_path in _spec_files(feature_sets_dir):
        spec = _load_spec(spec_path, config_dir)
        key = (spec.name, spec.version)
        if key in defined_in:
            where = _display(defined_in[key])
            raise _error(
                spec_path,
                "name",
                f"feature set {spec.name!r} version {spec.version} is already defined in {where}",
            )
        defined_in[key] = spec_path
        if spec.materialization.online and model.online_store is None:
            raise _error(
                spec_path,
                "materialization.online",
                "online is enabled but featurestore.yaml has no online_store",
            )
        if check_transformations:
            spec.load_transformation()
        specs.append(spec)

    return FeatureStoreConfig(
        project=model.project,
        config_path=config_path,
        config_dir=config_dir,
        feature_sets_dir=feature_sets_dir,
        offline_path=_location(model.offline_store.path, config_dir),
        redis_url=online.redis_url,
        redis_conn_id=online.conn_id,
        interval_table_url=_interval_table_url(model.interval_table.url, config_dir, config_path),
        engine=engine,
        feature_sets=tuple(sorted(specs, key=lambda spec: (spec.name, spec.version))),
        lease_seconds=model.interval_table.lease,
        interval_table_conn_id=model.interval_table.conn_id,
        feature_server=FeatureServerConfig(
            api_keys=tuple(model.feature_server.api_keys),
            api_key_file=(
                None
                if model.feature_server.api_key_file is None
                else _location(model.feature_server.api_key_file, config_dir)
            ),
            header_timeout=model.feature_server.header_timeout,
            body_timeout=model.feature_server.body_timeout,
        ),
    )


def _load_spec(spec_path: str, config_dir: str) -> FeatureSetSpec:
    """One spec file -> a FeatureSetSpec, with the checks that span several fields."""
    model = _validate(_SpecModel, _read_yaml(spec_path), spec_path)
    _check_columns(model, spec_path)
    source_timestamp = model.source.timestamp_column or model.timestamp_column
    if model.transformation is None and source_timestamp != model.timestamp_column:
        raise _error(
            spec_path,
            "source.timestamp_column",
            f"must be the timestamp_column ({model.timestamp_column!r}) when there is no transformation",
        )
    mat = model.materialization
    if not (mat.offline or mat.online):
        raise _error(spec_path, "materialization", "enable at least one store (offline or online)")
    if mat.schedule is not None and mat.start is None:
        raise _error(spec_path, "materialization.start", "required when a schedule is set")
    return FeatureSetSpec(
        name=model.name,
        version=model.version,
        description=model.description,
        index_columns=tuple(Column(c.name, c.type) for c in model.index_columns),
        timestamp_column=model.timestamp_column,
        source=SourceSpec(
            format=model.source.format,
            path=_location(model.source.path, config_dir),
            timestamp_column=source_timestamp,
            source_delay=model.source.source_delay,
        ),
        source_lookback=model.source_lookback,
        transformation=model.transformation,
        features=tuple(Column(c.name, c.type) for c in model.features),
        temporal_join_lookback=model.temporal_join_lookback,
        materialization=Materialization(
            offline=mat.offline,
            online=mat.online,
            schedule=mat.schedule,
            start=mat.start,
            online_ttl=mat.online_ttl,
            max_job_window=mat.max_job_window,
            max_batch_window=mat.max_batch_window,
            spark_conf=dict(mat.spark_conf),
        ),
        spec_path=spec_path,
        config_dir=config_dir,
    )


def _check_columns(model: _SpecModel, spec_path: str) -> None:
    """Index columns, the timestamp column and the features name distinct output columns."""
    seen: dict[str, str] = {}
    for i, column in enumerate(model.index_columns):
        where = f"index_columns[{i}]"
        if column.name in seen:
            raise _error(
                spec_path, f"{where}.name", f"{column.name!r} is already used by {seen[column.name]}"
            )
        seen[column.name] = where
    if model.timestamp_column in seen:
        message = f"{model.timestamp_column!r} is also an index column ({seen[model.timestamp_column]})"
        raise _error(spec_path, "timestamp_column", message)
    seen[model.timestamp_column] = "timestamp_column"
    for i, column in enumerate(model.features):
        where = f"features[{i}]"
        if column.name in seen:
            raise _error(
                spec_path, f"{where}.name", f"{column.name!r} is already used by {seen[column.name]}"
            )
        seen[column.name] = where


def _engine(model: _EngineModel, config_path: str) -> EngineConfig:
    if model.type == "spark-connect" and model.conn_id is None:  # conn_id: a Spark Connect connection
        if model.remote is None:
            raise _error(
                config_path, "engine.remote", "required for engine type spark-connect (e.g. sc://host:15002)"
            )
        if not model.remote.startswith("sc://"):
            raise _error(
                config_path, "engine.remote", f"{model.remote!r} is not a Spark Connect URL (sc://host:port)"
            )
    if model.type == "spark-submit" and model.conn_id is None and model.master is None:
        raise _error(
            config_path, "engine", "type spark-submit needs conn_id (an Airflow Spark connection) or master"
        )
    return EngineConfig(
        type=model.type,
        conn_id=model.conn_id,
        master=model.master,
        remote=model.remote,
        conf=dict(model.conf),
    )


def _spec_files(folder: str) -> list[str]:
    names = sorted(os.listdir(folder))
    return [
        os.path.join(folder, name)
        for name in names
        if name.endswith((".yaml", ".yml"))
        and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    ]


# ---------------------------------------------------------------------------------------
# Paths and URLs
# ---------------------------------------------------------------------------------------


def _local_path(path: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _location(path: str, base: str) -> str:
    """A path relative to `base` made absolute; a URI kept, except file:// made a plain path."""
    if _URI.match(path):
        parts = urlsplit(path)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            return os.path.normpath(unquote(parts.path))
        return path
    return _local_path(path, base)


def _interval_table_url(url: str, config_dir: str, config_path: str) -> str:
    """A relative SQLite file is made absolute against the config folder; other URLs kept."""
    match = _SQLITE_URL.match(url)
    if match:
        dialect, rest = match.groups()
        file_part, sep, query = rest.partition("?")
        if file_part and not file_part.startswith(("/", ":memory:", "file:")):
            url = f"{dialect}:///{_local_path(file_part, config_dir)}{sep}{query}"
    from sqlalchemy.engine import make_url  # imported late: only the loader needs it here
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise _error(config_path, "interval_table.url", f"not a SQLAlchemy URL: {exc}") from None
    return url


# ---------------------------------------------------------------------------------------
# YAML, ${VAR} substitution and error translation
# ---------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, typing.Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay text: the field's own validator reads them and names the field when one is
# impossible (`start: 2024-02-30`); PyYAML would raise while loading, naming no field.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping, with `${VAR}` references substituted."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else None
        problem = exc.problem or exc.context or "cannot be parsed"
        raise _error(path, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise _error(path, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _error(path, None, "invalid YAML: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(path, None, f"cannot read file: {exc}") from None
    if data is None:
        raise _error(path, None, "file is empty")
    if not isinstance(data, dict):
        raise _error(path, None, f"expected a mapping of fields at the top level, got {_kind(data)}")
    return _substitute(data, (), path)


def _substitute(value: Any, loc: tuple[str | int, ...], path: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string value; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {key: _substitute(item, (*loc, str(key)), path) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*loc, i), path) for i, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None and (found or default is None):
            return found
        if default is not None:
            return default
        raise _error(
            path,
            _field_path(loc),
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
        )

    return _ENV_REF.sub(replace, value)


def _validate(model: type[_M], raw: dict[str, Any], path: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        message = _translate(first, model)
        if len(errors) > 1:
            more = len(errors) - 1
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        raise _error(path, _field_path(first["loc"]) or None, message) from None


def _translate(error: Any, root: type[BaseModel]) -> str:
    """A pydantic error -> the short text a user reads after the field path."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(root, error["loc"])
        return f"unknown field (allowed: {', '.join(allowed)})" if allowed else "unknown field"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "list_type": "a list",
    }.get(kind)
    if expected == "a string" and isinstance(value, bool | int | float):
        return (
            f"expected a string, got {value!r} (YAML read it as a {type(value).__name__}; put it in quotes)"
        )
    if expected:
        return f"expected {expected}, got {_kind(value)}"
    return str(error["msg"])


def _allowed_fields(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model that holds the unknown field at `loc`."""
    current: Any = root
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            if part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `X | None` to reach the model or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            models = [arg for arg in options if isinstance(arg, type) and issubclass(arg, BaseModel)]
            annotation = (models or options)[0]
        else:
            return annotation


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _show(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error(path: str, field_path: str | None, message: str) -> ConfigError:
    return ConfigError(_display(path), field_path, message)


# ---------------------------------------------------------------------------------------
# Importing transformations from the config folder
# ---------------------------------------------------------------------------------------


def _import_from(module_name: str, folder: str) -> types.ModuleType:
    """Import `module_name` with `folder` first on sys.path.

    A module of the same name cached from elsewhere (another feature store in the same
    process, e.g. tests) is dropped first, so the folder's own module is the one loaded.
    """
    folder = os.path.abspath(folder)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    root = module_name.partition(".")[0]
    local = PathFinder.find_spec(root, [folder])
    cached = sys.modules.get(root)
    if local is not None and cached is not None and _origin(cached) != _spec_origin(local):
        for name in list(_submodules(root)):
            del sys.modules[name]
    return importlib.import_module(module_name)


def _submodules(root: str) -> Iterator[str]:
    return (name for name in list(sys.modules) if name == root or name.startswith(root + "."))


def _origin(module: types.ModuleType) -> Any:
    file = getattr(module, "__file__", None)
    return (
        str(Path(file).resolve())
        if file
        else tuple(str(Path(p).resolve()) for p in getattr(module, "__path__", ()))
    )


def _spec_origin(spec: ModuleSpec) -> Any:
    if spec.origin and spec.has_location:
        return str(Path(spec.origin).resolve())
    return tuple(str(Path(p).resolve()) for p in spec.submodule_search_locations or ())
