"""Who may see the status page and who may trigger a backfill from it: Airflow's auth manager
decides, through the same dependencies Airflow's own REST API uses.

- read: the signed-in user may read the backfill DAG (`GET` on the DAG);
- trigger: they may create runs of it (`POST` on its DAG runs); the dry run of a backfill too;
- unpause: they may edit the DAG (`PUT` on the DAG: what Airflow's own pause toggle needs).

No signed-in user is 401; a user without the right is 403.
"""

from __future__ import annotations

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Request

from airflow_provider_featurestore.airflow.dag_ids import BACKFILL_DAG_ID

_read = requires_access_dag(method="GET", param_dag_id=BACKFILL_DAG_ID)
_trigger = requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=BACKFILL_DAG_ID)
_edit = requires_access_dag(method="PUT", param_dag_id=BACKFILL_DAG_ID)


def requires_read(request: Request, user: GetUserDep) -> None:
    _read(request, user)


def requires_trigger(request: Request, user: GetUserDep) -> None:
    _trigger(request, user)
    request.state.featurestore_user = user


def requires_unpause(request: Request, user: GetUserDep) -> None:
    _edit(request, user)
    request.state.featurestore_user = user


def can_unpause(user: GetUserDep) -> bool:
    """Whether to offer unpausing the backfill DAG (the POST itself checks again)."""
    return get_auth_manager().is_authorized_dag(
        method="PUT", details=DagDetails(id=BACKFILL_DAG_ID), user=user
    )


def can_trigger(user: GetUserDep) -> bool:
    """Whether to offer the backfill action (the POST itself checks again)."""
    return get_auth_manager().is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=BACKFILL_DAG_ID),
        user=user,
    )
