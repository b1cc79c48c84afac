"""The interval table: per feature set version and store, which time is in which status.

SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (production). Every change to a
stream happens in one transaction that first locks the stream (SQLite: `BEGIN IMMEDIATE`, one
writer at a time; PostgreSQL: `SELECT ... FOR UPDATE` on the stream's row, in store order), so
two planners claiming overlapping windows never both get the same second. Reads and writes
touch only the rows around the affected range, so the table has no cap on its size.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable, redact_credentials
from airflow_provider_featurestore.core.planner import PlannedJob, plan_backfill
from airflow_provider_featurestore.core.timeutil import iso

DEFAULT_LEASE_SECONDS = 600
READONLY = "featurestore_readonly"  # execution option: a read that needs no write lock
JOB_STATES = ("queued", "running", "succeeded", "failed")

metadata = sa.MetaData()

streams = sa.Table(
    "fs_streams",
    metadata,
    sa.Column("feature_set", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("store", sa.String(16), primary_key=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

segments = sa.Table(
    "fs_intervals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("feature_set", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("store", sa.String(16), nullable=False),
    sa.Column("start_s", sa.BigInteger, nullable=False),
    sa.Column("end_s", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.UniqueConstraint("feature_set", "version", "store", "start_s", name="uq_fs_intervals_start"),
    # A job's own segments, found without scanning its stream (even without planner statistics).
    sa.Index("ix_fs_intervals_job", "feature_set", "version", "store", "job_id", "status"),
)

jobs = sa.Table(
    "fs_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("feature_set", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("start_s", sa.BigInteger, nullable=False),
    sa.Column("end_s", sa.BigInteger, nullable=False),
    sa.Column("stores", sa.String(64), nullable=False),
    sa.Column("reads", sa.String(16), nullable=False, default="source"),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=True),
    sa.Column("rows_written", sa.Text, nullable=False, default="{}"),
    sa.Column("result", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("airflow", sa.Text, nullable=True),
    sa.Index("ix_fs_jobs_feature_set", "feature_set", "version", "created_at"),
    sa.Index("ix_fs_jobs_state", "state", "lease_expires_at"),
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
    state: str
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
            "state": self.state,
            "rows_read": self.rows_read,
            "rows_written": dict(self.rows_written),
            "error": self.error,
            "created_at": _iso_time(self.created_at),
            "started_at": _iso_time(self.started_at),
            "finished_at": _iso_time(self.finished_at),
            "airflow": self.airflow,
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
            state=row.state,
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


@dataclass(frozen=True)
class StreamKey:
    """One feature set version."""

    feature_set: str
    version: int


class BucketSum(NamedTuple):
    """The segments of one status lying inside one timeline bucket: their total length, their
    count, the job that set them when one job set them all, and their overall extent."""

    bucket: int
    status: str
    seconds: int
    count: int
    job_id: str | None
    first_start: int
    last_end: int


@dataclass
class BucketedSegments:
    """What `IntervalTable.bucketed` reads: edge-crossing segments whole, the rest summed."""

    crossing: list[iv.Segment]
    summed: list[BucketSum]


def new_job_id() -> str:
    """A short random id, unique enough for job records."""
    return uuid.uuid4().hex[:16]


def _existing_columns(engine: Engine) -> dict[str, set[str]]:
    """The columns of each table already in the database. A SQLite file is read through a
    read-only connection: the engine's own would switch it to WAL mode, a write."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and os.path.exists(path):
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                names = [
                    row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
                return {
                    n: {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (n,))}
                    for n in names
                }
        except sqlite3.DatabaseError:
            pass  # not a database: the engine's own connection below says so in its words
    inspector = sa.inspect(engine)
    return {n: {column["name"] for column in inspector.get_columns(n)} for n in inspector.get_table_names()}


