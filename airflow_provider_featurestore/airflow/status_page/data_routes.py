"""The status page's read-only JSON API: the stores, their feature sets, freshness, intervals,
jobs, the timeline and the per-interval grid. Every route reads one store (its `project` query
parameter, `stores.entry_of`) and needs read access to that store's backfill DAG.

The documents are the CLI's own (`report`, `freshness`, `grid`), so the terminal and the
browser never disagree.
"""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, HTTPException, Query

from airflow_provider_featurestore.airflow.status_page.access import (
    can_edit,
    can_read,
    can_trigger,
    requires_read,
)
from airflow_provider_featurestore.airflow.status_page.stores import StoreEntry, entry_of, registry, store_of
from airflow_provider_featurestore.core import freshness, grid, report
from airflow_provider_featurestore.core.config import STORES
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import StreamKey
from airflow_provider_featurestore.core.intervals import STATUSES
from airflow_provider_featurestore.core.timeline import MAX_BUCKETS
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

MAX_JOBS = 1000
MAX_GRID_ROWS = 5000

StoreDep = Annotated[FeatureStore, Depends(store_of)]
EntryDep = Annotated[StoreEntry, Depends(entry_of)]
router = APIRouter(dependencies=[Depends(requires_read)])
index = APIRouter()  # checks read access per store itself


def parse_time(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return to_epoch(value)
    except ValueError as exc:
        raise BadInput(f"{name}: {exc}") from None


def window(start: str | None, end: str | None) -> tuple[int, int] | None:
    """Both ends or neither; BadInput naming the one at fault."""
    start_s, end_s = parse_time("start", start), parse_time("end", end)
    if (start_s is None) != (end_s is None):
        raise BadInput("start, end: give both or neither")
    if start_s is None or end_s is None:
        return None
    if end_s <= start_s:
        raise BadInput(f"end: {iso(end_s)} is not after start {iso(start_s)}")
    return start_s, end_s


@index.get("/api/stores")
def stores(user: GetUserDep) -> dict[str, Any]:
    """Every feature store the DAGs load that the user may read (its backfill DAG), with its DAG
    ids and what each materializes: the page's store selector and its DAG-tab mapping. 403 when
    the user may read none."""
    loaded = [e for e in registry() if e.store is not None]
    if not loaded:
        registry()[0].loaded()  # 503 saying why the config does not load
    readable = [e for e in loaded if can_read(e.backfill_dag_id, user)]
    if not readable:
        raise HTTPException(403, "you may read none of the feature stores' backfill DAGs")
    broken = [e for e in registry() if e.store is None]
    return {"several": len(registry()) > 1, "stores": [e.describe() for e in readable + broken]}


@router.get("/api/feature-sets")
def feature_sets(
    store: StoreDep, entry: EntryDep, user: GetUserDep, trigger: Annotated[bool, Depends(can_trigger)]
) -> dict[str, Any]:
    """Every feature set version with its stores' extents and freshness; what the user may do:
    trigger the backfill DAG, and which of the store's DAGs they may edit (cancel their jobs)."""
    return {
        **entry.describe(),
        "can_trigger": trigger,
        "editable_dags": [dag_id for dag_id in entry.dags() if can_edit(dag_id, user)],
        "feature_sets": report.overview(store),
    }


@router.get("/api/freshness")
def freshness_rows(
    store: StoreDep,
    feature_set: str | None = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict[str, object]]:
    """Exactly `featurestore status [NAME] [--version N] --json`: per feature set version and
    store, its Complete time's lag against its freshness SLA."""
    specs = freshness.select(
        store.config, feature_set, version, name_arg="feature_set", version_arg="version"
    )
    return [row.to_json() for row in freshness.assess(store.table, specs)]


@router.get("/api/intervals")
def intervals(
    store: StoreDep,
    feature_set: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    store_name: Annotated[str | None, Query(alias="store")] = None,
) -> list[dict]:
    """Exactly `featurestore intervals NAME --json`."""
    if store_name is not None and store_name not in STORES:
        raise BadInput(f"store: {store_name!r} is not one of {', '.join(STORES)}")
    by_store = store.intervals(feature_set, version, [store_name] if store_name else None)
    return report.intervals_document(by_store)


@router.get("/api/jobs")
def jobs(
    store: StoreDep,
    feature_set: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_JOBS)] = None,
    start: str | None = None,
    end: str | None = None,
) -> list[dict]:
    """Exactly `featurestore jobs NAME --json`; with start and end, only the jobs meeting them."""
    return report.jobs_document(store.jobs(feature_set, version, limit, overlapping=window(start, end)))


@router.get("/api/timeline")
def timeline(
    store: StoreDep,
    feature_set: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    start: str | None = None,
    end: str | None = None,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 1000,
) -> dict[str, Any]:
    """Per enabled store, the bars of `[start, end)` (default: the whole axis) in at most
    `buckets` buckets, and the store's freshness."""
    spec = store.spec(feature_set, version)
    return report.timeline_document(
        store, spec, spec.enabled_stores(), parse_time("start", start), parse_time("end", end), buckets
    )


@router.get("/api/grid")
def interval_grid(
    store: StoreDep,
    feature_set: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    start: str | None = None,
    end: str | None = None,
    stores_shown: Annotated[str | None, Query(alias="stores")] = None,
    status: str | None = None,
    run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_GRID_ROWS)] = grid.DEFAULT_ROWS,
) -> dict[str, Any]:
    """Each stretch of `[start, end)` (default: the whole axis) one job set, newest first, with
    its status per store, its job's record and reasons; filtered by data status (`status`,
    comma-separated) and by Airflow run (`run_id`)."""
    spec = store.spec(feature_set, version)
    chosen = _listed("stores", stores_shown, spec.enabled_stores())
    statuses = _listed("status", status, STATUSES) if status else ()
    span = window(start, end) or report.axis(store, spec, chosen)
    if span is None:
        return {"start": None, "end": None, "stores": list(chosen), "rows": [], "jobs": {}, "runs": [],
                "total_rows": 0, "truncated": False}  # fmt: skip
    key = StreamKey(spec.name, spec.version)
    return grid.document(
        store.table, key, chosen, *span, statuses=statuses, run_id=run_id or None, limit=limit
    )


def _listed(name: str, value: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated choice among `allowed` (all of them when not given), in their order."""
    if not value:
        return allowed
    asked = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in asked if v not in allowed]
    if unknown or not asked:
        raise BadInput(f"{name}: {', '.join(unknown) or value!r} is not one of {', '.join(allowed)}")
    return tuple(v for v in allowed if v in asked)
