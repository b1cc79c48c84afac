"""The feature store config (featurestore.yaml) and feature set specs: model and loader.

YAML is read and substituted (`${VAR}`, yaml_file.py), validated by pydantic straight into the
model's frozen dataclasses (model.py, whose field types in fields.py say what a value may be
and what it becomes; schema.py words the errors), then checked across fields and files
(loader.py). Durations come out in seconds, times in UTC epoch seconds, paths absolute. Every
problem is a `ConfigError` of one line, `<file>: <field path>: <message>`. This package imports
neither Airflow nor Spark.
"""

from airflow_provider_featurestore.core.column_types import COLUMN_TYPES
from airflow_provider_featurestore.core.config.fields import ENGINE_TYPES, SCHEDULE_PRESETS, SOURCE_FORMATS
from airflow_provider_featurestore.core.config.loader import load_config, resolve_config_path
from airflow_provider_featurestore.core.config.location import CONFIG_ENV, DEFAULT_CONFIG_NAME
from airflow_provider_featurestore.core.config.model import (
    DEFAULT_MAX_BATCH_WINDOW,
    DEFAULT_MONITOR_SCHEDULE,
    STATUSES,
    STORES,
    Column,
    EngineConfig,
    FeatureServerConfig,
    FeatureSetSpec,
    FeatureStoreConfig,
    Materialization,
    MonitorConfig,
    SourceSpec,
)
from airflow_provider_featurestore.core.config.schema import DEFAULT_INTERVAL_TABLE_URL

__all__ = [
    "COLUMN_TYPES",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_INTERVAL_TABLE_URL",
    "DEFAULT_MAX_BATCH_WINDOW",
    "DEFAULT_MONITOR_SCHEDULE",
    "ENGINE_TYPES",
    "SCHEDULE_PRESETS",
    "SOURCE_FORMATS",
    "STATUSES",
    "STORES",
    "Column",
    "EngineConfig",
    "FeatureServerConfig",
    "FeatureSetSpec",
    "FeatureStoreConfig",
    "Materialization",
    "MonitorConfig",
    "SourceSpec",
    "load_config",
    "resolve_config_path",
]
