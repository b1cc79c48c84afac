"""The status segments of each stream (feature set version and store), read and written on a
connection the caller holds: which time is None, Pending, Complete or Incomplete, and which
job set it.

Reads and writes touch only the rows around the affected range (bounded index range scans,
the segments being sorted and disjoint per stream), so a stream has no cap on its size. The
writers expect the caller's transaction to hold the stream's lock (`connection.locked`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table.schema import (
    StreamKey,
    segments,
    stream_filter,
    streams,
)


@dataclass(frozen=True)
class BucketSum:
    """The segments of one status lying inside one timeline bucket: their total length, their
    count, the job that set them when one job set them all, and their overall extent. (A record,
    not a NamedTuple: its `count` would shadow `tuple.count`.)"""

    bucket: int
    status: str
    seconds: int
    count: int
    job_id: str | None
    first_start: int
    last_end: int


@dataclass
class BucketedSegments:
    """What `bucketed` reads: edge-crossing segments whole, the rest summed."""

    crossing: list[iv.Segment]
    summed: list[BucketSum]


# ---- reading ------------------------------------------------------------------------------


def slice_rows(
    conn: Connection, key: StreamKey, store: str, start: int | None, end: int | None
) -> list[tuple[int, iv.Segment]]:
    """Rows meeting `[start, end]` (the neighbours touching it included) plus, when none do,
    the nearest row, so that an assignment over `[start, end)` can merge and fill gaps.

    Both queries are bounded index range scans: the table is sorted and disjoint per stream.
    """
    base = stream_filter(segments, key, store)
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
            sa.select(segments).where(base, segments.c.start_s > end).order_by(segments.c.start_s).limit(1)
        ).all()
    return [(r.id, iv.Segment(r.start_s, r.end_s, r.status, r.job_id)) for r in rows]


def stored_intervals(
    conn: Connection, key: StreamKey, store: str, start: int | None = None, end: int | None = None
) -> list[iv.Interval]:
    """One stream's intervals (jobs dropped, neighbours of one status merged) meeting `[start, end]`."""
    return iv.coalesce(seg for _id, seg in slice_rows(conn, key, store, start, end))


def extent(conn: Connection, key: StreamKey, store: str) -> tuple[int, int] | None:
    """The whole axis ever requested in one stream (`[first start, last end)`), or None."""
    base = stream_filter(segments, key, store)
    first = conn.execute(
        sa.select(segments.c.start_s).where(base).order_by(segments.c.start_s).limit(1)
    ).scalar()
    last = conn.execute(
        sa.select(segments.c.end_s).where(base).order_by(segments.c.start_s.desc()).limit(1)
    ).scalar()
    return None if first is None or last is None else (int(first), int(last))


def freshness(conn: Connection, key: StreamKey, store: str) -> int | None:
    """The end of the newest Complete time in one stream (None when nothing is Complete).

    A backwards index scan from the newest segment that stops at the first Complete one.
    """
    value = conn.execute(
        sa.select(segments.c.end_s)
        .where(stream_filter(segments, key, store), segments.c.status == iv.COMPLETE)
        .order_by(segments.c.start_s.desc())
        .limit(1)
    ).scalar()
    return None if value is None else int(value)


def bucketed(
    conn: Connection, key: StreamKey, store: str, start: int, end: int, width: int
) -> BucketedSegments:
    """One stream's `[start, end)` for a timeline of buckets `width` seconds wide.

    Segments lying inside one bucket are summed per bucket and status by the database, so a
    stream of 100,000 intervals comes back as at most a few rows per bucket; the segments that
    cross a bucket edge or the range's edges (at most one per edge, as segments are disjoint)
    come back whole. One scan of the range: a crossing segment is a group of its own (keyed
    by its start), the others group by bucket.
    """
    base = stream_filter(segments, key, store)
    c = segments.c
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
        .where(base, c.start_s >= (start if floor is None else floor), c.start_s < end, c.end_s > start)
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


def complete_segments(conn: Connection, key: StreamKey, store: str) -> list[iv.Segment]:
    """The Complete segments of one stream, with the job that set each (an index range scan
    on status; the consistency check asks which of them the stores still hold)."""
    rows = conn.execute(
        sa.select(segments.c.start_s, segments.c.end_s, segments.c.job_id).where(
            stream_filter(segments, key, store), segments.c.status == iv.COMPLETE
        )
    ).all()
    return sorted(iv.Segment(r.start_s, r.end_s, iv.COMPLETE, r.job_id) for r in rows)


