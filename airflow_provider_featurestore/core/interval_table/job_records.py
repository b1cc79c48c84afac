"""The job records (`fs_jobs`): what each materialization job covers, its state, lease, row
counts and error, read and written on a connection the caller holds.

A job is live (queued or running) while its lease lasts; every write meant for a live job is
conditioned on it still being live in the same statement, so a process whose lease expired
cannot flip its record back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_featurestore.core.errors import redact_credentials
from airflow_provider_featurestore.core.interval_table.job_state import LIVE_JOB_STATES, JobState
from airflow_provider_featurestore.core.interval_table.schema import StreamKey, jobs
from airflow_provider_featurestore.core.planner import PlannedJob
from airflow_provider_featurestore.core.timeutil import iso

LEASE_EXPIRED = (
    "lease expired: the process running this job stopped without finishing it "
    "(killed or lost); its time is Incomplete and the next backfill retries it"
)


def _iso_time(value: float | None) -> str | None:
    if value is None:
        return None
    whole = int(value)
    return iso(whole)[:-1] + f".{int((value - whole) * 1000):03d}Z"


@dataclass
class JobRecord:
    """A materialization job as the contract shows it (`featurestore jobs --json`)."""

    id: str
    feature_set: str
    version: int
    start: int
    end: int
    stores: tuple[str, ...]
    state: JobState
    reads: str = "source"  # "offline": an online-only job over offline-Complete time reads the Delta table
    rows_read: int | None = None
    rows_written: dict[str, int] = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    lease_expires_at: float | None = None
    airflow: dict | None = None

    def to_json(self) -> dict:
        """The contract's JSON shape: ISO-8601 UTC times ending in `Z`."""
        return {
            "id": self.id,
            "feature_set": self.feature_set,
            "version": self.version,
            "start": iso(self.start),
            "end": iso(self.end),
            "stores": list(self.stores),
            "reads": self.reads,
            "state": str(self.state),  # the plain word, from a JobState or a str alike
            "rows_read": self.rows_read,
            "rows_written": dict(self.rows_written),
            "error": self.error,
            # Source coverage of the read range (null: not read from the source, or recorded
            # before it was kept); see the README's "Source coverage".
            "partial_lookback": self.result.get("partial_lookback"),
            "first_source_time": self.result.get("first_source_time"),
            "created_at": _iso_time(self.created_at),
            "started_at": _iso_time(self.started_at),
            "finished_at": _iso_time(self.finished_at),
            "airflow": self.airflow,
            "checks": list(self.result.get("checks", [])),
        }

    @classmethod
    def from_row(cls, row: sa.Row) -> JobRecord:
        return cls(
            id=row.id,
            feature_set=row.feature_set,
            version=row.version,
            start=row.start_s,
            end=row.end_s,
            stores=tuple(row.stores.split(",")),
            state=JobState(row.state),
            reads=row.reads,
            rows_read=row.rows_read,
            rows_written=json.loads(row.rows_written or "{}"),
            result=json.loads(row.result or "{}"),
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            lease_expires_at=row.lease_expires_at,
            airflow=json.loads(row.airflow) if row.airflow else None,
        )


def new_job_id() -> str:
    """A short random id, unique enough for job records."""
    return uuid.uuid4().hex[:16]


def queued_record(
    key: StreamKey,
    job: PlannedJob,
    *,
    now: float,
    lease_seconds: int,
    airflow: Mapping[str, object] | None,
    reads: str,
) -> JobRecord:
    """The record of a job just planned: queued, its lease starting now."""
    return JobRecord(
        id=new_job_id(),
        feature_set=key.feature_set,
        version=key.version,
        start=job.start,
        end=job.end,
        stores=job.stores,
        state=JobState.QUEUED,
        reads=reads,
        created_at=now,
        lease_expires_at=now + lease_seconds,
        airflow=dict(airflow) if airflow else None,
    )


def job_row(record: JobRecord) -> dict:
    """A record as its `fs_jobs` row (the JSON columns as text)."""
    return {
        "id": record.id,
        "feature_set": record.feature_set,
        "version": record.version,
        "start_s": record.start,
        "end_s": record.end,
        "stores": ",".join(record.stores),
        "reads": record.reads,
        "state": str(record.state),
        "rows_read": record.rows_read,
        "rows_written": json.dumps(record.rows_written),
        "result": json.dumps(record.result),
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "lease_expires_at": record.lease_expires_at,
        "airflow": json.dumps(record.airflow) if record.airflow else None,
    }


def counts(
    rows_read: int | None, rows_written: Mapping[str, int] | None, result: Mapping[str, object] | None
) -> dict[str, object]:
    """A job's row counts and result as column values; a `result` of None is left out."""
    values: dict[str, object] = {
        "rows_read": rows_read,
        "rows_written": json.dumps(dict(rows_written or {})),
    }
    if result is not None:
        values["result"] = json.dumps(dict(result))
    return values


# ---- reading ------------------------------------------------------------------------------


def fetch(conn: Connection, job_id: str) -> JobRecord:
    """One job's record; KeyError when no job has that id."""
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise KeyError(f"no job {job_id!r}")
    return JobRecord.from_row(row)


def fetch_many(conn: Connection, job_ids: Iterable[str]) -> dict[str, JobRecord]:
    """The records of these jobs (the ids that name no job are left out), 500 ids a query."""
    wanted = sorted(set(job_ids))
    found: dict[str, JobRecord] = {}
    for i in range(0, len(wanted), 500):
        query = sa.select(jobs).where(jobs.c.id.in_(wanted[i : i + 500]))
        found.update((row.id, JobRecord.from_row(row)) for row in conn.execute(query))
    return found


