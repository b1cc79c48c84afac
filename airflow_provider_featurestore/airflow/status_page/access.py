"""Who may see the status page and who may act from it: Airflow's auth manager decides, through
the same dependencies Airflow's own REST API uses, against the DAGs of the store the request is
about (`stores.entry_of`: its `project`), so rights on one feature store's DAGs grant nothing on
another's.

- read: the signed-in user may read the store's backfill DAG (`GET` on the DAG);
- trigger: they may create runs of it (`POST` on its DAG runs); the dry run of a backfill too;
- unpause: they may edit the DAG (`PUT` on the DAG: what Airflow's own pause toggle needs);
- edit (`can_edit`, checked by the cancel action on the DAG that ran each job).

No signed-in user is 401; a user without the right is 403.
"""

from __future__ import annotations

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import HTTPException, Request

from airflow_provider_featurestore.airflow.status_page.stores import entry_of, registry


def _dag(request: Request) -> str:
    return entry_of(request).backfill_dag_id


def requires_read(request: Request, user: GetUserDep) -> None:
    requires_access_dag(method="GET", param_dag_id=_dag(request))(request, user)


def requires_any_read(user: GetUserDep) -> None:
    """403 unless the user may read some store's backfill DAG (the page's static files)."""
    if not any(e.store is not None and can_read(e.backfill_dag_id, user) for e in registry()):
        raise HTTPException(403, "you may read none of the feature stores' backfill DAGs")


def requires_trigger(request: Request, user: GetUserDep) -> None:
    dag_id = _dag(request)
    requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=dag_id)(request, user)
    request.state.featurestore_user = user


def requires_unpause(request: Request, user: GetUserDep) -> None:
    requires_access_dag(method="PUT", param_dag_id=_dag(request))(request, user)
    request.state.featurestore_user = user


def requires_edit(dag_id: str, request: Request, user: GetUserDep) -> None:
    """403 unless the user may edit `dag_id` (what marking its runs failed needs in Airflow)."""
    requires_access_dag(method="PUT", param_dag_id=dag_id)(request, user)


def can_read(dag_id: str, user: GetUserDep) -> bool:
    return get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)


def can_edit(dag_id: str, user: GetUserDep) -> bool:
    return get_auth_manager().is_authorized_dag(method="PUT", details=DagDetails(id=dag_id), user=user)


def can_unpause(request: Request, user: GetUserDep) -> bool:
    """Whether to offer unpausing the backfill DAG (the POST itself checks again)."""
    return can_edit(_dag(request), user)


def can_trigger(request: Request, user: GetUserDep) -> bool:
    """Whether to offer the backfill action (the POST itself checks again)."""
    return get_auth_manager().is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=_dag(request)),
        user=user,
    )
