"""Running claimed jobs in batches: start → heartbeat while the engine works → record each chunk.

The CLI and an Airflow task alike hand their claimed jobs to `run_batches`: consecutive jobs of
one feature set version are grouped into batches of at most `max_batch_window` of time, and a
batch is one engine run. As the engine reports a chunk, its record moves: offline Complete the
moment its commit lands, then Complete (or Incomplete) per store when the batch's online write
is done. A job's time always leaves Pending: Complete for the stores whose write committed,
Incomplete for the others, and (for a killed process) Incomplete once its lease expires.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from types import TracebackType
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.errors import console_error
from airflow_provider_featurestore.core.interval_table import (
    IntervalTable,
    JobRecord,
    JobState,
    StreamKey,
)
from airflow_provider_featurestore.core.materialization.engines import Engine
from airflow_provider_featurestore.core.materialization.job_model import (
    BatchSpec,
    ChunkResult,
    ChunkSpec,
    Stopped,
    batches,
)
from airflow_provider_featurestore.core.timeutil import iso

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.store_view import StoreView

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_LIVE: dict[str, IntervalTable] = {}  # job id -> its table, while a backfill of this process has it
_LIVE_LOCK = threading.Lock()


def abandon_live_jobs(reason: str) -> int:
    """Fail every job a backfill of this process still has queued or running, its Pending time
    Incomplete; returns how many. The last act of a process that must exit at once (an engine
    that does not stop when interrupted): its time must not stay Pending until the leases run out."""
    with _LIVE_LOCK:
        live = list(_LIVE.items())
    count = 0
    for table, same in groupby(sorted(live, key=lambda item: id(item[1])), key=lambda item: item[1]):
        try:
            count += len(table.end_jobs([job_id for job_id, _table in same], JobState.FAILED, reason))
        except Exception:  # noqa: BLE001 - the lease still ends them; the other tables are tried
            continue
    return count


POLL_SECONDS = 1.0
"""How often a backfill reads its jobs' states: a job cancelled by another process is noticed
within about this long, and its batch stops at its next chunk boundary."""
FRESH_SECONDS = 0.2
"""A chunk boundary trusts states read this recently; older ones are read again first."""


class Heartbeat:
    """In a background thread, every POLL_SECONDS, reads which of a backfill's jobs are still
    live (one query) and, every quarter lease, renews their leases: the running job and every job
    still waiting its turn. A job ended elsewhere (cancelled, or its lease expired) is dropped and
    `stopped` says so to the engine."""

    def __init__(
        self, table: IntervalTable, job_ids: Sequence[str], *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.table, self.job_ids = table, list(job_ids)
        self.poll_seconds = poll_seconds
        self._ended: set[str] = set()
        self._polled_at = time.monotonic()
        self._lock = threading.RLock()  # the engine's thread polls too (`stopped`)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="featurestore-heartbeat", daemon=True)

    def stopped(self, job_id: str) -> bool:
        """Whether the job is no longer live (the engine's `Stopped`, asked at a chunk boundary).
        The states are read again unless read in the last FRESH_SECONDS: a chunk never starts
        after its job's cancel committed, and a batch's boundaries share one query."""
        if job_id not in self._ended and time.monotonic() - self._polled_at > FRESH_SECONDS:
            with contextlib.suppress(Exception):  # the next poll tells; the chunk runs meanwhile
                self._poll()
        return job_id in self._ended

    def _beat(self) -> None:
        renew_every = max(self.table.lease_seconds / 4, 0.5)
        renew_at = time.monotonic() + renew_every
        while self.job_ids and not self._stop.wait(min(self.poll_seconds, renew_every)):
            try:
                self._poll()
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + renew_every
                    for job_id in list(self.job_ids):
                        if not self.table.heartbeat(job_id):
                            self._drop([job_id])
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                continue

    def _poll(self) -> None:
        with self._lock:
            live = self.table.live_ids(self.job_ids)
            self._polled_at = time.monotonic()
            self._drop([job_id for job_id in self.job_ids if job_id not in live])

    def _drop(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            self._ended.update(job_ids)
            self.job_ids = [job_id for job_id in self.job_ids if job_id not in self._ended]

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def batch_spec(store: StoreView, records: Sequence[JobRecord]) -> BatchSpec:
    """What the engine needs for claimed jobs of one feature set version, in time order."""
    first = records[0]
    online = any("online" in r.stores for r in records)
    return BatchSpec(
        config_path=store.config.config_path,
        feature_set=first.feature_set,
        version=first.version,
        chunks=tuple(
            ChunkSpec(r.id, r.start, r.end, r.stores, from_offline=r.reads == "offline") for r in records
        ),
        redis_url=store.connections.redis_url if online else None,
    )


def spark_conf(store: StoreView, spec: FeatureSetSpec) -> dict[str, str]:
    """engine.conf with the feature set's materialization.spark_conf merged over it."""
    return {**store.config.engine.conf, **spec.materialization.spark_conf}


Progress = Callable[[JobRecord, ChunkResult], None]


def run_recorded_batch(
    store: StoreView,
    records: Sequence[JobRecord],
    engine: Engine,
    *,
    airflow: Mapping[str, object] | None = None,
    progress: Progress | None = None,
    stopped: Stopped | None = None,
) -> list[JobRecord]:
    """Run one batch of claimed jobs as one engine run; record every chunk report as it comes
    (also when interrupted: what had not finished is Incomplete). A job cancelled before its
    batch starts is not run (`start_job` leaves it cancelled); `stopped` tells the engine which
    ones were cancelled while it runs. Returns the jobs' records."""
    table = store.table
    spec = store.spec(records[0].feature_set, records[0].version)
    started = [table.start_job(r.id, airflow=airflow) for r in records]
    # A job whose lease ran out before it started (a concurrent claim expired it) is not run:
    # its time is Incomplete or already another job's, and running it would write it twice.
    live = [r for r in started if r.state == JobState.RUNNING]
    finished: dict[str, JobRecord] = {}
    partial: dict[str, ChunkResult] = {}

    def report(result: ChunkResult) -> None:
        if result.done:
            record = finished[result.job_id] = finish(table, result.job_id, result)
        else:
            partial[result.job_id] = result
            committed = [s for s, ok in result.completed.items() if ok]
            table.commit_stores(
                result.job_id,
                committed,
                rows_read=result.rows_read,
                rows_written=result.rows_written,
                result=result_record(result),
            )
            record = table.job(result.job_id)
        if progress is not None:
            progress(record, result)

    def end_unfinished(error: str) -> None:
        for record in live:
            if record.id not in finished:
                done = partial.get(record.id, ChunkResult(record.id))
                finished[record.id] = table.finish_job(
                    record.id,
                    done.completed,
                    rows_read=done.rows_read,
                    rows_written=done.rows_written,
                    result=result_record(done),
                    error=error,
                )

    try:
        if live:
            engine.launch_batch(batch_spec(store, live), spark_conf(store, spec), report, stopped)
    except BaseException as exc:
        end_unfinished(f"interrupted: {type(exc).__name__}: {exc}".strip(": "))
        raise
    end_unfinished("the engine reported no result for this job")
    return [finished.get(r.id, r) for r in started]


def finish(table: IntervalTable, job_id: str, result: ChunkResult) -> JobRecord:
    """Record a job's result: its time becomes Complete per completed store, else Incomplete."""
    return table.finish_job(
        job_id,
        result.completed,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        result=result_record(result),
        error=result.error,
    )


def result_record(result: ChunkResult) -> dict[str, object]:
    """What a job record's `result` keeps of a chunk report: entities and seconds for the
    progress lines, what the consistency check verifies later (the offline commit, whether
    the online write set the marker, and the sample of keys it wrote), and the source's coverage
    of its read range and the files it overlapped (the source check)."""
    kept: dict[str, object] = {"entities": result.entities, "seconds": result.seconds}
    if result.offline_commit is not None:
        kept["offline_commit"] = result.offline_commit
    if result.online_marker:
        kept["online_marker"] = True
    if result.online_sample is not None:
        kept["online_sample"] = result.online_sample
    if result.checks:
        kept["checks"] = result.checks
    if result.source is not None:  # the files its read range overlapped (the source check)
        kept["source"] = result.source
    if result.partial_lookback is not None:  # read from the source: its coverage (jobs --json)
        kept["partial_lookback"] = result.partial_lookback
        kept["first_source_time"] = (
            None if result.first_source_time is None else iso(result.first_source_time)
        )
    return kept


def summary(record: JobRecord, result: ChunkResult | None = None) -> str:
    """One line per job: window, stores, rows, seconds, and the error when it failed. A job still
    running (offline committed, its batch's online write to come) says so."""
    written = " ".join(f"{s}={n:,}" for s, n in record.rows_written.items()) or "nothing"
    seconds = result.seconds if result is not None else record.result.get("seconds")
    state: str = record.state
    if state == JobState.RUNNING:
        state = "offline committed, online follows with its batch"
    text = (
        f"{record.feature_set} v{record.version} [{iso(record.start)}, {iso(record.end)}) {','.join(record.stores)}"
        f"{' (from offline)' if record.reads == 'offline' else ''}: {state}; "
        f"read {record.rows_read or 0:,} rows, wrote {written}"
    )
    if seconds is not None:
        text += f" in {seconds:.1f}s"
    if record.error:
        text += f"; error: {console_error(record.error)}"
    return text


def run_batches(
    store: StoreView,
    records: Sequence[JobRecord],
    engine: Engine,
    *,
    airflow: Mapping[str, object] | None = None,
    log: Log = log_to_stderr,
) -> list[JobRecord]:
    """Run claimed jobs (in time order) batch by batch, logging progress per job and per batch;
    on interrupt, the jobs not run are finished as Incomplete before the interrupt goes on."""
    groups: list[list[JobRecord]] = []
    for (name, version), same in groupby(records, key=lambda r: (r.feature_set, r.version)):
        groups += batches(list(same), store.spec(name, version).materialization.max_batch_window)
    total = len(records)
    logged: set[str] = set()
    done: dict[str, JobRecord] = {}
    began = time.perf_counter()

    def progress(record: JobRecord, result: ChunkResult) -> None:
        if record.id not in logged:
            logged.add(record.id)
            log(f"[{len(logged)}/{total}] {summary(record, result)}")
        elif result.error:  # its batch's online write failed after its offline commit
            log(f"        {summary(record)}")

    with _LIVE_LOCK:
        _LIVE.update((r.id, store.table) for r in records)
    try:
        # The queued ones keep their leases too; a job cancelled elsewhere stops at a chunk edge.
        with Heartbeat(store.table, [r.id for r in records]) as beat:
            for number, group in enumerate(groups, start=1):
                started = time.perf_counter()
                ran = run_recorded_batch(
                    store, group, engine, airflow=airflow, progress=progress, stopped=beat.stopped
                )
                for record in ran:
                    done[record.id] = record
                online = [done[r.id] for r in group if "online" in r.stores]
                if online:
                    keys = sum(r.rows_written.get("online", 0) for r in online)
                    log(
                        f"batch {number}/{len(groups)}: {len(group)} job(s); online: {keys:,} key(s) written "
                        f"once for {len(online)} job(s); {time.perf_counter() - started:.1f}s"
                    )
    except BaseException:
        left = [record.id for record in records if record.id not in done]
        store.table.end_jobs(left, JobState.FAILED, "not run: the backfill was interrupted")
        raise
    finally:
        with _LIVE_LOCK:
            for record in records:
                _LIVE.pop(record.id, None)
    results = [done[r.id] for r in records]
    failed = sum(1 for r in results if r.state != JobState.SUCCEEDED)
    cancelled = sum(1 for r in results if r.state == JobState.CANCELLED)
    rows = sum(sum(r.rows_written.values()) for r in results)
    log(
        f"{total} job(s) in {len(groups)} batch(es): {total - failed} succeeded, {failed - cancelled} failed"
        + (f", {cancelled} cancelled" if cancelled else "")
        + f"; {rows:,} rows written in {time.perf_counter() - began:.1f}s"
        + "".join(
            f"; whole errors: featurestore jobs {name} --json"
            for name in sorted({r.feature_set for r in results if r.state != JobState.SUCCEEDED})
        )
    )
    return results


def finish_unfinished(table: IntervalTable, key: StreamKey, run_id: str) -> list[JobRecord]:
    """Cancel every job of one Airflow run that is still queued or running, its Pending time
    Incomplete, in one transaction; returns their records as cancelled.

    Called once the run's tasks are all done (whatever their outcome): a batch that never
    started, or a task marked failed whose process has not stopped yet (Airflow runs the
    all_done tasks before it signals the process), must not hold its time Pending until a lease
    expires. A process still running one of them stops at its next chunk, as on any cancel.
    """
    mine = [
        r.id
        for r in table.live_jobs(key.feature_set, key.version)
        if (r.airflow or {}).get("run_id") == run_id
    ]
    return table.cancel_jobs(mine, RUN_ENDED)


RUN_ENDED = "cancelled: not finished when its Airflow run ended"