def count_intervals(conn: Connection, key: StreamKey, store: str, status: str) -> int:
    """How many data intervals of `status` one stream has: its segments of that status (read
    alone, not the whole stream), adjacent ones counted once as the contract merges them."""
    rows = conn.execute(
        sa.select(segments.c.start_s, segments.c.end_s).where(
            stream_filter(segments, key, store), segments.c.status == status
        )
    ).all()
    count, last_end = 0, None
    for start, end in sorted((r.start_s, r.end_s) for r in rows):
        count += start != last_end
        last_end = end
    return count


def known_streams(conn: Connection) -> list[tuple[str, int, str]]:
    """Every (feature set, version, store) that has ever been requested."""
    rows = conn.execute(sa.select(streams).order_by(*streams.c)).all()
    return [(r.feature_set, r.version, r.store) for r in rows]


def stores_of(conn: Connection, key: StreamKey) -> list[str]:
    """The stores of one feature set version that have ever been requested."""
    return list(conn.execute(sa.select(streams.c.store).where(stream_filter(streams, key))).scalars())


def disabled_stores(conn: Connection, key: StreamKey) -> set[str]:
    """The stores of one feature set version switched off (`set_disabled`)."""
    rows = conn.execute(sa.select(streams.c.store).where(stream_filter(streams, key), streams.c.disabled))
    return set(rows.scalars())


# ---- writing (the caller holds the stream's lock) -------------------------------------------


def set_disabled(conn: Connection, key: StreamKey, store: str, disabled: bool) -> None:
    """Switch a store of a feature set version off (no backfill writes it) or back on."""
    conn.execute(
        streams.update()
        .where(stream_filter(streams, key), streams.c.store == store)
        .values(disabled=disabled)
    )


def overlay(conn: Connection, key: StreamKey, store: str, patches: Sequence[iv.Segment]) -> None:
    """Write sorted, disjoint `patches` over one stream, splitting and merging neighbours; only
    the rows that change are deleted or inserted."""
    if not patches:
        return
    old = slice_rows(conn, key, store, patches[0].start, patches[-1].end)
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


def reset(conn: Connection, key: StreamKey, store: str) -> int:
    """Every second of one stream back to None; returns the intervals replaced."""
    old = slice_rows(conn, key, store, None, None)
    if not old:
        return 0
    overlay(conn, key, store, [iv.Segment(old[0][1].start, old[-1][1].end, iv.NONE)])
    return len(iv.coalesce(seg for _id, seg in old))


def extend_axis(conn: Connection, key: StreamKey, store: str, start: int, end: int) -> None:
    """Make sure `[start, end)` is on the axis (as None where it was not), changing no status."""
    old = [seg for _id, seg in slice_rows(conn, key, store, start, end)]
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
    overlay(conn, key, store, gaps)


def convert_pending(conn: Connection, key: StreamKey, store: str, job_id: str, status: str) -> None:
    """The Pending time `job_id` still owns in one stream becomes `status` (the job's end)."""
    # Sorted here, not in SQL: an ORDER BY start_s makes SQLite pick the index that avoids
    # the sort and scan the whole stream instead of the job index.
    owned = conn.execute(
        sa.select(segments.c.start_s, segments.c.end_s).where(
            stream_filter(segments, key, store),
            segments.c.job_id == job_id,
            segments.c.status == iv.PENDING,
        )
    ).all()
    patches = sorted(iv.Segment(r.start_s, r.end_s, status, job_id) for r in owned)
    overlay(conn, key, store, patches)


def lose_complete(
    conn: Connection, key: StreamKey, store: str, lost: Mapping[str | None, str]
) -> list[iv.Segment]:
    """The Complete time of one stream set by the jobs in `lost` (None: by no job) becomes
    Incomplete; time another job rewrote since is left alone. Returns the segments turned."""
    filters = [segments.c.job_id.in_([j for j in lost if j is not None])]
    if None in lost:
        filters.append(segments.c.job_id.is_(None))
    rows = conn.execute(
        sa.select(segments.c.start_s, segments.c.end_s, segments.c.job_id).where(
            stream_filter(segments, key, store), segments.c.status == iv.COMPLETE, sa.or_(*filters)
        )
    ).all()
    patches = sorted(iv.Segment(r.start_s, r.end_s, iv.INCOMPLETE, r.job_id) for r in rows)
    overlay(conn, key, store, patches)
    return patches
