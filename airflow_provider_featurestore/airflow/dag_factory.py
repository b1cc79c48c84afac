"""The DAGs of a feature store, built from its config at parse time.

Parsing reads the YAML files only: no transformation import, no engine, no Redis, no
database. Every run is plan → materialize (one mapped task per batch of jobs, at most
`max_parallel_jobs` at once) → publish (all_done: the asset events of the run's jobs) →
finalize (all_done: what the run left unfinished becomes Incomplete, and the run fails when any
job failed). A plan with nothing to do ends skipped, and so do the tasks after it.

Several feature stores in one Airflow (a JSON list of configs in the Variable, or
`prefix_project=True`): every DAG id below starts with `<project>__`.

- `featurestore_backfill`: no schedule; a trigger form (feature set, version, start, end,
  data statuses and stores as multi-selects, max jobs).
- `featurestore_materialize__<name>`: one per feature set with a schedule; the data interval is
  the schedule's period (a bare cron string in Airflow 3 gives zero-width intervals), and a run
  waits, deferred, until its interval's end + `source_delay` before materializing it. Its Param
  `force` (for `airflow backfill create --reprocess-behavior completed --run-conf
  '{"force": true}'`) materializes Complete time again.
- `featurestore_monitor`: on `monitor.schedule` (default every 15 minutes), the check tasks
  (the lost-state check of every version), then one task per feature set, named by it, that
  fails when a version and store breaches its freshness SLA.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_featurestore.airflow.assets import ALIAS, feature_asset
from airflow_provider_featurestore.airflow.dag_ids import (
    backfill_dag_id,
    check_dag_id_part,
    dag_id_prefix,
    monitor_dag_id,
    scheduled_dag_id,
)
from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.airflow.operators.featurestore import (
    FeatureStoreFinalizeOperator,
    FeatureStoreMaterializeOperator,
    FeatureStorePlanOperator,
    FeatureStorePublishOperator,
)
from airflow_provider_featurestore.airflow.operators.monitor import (
    FeatureStoreFreshnessOperator,
    FeatureStoreLostStateOperator,
    FeatureStoreSourceCheckOperator,
)
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec, FeatureStoreConfig, load_config
from airflow_provider_featurestore.core.config.location import locate_configs
from airflow_provider_featurestore.core.errors import ConfigError
from airflow_provider_featurestore.core.featurestore import DEFAULT_MAX_JOBS
from airflow_provider_featurestore.core.intervals import STATUSES
from airflow_provider_featurestore.core.planner import DEFAULT_STATUSES
from airflow_provider_featurestore.core.timeutil import to_datetime

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator, Param
    from airflow.sdk.definitions.mappedoperator import MappedOperator

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}
TAGS = ["featurestore"]
FORCE_PARAM = (
    "Materialize the run's data interval even where it is Complete already (a native backfill "
    "with --reprocess-behavior completed and --run-conf '{\"force\": true}'). Off: Complete time "
    "is skipped."
)


def build_dags(
    config_path: str | None = None,
    *,
    prefix_project: bool | None = None,
    max_parallel_jobs: int | None = None,
    monitor_default_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every DAG of every feature store named, by dag_id; the config is `config_path`, else the
    Airflow Variable featurestore_config, else $FEATURESTORE_CONFIG (see `core/config/location.py`);
    the Variable or the environment variable may hold a JSON list of configs.

    Several configs named at once: every DAG id takes its store's project as a prefix
    (`<project>__featurestore_backfill`). One config: the plain ids, unless `prefix_project=True`,
    which is how several DAG files, each building one store, stay apart (`build_dags(path,
    prefix_project=True)` in each). `monitor_default_args` go to every task of each
    featurestore_monitor: how its alerts reach people (`on_failure_callback`, `email`, ...)."""
    locations = locate_configs(config_path, argument="config_path", resolver=AirflowConnections())
    configs = [load_config(location.path, check_transformations=False) for location in locations]
    check_projects(configs)
    several = len(configs) > 1 if prefix_project is None else prefix_project
    parallel = max_parallel_jobs or int(os.environ.get("FEATURESTORE_MAX_PARALLEL_JOBS", "4"))
    dags: dict[str, Any] = {}
    for config in configs:
        dags.update(
            store_dags(config, dag_id_prefix(config.project, several), parallel, monitor_default_args)
        )
    return dags


