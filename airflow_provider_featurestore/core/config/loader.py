"""Loading a feature store: featurestore.yaml and every feature set spec of its folder, read,
validated and checked across fields, as a FeatureStoreConfig.

Every problem is a `ConfigError` of one line, `<file>: <field path>: <message>`, so the CLI
can print it and exit 2 without a traceback. Nothing here imports Airflow or Spark.
"""

from __future__ import annotations

import dataclasses
import os
import re

from airflow_provider_featurestore.core.column_types import NUMERIC_TYPES
from airflow_provider_featurestore.core.config import on_demand
from airflow_provider_featurestore.core.config.checks import (
    AcceptedValuesCheck,
    RangeCheck,
    checked_columns,
)
from airflow_provider_featurestore.core.config.fields import local_path
from airflow_provider_featurestore.core.config.location import locate_config
from airflow_provider_featurestore.core.config.model import (
    EngineConfig,
    FeatureSetSpec,
    FeatureStoreConfig,
    OnDemandSpec,
)
from airflow_provider_featurestore.core.config.problems import config_error, display_path
from airflow_provider_featurestore.core.config.schema import ConfigFile, OnlineStore, validate
from airflow_provider_featurestore.core.config.yaml_file import read_yaml

_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?):///(.*)$", re.DOTALL)


def resolve_config_path(path: str | None) -> str:
    """The config file to use (absolute): see `location.locate_config`."""
    return locate_config(path, log=None).path


def load_config(path: str | None = None, *, check_transformations: bool = True) -> FeatureStoreConfig:
    """Read and validate featurestore.yaml and every feature set spec of its folder.

    With `check_transformations`, every transformation is imported to prove it is callable
    (this imports user code, and with it usually pyspark); DAG parsing may skip that.
    """
    config_path = resolve_config_path(path)
    config_dir = os.path.dirname(config_path)
    file = validate(ConfigFile, read_yaml(config_path), config_path, config_dir)

    online = file.online_store or OnlineStore()
    if file.online_store is not None and (online.redis_url is None) == (online.conn_id is None):
        raise config_error(config_path, "online_store", "give exactly one of redis_url or conn_id")
    _check_engine(file.engine, config_path)
    feature_sets_dir = local_path(file.feature_sets, config_dir)
    if not os.path.isdir(feature_sets_dir):
        raise config_error(config_path, "feature_sets", f"folder not found: {display_path(feature_sets_dir)}")

    specs: list[FeatureSetSpec] = []
    on_demand_specs: list[OnDemandSpec] = []
    defined_in: dict[tuple[str, int], str] = {}
    for spec_path in _spec_files(feature_sets_dir):
        loaded = _load_spec(spec_path, config_dir)
        key = (loaded.name, loaded.version)
        if key in defined_in:
            where = display_path(defined_in[key])
            raise config_error(
                spec_path,
                "name",
                f"feature set {loaded.name!r} version {loaded.version} is already defined in {where}",
            )
        defined_in[key] = spec_path
        if isinstance(loaded, OnDemandSpec):
            on_demand_specs.append(loaded)
            continue
        spec = loaded
        if spec.materialization.online and file.online_store is None:
            raise config_error(
                spec_path,
                "materialization.online",
                "online is enabled but featurestore.yaml has no online_store",
            )
        if check_transformations:
            spec.load_transformation()
        specs.append(spec)
    for each in on_demand_specs:  # once every materialized set is known: their inputs name them
        on_demand.check(each, specs, call=check_transformations)

    return FeatureStoreConfig(
        project=file.project,
        config_path=config_path,
        config_dir=config_dir,
        feature_sets_dir=feature_sets_dir,
        offline_path=file.offline_store.path,
        redis_url=online.redis_url,
        redis_conn_id=online.conn_id,
        interval_table_url=_interval_table_url(file.interval_table.url, config_dir, config_path),
        engine=file.engine,
        feature_sets=tuple(sorted(specs, key=lambda spec: (spec.name, spec.version))),
        lease_seconds=file.interval_table.lease,
        interval_table_conn_id=file.interval_table.conn_id,
        feature_server=file.feature_server,
        monitor=file.monitor,
        on_demand=tuple(sorted(on_demand_specs, key=lambda spec: (spec.name, spec.version))),
    )


KINDS = ("materialized", "on_demand")


