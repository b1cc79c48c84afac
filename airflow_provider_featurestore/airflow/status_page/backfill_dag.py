"""The backfill DAG as the status page sees it in Airflow (Airflow layer): whether it is parsed
and paused, unpausing it, and triggering a run of it, each as the signed-in user."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException


def _not_parsed(dag_id: str) -> str:
    return f"the DAG {dag_id} is not in Airflow yet: check that dags/ is parsed"


def dag_state(dag_id: str) -> dict[str, Any]:
    """`{"dag_id", "exists", "is_paused"}` of a store's backfill DAG, from Airflow's metadata
    database."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = session.get(DagModel, dag_id)
        return {
            "dag_id": dag_id,
            "exists": dag is not None and not dag.is_stale,
            "is_paused": None if dag is None else bool(dag.is_paused),
        }


def unpause(dag_id: str, user_name: str) -> dict[str, Any]:
    """Unpause the backfill DAG, recorded in Airflow's audit log like the UI's own toggle."""
    from airflow.models.dag import DagModel
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = session.get(DagModel, dag_id)
        if dag is None:
            raise HTTPException(404, _not_parsed(dag_id))
        if dag.is_paused:
            dag.is_paused = False
            session.add(
                Log(
                    event="patch_dag",
                    owner=user_name,
                    owner_display_name=user_name,
                    dag_id=dag_id,
                    extra=json.dumps(
                        {"is_paused": False, "method": "POST", "via": "featurestore status page"}
                    ),
                )
            )
    return dag_state(dag_id)


def trigger(dag_id: str, user_name: str, conf: dict[str, Any]) -> str:
    """Create a manual run of the backfill DAG, recorded as triggered by `user_name`; its run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user_name,
            conf=conf,
        )
    except DagNotFound:
        raise HTTPException(404, _not_parsed(dag_id)) from None
    if run is None:
        raise HTTPException(409, f"{dag_id} did not create a run")
    return run.run_id
