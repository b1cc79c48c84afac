"""The featurestore_monitor DAG's operators: thin wrappers over the core's consistency check
(`FeatureStore.check_all`) and freshness rows (`core/freshness.py`).

Each fails its task when it finds trouble, so Airflow's own alerting (a DAG's or task's
`on_failure_callback`, `email_on_failure`) is how the monitor alerts; the exception text says
what is wrong and the command that repairs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_featurestore.airflow.operators.featurestore import _FeatureStoreOperator
from airflow_provider_featurestore.core import freshness
from airflow_provider_featurestore.core.consistency import CheckReport
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore


class _StoreCheckOperator(_FeatureStoreOperator):
    """A check of every feature set version that turns what it finds Incomplete: fails once
    every version is checked when it marked time or could not read a store or source."""

    finding = ""  # what the failure line calls what was marked

    def run_check(self, store: FeatureStore) -> Sequence[CheckReport]:
        raise NotImplementedError

    def execute(self, context: Any) -> int:
        hook = self.hook()
        try:
            reports = self.run_check(hook.store)
        finally:
            hook.close()
        for report in reports:
            for line in report.lines():
                (self.log.warning if report.lost else self.log.info)("%s", line)
        lost = [f"{r.feature_set} v{r.version}" for r in reports if r.lost]
        unreachable = [f"{r.feature_set} v{r.version} {s}" for r in reports for s in r.unreachable]
        if lost or unreachable:
            raise AirflowFailException(
                f"{self.finding} marked Incomplete in {', '.join(lost) or 'none'}; "
                f"not checked (unreachable): {', '.join(unreachable) or 'none'}; see the log for the repairs"
            )
        return sum(len(r.checked) for r in reports)


class FeatureStoreLostStateOperator(_StoreCheckOperator):
    """The lost-state check of every feature set version, as `featurestore check` does it:
    Complete time a store lost (a deleted Delta commit or table, a flushed Redis) becomes
    Incomplete, the reason in its job's error. Fails once every version is checked when time was
    lost or a store could not be reached (its other stores are still checked).

    :param config_path: featurestore.yaml (default: the Airflow Variable featurestore_config,
        else $FEATURESTORE_CONFIG)
    """

    finding = "lost state"

    def run_check(self, store: FeatureStore) -> Sequence[CheckReport]:
        return store.check_all()


class FeatureStoreSourceCheckOperator(_StoreCheckOperator):
    """The source check of every feature set version, as `featurestore check --sources` does it:
    Complete time whose source files were added, changed or removed since its job read them
    becomes Incomplete in both stores ("source changed: FILE(S)"), so the next scheduled run or
    default backfill recomputes it. Fails once every version is checked when time was marked or
    a source could not be listed (nothing is marked for that one).

    :param config_path: featurestore.yaml (default: the Airflow Variable featurestore_config,
        else $FEATURESTORE_CONFIG)
    """

    finding = "changed source data"

    def run_check(self, store: FeatureStore) -> Sequence[CheckReport]:
        return store.check_all_sources()


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
