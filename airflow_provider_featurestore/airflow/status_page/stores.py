"""The feature stores the status page shows: every config the DAGs load (the Variable
featurestore_config or $FEATURESTORE_CONFIG, one path or a JSON list of them), each with the DAG
ids its DAG file builds, so that links and access checks name that store's own DAGs.

A request names its store by `project` (or by a DAG id, for the page in a DAG's tab); without
either it gets the first config named. One config that does not load does not hide the others:
it is listed with its error and refused with 503 when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from fastapi import HTTPException, Request

from airflow_provider_featurestore.airflow.dag_ids import (
    backfill_dag_id,
    dag_id_prefix,
    monitor_dag_id,
    scheduled_dag_id,
)
from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.core.config.location import ConfigLocation, locate_configs
from airflow_provider_featurestore.core.errors import BadInput, ConfigError
from airflow_provider_featurestore.core.featurestore import FeatureStore

_CONNECTIONS = AirflowConnections()


@dataclass
class StoreEntry:
    """One named config: its feature store (None when it does not load: `error` says why) and
    the prefix its DAG ids take."""

    location: ConfigLocation
    store: FeatureStore | None
    error: str | None
    several: bool

    @property
    def project(self) -> str | None:
        return None if self.store is None else self.store.config.project

    @cached_property
    def prefix(self) -> str:
        return dag_id_prefix(self.project or "", self.several)

    @property
    def backfill_dag_id(self) -> str:
        return backfill_dag_id(self.prefix)

    def dags(self) -> dict[str, str | None]:
        """Each DAG id of this store -> the feature set it materializes (None: all of them)."""
        if self.store is None:
            return {}
        found: dict[str, str | None] = {self.backfill_dag_id: None, monitor_dag_id(self.prefix): None}
        for spec in self.store.config.feature_sets:
            if spec.materialization.schedule:
                found[scheduled_dag_id(spec.name, self.prefix)] = spec.name
        return found

    def loaded(self) -> FeatureStore:
        if self.store is None:
            raise HTTPException(503, f"the feature store config does not load: {self.error}")
        return self.store

    def describe(self) -> dict:
        return {
            "project": self.project,
            "config": {"path": self.location.path, "named_by": self.location.source},
            "backfill_dag_id": self.backfill_dag_id if self.store is not None else None,
            "dags": self.dags(),
            "error": self.error,
        }


@lru_cache(maxsize=1)
def registry() -> tuple[StoreEntry, ...]:
    """Every named config, loaded once per API server process (503 when none is named usably)."""
    try:
        locations = locate_configs(resolver=_CONNECTIONS)
    except (BadInput, ConfigError) as exc:
        raise HTTPException(503, f"the feature store config does not load: {exc}") from None
    several = len(locations) > 1
    return tuple(_entry(location, several) for location in locations)


def _entry(location: ConfigLocation, several: bool) -> StoreEntry:
    try:
        store = FeatureStore(location.path, check_transformations=False, resolver=_CONNECTIONS)
    except (BadInput, ConfigError) as exc:
        return StoreEntry(location, None, str(exc), several)
    return StoreEntry(location, store, None, several)


def choose(project: str | None = None, dag_id: str | None = None) -> StoreEntry:
    """The store a request names: by project, else the one owning `dag_id`, else the first.
    BadInput naming `project` when no store has it."""
    entries = registry()
    if project:
        for entry in entries:
            if entry.project == project:
                return entry
        known = ", ".join(e.project for e in entries if e.project) or "(none loads)"
        raise BadInput(f"project: no feature store {project!r} here; known: {known}")
    if dag_id:
        for entry in entries:
            if dag_id in entry.dags():
                return entry
    return entries[0]


def entry_of(request: Request) -> StoreEntry:
    """The store of a request (its `project`, else its `dag_id` query parameter); kept on the
    request for the route and the access check."""
    cached = getattr(request.state, "featurestore_entry", None)
    if cached is None:
        params = request.query_params
        cached = choose(params.get("project"), params.get("dag_id"))
        request.state.featurestore_entry = cached
    return cached


def store_of(request: Request) -> FeatureStore:
    """The loaded feature store of a request (503 when its config does not load)."""
    return entry_of(request).loaded()
