"""Operators: thin Airflow wrappers over the core's backfill request, claim and runner.

A materialization DAG run is four steps, for the manual backfill and the scheduled runs alike:
1. `FeatureStorePlanOperator` validates the window, claims the matching time as Pending and
   returns the job ids in batches (at most `max_batch_window` of time each; one mapped task per
   batch; past `max_map_length` batches, a task takes several consecutive ones, so a backfill
   of any size still maps).
2. `FeatureStoreMaterializeOperator` (mapped) runs its jobs through the core's `run_batches`:
   one engine run per batch (one `spark-submit`), each job recorded per store as it commits. A
   retry re-claims the Incomplete time its earlier try left.
3. `FeatureStorePublishOperator` (all_done) emits the asset events of the run's jobs, one per
   store written, through the alias `featurestore`. One task emits them all: mapped tasks
   emitting at once race inside Airflow when an alias first meets an asset (a unique violation
   on `asset_alias_asset` that fails a task whose jobs succeeded and drops its events).
4. `FeatureStoreFinalizeOperator` (all_done) turns whatever the run left unfinished (a batch
   that never started, a killed task) into Incomplete, so Pending never outlives the run, and
   fails the run when a job failed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_featurestore.airflow.assets import ALIAS, feature_asset
from airflow_provider_featurestore.airflow.dag_ids import backfill_dag_id, prefix_of
from airflow_provider_featurestore.airflow.hooks.featurestore import FeatureStoreHook
from airflow_provider_featurestore.airflow.lineage.mixin import MaterializeLineage
from airflow_provider_featurestore.airflow.lineage.spark_parent import with_parent_job
from airflow_provider_featurestore.airflow.operators import run_stats
from airflow_provider_featurestore.airflow.operators.nothing_to_do import NOTHING_TO_DO_KEY, nothing_to_do
from airflow_provider_featurestore.core import form_values
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import BackfillRequest, FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord, JobState, StreamKey
from airflow_provider_featurestore.core.materialization.job_model import batches
from airflow_provider_featurestore.core.materialization.runner import finish_unfinished, run_batches, summary
from airflow_provider_featurestore.core.planner import FORCE_STATUSES
from airflow_provider_featurestore.core.rerun import jobs_to_run
from airflow_provider_featurestore.core.timeutil import iso

if TYPE_CHECKING:
    from airflow.sdk import AssetAlias

DEFAULT_MAX_MAP_LENGTH = 1024
KILLED = "cancelled: the Airflow task was killed"
ON_KILL_SECONDS = 3.0  # the longest on_kill waits for its cancel: Airflow SIGKILLs 5 s after SIGTERM


def airflow_ids(context: Any) -> dict[str, object]:
    """The ids a job record keeps of the Airflow task that ran it. `clear_number` tells the
    attempts of one run apart: a cleared run (`--reprocess-behavior completed` clears and
    re-queues it under its old run id) runs again with the next number."""
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
        "clear_number": clear_number(context),
    }


def clear_number(context: Any) -> int:
    """How often the task's DAG run was cleared (0 for its first attempt)."""
    return int(getattr(context.get("dag_run"), "clear_number", 0) or 0)


def of_this_attempt(record: JobRecord, run_id: str, attempt: int) -> bool:
    """Whether a job ran in this attempt of this run (not in one before the run was cleared)."""
    ids = record.airflow or {}
    return ids.get("run_id") == run_id and int(ids.get("clear_number") or 0) == attempt  # type: ignore[call-overload]


def task_groups(jobs: Sequence[JobRecord], max_batch_window: int, max_tasks: int) -> list[list[str]]:
    """The job ids of each mapped task: one batch per task, time-ordered; when there would be more
    than `max_tasks` batches, consecutive batches share a task (it runs them one after another)."""
    groups = batches(jobs, max_batch_window)
    per_task = math.ceil(len(groups) / max(1, max_tasks)) if groups else 1
    return [
        [job.id for group in groups[i : i + per_task] for job in group]
        for i in range(0, len(groups), per_task)
    ]


def max_map_length() -> int:
    try:
        from airflow.sdk import conf

        return conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_MAP_LENGTH)
    except Exception:  # noqa: BLE001
        return DEFAULT_MAX_MAP_LENGTH


