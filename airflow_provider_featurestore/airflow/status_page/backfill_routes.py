"""The backfill action of the status page: the state of the store's backfill DAG, unpausing it,
the dry run and the trigger. The action plans with the core (`FeatureStore.claim(dry_run=True)`,
the chunk edges of `BackfillRequest.snapped`); `backfill_dag` holds what it asks of Airflow.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from airflow_provider_featurestore.airflow.status_page import backfill_dag
from airflow_provider_featurestore.airflow.status_page.access import (
    can_trigger,
    can_unpause,
    requires_read,
    requires_trigger,
    requires_unpause,
)
from airflow_provider_featurestore.airflow.status_page.data_routes import EntryDep, StoreDep
from airflow_provider_featurestore.core.featurestore import DEFAULT_MAX_JOBS, BackfillRequest, FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.planner import DEFAULT_STATUSES
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

DRY_RUN_JOBS_SHOWN = 100
MAX_INT = 2**31 - 1

router = APIRouter()


class BackfillBody(BaseModel):
    """The backfill DAG's form, as the page posts it."""

    feature_set: str
    version: int | None = Field(default=None, ge=1)
    start: str
    end: str
    data_status: list[str] = Field(default_factory=lambda: list(DEFAULT_STATUSES))
    stores: list[str] | None = None
    max_jobs: int | None = Field(default=None, ge=1, le=MAX_INT)  # None: the CLI's default


def _request(store: FeatureStore, body: BackfillBody) -> BackfillRequest:
    """The body checked as the DAG's plan task checks its form."""
    return store.backfill_request(
        body.feature_set,
        body.start,
        body.end,
        version=body.version,
        statuses=body.data_status,
        stores=body.stores,
        prefix="",
    )


def _dry_run(store: FeatureStore, checked: BackfillRequest, body: BackfillBody) -> list[JobRecord]:
    """The jobs the request would plan now: the core's dry run, which claims nothing and refuses
    more than `max_jobs` jobs (default: the CLI's)."""
    return store.claim(checked, dry_run=True, max_jobs=body.max_jobs or DEFAULT_MAX_JOBS)


def _conf(checked: BackfillRequest, body: BackfillBody) -> dict[str, Any]:
    """The backfill DAG's params for a checked request."""
    conf = {
        "feature_set": checked.spec.name,
        "version": checked.spec.version,
        "start": iso(checked.start),
        "end": iso(checked.end),
        "data_status": sorted(checked.statuses),
        "stores": list(checked.stores),
    }
    if body.max_jobs is not None:
        conf["max_jobs"] = body.max_jobs
    return conf


@router.get("/api/backfill-dag", dependencies=[Depends(requires_read)])
def backfill_dag_state(
    entry: EntryDep,
    trigger: Annotated[bool, Depends(can_trigger)],
    unpause: Annotated[bool, Depends(can_unpause)],
) -> dict[str, Any]:
    """Whether the store's backfill DAG is parsed and paused (a paused DAG's runs wait, queued),
    and what the signed-in user may do with it."""
    return {**backfill_dag.dag_state(entry.backfill_dag_id), "can_trigger": trigger, "can_unpause": unpause}


@router.post("/api/backfill-dag/unpause", dependencies=[Depends(requires_unpause)])
def unpause_backfill_dag(request: Request, entry: EntryDep) -> dict[str, Any]:
    """Unpause the backfill DAG as the signed-in user (who must be allowed to edit it)."""
    return backfill_dag.unpause(entry.backfill_dag_id, request.state.featurestore_user.get_name())


@router.post("/api/backfill/dry-run", dependencies=[Depends(requires_trigger)])
def backfill_dry_run(body: BackfillBody, store: StoreDep, entry: EntryDep) -> dict[str, Any]:
    """What `POST /api/backfill` would do: the window widened to whole chunks and the jobs
    planned over it now. Nothing is claimed and nothing is triggered."""
    checked = _request(store, body).snapped()
    planned = _dry_run(store, checked, body)
    requested_start, requested_end = to_epoch(body.start), to_epoch(body.end)
    return {
        **_conf(checked, body),
        "requested": {"start": iso(requested_start), "end": iso(requested_end)},
        "snapped": (checked.start, checked.end) != (requested_start, requested_end),
        "max_job_window": checked.spec.materialization.max_job_window,
        "planned_jobs": len(planned),
        "jobs": [
            {"start": iso(j.start), "end": iso(j.end), "stores": list(j.stores)}
            for j in planned[:DRY_RUN_JOBS_SHOWN]
        ],
        "nothing_to_do": checked.nothing_to_do() if not planned else None,
        "dag": backfill_dag.dag_state(entry.backfill_dag_id),
    }


@router.post("/api/backfill", status_code=201, dependencies=[Depends(requires_trigger)])
def backfill(request: Request, body: BackfillBody, store: StoreDep, entry: EntryDep) -> dict[str, Any]:
    """Trigger the store's backfill DAG as the signed-in user, after checking the form like the
    DAG's plan task would: a bad form, a window off the chunk edges, more than `max_jobs` jobs or
    nothing to do is refused here, and nothing is triggered."""
    checked = _request(store, body)
    checked.check_on_chunks(prefix="")
    planned = _dry_run(store, checked, body)
    if not planned:
        raise HTTPException(409, f"{checked.nothing_to_do()}: no run triggered")
    conf = _conf(checked, body)
    dag_id = entry.backfill_dag_id
    run_id = backfill_dag.trigger(dag_id, request.state.featurestore_user.get_name(), conf)
    root = request.scope.get("root_path", "").rstrip("/").rsplit("/", 1)[0]
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "conf": conf,
        "planned_jobs": len(planned),
        "dag_paused": bool(backfill_dag.dag_state(dag_id)["is_paused"]),
        "url": f"{root}/dags/{dag_id}/runs/{run_id}",
    }