def _load_spec(spec_path: str, config_dir: str) -> FeatureSetSpec | OnDemandSpec:
    """One spec file -> a FeatureSetSpec (or an OnDemandSpec for `kind: on_demand`), with the
    checks that span several fields of the file."""
    raw = read_yaml(spec_path)
    kind = raw.pop("kind", "materialized")
    if kind not in KINDS:
        raise config_error(spec_path, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if kind == "on_demand":
        return validate(OnDemandSpec, raw, spec_path, config_dir, spec_path=spec_path, config_dir=config_dir)
    spec = validate(FeatureSetSpec, raw, spec_path, config_dir, spec_path=spec_path, config_dir=config_dir)
    _check_columns(spec, spec_path)
    _check_quality_columns(spec, spec_path)
    source_timestamp = spec.source.timestamp_column or spec.timestamp_column
    if spec.transformation is None and source_timestamp != spec.timestamp_column:
        raise config_error(
            spec_path,
            "source.timestamp_column",
            f"must be the timestamp_column ({spec.timestamp_column!r}) when there is no transformation",
        )
    mat = spec.materialization
    if not (mat.offline or mat.online):
        raise config_error(spec_path, "materialization", "enable at least one store (offline or online)")
    if mat.schedule is not None and mat.start is None:
        raise config_error(spec_path, "materialization.start", "required when a schedule is set")
    source = dataclasses.replace(spec.source, timestamp_column=source_timestamp)
    return dataclasses.replace(spec, source=source)


def _check_columns(spec: FeatureSetSpec, spec_path: str) -> None:
    """Index columns, the timestamp column and the features name distinct output columns."""
    seen: dict[str, str] = {}
    named = [(f"index_columns[{i}].name", column.name) for i, column in enumerate(spec.index_columns)]
    named.append(("timestamp_column", spec.timestamp_column))
    named += [(f"features[{i}].name", column.name) for i, column in enumerate(spec.features)]
    for where, name in named:
        if name in seen:
            message = (
                f"{name!r} is also an index column ({seen[name]})"
                if where == "timestamp_column"
                else f"{name!r} is already used by {seen[name]}"
            )
            raise config_error(spec_path, where, message)
        seen[name] = where.removesuffix(".name")


def _check_quality_columns(spec: FeatureSetSpec, spec_path: str) -> None:
    """A quality check names output columns only, and a range check a numeric one."""
    types = {column.name: column.type for column in (*spec.index_columns, *spec.features)}
    types[spec.timestamp_column] = "timestamp"
    for i, check in enumerate(spec.checks):
        for name in checked_columns(check):
            where = (
                f"checks[{i}].column"
                if isinstance(check, RangeCheck | AcceptedValuesCheck)
                else f"checks[{i}].columns"
            )
            if name not in types:
                raise config_error(
                    spec_path,
                    where,
                    f"{name!r} is not an index column, the timestamp or a declared feature "
                    f"(columns: {', '.join(types)})",
                )
            if isinstance(check, RangeCheck) and types[name] not in NUMERIC_TYPES:
                raise config_error(
                    spec_path, where, f"{name!r} is {types[name]}: range takes a numeric column"
                )


def _check_engine(engine: EngineConfig, config_path: str) -> None:
    if engine.type == "spark-connect" and engine.conn_id is None:  # conn_id: a Spark Connect connection
        if engine.remote is None:
            raise config_error(
                config_path, "engine.remote", "required for engine type spark-connect (e.g. sc://host:15002)"
            )
        if not engine.remote.startswith("sc://"):
            raise config_error(
                config_path, "engine.remote", f"{engine.remote!r} is not a Spark Connect URL (sc://host:port)"
            )
    if engine.type == "spark-submit" and engine.conn_id is None and engine.master is None:
        raise config_error(
            config_path, "engine", "type spark-submit needs conn_id (an Airflow Spark connection) or master"
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


def _interval_table_url(url: str, config_dir: str, config_path: str) -> str:
    """A relative SQLite file is made absolute against the config folder; other URLs kept."""
    match = _SQLITE_URL.match(url)
    if match:
        dialect, rest = match.groups()
        file_part, sep, query = rest.partition("?")
        if file_part and not file_part.startswith(("/", ":memory:", "file:")):
            url = f"{dialect}:///{local_path(file_part, config_dir)}{sep}{query}"
    from sqlalchemy.engine import make_url  # imported late: only the loader needs it here
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise config_error(config_path, "interval_table.url", f"not a SQLAlchemy URL: {exc}") from None
    return url
