"""The planner: which jobs a backfill submits, from the intervals of each requested store.

A backfill submits one job per data interval inside the window whose status is in the asked
set, cut at chunk boundaries (multiples of `max_job_window` since the epoch, so re-planned
chunks line up with earlier ones and with daily schedules). Pending time is never planned: a
job owns it. Where several stores match over the same stretch, one job writes them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airflow_provider_featurestore.core.intervals import COMPLETE, PENDING, STATUSES, Interval, clip

DEFAULT_STATUSES = ("None", "Incomplete")
# A forced backfill (the scheduled DAGs' Param `force`): Complete time is recomputed too.
FORCE_STATUSES = (*DEFAULT_STATUSES, COMPLETE)


@dataclass(frozen=True)
class PlannedJob:
    """One job to submit: a window `[start, end)` and the stores it writes."""

    start: int
    end: int
    stores: tuple[str, ...]


def claimable(statuses: Iterable[str]) -> frozenset[str]:
    """The asked statuses that may be planned: never Pending, whatever was asked."""
    chosen = frozenset(statuses)
    unknown = chosen - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status {sorted(unknown)[0]!r}: use {', '.join(STATUSES)}")
    return chosen - {PENDING}


def chunk_edges(start: int, end: int, max_job_window: int) -> list[int]:
    """Multiples of `max_job_window` strictly inside `(start, end)`."""
    if max_job_window <= 0:
        raise ValueError("max_job_window must be positive")
    first = (start // max_job_window + 1) * max_job_window
    return list(range(first, end, max_job_window))


def snap_window(start: int, end: int, max_job_window: int) -> tuple[int, int]:
    """`[start, end)` widened to whole chunks: the chunk edges (multiples of `max_job_window`
    since the epoch, as the planner cuts) at or before `start` and at or after `end`."""
    if max_job_window <= 0:
        raise ValueError("max_job_window must be positive")
    if start >= end:
        raise ValueError("the window's start must be before its end")
    return (start // max_job_window) * max_job_window, -(-end // max_job_window) * max_job_window


def plan_backfill(
    intervals_by_store: Mapping[str, Sequence[Interval]],
    start: int,
    end: int,
    statuses: Iterable[str],
    max_job_window: int,
    cut_at: Sequence[Interval] = (),
) -> list[PlannedJob]:
    """The jobs a backfill over `[start, end)` submits, in time order.

    `intervals_by_store` maps each requested store to its data intervals (any extent; time
    with no record counts as None). Each job lies inside one data interval of every store it
    writes and inside one chunk, and is also cut at the boundaries of `cut_at` (the offline
    intervals, so an online-only job is either all offline-Complete or not at all).
    """
    if start >= end:
        raise ValueError("the window's start must be before its end")
    wanted = claimable(statuses)
    stores = sorted(intervals_by_store)
    clipped = {store: clip(intervals_by_store[store], start, end) for store in stores}
    edges = {start, end, *chunk_edges(start, end, max_job_window)}
    for items in [*clipped.values(), clip(cut_at, start, end)]:
        edges.update(item.start for item in items)
    cuts = sorted(edges)
    cursors = dict.fromkeys(stores, 0)
    jobs: list[PlannedJob] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        matched = []
        for store in stores:
            items = clipped[store]
            while items[cursors[store]].end <= lo:
                cursors[store] += 1
            if items[cursors[store]].status in wanted:
                matched.append(store)
        if matched:
            jobs.append(PlannedJob(lo, hi, tuple(matched)))
    return jobs
