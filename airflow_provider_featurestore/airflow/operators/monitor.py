"""The featurestore_monitor DAG's operators: thin wrappers over the core's consistency check
(`FeatureStore.check_all`) and freshness rows (`core/freshness.py`).

Each fails its task when it finds trouble, so Airflow's own alerting (a DAG's or task's
`on_failure_callback`, `email_on_failure`) is how the monitor alerts; the exception text says
what is wrong and the command that repairs it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_featurestore.airflow.operators.featurestore import _FeatureStoreOperator
from airflow_provider_featurestore.core import freshness
from airflow_provider_featurestore.core.errors import BadInput


class FeatureStoreLostStateOperator(_FeatureStoreOperator):
    """The lost-state check of every feature set version, as `featurestore check` does it:
    Complete time a store lost (a deleted Delta commit or table, a flushed Redis) becomes
    Incomplete, the reason in its job's error. Fails once every version is checked when time was
    lost or a store could not be reached (its other stores are still checked).

    :param config_path: featurestore.yaml (default: the Airflow Variable featurestore_config,
        else $FEATURESTORE_CONFIG)
    """

    def execute(self, context: Any) -> int:
        hook = self.hook()
        try:
            reports = hook.store.check_all()
        finally:
            hook.close()
        for report in reports:
            for line in report.lines():
                (self.log.warning if report.lost else self.log.info)("%s", line)
        lost = [f"{r.feature_set} v{r.version}" for r in reports if r.lost]
        unreachable = [f"{r.feature_set} v{r.version} {s}" for r in reports for s in r.unreachable]
        if lost or unreachable:
            raise AirflowFailException(
                f"lost state marked Incomplete in {', '.join(lost) or 'none'}; "
                f"not checked (unreachable): {', '.join(unreachable) or 'none'}; see the log for the repairs"
            )
        return sum(len(r.checked) for r in reports)


class FeatureStoreFreshnessOperator(_FeatureStoreOperator):
    """Fails when a version and store of one feature set breaches its freshness SLA
    (`materialization.freshness`), logging which store, how late and the backfill that repairs
    it; a feature set without an SLA succeeds, logging its lag.

    :param feature_set: the feature set's name; every version of it is checked
    :param config_path: featurestore.yaml (default: the Airflow Variable featurestore_config,
        else $FEATURESTORE_CONFIG)
    """

    template_fields = ("feature_set",)

    def __init__(self, *, feature_set: str, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(config_path=config_path, **kwargs)
        self.feature_set = feature_set

    def execute(self, context: Any) -> list[dict[str, object]]:
        hook = self.hook()
        try:
            store = hook.store
            specs = freshness.select(store.config, self.feature_set, None, name_arg="feature_set")
            rows = freshness.assess(store.table, specs)
        except BadInput as exc:
            raise AirflowFailException(str(exc)) from None
        finally:
            hook.close()
        for row in rows:
            (self.log.error if row.late else self.log.info)("%s", row.describe())
        late = [row for row in rows if row.late]
        if late:
            raise AirflowFailException(
                f"{self.feature_set}: {len(late)} store(s) past the freshness SLA: "
                + " | ".join(row.describe() for row in late)
            )
        return [row.to_json() for row in rows]