class _FeatureStoreOperator(BaseOperator):
    """Shared: the hook (created in the task, never at parse time)."""

    def __init__(self, *, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def hook(self) -> FeatureStoreHook:
        return FeatureStoreHook(self.config_path)


class FeatureStorePlanOperator(_FeatureStoreOperator):
    """Claims a window's matching time as Pending; returns the job ids in batches for mapping.

    Bad input (an unknown feature set, a window whose end is not after its start, a status
    or store that is not allowed, a plan of more than `max_jobs` jobs) fails the task at once,
    without retries, claiming nothing. `scheduled` (a scheduled DAG's plan): the window is cut
    to the spec's `source.start`, and the claim also runs the source check (time whose source
    changed turns Incomplete, for the next run or a default backfill to redo). `force`: Complete
    time is claimed too (`FORCE_STATUSES`), so a rerun recomputes it. A plan that claims nothing
    ends skipped (and so does the run's materialization), its log saying what the window holds.
    """

    template_fields = ("feature_set", "version", "start", "end", "statuses", "stores", "max_jobs", "force")

    def __init__(
        self,
        *,
        feature_set: str,
        start: str,
        end: str,
        version: Any = None,
        statuses: Any = None,
        stores: Any = None,
        max_jobs: Any = None,
        scheduled: bool = False,
        force: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.feature_set, self.start, self.end = feature_set, start, end
        self.version, self.statuses, self.stores = version, statuses, stores
        self.max_jobs, self.scheduled, self.force = max_jobs, scheduled, force

    def execute(self, context: Any) -> list[list[str]]:
        hook = self.hook()
        try:
            store = hook.store
            request = store.backfill_request(
                self.feature_set,
                self.start,
                self.end,
                version=form_values.version(self.version),
                statuses=self._statuses(),
                stores=self.stores or None,
                prefix="",
                clip_to_source_start=self.scheduled,
            )
            jobs = self._claim(store, request, context)
            idle = "" if jobs else nothing_to_do(store, request, scheduled=self.scheduled)
        except (BadInput, ValueError) as exc:
            raise AirflowFailException(f"bad backfill request: {exc}") from None
        finally:
            hook.close()
        if idle:
            self.log.info("%s", idle)
            context["ti"].xcom_push(key=NOTHING_TO_DO_KEY, value=idle)  # publish, finalize: skip too
            raise AirflowSkipException(idle)
        spec = request.spec
        window = f"[{iso(request.start)}, {iso(request.end)})"
        self.log.info("%s v%s: %d job(s) claimed for %s", spec.name, spec.version, len(jobs), window)
        groups = task_groups(jobs, spec.materialization.max_batch_window, max_map_length())
        self.log.info("%d task(s) of up to %d job(s)", len(groups), max(len(g) for g in groups))
        return groups

    def _statuses(self) -> Any:
        """The statuses to claim: all but Pending when forced, else the ones asked (None: default)."""
        if form_values.flag("force", self.force):
            self.log.info("force: Complete time is materialized again too")
            return FORCE_STATUSES
        return self.statuses or None

    def _claim(self, store: FeatureStore, request: BackfillRequest, context: Any) -> list[JobRecord]:
        """The claim checks the stores first (lost Complete time turns Incomplete; logged); a
        scheduled plan also checks its source for late or changed files."""
        if request.start >= request.end:
            return []  # a scheduled window wholly before source.start
        return store.claim(
            request,
            airflow=airflow_ids(context),
            max_jobs=form_values.max_jobs(self.max_jobs),
            log=self.log.warning,
            sources=self.scheduled,
        )


class FeatureStoreMaterializeOperator(MaterializeLineage, _FeatureStoreOperator):
    """Runs its claimed jobs, a batch per engine run, and fails when one of them failed.
    With the OpenLineage provider, reports its source, Delta table and Redis (`MaterializeLineage`)."""

    template_fields = ("job_ids",)

    def __init__(self, *, job_ids: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_ids = job_ids
        self._records: list[JobRecord] = []
        self._store: FeatureStore | None = None

    def execute(self, context: Any) -> dict[str, int]:
        hook = self.hook()
        store = self._store = hook.store
        engine = with_parent_job(hook.engine(), context)  # spark-submit: the OpenLineage parent
        ids = airflow_ids(context)
        try:
            self._records = [
                r
                for job_id in self.job_ids
                for r in jobs_to_run(store, job_id, airflow=ids, log=self.log.info)
            ]
            done = (
                run_batches(store, self._records, engine, airflow=ids, log=self.log.info)
                if self._records
                else []
            )
        finally:
            self._emit_stats(store)
            engine.close()
            hook.close()
        cancelled = [r for r in done if r.state == JobState.CANCELLED]
        if cancelled:  # no retry: a retry would redo the time that was cancelled
            raise AirflowFailException(
                f"{len(cancelled)} of {len(done)} job(s) cancelled; first: {summary(cancelled[0])}"
            )
        failed = [r for r in done if r.state != JobState.SUCCEEDED]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(done)} job(s) failed; first: {summary(failed[0])}")
        return {s: sum(r.rows_written.get(s, 0) for r in done) for s in ("offline", "online")}

    def _emit_stats(self, store: FeatureStore) -> None:
        """Its jobs' figures, as they ended (also when the run raised), to Airflow's stats; a
        failure to read or send them is logged, never the task's outcome."""
        try:
            run_stats.emit(store.table.jobs_by_id([r.id for r in self._records]).values())
        except Exception as exc:  # noqa: BLE001 - metrics never fail a materialization
            self.log.warning("job figures not sent to Airflow's stats: %s: %s", type(exc).__name__, exc)

    def on_kill(self) -> None:
        """Airflow killed the task (marked failed or success, cleared, a timeout): its live jobs
        are cancelled, their Pending time Incomplete at once rather than when the leases end."""
        if self._store is None:
            return
        # Airflow calls this in a signal handler on the task's main thread, which may be inside a
        # transaction holding a stream's lock (a chunk's commit being recorded): the cancel runs in
        # a thread of its own, which gets that lock once the handler returns if not before.
        ids = [r.id for r in self._records]
        worker = threading.Thread(target=self._store.table.cancel_jobs, args=(ids, KILLED), daemon=True)
        worker.start()
        worker.join(ON_KILL_SECONDS)


class _RunEndOperator(_FeatureStoreOperator):
    """Shared by the steps after materialize: they run whatever happened upstream (all_done) and
    look at the jobs of their own DAG run."""

    template_fields = ("feature_set", "version")

    def __init__(self, *, feature_set: str, version: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.feature_set, self.version = feature_set, version

    def run_jobs(
        self, context: Any, *, finish_unfinished_first: bool = False
    ) -> tuple[FeatureStore, list[JobRecord], list[JobRecord]]:
        """The feature store, the job records of this attempt of this run (not those of an
        attempt before the run was cleared), and the ones left unfinished (cancelled, their time
        Incomplete, first when asked)."""
        run_id, attempt = context["ti"].run_id, clear_number(context)
        hook = self.hook()
        try:
            store = hook.store
            spec = store.spec(self.feature_set, form_values.version(self.version))
            key = StreamKey(spec.name, spec.version)
            unfinished = finish_unfinished(store.table, key, run_id) if finish_unfinished_first else []
            mine = [r for r in store.table.jobs(key) if of_this_attempt(r, run_id, attempt)]
        finally:
            hook.close()
        return store, mine, unfinished

    def planned(self, context: Any) -> bool:
        """Whether the plan claimed jobs (False: it failed); skips this task when the plan
        skipped (nothing to do), so the whole run shows it."""
        ti = context["ti"]
        if idle := ti.xcom_pull(task_ids="plan", key=NOTHING_TO_DO_KEY):
            raise AirflowSkipException(f"the plan had nothing to do: {idle}")
        return ti.xcom_pull(task_ids="plan") is not None


class FeatureStoreFinalizeOperator(_RunEndOperator):
    """Runs whatever happened upstream (all_done): this run's unfinished jobs become Incomplete."""

    def execute(self, context: Any) -> int:
        if not self.planned(context):
            raise AirflowFailException("the plan failed (see its log): nothing was claimed")
        _store, mine, unfinished = self.run_jobs(context, finish_unfinished_first=True)
        run_stats.emit(unfinished)  # no materialize task counted them: none ended them
        failed = [r for r in mine if r.state == JobState.FAILED]
        cancelled = [r for r in mine if r.state == JobState.CANCELLED]
        self.log.info(
            "%d job(s) in this run: %d succeeded, %d failed, %d cancelled (%d left unfinished by its tasks)",
            len(mine),
            len(mine) - len(failed) - len(cancelled),
            len(failed),
            len(cancelled),
            len(unfinished),
        )
        if cancelled and not failed:
            raise AirflowFailException(
                f"{len(cancelled)} of {len(mine)} job(s) cancelled ({cancelled[0].error}); their time is "
                "Incomplete: trigger featurestore_backfill with data_status Incomplete to redo it"
            )
        if failed:
            raise AirflowFailException(
                f"{len(failed)} of {len(mine)} job(s) failed; their time is Incomplete: "
                f"trigger {backfill_dag_id(prefix_of(context['ti'].dag_id))} with data_status "
                "Incomplete to repair it"
            )
        return len(mine)


class FeatureStorePublishOperator(_RunEndOperator):
    """Emits one asset event per job and store written in this run (all_done: the jobs that
    succeeded in a run that also had failures are published too)."""

    def execute(self, context: Any) -> int:
        if not self.planned(context):
            self.log.info("the plan failed: nothing to publish")
            return 0
        store, mine, _unfinished = self.run_jobs(context)
        events = context["outlet_events"]
        project = store.config.project
        published = 0
        for record in sorted(mine, key=lambda r: (r.start, r.id)):
            for name in record.stores:
                if record.state == JobState.SUCCEEDED or name in record.rows_written:
                    events[_alias()].add(
                        feature_asset(project, record.feature_set, record.version, name),
                        extra={
                            "job_id": record.id,
                            "start": iso(record.start),
                            "end": iso(record.end),
                            "rows_written": record.rows_written.get(name, 0),
                        },
                    )
                    published += 1
        self.log.info("%d asset event(s) for %d job(s) of this run", published, len(mine))
        return published


def _alias() -> AssetAlias:
    from airflow.sdk import AssetAlias

    return AssetAlias(ALIAS)
