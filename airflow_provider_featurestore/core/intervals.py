"""The interval algebra: pure functions over a covering list of time segments.

A *stream* (one feature set version, one store) is a sorted, contiguous, non-overlapping list
of segments over whole UTC seconds. Internally each segment also carries the id of the job that
set it, so a job finishing converts only the Pending time it still owns; two neighbours merge
only when status and job agree. The public view (`coalesce`) merges by status alone: those are
the contract's *data intervals*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

NONE, PENDING, COMPLETE, INCOMPLETE = "None", "Pending", "Complete", "Incomplete"
STATUSES = (NONE, PENDING, COMPLETE, INCOMPLETE)


class Segment(NamedTuple):
    """`[start, end)` in UTC seconds with one status, set by `job_id` (None for status None)."""

    start: int
    end: int
    status: str
    job_id: str | None = None


class Interval(NamedTuple):
    """A data interval: a maximal `[start, end)` with one status."""

    start: int
    end: int
    status: str


def overlay(segments: Sequence[Segment], patches: Sequence[Segment]) -> list[Segment]:
    """Write `patches` over the contiguous `segments`, in one sweep.

    `patches` must be sorted and disjoint. Time between the old extent and a patch outside it
    becomes None, so the result is again contiguous; equal neighbours are merged.
    """
    if not patches:
        return _merge(segments)
    for patch in patches:
        if patch.start >= patch.end:
            raise ValueError(f"empty or reversed range [{patch.start}, {patch.end})")
    for left, right in zip(patches, patches[1:], strict=False):
        if left.end > right.start:
            raise ValueError("patches overlap or are not sorted")
    low = min(patches[0].start, segments[0].start) if segments else patches[0].start
    high = max(patches[-1].end, segments[-1].end) if segments else patches[-1].end
    base: list[Segment] = []
    if segments:
        if low < segments[0].start:
            base.append(Segment(low, segments[0].start, NONE))
        base.extend(segments)
        if segments[-1].end < high:
            base.append(Segment(segments[-1].end, high, NONE))
    else:
        base.append(Segment(low, high, NONE))

    pieces: list[Segment] = []
    first = 0
    for seg in base:
        cursor = seg.start
        while first < len(patches) and patches[first].end <= cursor:
            first += 1
        index = first
        while index < len(patches) and patches[index].start < seg.end:
            patch = patches[index]
            if patch.start > cursor:
                pieces.append(seg._replace(start=cursor, end=patch.start))
            cursor = max(cursor, patch.end)
            index += 1
        if cursor < seg.end:
            pieces.append(seg._replace(start=cursor, end=seg.end))
    pieces.extend(patches)
    pieces.sort(key=lambda piece: piece.start)
    return _merge(pieces)


def assign(
    segments: Sequence[Segment], start: int, end: int, status: str, job_id: str | None = None
) -> list[Segment]:
    """Set `[start, end)` to `status` (owned by `job_id`), splitting and merging as needed."""
    return overlay(segments, [Segment(start, end, status, job_id if status != NONE else None)])


def _merge(pieces: Iterable[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for piece in pieces:
        if merged:
            last = merged[-1]
            if last.end == piece.start and last.status == piece.status and last.job_id == piece.job_id:
                merged[-1] = last._replace(end=piece.end)
                continue
        merged.append(piece)
    return merged


def coalesce(segments: Iterable[Segment]) -> list[Interval]:
    """The public data intervals: adjacent segments with the same status become one."""
    out: list[Interval] = []
    for seg in segments:
        if out and out[-1].end == seg.start and out[-1].status == seg.status:
            out[-1] = out[-1]._replace(end=seg.end)
        else:
            out.append(Interval(seg.start, seg.end, seg.status))
    return out


def clip(intervals: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """The intervals cut to `[start, end)`, with None where the axis has no record yet."""
    out: list[Interval] = []
    cursor = start
    for item in intervals:
        lo, hi = max(item.start, start), min(item.end, end)
        if lo >= hi:
            continue
        if lo > cursor:
            out.append(Interval(cursor, lo, NONE))
        out.append(Interval(lo, hi, item.status))
        cursor = hi
    if cursor < end:
        out.append(Interval(cursor, end, NONE))
    return coalesce(Segment(*i) for i in out)


def check_invariants(segments: Sequence[Segment]) -> None:
    """Raise AssertionError unless `segments` is sorted, contiguous, non-empty and merged."""
    for seg in segments:
        assert seg.start < seg.end, f"empty segment {seg}"
        assert seg.status in STATUSES, f"unknown status {seg}"
    for left, right in zip(segments, segments[1:], strict=False):
        assert left.end == right.start, f"gap or overlap between {left} and {right}"
        assert (left.status, left.job_id) != (right.status, right.job_id), f"unmerged {left} {right}"
