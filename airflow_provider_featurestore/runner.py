"""Running claimed jobs: start → heartbeat while the engine works → finish, per store.

The CLI runs a whole backfill through `run_jobs`; an Airflow task runs one job through
`run_job`. Either way a job's time leaves Pending: Complete for the stores whose write
committed, Incomplete for the others, and (for a killed process) Incomplete once its lease
expires.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from spark_jobs.materialize import JobResult, JobSpec

from .config import FeatureSetSpec
from .connections import redis_url
from .engines import Engine
from .interval_table import IntervalTable, JobRecord, StreamKey
from .timeutil import iso

if TYPE_CHECKING:
    from .featurestore import FeatureStore

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Heartbeat:
    """Renews the leases of live jobs every quarter lease, in a background thread: the running
    job, or every job of a backfill still waiting its turn. A job no longer live is dropped."""

    def __init__(self, table: IntervalTable, job_ids: Sequence[str]) -> None:
        self.table, self.job_ids = table, list(job_ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="featurestore-heartbeat", daemon=True)

    def _beat(self) -> None:
        interval = max(self.table.lease_seconds / 4, 0.5)
        while self.job_ids and not self._stop.wait(interval):
            for job_id in list(self.job_ids):
                try:
                    if not self.table.heartbeat(job_id):
                        self.job_ids.remove(job_id)
                except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                    continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def job_spec(store: FeatureStore, record: JobRecord) -> JobSpec:
    """What the engine needs for one claimed job."""
    return JobSpec(
        config_path=store.config.config_path,
        feature_set=record.feature_set,
        version=record.version,
        start=record.start,
        end=record.end,
        stores=record.stores,
        job_id=record.id,
        from_offline=record.reads == "offline",
        redis_url=redis_url(store.config) if "online" in record.stores else None,
    )


def spark_conf(store: FeatureStore, spec: FeatureSetSpec) -> dict[str, str]:
    """engine.conf with the feature set's materialization.spark_conf merged over it."""
    return {**store.config.engine.conf, **spec.materialization.spark_conf}


def run_job(
    store: FeatureStore, record: JobRecord, engine: Engine, *, airflow: Mapping[str, object] | None = None
) -> JobRecord:
    """Run one claimed job to its end and record the outcome (also when interrupted)."""
    table = store.table
    spec = store.spec(record.feature_set, record.version)
    started = table.start_job(record.id, airflow=airflow)
    if started.state != "running":
        # Its lease ran out before it started (a concurrent claim expired it): its time is
        # Incomplete or already another job's; running it now would write that time twice.
        return started
    try:
        with Heartbeat(table, [record.id]):
            result = engine.run(job_spec(store, record), spark_conf(store, spec))
    except BaseException as exc:
        table.finish_job(record.id, {}, error=f"interrupted: {type(exc).__name__}: {exc}".strip(": "))
        raise
    return finish(table, record.id, result)


def finish(table: IntervalTable, job_id: str, result: JobResult) -> JobRecord:
    """Record a job's result: its time becomes Complete per completed store, else Incomplete."""
    return table.finish_job(
        job_id,
        result.completed,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        result={"entities": result.entities, "seconds": result.seconds},
        error=result.error,
    )


def summary(record: JobRecord) -> str:
    """One line per job: window, stores, rows, seconds, and the error when it failed."""
    written = " ".join(f"{s}={n:,}" for s, n in record.rows_written.items()) or "nothing"
    seconds = record.result.get("seconds")
    text = (
        f"{record.feature_set} v{record.version} [{iso(record.start)}, {iso(record.end)}) {','.join(record.stores)}"
        f"{' (from offline)' if record.reads == 'offline' else ''}: {record.state}; "
        f"read {record.rows_read or 0:,} rows, wrote {written}"
    )
    if seconds is not None:
        text += f" in {seconds:.1f}s"
    if record.error:
        text += f"; error: {record.error}"
    return text


def run_jobs(
    store: FeatureStore, records: Sequence[JobRecord], engine: Engine, *, log: Log = log_to_stderr
) -> list[JobRecord]:
    """Run claimed jobs one after another, logging progress; on interrupt, the jobs not run
    are finished as Incomplete before the interrupt goes on."""
    done: list[JobRecord] = []
    total = len(records)
    rows = 0
    began = time.perf_counter()
    try:
        with Heartbeat(store.table, [r.id for r in records]):  # the queued ones keep their leases too
            for number, record in enumerate(records, start=1):
                finished = run_job(store, record, engine)
                done.append(finished)
                rows += sum(finished.rows_written.values())
                log(f"[{number}/{total}] {summary(finished)}")
    except BaseException:
        for record in records[len(done) + 1 :]:
            store.table.finish_job(record.id, {}, error="not run: the backfill was interrupted")
        raise
    failed = sum(1 for r in done if r.state != "succeeded")
    log(
        f"{total} job(s): {total - failed} succeeded, {failed} failed; {rows:,} rows written "
        f"in {time.perf_counter() - began:.1f}s"
    )
    return done


def finish_unfinished(table: IntervalTable, key: StreamKey, run_id: str) -> int:
    """Finish as Incomplete every job of one Airflow run that is still queued or running.

    Called once the run's tasks are all done (whatever their outcome): a batch that never
    started or a task that was killed must not leave its time Pending until a lease expires.
    """
    count = 0
    for record in table.jobs(key):
        if record.state in ("queued", "running") and (record.airflow or {}).get("run_id") == run_id:
            table.finish_job(record.id, {}, error="not finished when its Airflow run ended")
            count += 1
    return count