def create_engine(url: str) -> Engine:
    """An engine for the interval table; SQLite gets one-writer transactions and a busy wait."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=60000")

        @sa.event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            readonly = connection.get_execution_options().get(READONLY, False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class IntervalTable:
    """Statuses over time per feature set version and store, and the job records."""

    def __init__(self, url: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self.engine = create_engine(url)
        try:
            self._create_schema()
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise _opening_error(url, exc) from None

    def _create_schema(self) -> None:
        for attempt in range(5):
            try:
                self._check_schema()
                metadata.create_all(self.engine, checkfirst=True)
                return
            except sa.exc.DBAPIError:
                # Processes creating the schema at once: a loser sees the winner's tables.
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def _check_schema(self) -> None:
        """Refuse, before creating anything in it, a database whose tables of our names lack our
        columns (another program's, or a damaged one): every later query would fail on it."""
        existing = _existing_columns(self.engine)
        for table in metadata.sorted_tables:
            if table.name not in existing:
                continue
            missing = [column.name for column in table.columns if column.name not in existing[table.name]]
            if missing:
                shown = self.engine.url.render_as_string(hide_password=True)
                self.engine.dispose()
                raise BadInput(
                    f"interval_table.url {shown}: table {table.name} has no column(s) {', '.join(missing)}: "
                    "not this package's interval table (point interval_table.url at another database)"
                )

    def close(self) -> None:
        self.engine.dispose()

    # ---- transactions and locks -------------------------------------------------------------

    def _read(self) -> Connection:
        """A connection for reads only (on SQLite it does not wait for the writer's lock)."""
        return self.engine.connect().execution_options(**{READONLY: True})

    @contextmanager
    def _locked(self, key: StreamKey, stores: Iterable[str]) -> Iterator[Connection]:
        """A transaction holding the write lock of each stream in `stores`."""
        with self.engine.begin() as conn:
            self._lock(conn, key, stores)
            yield conn

    def _lock(self, conn: Connection, key: StreamKey, stores: Iterable[str]) -> None:
        names = sorted(set(stores))
        if not names:
            return
        rows = [
            {"feature_set": key.feature_set, "version": key.version, "store": s, "disabled": False}
            for s in names
        ]
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            module = sa.dialects.postgresql if dialect == "postgresql" else sa.dialects.sqlite
            conn.execute(module.insert(streams).values(rows).on_conflict_do_nothing())
        else:
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(streams.insert().values(row))
                except sa.exc.IntegrityError:
                    pass
        if dialect != "sqlite":  # SQLite's BEGIN IMMEDIATE already made us the only writer
            conn.execute(
                sa.select(streams.c.store)
                .where(_stream_filter(streams, key), streams.c.store.in_(names))
                .order_by(streams.c.store)
                .with_for_update()
            ).all()

    # ---- reading ----------------------------------------------------------------------------

    def segments(
        self, key: StreamKey, store: str, start: int | None = None, end: int | None = None
    ) -> list[iv.Segment]:
        """The stored segments of one stream (with job ids), optionally only those meeting `[start, end]`."""
        with self._read() as conn:
            return [seg for _id, seg in self._slice(conn, key, store, start, end)]

    def intervals(self, key: StreamKey, stores: Sequence[str]) -> dict[str, list[iv.Interval]]:
        """The data intervals of each store, covering the whole axis ever requested."""
        with self._read() as conn:
            return {s: iv.coalesce(seg for _id, seg in self._slice(conn, key, s, None, None)) for s in stores}

    def extent(self, key: StreamKey, store: str) -> tuple[int, int] | None:
        """The whole axis ever requested in one stream (`[first start, last end)`), or None."""
        base = _stream_filter(segments, key, store)
        with self._read() as conn:
            first = conn.execute(
                sa.select(segments.c.start_s).where(base).order_by(segments.c.start_s).limit(1)
            ).scalar()
            last = conn.execute(
                sa.select(segments.c.end_s).where(base).order_by(segments.c.start_s.desc()).limit(1)
            ).scalar()
        return None if first is None else (int(first), int(last))

    def freshness(self, key: StreamKey, store: str) -> int | None:
        """The end of the newest Complete time in one stream (None when nothing is Complete).

        A backwards index scan from the newest segment that stops at the first Complete one.
        """
        with self._read() as conn:
            value = conn.execute(
                sa.select(segments.c.end_s)
                .where(_stream_filter(segments, key, store), segments.c.status == iv.COMPLETE)
                .order_by(segments.c.start_s.desc())
                .limit(1)
            ).scalar()
        return None if value is None else int(value)

    def bucketed(self, key: StreamKey, store: str, start: int, end: int, width: int) -> BucketedSegments:
        """One stream's `[start, end)` for a timeline of buckets `width` seconds wide.

        Segments lying inside one bucket are summed per bucket and status by the database, so a
        stream of 100,000 intervals comes back as at most a few rows per bucket; the segments that
        cross a bucket edge or the range's edges (at most one per edge, as segments are disjoint)
        come back whole. One scan of the range: a crossing segment is a group of its own (keyed
        by its start), the others group by bucket.
        """
        base = _stream_filter(segments, key, store)
        c = segments.c
        with self._read() as conn:
            floor = conn.execute(
                sa.select(c.start_s).where(base, c.start_s <= start).order_by(c.start_s.desc()).limit(1)
            ).scalar()
            bucket = (c.start_s - start) // width
            inside = sa.and_(c.start_s >= start, c.end_s <= end, bucket == (c.end_s - 1 - start) // width)
            group = sa.case((inside, bucket), else_=-1).label("bucket")
            own = sa.case((inside, -1), else_=c.start_s).label("own")
            rows = conn.execute(
                sa.select(
                    group,
                    own,
                    c.status,
                    sa.func.sum(c.end_s - c.start_s),
                    sa.func.count(),
                    sa.func.count(c.job_id),  # min/max skip NULL jobs: a job is named only when all have it
                    sa.func.min(c.job_id),
                    sa.func.max(c.job_id),
                    sa.func.min(c.start_s),
                    sa.func.max(c.end_s),
                )
                .where(
                    base, c.start_s >= (start if floor is None else floor), c.start_s < end, c.end_s > start
                )
                .group_by(group, own, c.status)
            ).all()
        crossing: list[iv.Segment] = []
        summed: list[BucketSum] = []
        for b, _own, status, seconds, count, with_job, first_job, last_job, first, last in rows:
            job = first_job if first_job == last_job and with_job == count else None
            if b < 0:
                crossing.append(iv.Segment(int(first), int(last), status, job))
            else:
                summed.append(BucketSum(int(b), status, int(seconds), int(count), job, int(first), int(last)))
        crossing.sort()
        return BucketedSegments(crossing=crossing, summed=summed)

    def known_streams(self) -> list[tuple[str, int, str]]:
        """Every (feature set, version, store) that has ever been requested."""
        with self._read() as conn:
            rows = conn.execute(sa.select(streams).order_by(*streams.c)).all()
        return [(r.feature_set, r.version, r.store) for r in rows]

    def _slice(
        self, conn: Connection, key: StreamKey, store: str, start: int | None, end: int | None
    ) -> list[tuple[int, iv.Segment]]:
        """Rows meeting `[start, end]` (the neighbours touching it included) plus, when none do,
        the nearest row, so that an assignment over `[start, end)` can merge and fill gaps.

        Both queries are bounded index range scans: the table is sorted and disjoint per stream.
        """
        base = _stream_filter(segments, key, store)
        query = sa.select(segments).where(base).order_by(segments.c.start_s)
        if start is not None:
            # ORDER BY ... DESC LIMIT 1, not max(): PostgreSQL scans every row below `start` for max().
            floor = conn.execute(
                sa.select(segments.c.start_s)
                .where(base, segments.c.start_s < start)
                .order_by(segments.c.start_s.desc())
                .limit(1)
            ).scalar()
            query = query.where(segments.c.start_s >= (floor if floor is not None else start))
        if end is not None:
            query = query.where(segments.c.start_s <= end)
        rows = conn.execute(query).all()
        if not rows and end is not None:
            rows = conn.execute(
                sa.select(segments)
                .where(base, segments.c.start_s > end)
                .order_by(segments.c.start_s)
                .limit(1)
            ).all()
        return [(r.id, iv.Segment(r.start_s, r.end_s, r.status, r.job_id)) for r in rows]

    # ---- writing ----------------------------------------------------------------------------

    def _overlay(self, conn: Connection, key: StreamKey, store: str, patches: Sequence[iv.Segment]) -> None:
        """Write sorted, disjoint `patches` over one stream; the caller holds its lock."""
        if not patches:
            return
        old = self._slice(conn, key, store, patches[0].start, patches[-1].end)
        new = iv.overlay([seg for _id, seg in old], patches)
        keep = set(new) & {seg for _id, seg in old}
        gone = [row_id for row_id, seg in old if seg not in keep]
        if gone:
            conn.execute(segments.delete().where(segments.c.id.in_(gone)))
        added = [seg for seg in new if seg not in keep]
        if added:
            conn.execute(
                segments.insert(),
                [
                    {
                        "feature_set": key.feature_set,
                        "version": key.version,
                        "store": store,
                        "start_s": seg.start,
                        "end_s": seg.end,
                        "status": seg.status,
                        "job_id": seg.job_id,
                    }
                    for seg in added
                ],
            )

    def set_status(
        self, key: StreamKey, store: str, start: int, end: int, status: str, job_id: str | None = None
    ) -> None:
        """Set `[start, end)` of one store to `status`, splitting and merging neighbours."""
        if status not in iv.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._locked(key, [store]) as conn:
            self._overlay(
                conn, key, store, [iv.Segment(start, end, status, job_id if status != iv.NONE else None)]
            )

    def reset_store(self, key: StreamKey, store: str) -> int:
        """Every second of one store back to None (disable-online); returns the intervals replaced."""
        with self._locked(key, [store]) as conn:
            old = self._slice(conn, key, store, None, None)
            if not old:
                return 0
            self._overlay(conn, key, store, [iv.Segment(old[0][1].start, old[-1][1].end, iv.NONE)])
            return len(iv.coalesce(seg for _id, seg in old))

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
                self._lock(conn, key, {*stores, *lost})
                self._expire(conn, key, now)
                for store in sorted(lost):
                    for seg in self._mark_lost(conn, key, store, lost[store]):
                        if marked is not None:
                            marked.append((store, seg))
                if not dry_run:  # the requested window joins the axis, as None where new
                    for store in stores:
                        self._extend(conn, key, store, start, end)
                current = {
                    s: iv.coalesce(seg for _id, seg in self._slice(conn, key, s, start, end)) for s in stores
                }
                offline = current.get("offline")
                if offline is None and "online" in stores:
                    offline = iv.coalesce(seg for _id, seg in self._slice(conn, key, "offline", start, end))
                planned = plan_backfill(current, start, end, statuses, max_job_window, cut_at=offline or ())
                if max_jobs is not None and len(planned) > max_jobs:
                    raise BadInput(
                        f"the backfill of {key.feature_set} v{key.version} [{iso(start)}, {iso(end)}) would plan "
                        f"{len(planned):,} jobs, more than the {max_jobs:,} allowed (max_jobs): narrow the "
                        f"window, or allow {len(planned):,} jobs"
                    )
                records = [
                    self._new_job(key, job, now, airflow, _reads(job, offline or ())) for job in planned
                ]
                if dry_run:  # the plan is exact already (expired leases counted); write nothing more
                    txn.rollback()
                    return records
                if records:
                    conn.execute(jobs.insert(), [self._job_row(r) for r in records])
                for store in stores:
                    patches = [
                        iv.Segment(r.start, r.end, iv.PENDING, r.id) for r in records if store in r.stores
                    ]
                    self._overlay(conn, key, store, patches)
            except BaseException:
                txn.rollback()
                raise
            txn.commit()
        return records

    def _extend(self, conn: Connection, key: StreamKey, store: str, start: int, end: int) -> None:
        """Make sure `[start, end)` is on the axis (as None where it was not), changing no status."""
        old = [seg for _id, seg in self._slice(conn, key, store, start, end)]
        if old and old[0].start <= start and old[-1].end >= end:
            return
        gaps = []
        if not old:
            gaps.append(iv.Segment(start, end, iv.NONE))
        else:
            if start < old[0].start:
                gaps.append(iv.Segment(start, old[0].start, iv.NONE))
            if old[-1].end < end:
                gaps.append(iv.Segment(old[-1].end, end, iv.NONE))
        self._overlay(conn, key, store, gaps)

    def _new_job(
        self, key: StreamKey, job: PlannedJob, now: float, airflow: Mapping[str, object] | None, reads: str
    ) -> JobRecord:
        return JobRecord(
            id=new_job_id(),
            feature_set=key.feature_set,
            version=key.version,
            start=job.start,
            end=job.end,
            stores=job.stores,
            state="queued",
            reads=reads,
            created_at=now,
            lease_expires_at=now + self.lease_seconds,
            airflow=dict(airflow) if airflow else None,
        )

    @staticmethod
    def _job_row(record: JobRecord) -> dict:
        return {
            "id": record.id,
            "feature_set": record.feature_set,
            "version": record.version,
            "start_s": record.start,
            "end_s": record.end,
            "stores": ",".join(record.stores),
            "reads": record.reads,
            "state": record.state,
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

    def set_disabled(self, key: StreamKey, store: str, disabled: bool) -> None:
        """Switch a store of a feature set version off (no backfill writes it) or back on."""
        with self._locked(key, [store]) as conn:
            conn.execute(
                streams.update()
                .where(_stream_filter(streams, key), streams.c.store == store)
                .values(disabled=disabled)
            )

    def disabled_stores(self, key: StreamKey) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(streams.c.store).where(_stream_filter(streams, key), streams.c.disabled)
            )
            return set(rows.scalars())

    # ---- the life of a job ------------------------------------------------------------------

    def start_job(
        self, job_id: str, *, airflow: Mapping[str, object] | None = None, now: float | None = None
    ) -> JobRecord:
        """Mark a queued job running and renew its lease."""
        now = time.time() if now is None else now
        values: dict[str, object] = {
            "state": "running",
            "started_at": now,
            "lease_expires_at": now + self.lease_seconds,
        }
        if airflow:
            values["airflow"] = json.dumps(dict(airflow))
        with self.engine.begin() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.in_(("queued", "running")))
                .values(values)
            )
        return self.job(job_id)

    def heartbeat(self, job_id: str, *, now: float | None = None) -> bool:
        """Extend a live job's lease; False when the job is no longer live (its lease expired)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            result = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.in_(("queued", "running")))
                .values(lease_expires_at=now + self.lease_seconds)
            )
        return result.rowcount == 1

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
        values: dict[str, object] = {
            "rows_read": rows_read,
            "rows_written": json.dumps(dict(rows_written or {})),
            "lease_expires_at": now + self.lease_seconds,
        }
        if result is not None:
            values["result"] = json.dumps(dict(result))
        with self._locked(key, committed) as conn:
            live = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.in_(("queued", "running")))
                .values(values)
            ).rowcount
            if live:
                for store in committed:
                    self._convert_pending(conn, key, store, job_id, iv.COMPLETE)

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
        with self._locked(key, record.stores) as conn:
            for store in record.stores:
                status = iv.COMPLETE if completed.get(store, False) else iv.INCOMPLETE
                self._convert_pending(conn, key, store, job_id, status)
            live = conn.execute(sa.select(jobs.c.state).where(jobs.c.id == job_id)).scalar() in (
                "queued",
                "running",
            )
            succeeded = all(completed.get(s, False) for s in record.stores)
            values: dict[str, object] = {
                "rows_read": rows_read,
                "rows_written": json.dumps(dict(rows_written or {})),
                "result": json.dumps(dict(result or {})),
                "finished_at": now,
                "lease_expires_at": None,
            }
            if live:
                values["state"] = "succeeded" if succeeded else "failed"
                values["error"] = redact_credentials(error) if error else error  # no URL's password kept
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(values))
        return self.job(job_id)

    def _convert_pending(
        self, conn: Connection, key: StreamKey, store: str, job_id: str, status: str
    ) -> None:
        # Sorted here, not in SQL: an ORDER BY start_s makes SQLite pick the index that avoids
        # the sort and scan the whole stream instead of the job index.
        owned = conn.execute(
            sa.select(segments.c.start_s, segments.c.end_s).where(
                _stream_filter(segments, key, store),
                segments.c.job_id == job_id,
                segments.c.status == iv.PENDING,
            )
        ).all()
        patches = sorted(iv.Segment(r.start_s, r.end_s, status, job_id) for r in owned)
        self._overlay(conn, key, store, patches)

    def expire_stale(self, key: StreamKey, *, now: float | None = None) -> list[str]:
        """Fail the live jobs of one feature set version whose lease ran out; their Pending
        time becomes Incomplete. Returns their ids."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            self._lock(conn, key, self._stores_of(conn, key))
            return self._expire(conn, key, now)

    def _stores_of(self, conn: Connection, key: StreamKey) -> list[str]:
        return list(conn.execute(sa.select(streams.c.store).where(_stream_filter(streams, key))).scalars())

    def _expire(self, conn: Connection, key: StreamKey, now: float) -> list[str]:
        stale = conn.execute(
            sa.select(jobs.c.id, jobs.c.stores).where(
                jobs.c.feature_set == key.feature_set,
                jobs.c.version == key.version,
                jobs.c.state.in_(("queued", "running")),
                jobs.c.lease_expires_at < now,
            )
        ).all()
        for row in stale:
            stores = row.stores.split(",")
            self._lock(conn, key, stores)
            for store in stores:
                self._convert_pending(conn, key, store, row.id, iv.INCOMPLETE)
            conn.execute(
                jobs.update()
                .where(jobs.c.id == row.id)
                .values(
                    state="failed",
                    finished_at=now,
                    lease_expires_at=None,
                    error="lease expired: the process running this job stopped without finishing it "
                    "(killed or lost); its time is Incomplete and the next backfill retries it",
                )
            )
        return [row.id for row in stale]

    # ---- consistency: Complete time whose data was lost ---------------------------------------

    def complete_segments(self, key: StreamKey, store: str) -> list[iv.Segment]:
        """The Complete segments of one stream, with the job that set each (an index range scan
        on status; the consistency check asks which of them the stores still hold)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(segments.c.start_s, segments.c.end_s, segments.c.job_id).where(
                    _stream_filter(segments, key, store), segments.c.status == iv.COMPLETE
                )
            ).all()
        return sorted(iv.Segment(r.start_s, r.end_s, iv.COMPLETE, r.job_id) for r in rows)

    def jobs_by_id(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """The records of these jobs (the ids that name no job are left out)."""
        wanted = sorted(set(job_ids))
        found: dict[str, JobRecord] = {}
        with self._read() as conn:
            for i in range(0, len(wanted), 500):
                query = sa.select(jobs).where(jobs.c.id.in_(wanted[i : i + 500]))
                found.update((row.id, JobRecord.from_row(row)) for row in conn.execute(query))
        return found

    def mark_lost(self, key: StreamKey, store: str, lost: Mapping[str | None, str]) -> list[iv.Segment]:
        """Turn the Complete time of one store set by the jobs in `lost` (job id -> why its data
        is gone; None: the segments no job set) into Incomplete, in one transaction holding the
        stream's lock, and record the reason in each job's `error` (after any error it had).
        Only time still Complete and still owned by that job changes: a job that rewrote it in
        the meantime owns it now. Returns the segments turned Incomplete."""
        if not lost:
            return []
        with self._locked(key, [store]) as conn:
            return self._mark_lost(conn, key, store, lost)

    def _mark_lost(
        self, conn: Connection, key: StreamKey, store: str, lost: Mapping[str | None, str]
    ) -> list[iv.Segment]:
        """`mark_lost` inside the caller's transaction, which holds the stream's lock."""
        if not lost:
            return []
        filters = [segments.c.job_id.in_([j for j in lost if j is not None])]
        if None in lost:
            filters.append(segments.c.job_id.is_(None))
        rows = conn.execute(
            sa.select(segments.c.start_s, segments.c.end_s, segments.c.job_id).where(
                _stream_filter(segments, key, store), segments.c.status == iv.COMPLETE, sa.or_(*filters)
            )
        ).all()
        patches = sorted(iv.Segment(r.start_s, r.end_s, iv.INCOMPLETE, r.job_id) for r in rows)
        self._overlay(conn, key, store, patches)
        touched = {p.job_id for p in patches if p.job_id is not None}
        for row in conn.execute(
            sa.select(jobs.c.id, jobs.c.error).where(jobs.c.id.in_(sorted(touched)))
        ).all():
            reason = redact_credentials(lost[row.id])
            error = f"{row.error}; {reason}" if row.error else reason
            conn.execute(jobs.update().where(jobs.c.id == row.id).values(error=error))
        return patches

    # ---- job records ------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise KeyError(f"no job {job_id!r}")
        return JobRecord.from_row(row)

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
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.start_s.desc())
        if overlapping is not None:
            query = query.where(jobs.c.start_s < overlapping[1], jobs.c.end_s > overlapping[0])
        if key is not None:
            query = query.where(jobs.c.feature_set == key.feature_set, jobs.c.version == key.version)
        elif feature_set is not None:
            query = query.where(jobs.c.feature_set == feature_set)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query)]


def _reads(job: PlannedJob, offline: Sequence[iv.Interval]) -> str:
    """Where a planned job reads: the offline table when it writes only online over time that
    is offline-Complete (the planner cut at the offline boundaries, so one status covers it)."""
    if job.stores != ("online",):
        return "source"
    status = iv.clip(offline, job.start, job.end)
    return "offline" if len(status) == 1 and status[0].status == iv.COMPLETE else "source"


def _stream_filter(table: sa.Table, key: StreamKey, store: str | None = None) -> sa.ColumnElement[bool]:
    clauses = [table.c.feature_set == key.feature_set, table.c.version == key.version]
    if store is not None:
        clauses.append(table.c.store == store)
    return sa.and_(*clauses)


def _opening_error(url: str, exc: sa.exc.DBAPIError) -> Exception:
    """Why the interval table cannot be opened, in one line without the URL's password: a bad
    SQLite file or path is the user's to fix (BadInput); a server that cannot be reached is a
    service to start (ServiceUnavailable)."""
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    if url.startswith("sqlite"):
        return BadInput(
            f"interval_table.url {shown}: {reason}: not a usable SQLite interval table "
            "(move the file away to start a new one, or fix the path)"
        )
    if isinstance(exc, sa.exc.OperationalError):
        return ServiceUnavailable(
            f"cannot reach the interval table at {shown}: {redact_credentials(reason)}; "
            "start the database or fix interval_table.url"
        )
    return BadInput(f"interval_table.url {shown}: {redact_credentials(reason)}")
