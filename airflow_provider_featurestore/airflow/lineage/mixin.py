"""`MaterializeLineage`: the `get_openlineage_facets_on_start/complete/failure` methods the
OpenLineage listener calls on `FeatureStoreMaterializeOperator`.

Only that listener calls them, so only with apache-airflow-providers-openlineage installed and
enabled; the OpenLineage code (`lineage/facets.py`) is imported inside them, never when the
operators are imported. The datasets come from the task's job records (which feature set
version, which stores, whether a job reads the source or the Delta table) and the config; on
complete and on failure, the rows written are those of the jobs this try ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_featurestore.airflow.hooks.featurestore import FeatureStoreHook

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_featurestore.core.interval_table import JobRecord


class MaterializeLineage:
    """Lineage of a materialize task: its jobs' source in, the Delta table and Redis out."""

    config_path: str | None
    job_ids: Any  # the claimed job ids, rendered before the listener's start call
    _records: list[JobRecord]  # the jobs `execute` ran (a retry's re-claimed jobs included)

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return self._lineage(on_end=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return self._lineage(on_end=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return self._lineage(on_end=True)

    def _lineage(self, *, on_end: bool) -> OperatorLineage:
        from airflow_provider_featurestore.airflow.lineage.facets import operator_lineage

        ran = [r.id for r in self._records]
        hook = FeatureStoreHook(self.config_path, check_transformations=False)
        try:
            store = hook.store
            found = store.table.jobs_by_id([*_ids(self.job_ids), *ran])
            written = [found[i] for i in ran if i in found] if on_end else None
            return operator_lineage(store.config, store.connections.redis_url, list(found.values()), written)
        finally:
            hook.close()


def _ids(job_ids: Any) -> Sequence[str]:
    return [job_ids] if isinstance(job_ids, str) else [str(i) for i in job_ids or ()]
