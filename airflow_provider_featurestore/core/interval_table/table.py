"""`IntervalTable`: the one object the rest of the package uses for statuses over time and jobs.

Each method is one transaction: reads on a read-only connection, every change under the lock
of the streams it touches (`connection.locked`). The transactions that move a job's time
(claim, commit, finish, expiry, lost data) write the status segments and the job records
together, so a segment is Pending exactly while the job owning it is live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby

from sqlalchemy.engine import Connection

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.interval_table import job_records as records
from airflow_provider_featurestore.core.interval_table import status_segments as seg
from airflow_provider_featurestore.core.interval_table.connection import (
    lock_streams,
    locked,
    open_engine,
    read_connection,
)
from airflow_provider_featurestore.core.interval_table.job_records import JobRecord
from airflow_provider_featurestore.core.interval_table.job_state import LIVE_JOB_STATES, JobState
from airflow_provider_featurestore.core.interval_table.schema import StreamKey
from airflow_provider_featurestore.core.interval_table.status_segments import BucketedSegments
from airflow_provider_featurestore.core.planner import PlannedJob, plan_backfill
from airflow_provider_featurestore.core.timeutil import iso

DEFAULT_LEASE_SECONDS = 600


class IntervalTable:
    """Statuses over time per feature set version and store, and the job records."""

    def __init__(self, url: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self.engine = open_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # ---- reading ----------------------------------------------------------------------------

    def segments(
        self, key: StreamKey, store: str, start: int | None = None, end: int | None = None
    ) -> list[iv.Segment]:
        """The stored segments of one stream (with job ids), optionally only those meeting `[start, end]`."""
        with read_connection(self.engine) as conn:
            return [segment for _id, segment in seg.slice_rows(conn, key, store, start, end)]

    def intervals(self, key: StreamKey, stores: Sequence[str]) -> dict[str, list[iv.Interval]]:
        """The data intervals of each store, covering the whole axis ever requested."""
        with read_connection(self.engine) as conn:
            return {s: seg.stored_intervals(conn, key, s) for s in stores}

    def extent(self, key: StreamKey, store: str) -> tuple[int, int] | None:
        """The whole axis ever requested in one stream (`[first start, last end)`), or None."""
        with read_connection(self.engine) as conn:
            return seg.extent(conn, key, store)

    def freshness(self, key: StreamKey, store: str) -> int | None:
        """The end of the newest Complete time in one stream (None when nothing is Complete)."""
        with read_connection(self.engine) as conn:
            return seg.freshness(conn, key, store)

    def count_intervals(self, key: StreamKey, store: str, status: str) -> int:
        """How many data intervals of `status` one stream has (adjacent segments merged)."""
        with read_connection(self.engine) as conn:
            return seg.count_intervals(conn, key, store, status)

    def bucketed(self, key: StreamKey, store: str, start: int, end: int, width: int) -> BucketedSegments:
        """One stream's `[start, end)` for a timeline of buckets `width` seconds wide: the
        segments inside a bucket summed by the database, those crossing an edge whole."""
        with read_connection(self.engine) as conn:
            return seg.bucketed(conn, key, store, start, end, width)

    def known_streams(self) -> list[tuple[str, int, str]]:
        """Every (feature set, version, store) that has ever been requested."""
        with read_connection(self.engine) as conn:
            return seg.known_streams(conn)

    def disabled_stores(self, key: StreamKey) -> set[str]:
        with read_connection(self.engine) as conn:
            return seg.disabled_stores(conn, key)

    def complete_segments(self, key: StreamKey, store: str) -> list[iv.Segment]:
        """The Complete segments of one stream, with the job that set each (the consistency
        check asks which of them the stores still hold)."""
        with read_connection(self.engine) as conn:
            return seg.complete_segments(conn, key, store)

    # ---- writing statuses -------------------------------------------------------------------

    def set_status(
        self, key: StreamKey, store: str, start: int, end: int, status: str, job_id: str | None = None
    ) -> None:
        """Set `[start, end)` of one store to `status`, splitting and merging neighbours."""
        if status not in iv.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with locked(self.engine, key, [store]) as conn:
            seg.overlay(
                conn, key, store, [iv.Segment(start, end, status, job_id if status != iv.NONE else None)]
            )

    def reset_store(self, key: StreamKey, store: str) -> int:
        """Every second of one store back to None (disable-online); returns the intervals replaced."""
        with locked(self.engine, key, [store]) as conn:
            return seg.reset(conn, key, store)

    def set_disabled(self, key: StreamKey, store: str, disabled: bool) -> None:
        """Switch a store of a feature set version off (no backfill writes it) or back on."""
        with locked(self.engine, key, [store]) as conn:
            seg.set_disabled(conn, key, store, disabled)

    def claim(
        self,
        key: StreamKey,
        start: int,
        end: int,
        statuses: Iterable[str],
        stores: Sequence[str],
        max_job_window: int,
        *,
        airflow: Mapping[str, object] | None = None,
        dry_run: bool = False,
        now: float | None = None,
        max_jobs: int | None = None,
        lost: Mapping[str, Mapping[str | None, str]] | None = None,
        marked: list[tuple[str, iv.Segment]] | None = None,
    ) -> list[JobRecord]:
        """Atomically plan a backfill and mark its time Pending: the jobs to run, queued.

        Expired leases of this feature set version are first turned into Incomplete, and so is
        the Complete time the consistency check found lost (`lost`: store -> job id -> reason,
        see `mark_lost`; the segments it turned are appended to `marked`), in the same
        transaction: a refused or dry-run claim leaves it as it was. With `dry_run` the
        transaction is rolled back once planned: the plan is exact, nothing is written.
        A plan of more than `max_jobs` jobs is refused (BadInput, nothing written): a window
        mistyped by centuries would otherwise queue millions of jobs.
        """
        now = time.time() if now is None else now
        lost = lost or {}
        with self.engine.connect() as conn:
            txn = conn.begin()
            try:
                lock_streams(conn, key, {*stores, *lost})
                self._expire(conn, key, now)
                for store in sorted(lost):
                    for segment in self._mark_lost(conn, key, store, lost[store]):
                        if marked is not None:
                            marked.append((store, segment))
                if not dry_run:  # the requested window joins the axis, as None where new
                    for store in stores:
                        seg.extend_axis(conn, key, store, start, end)
                current = {s: seg.stored_intervals(conn, key, s, start, end) for s in stores}
                offline = current.get("offline")
                if offline is None and "online" in stores:
                    offline = seg.stored_intervals(conn, key, "offline", start, end)
                planned = plan_backfill(current, start, end, statuses, max_job_window, cut_at=offline or ())
                if max_jobs is not None and len(planned) > max_jobs:
                    raise BadInput(
                        f"the backfill of {key.feature_set} v{key.version} [{iso(start)}, {iso(end)}) would plan "
                        f"{len(planned):,} jobs, more than the {max_jobs:,} allowed (max_jobs): narrow the "
                        f"window, or allow {len(planned):,} jobs"
                    )
                claimed = [
                    records.queued_record(
                        key,
                        job,
                        now=now,
                        lease_seconds=self.lease_seconds,
                        airflow=airflow,
                        reads=_reads(job, offline or ()),
                    )
                    for job in planned
                ]
                if dry_run:  # the plan is exact already (expired leases counted); write nothing more
                    txn.rollback()
                    return claimed
                records.insert(conn, claimed)
                for store in stores:
                    patches = [
                        iv.Segment(r.start, r.end, iv.PENDING, r.id) for r in claimed if store in r.stores
                    ]
                    seg.overlay(conn, key, store, patches)
            except BaseException:
                txn.rollback()
                raise
            txn.commit()
        return claimed

    # ---- the life of a job ------------------------------------------------------------------

    def start_job(
        self, job_id: str, *, airflow: Mapping[str, object] | None = None, now: float | None = None
    ) -> JobRecord:
        """Mark a queued job running and renew its lease."""
        now = time.time() if now is None else now
        values: dict[str, object] = {
            "state": JobState.RUNNING,
            "started_at": now,
            "lease_expires_at": now + self.lease_seconds,
        }
        if airflow:
            values["airflow"] = json.dumps(dict(airflow))
        with self.engine.begin() as conn:
            records.update_if_live(conn, job_id, values)
        return self.job(job_id)

    def heartbeat(self, job_id: str, *, now: float | None = None) -> bool:
        """Extend a live job's lease; False when the job is no longer live (its lease expired)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            return records.update_if_live(conn, job_id, {"lease_expires_at": now + self.lease_seconds})

    def commit_stores(
        self,
        job_id: str,
        stores: Iterable[str],
        *,
        rows_read: int | None = None,
        rows_written: Mapping[str, int] | None = None,
        result: Mapping[str, object] | None = None,
        now: float | None = None,
    ) -> None:
        """A live job's write to `stores` committed before the job ends (a batch's chunk is
        written offline long before the batch's one online write): the Pending time it owns in
        those stores becomes Complete now, and its lease is renewed. No-op once it has ended.
        `result` (the offline commit, for the consistency check) is kept at once, so a process
        killed before the job ends leaves it recorded beside the Complete time."""
        now = time.time() if now is None else now
        record = self.job(job_id)
        key = StreamKey(record.feature_set, record.version)
        committed = [s for s in record.stores if s in set(stores)]
        values = {
            **records.counts(rows_read, rows_written, result),
            "lease_expires_at": now + self.lease_seconds,
        }
        with locked(self.engine, key, committed) as conn:
            if records.update_if_live(conn, job_id, values):
                for store in committed:
                    seg.convert_pending(conn, key, store, job_id, iv.COMPLETE)

    def finish_job(
        self,
        job_id: str,
        completed: Mapping[str, bool],
        *,
        rows_read: int | None = None,
        rows_written: Mapping[str, int] | None = None,
        result: Mapping[str, object] | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> JobRecord:
        """End a job: per store, the Pending time it still owns becomes Complete or Incomplete.

        A store missing from `completed` counts as not completed. A job whose lease already
        expired keeps its failed state (its time was already made Incomplete).
        """
        now = time.time() if now is None else now
        record = self.job(job_id)
        key = StreamKey(record.feature_set, record.version)
        with locked(self.engine, key, record.stores) as conn:
            for store in record.stores:
                status = iv.COMPLETE if completed.get(store, False) else iv.INCOMPLETE
                seg.convert_pending(conn, key, store, job_id, status)
            records.record_end(
                conn,
                job_id,
                {**records.counts(rows_read, rows_written, result or {}), "finished_at": now},
                succeeded=all(completed.get(s, False) for s in record.stores),
                error=error,
            )
        return self.job(job_id)

    def expire_stale(self, key: StreamKey, *, now: float | None = None) -> list[str]:
        """Fail the live jobs of one feature set version whose lease ran out; their Pending
        time becomes Incomplete. Returns their ids."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            lock_streams(conn, key, seg.stores_of(conn, key))
            return self._expire(conn, key, now)

    def _expire(self, conn: Connection, key: StreamKey, now: float) -> list[str]:
        """`expire_stale` inside the caller's transaction."""
        return self._end_live(
            conn, key, records.expired(conn, key, now), JobState.FAILED, records.LEASE_EXPIRED, now
        )

    def cancel_jobs(
        self, job_ids: Iterable[str], reason: str, *, now: float | None = None
    ) -> list[JobRecord]:
        """Cancel the live ones of these jobs (`featurestore cancel`, a killed Airflow task): state
        `cancelled`, `reason` as their error ("cancelled: ..."), and the Pending time each still
        owns Incomplete at once, not when its lease would end. What their stores committed stays
        Complete; a process still running one of them notices (its poller) and stops at its next
        chunk. Returns the records of the jobs it cancelled (an ended job is left as it is)."""
        return self.end_jobs(job_ids, JobState.CANCELLED, reason, now=now)

    def end_jobs(
        self, job_ids: Iterable[str], state: JobState, reason: str, *, now: float | None = None
    ) -> list[JobRecord]:
        """End the live ones of these jobs in `state` with `reason` as their error, in one
        transaction holding their streams' locks: their Pending time becomes Incomplete, as a
        lease expiry does. Returns the ended jobs' records, in time order."""
        now = time.time() if now is None else now
        ended: list[str] = []
        with self.engine.begin() as conn:
            found = records.fetch_many(conn, job_ids).values()
            live = sorted(
                (r for r in found if r.state in LIVE_JOB_STATES), key=lambda r: (r.feature_set, r.version)
            )
            for (name, version), same in groupby(live, key=lambda r: (r.feature_set, r.version)):
                key = StreamKey(name, version)
                ended += self._end_live(conn, key, [(r.id, list(r.stores)) for r in same], state, reason, now)
        return sorted(self.jobs_by_id(ended).values(), key=lambda r: (r.feature_set, r.version, r.start))

    def _end_live(
        self,
        conn: Connection,
        key: StreamKey,
        ending: Sequence[tuple[str, Sequence[str]]],
        state: JobState,
        reason: str,
        now: float,
    ) -> list[str]:
        """End each (job id, stores) still live in `state`, its Pending time Incomplete; inside
        the caller's transaction. Returns the ids it ended (a job ended meanwhile is skipped)."""
        lock_streams(conn, key, {store for _id, stores in ending for store in stores})
        ended = []
        for job_id, stores in ending:
            if records.end_live(conn, job_id, state, reason, now):
                for store in stores:
                    seg.convert_pending(conn, key, store, job_id, iv.INCOMPLETE)
                ended.append(job_id)
        return ended

    def live_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Which of these jobs are still queued or running, in one query."""
        with read_connection(self.engine) as conn:
            return records.live_ids(conn, job_ids)

    def live_jobs(self, feature_set: str, version: int | None = None) -> list[JobRecord]:
        """The queued and running jobs of a feature set (one version, or all with None)."""
        with read_connection(self.engine) as conn:
            return records.live_of(conn, feature_set, version)

    # ---- consistency: Complete time whose data was lost ---------------------------------------

    def mark_lost(self, key: StreamKey, store: str, lost: Mapping[str | None, str]) -> list[iv.Segment]:
        """Turn the Complete time of one store set by the jobs in `lost` (job id -> why its data
        is gone; None: the segments no job set) into Incomplete, in one transaction holding the
        stream's lock, and record the reason in each job's `error` (after any error it had).
        Only time still Complete and still owned by that job changes: a job that rewrote it in
        the meantime owns it now. Returns the segments turned Incomplete."""
        if not lost:
            return []
        with locked(self.engine, key, [store]) as conn:
            return self._mark_lost(conn, key, store, lost)

    def _mark_lost(
        self, conn: Connection, key: StreamKey, store: str, lost: Mapping[str | None, str]
    ) -> list[iv.Segment]:
        """`mark_lost` inside the caller's transaction, which holds the stream's lock."""
        if not lost:
            return []
        patches = seg.lose_complete(conn, key, store, lost)
        touched = {p.job_id for p in patches if p.job_id is not None}
        records.append_errors(conn, {job_id: lost[job_id] for job_id in touched})
        return patches

    # ---- job records ------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRecord:
        with read_connection(self.engine) as conn:
            return records.fetch(conn, job_id)

    def jobs_by_id(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """The records of these jobs (the ids that name no job are left out)."""
        with read_connection(self.engine) as conn:
            return records.fetch_many(conn, job_ids)

    def failed_job_counts(self, since: float) -> dict[tuple[str, int], int]:
        """Per (feature set, version), the jobs in state failed that finished at `since` or
        later, in one query over that window."""
        with read_connection(self.engine) as conn:
            return records.failed_counts(conn, since)

    def jobs(
        self,
        key: StreamKey | None = None,
        *,
        feature_set: str | None = None,
        limit: int | None = None,
        overlapping: tuple[int, int] | None = None,
    ) -> list[JobRecord]:
        """Job records, newest first; of one version (`key`) or of every version of `feature_set`;
        with `overlapping`, only the jobs whose window meets that `[start, end)`."""
        with read_connection(self.engine) as conn:
            return records.listing(conn, key, feature_set, limit, overlapping)


def _reads(job: PlannedJob, offline: Sequence[iv.Interval]) -> str:
    """Where a planned job reads: the offline table when it writes only online over time that
    is offline-Complete (the planner cut at the offline boundaries, so one status covers it)."""
    if job.stores != ("online",):
        return "source"
    status = iv.clip(offline, job.start, job.end)
    return "offline" if len(status) == 1 and status[0].status == iv.COMPLETE else "source"