def check_projects(configs: Sequence[FeatureStoreConfig]) -> None:
    """ConfigError when a project cannot be part of a DAG id, or two configs share a project
    (their DAGs, Redis keys and assets would collide): the message names both files."""
    seen: dict[str, str] = {}
    for config in configs:
        check_dag_id_part(config.project, config.config_path)
        if config.project in seen:
            raise ConfigError(
                config.config_path,
                "project",
                f"{config.project!r} is also the project of {seen[config.project]}: give each "
                "feature store in one Airflow a project of its own",
            )
        seen[config.project] = config.config_path


def store_dags(
    config: FeatureStoreConfig,
    prefix: str,
    parallel: int,
    monitor_default_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The DAGs of one feature store, their ids starting with `prefix`."""
    dags = {
        backfill_dag_id(prefix): backfill_dag(config, parallel, prefix),
        monitor_dag_id(prefix): monitor_dag(config, monitor_default_args, prefix),
    }
    for spec in _latest_scheduled(config):
        dag = scheduled_dag(config, spec, parallel, prefix)
        dags[dag.dag_id] = dag
    return dags


def _latest_scheduled(config: FeatureStoreConfig) -> list[FeatureSetSpec]:
    """Per feature set name, its latest version, when that has a schedule."""
    latest: dict[str, FeatureSetSpec] = {}
    for spec in config.feature_sets:
        latest[spec.name] = spec
    return [spec for spec in latest.values() if spec.materialization.schedule]


def _materialization_tasks(
    config: FeatureStoreConfig,
    parallel: int,
    *,
    feature_set: str,
    version: str,
    start: str,
    end: str,
    statuses: str | None,
    stores: str | None,
    specs: list[FeatureSetSpec],
    max_jobs: str | None = None,
    scheduled: bool = False,
    force: str | None = None,
) -> tuple[FeatureStorePlanOperator, MappedOperator, FeatureStoreFinalizeOperator]:
    from airflow.sdk import AssetAlias

    common = {"config_path": config.config_path}
    plan = FeatureStorePlanOperator(
        task_id="plan",
        # Declared (never emitted here) so that parsing registers the assets the materialize
        # tasks emit through the alias: Airflow creates an alias's unknown asset when a task
        # succeeds, and two tasks doing so at once fail one of them (a unique violation).
        inlets=[
            feature_asset(config.project, spec.name, spec.version, store)
            for spec in specs
            for store in spec.enabled_stores()
        ],
        feature_set=feature_set,
        version=version,
        start=start,
        end=end,
        statuses=statuses,
        stores=stores,
        max_jobs=max_jobs,
        scheduled=scheduled,
        force=force,
        **common,
    )
    materialize = FeatureStoreMaterializeOperator.partial(
        task_id="materialize",
        max_active_tis_per_dag=parallel,
        retries=1,
        retry_delay=timedelta(seconds=10),
        **common,
    ).expand(job_ids=plan.output)
    publish = FeatureStorePublishOperator(
        task_id="publish",
        feature_set=feature_set,
        version=version,
        outlets=[AssetAlias(ALIAS)],  # the feature set is known at run time: events go through the alias
        **common,
    )
    finalize = FeatureStoreFinalizeOperator(
        task_id="finalize", feature_set=feature_set, version=version, **common
    )
    plan >> materialize >> publish >> finalize
    return plan, materialize, finalize


def _multi_select(default: Sequence[str], options: Sequence[str], title: str, description: str) -> Param:
    """An array Param the form draws as a multi-select: only when its options are at its top
    level (`examples`, Airflow 3's form); `items.enum` alone gives a free-text box."""
    from airflow.sdk import Param

    return Param(
        list(default),
        type="array",
        title=title,
        examples=list(options),
        items={"type": "string", "enum": list(options)},
        uniqueItems=True,
        description=description,
    )


def backfill_dag(config: FeatureStoreConfig, parallel: int, prefix: str = "") -> DAG:
    from airflow.sdk import DAG, Param

    names = sorted({spec.name for spec in config.feature_sets})
    params = {
        "feature_set": Param(names[0] if names else "", type="string", enum=names, title="Feature set"),
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description="Empty: the latest version.",
        ),
        "start": Param(type="string", format="date-time", title="Start (UTC, inclusive)"),
        "end": Param(type="string", format="date-time", title="End (UTC, exclusive)"),
        "data_status": _multi_select(
            DEFAULT_STATUSES,
            STATUSES,
            "Data status",
            "Fill time whose status is one of these (Pending time is never taken).",
        ),
        "stores": _multi_select(
            STORES, STORES, "Stores", "Stores to write (only those the feature set enables)."
        ),
        "max_jobs": Param(
            DEFAULT_MAX_JOBS,
            type="integer",
            minimum=1,
            title="Max jobs",
            description=(
                "The plan refuses a backfill of more jobs than this (a mistyped window), naming its "
                "size; raise it to confirm a larger backfill."
            ),
        ),
    }
    with DAG(
        dag_id=backfill_dag_id(prefix),
        description=f"Backfill a window of a feature set of the {config.project} feature store",
        schedule=None,
        params=params,
        render_template_as_native_obj=True,
        tags=TAGS,
        doc_md=__doc__,
    ) as dag:
        _materialization_tasks(
            config,
            parallel,
            feature_set="{{ params.feature_set }}",
            version="{{ params.version }}",
            start="{{ params.start }}",
            end="{{ params.end }}",
            statuses="{{ params.data_status }}",
            stores="{{ params.stores }}",
            specs=list(config.feature_sets),
            max_jobs="{{ params.max_jobs }}",
        )
    return dag


def scheduled_dag(config: FeatureStoreConfig, spec: FeatureSetSpec, parallel: int, prefix: str = "") -> DAG:
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import DAG, Param
    from airflow.timetables.interval import CronDataIntervalTimetable

    schedule = str(spec.materialization.schedule)
    timetable = CronDataIntervalTimetable(PRESETS.get(schedule, schedule), timezone="UTC")
    # No scheduled run covers time before source.start (its plan task clips a window that does).
    start = max(spec.materialization.start or 0, spec.source.start or 0)
    with DAG(
        dag_id=scheduled_dag_id(spec.name, prefix),
        description=f"Materialize each {schedule} data interval of {spec.name} v{spec.version}",
        schedule=timetable,
        start_date=to_datetime(start),
        catchup=False,
        max_active_runs=4,
        render_template_as_native_obj=True,
        params={"force": Param(False, type="boolean", title="Force", description=FORCE_PARAM)},
        tags=TAGS,
    ) as dag:
        wait = TimeDeltaSensor(
            task_id="wait_for_source", delta=timedelta(seconds=spec.source.source_delay), deferrable=True
        )
        plan, _materialize, _finalize = _materialization_tasks(
            config,
            parallel,
            feature_set=spec.name,
            version=str(spec.version),
            start="{{ data_interval_start.isoformat() }}",
            end="{{ data_interval_end.isoformat() }}",
            statuses=None,
            stores=None,
            specs=[spec],
            scheduled=True,
            force="{{ params.force }}",
        )
        wait >> plan
    return dag


MONITOR_START = datetime(2024, 1, 1, tzinfo=UTC)  # any past date: catchup is off


def check_tasks(config: FeatureStoreConfig) -> list[BaseOperator]:
    """The monitor's checks of the stores, run before the SLA tasks (which run whatever they
    found: a check's findings change the Complete time they judge): the lost-state check and
    the source check, side by side; a further check is one more entry of this list."""
    common = {"config_path": config.config_path}
    return [
        FeatureStoreLostStateOperator(task_id="lost_state", **common),
        FeatureStoreSourceCheckOperator(task_id="source_changes", **common),
    ]


def monitor_dag(
    config: FeatureStoreConfig, default_args: Mapping[str, Any] | None = None, prefix: str = ""
) -> DAG:
    """`featurestore_monitor`: the check tasks (in the task group `checks`), then per feature set
    a task named by it that fails when a version and store of it is past its freshness SLA."""
    from airflow.sdk import DAG, CronTriggerTimetable, TaskGroup

    schedule = config.monitor.schedule
    names = sorted({spec.name for spec in config.feature_sets})
    with DAG(
        dag_id=monitor_dag_id(prefix),
        description=f"Lost state and freshness SLAs of the {config.project} feature store ({schedule})",
        schedule=CronTriggerTimetable(PRESETS.get(schedule, schedule), timezone="UTC"),
        start_date=MONITOR_START,
        catchup=False,
        max_active_runs=1,
        default_args=dict(default_args or {}),
        tags=TAGS,
    ) as dag:
        with TaskGroup("checks") as checks:
            check_tasks(config)
        slas = [
            FeatureStoreFreshnessOperator(
                task_id=name, feature_set=name, config_path=config.config_path, trigger_rule="all_done"
            )
            for name in names
        ]
        checks >> slas
    return dag