def listing(
    conn: Connection,
    key: StreamKey | None,
    feature_set: str | None,
    limit: int | None,
    overlapping: tuple[int, int] | None,
) -> list[JobRecord]:
    """Job records, newest first (see `IntervalTable.jobs`)."""
    query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.start_s.desc())
    if overlapping is not None:
        query = query.where(jobs.c.start_s < overlapping[1], jobs.c.end_s > overlapping[0])
    if key is not None:
        query = query.where(jobs.c.feature_set == key.feature_set, jobs.c.version == key.version)
    elif feature_set is not None:
        query = query.where(jobs.c.feature_set == feature_set)
    if limit is not None:
        query = query.limit(limit)
    return [JobRecord.from_row(row) for row in conn.execute(query)]


def failed_counts(conn: Connection, since: float) -> dict[tuple[str, int], int]:
    """Per (feature set, version), the jobs that failed and finished at `since` or later: one
    grouped query over the window (the state index), never the whole history."""
    query = (
        sa.select(jobs.c.feature_set, jobs.c.version, sa.func.count())
        .where(jobs.c.state == JobState.FAILED, jobs.c.finished_at >= since)
        .group_by(jobs.c.feature_set, jobs.c.version)
    )
    return {(row[0], int(row[1])): int(row[2]) for row in conn.execute(query)}


def is_live(conn: Connection, job_id: str) -> bool:
    """Whether the job is still queued or running (its lease has not expired)."""
    return conn.execute(sa.select(jobs.c.state).where(jobs.c.id == job_id)).scalar() in LIVE_JOB_STATES


def expired(conn: Connection, key: StreamKey, now: float) -> list[tuple[str, list[str]]]:
    """The live jobs of one feature set version whose lease ran out by `now`: (id, stores)."""
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.stores).where(
            jobs.c.feature_set == key.feature_set,
            jobs.c.version == key.version,
            jobs.c.state.in_(LIVE_JOB_STATES),
            jobs.c.lease_expires_at < now,
        )
    ).all()
    return [(row.id, row.stores.split(",")) for row in rows]


# ---- writing ------------------------------------------------------------------------------


def insert(conn: Connection, records: Iterable[JobRecord]) -> None:
    rows = [job_row(r) for r in records]
    if rows:
        conn.execute(jobs.insert(), rows)


def update_if_live(conn: Connection, job_id: str, values: Mapping[str, object]) -> bool:
    """Write `values` to the job's record only while it is live; whether it was."""
    result = conn.execute(
        jobs.update().where(jobs.c.id == job_id, jobs.c.state.in_(LIVE_JOB_STATES)).values(dict(values))
    )
    return result.rowcount == 1


def record_end(
    conn: Connection, job_id: str, values: Mapping[str, object], *, succeeded: bool, error: str | None
) -> None:
    """End the job's lease and write `values`; a job still live also gets its final state and
    error (a job whose lease expired keeps `failed` and the expiry's error)."""
    ending: dict[str, object] = {**values, "lease_expires_at": None}
    if is_live(conn, job_id):
        ending["state"] = JobState.SUCCEEDED if succeeded else JobState.FAILED
        ending["error"] = redact_credentials(error) if error else error  # no URL's password kept
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(ending))


def end_live(conn: Connection, job_id: str, state: JobState, error: str, now: float) -> bool:
    """End a job that is still live in `state` (failed: its lease expired or its run ended;
    cancelled: on request), saying why; whether it was live. A job already ended keeps its
    record: the one statement is conditioned on the job being live."""
    return update_if_live(
        conn,
        job_id,
        {"state": state, "finished_at": now, "lease_expires_at": None, "error": redact_credentials(error)},
    )


def live_ids(conn: Connection, job_ids: Iterable[str]) -> set[str]:
    """Which of these jobs are still live, in one query (500 ids a query): what a backfill's
    poller asks every second to notice a job cancelled (or expired) by another process."""
    wanted = sorted(set(job_ids))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        query = sa.select(jobs.c.id).where(
            jobs.c.id.in_(wanted[i : i + 500]), jobs.c.state.in_(LIVE_JOB_STATES)
        )
        found.update(conn.execute(query).scalars())
    return found


def live_of(conn: Connection, feature_set: str, version: int | None) -> list[JobRecord]:
    """The live jobs of a feature set (one version, or every version with None), oldest first:
    what `featurestore cancel` chooses from (the state index, never the whole history)."""
    query = sa.select(jobs).where(jobs.c.state.in_(LIVE_JOB_STATES), jobs.c.feature_set == feature_set)
    if version is not None:
        query = query.where(jobs.c.version == version)
    return [JobRecord.from_row(row) for row in conn.execute(query.order_by(jobs.c.start_s))]


def append_errors(conn: Connection, reasons: Mapping[str, str]) -> None:
    """Add a reason to each job's error (after any error it had), without a URL's password."""
    for row in conn.execute(sa.select(jobs.c.id, jobs.c.error).where(jobs.c.id.in_(sorted(reasons)))).all():
        reason = redact_credentials(reasons[row.id])
        error = f"{row.error}; {reason}" if row.error else reason
        conn.execute(jobs.update().where(jobs.c.id == row.id).values(error=error))
