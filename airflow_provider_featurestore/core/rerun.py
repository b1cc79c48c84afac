"""Which jobs a task runs for a claimed job id: the job itself while it is still queued, or,
after an earlier try of the same task (an Airflow retry), whatever that try left of its time.

An earlier try may have finished the job (nothing to redo), died while running it (its record
still says running: it is failed first, so its time turns Incomplete) or failed it; then the
job's time that is Incomplete now is claimed again, as new jobs of this try. A cancelled job is
returned as it is: the runner does not start a job that is not live, and reports it cancelled
(a task, or its retry, never redoes cancelled time; the next backfill does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.interval_table import JobRecord, JobState
from airflow_provider_featurestore.core.intervals import INCOMPLETE
from airflow_provider_featurestore.core.materialization.runner import Log, log_to_stderr

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.featurestore import FeatureStore


def jobs_to_run(
    store: FeatureStore, job_id: str, *, airflow: Mapping[str, object], log: Log = log_to_stderr
) -> list[JobRecord]:
    """The job itself when still queued; after an earlier try, its Incomplete time re-claimed."""
    record = store.table.job(job_id)
    if record.state == JobState.QUEUED:
        return [record]
    if record.state == JobState.SUCCEEDED:
        log(f"job {job_id} already succeeded in an earlier try")
        return []
    if record.state == JobState.CANCELLED:  # never redone by a task: the runner reports it cancelled
        log(f"job {job_id} was cancelled ({record.error}): not run")
        return [record]
    if record.state == JobState.RUNNING:  # an earlier try of this very task died mid-job
        store.table.finish_job(job_id, {}, error="the Airflow task running it stopped; retried")
    spec = store.spec(record.feature_set, record.version)
    request = store.backfill_request(
        spec.name, record.start, record.end, version=spec.version, statuses=[INCOMPLETE], stores=record.stores
    )
    again = store.claim(request, airflow=airflow, log=log)
    log(f"job {job_id}: re-claimed {len(again)} job(s) of its Incomplete time")
    return again
