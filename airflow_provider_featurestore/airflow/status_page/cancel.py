"""The status page's Cancel action: stop one job, or every job of one Airflow run, through the
core's `FeatureStore.cancel` (queued jobs never start; a running batch stops at its next chunk
boundary and its unfinished time turns Incomplete, "cancelled").

Who may: a user allowed to edit every DAG that ran the jobs concerned (`PUT` on the DAG, what
marking its runs failed needs in Airflow's own UI); a job run outside Airflow (the CLI) counts as
the store's backfill DAG's. Each cancel is recorded in Airflow's audit log (`Log`, event
`featurestore.cancel`), with the user, the DAG, the run and the jobs, as Airflow's own API
records the actions of its users.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, model_validator

from airflow_provider_featurestore.airflow.status_page.access import requires_edit, requires_read
from airflow_provider_featurestore.airflow.status_page.data_routes import EntryDep, StoreDep
from airflow_provider_featurestore.airflow.status_page.stores import StoreEntry
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.interval_table.job_state import LIVE_JOB_STATES

EVENT = "featurestore.cancel"
REASON = "from the status page by {user}"  # the job's error: "cancelled: <reason>"
router = APIRouter(dependencies=[Depends(requires_read)])


class CancelBody(BaseModel):
    """One job (`job_id`) or every live job of one Airflow run (`run_id`) of a feature set."""

    feature_set: str
    version: int | None = Field(default=None, ge=1)
    job_id: str | None = None
    run_id: str | None = None

    @model_validator(mode="after")
    def one_target(self) -> CancelBody:
        if (self.job_id is None) == (self.run_id is None):
            raise ValueError("give job_id or run_id (one of them)")
        return self


def live_jobs(store: FeatureStore, body: CancelBody) -> list[JobRecord]:
    """The jobs the cancel concerns that are still queued or running: 404 when the job or run
    is unknown to the feature set version, 409 when none of them is live."""
    records = store.jobs(body.feature_set, body.version)
    if body.job_id is not None:
        chosen = [r for r in records if r.id == body.job_id]
        target = f"job {body.job_id}"
    else:
        chosen = [r for r in records if (r.airflow or {}).get("run_id") == body.run_id]
        target = f"Airflow run {body.run_id}"
    if not chosen:
        raise HTTPException(404, f"{target}: no job of {body.feature_set} has it")
    live = [r for r in chosen if r.state in LIVE_JOB_STATES]
    if not live:
        states = ", ".join(sorted({str(r.state) for r in chosen}))
        raise HTTPException(409, f"{target}: nothing to cancel, its jobs are {states}")
    return live


def dag_of(job: JobRecord, entry: StoreEntry) -> str:
    """The DAG that ran a job (the store's backfill DAG for a job run outside Airflow)."""
    return (job.airflow or {}).get("dag_id") or entry.backfill_dag_id


def audit(user_name: str, dag_id: str, run_id: str | None, extra: dict[str, Any]) -> None:
    """One entry in Airflow's audit log (Browse > Audit Log, `GET /api/v2/eventLogs`)."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(
            Log(
                event=EVENT,
                owner=user_name,
                owner_display_name=user_name,
                dag_id=dag_id,
                run_id=run_id,
                extra=json.dumps({**extra, "method": "POST", "via": "featurestore status page"}),
            )
        )


@router.post("/api/cancel")
def cancel(body: CancelBody, request: Request, user: GetUserDep, store: StoreDep, entry: EntryDep) -> dict:
    """Cancel a job or a run's jobs as the signed-in user, who must be allowed to edit each DAG
    that ran them; recorded in Airflow's audit log."""
    live = live_jobs(store, body)
    dag_ids = sorted({dag_of(job, entry) for job in live})
    for dag_id in dag_ids:
        requires_edit(dag_id, request, user)
    name = user.get_name()
    result = store.cancel(
        body.feature_set,
        job_id=body.job_id,
        run_id=body.run_id,
        version=body.version,
        reason=REASON.format(user=name),
    )
    cancelled = [job.id for job in result]
    extra = {"feature_set": body.feature_set, "version": live[0].version, "jobs": cancelled}
    for dag_id in dag_ids:
        audit(name, dag_id, body.run_id, {**extra, "job_id": body.job_id} if body.job_id else extra)
    return {"feature_set": body.feature_set, "cancelled": cancelled, "dag_ids": dag_ids}
