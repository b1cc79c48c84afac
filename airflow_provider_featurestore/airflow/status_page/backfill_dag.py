"""The backfill DAG as the status page sees it in Airflow (Airflow layer): whether it is parsed
and paused, unpausing it, and triggering a run of it, each as the signed-in user."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException

from airflow_provider_featurestore.airflow.dag_ids import BACKFILL_DAG_ID

NOT_PARSED = f"the DAG {BACKFILL_DAG_ID} is not in Airflow yet: check that dags/ is parsed"


def dag_state() -> dict[str, Any]:
    """`{"dag_id", "exists", "is_paused"}` of the backfill DAG, from Airflow's metadata database."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = session.get(DagModel, BACKFILL_DAG_ID)
        return {
            "dag_id": BACKFILL_DAG_ID,
            "exists": dag is not None and not dag.is_stale,
            "is_paused": None if dag is None else bool(dag.is_paused),
        }


def unpause(user_name: str) -> dict[str, Any]:
    """Unpause the backfill DAG, recorded in Airflow's audit log like the UI's own toggle."""
    from airflow.models.dag import DagModel
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = session.get(DagModel, BACKFILL_DAG_ID)
        if dag is None:
            raise HTTPException(404, NOT_PARSED)
        if dag.is_paused:
            dag.is_paused = False
            session.add(
                Log(
                    event="patch_dag",
                    owner=user_name,
                    owner_display_name=user_name,
                    dag_id=BACKFILL_DAG_ID,
                    extra=json.dumps(
                        {"is_paused": False, "method": "POST", "via": "featurestore status page"}
                    ),
                )
            )
    return dag_state()


def trigger(user_name: str, conf: dict[str, Any]) -> str:
    """Create a manual run of the backfill DAG, recorded as triggered by `user_name`; its run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            BACKFILL_DAG_ID,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user_name,
            conf=conf,
        )
    except DagNotFound:
        raise HTTPException(404, NOT_PARSED) from None
    if run is None:
        raise HTTPException(409, f"{BACKFILL_DAG_ID} did not create a run")
    return run.run_id
