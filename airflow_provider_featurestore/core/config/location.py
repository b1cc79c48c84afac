"""Where the feature store's config is: one answer for the CLI, the hook, the DAG file and the
status page, so the four can never load different files.

The order: the path the caller was given (`--config`, the operators' `config_path`), then the
Airflow Variable `featurestore_config` (reached only through a `ConnectionResolver`: the one
passed, else the installed one; no Airflow, no Variable), then $FEATURESTORE_CONFIG, then
./featurestore.yaml. The answer says which one named the file, so a surprise is explained in
the error, the log and the CLI's output.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_featurestore.core.config.problems import display_path
from airflow_provider_featurestore.core.connection_resolver import ConnectionResolver, installed_resolver
from airflow_provider_featurestore.core.errors import ConfigError

CONFIG_ENV = "FEATURESTORE_CONFIG"
CONFIG_VARIABLE = "featurestore_config"
DEFAULT_CONFIG_NAME = "featurestore.yaml"
VARIABLE_SOURCE = f"the Airflow Variable {CONFIG_VARIABLE}"
DEFAULT_SOURCE = f"the default ./{DEFAULT_CONFIG_NAME}"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigLocation:
    """The config file (absolute path) and what named it: the argument's name, the Variable,
    the environment variable or the default."""

    path: str
    source: str


def locate_config(
    path: str | None = None,
    *,
    argument: str = "--config",
    resolver: ConnectionResolver | None = None,
    log: Callable[[str], None] | None = _log.info,
) -> ConfigLocation:
    """The config to load; `argument` names `path` as the caller's user knows it. A folder stands
    for the featurestore.yaml inside it. ConfigError (one line, saying what named the file) when
    it does not exist."""
    named = _named(path, argument, resolver)
    if len(named.paths) > 1:
        raise ConfigError(
            named.source,
            None,
            f"names {len(named.paths)} configs; pass {argument} PATH to choose one",
        )
    return _located(named.paths[0], named.source, argument, resolver, log)


def locate_configs(
    path: str | None = None,
    *,
    argument: str = "--config",
    resolver: ConnectionResolver | None = None,
    log: Callable[[str], None] | None = _log.info,
) -> list[ConfigLocation]:
    """Every config named, in the same order of sources as `locate_config`; the Variable or
    $FEATURESTORE_CONFIG may hold a JSON list of paths (several feature stores in one Airflow).
    ConfigError naming the first that does not exist, or a list that is empty or not of strings."""
    named = _named(path, argument, resolver)
    return [_located(candidate, named.source, argument, resolver, log) for candidate in named.paths]


@dataclass(frozen=True)
class _Named:
    paths: list[str]
    source: str


def _named(path: str | None, argument: str, resolver: ConnectionResolver | None) -> _Named:
    """The path(s) named and what named them; a value starting with `[` is a JSON list of paths."""
    if path:
        return _Named([path], argument)
    if value := _variable(resolver):
        return _Named(_paths(value, VARIABLE_SOURCE), VARIABLE_SOURCE)
    if os.environ.get(CONFIG_ENV):
        return _Named(_paths(os.environ[CONFIG_ENV], CONFIG_ENV), CONFIG_ENV)
    return _Named([DEFAULT_CONFIG_NAME], DEFAULT_SOURCE)


def _paths(value: str, source: str) -> list[str]:
    """One path, or the paths of a JSON list."""
    if not value.lstrip().startswith("["):
        return [value]
    try:
        paths = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, None, f"not a JSON list of paths: {exc.msg}") from None
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(source, None, "a list of configs must hold one or more paths (strings)")
    return paths


def _located(
    candidate: str,
    source: str,
    argument: str,
    resolver: ConnectionResolver | None,
    log: Callable[[str], None] | None,
) -> ConfigLocation:
    """One named path as a ConfigLocation: a folder stands for its featurestore.yaml."""
    candidate = os.path.expanduser(candidate)
    if os.path.isdir(candidate):
        candidate = os.path.join(candidate, DEFAULT_CONFIG_NAME)
    if not os.path.isfile(candidate):
        raise ConfigError(
            display_path(candidate), None, "file not found" + _hint(source, argument, resolver is not None)
        )
    location = ConfigLocation(os.path.abspath(candidate), source)
    if log is not None:
        log(f"feature store config {location.path} (named by {location.source})")
    return location


def _variable(resolver: ConnectionResolver | None) -> str | None:
    """The Variable's value where Airflow is installed and reachable from here, else None."""
    resolver = resolver or installed_resolver()
    return resolver.variable(CONFIG_VARIABLE) if resolver is not None else None


def _hint(source: str, argument: str, under_airflow: bool) -> str:
    """What the missing-file error adds: nothing for the caller's own argument (they typed it);
    under Airflow (a resolver given), the Variable as the way to name the file."""
    if source == argument:
        return ""
    if source == DEFAULT_SOURCE:
        return (
            f"; set {VARIABLE_SOURCE} or {CONFIG_ENV}"
            if under_airflow
            else f"; pass {argument} PATH or set {CONFIG_ENV}"
        )
    return f" (named by {source})"
