"""The interval timeline: a stream's `[start, end)` drawn in a fixed number of buckets.

A timeline never holds more than a few bars per bucket, however many intervals the stream has:
the interval table sums the segments that lie inside one bucket (`IntervalTable.bucketed`) and
hands back whole only those crossing a bucket edge. A bar is either *pure* (one status, drawn in
its colour; when one stored segment makes it, its exact extent and job are kept for the hover)
or *mixed* (a bucket holding several statuses, drawn as a stacked column of their shares; zoom
in to see its intervals). The status page and `featurestore intervals` both draw from here.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import BucketedSegments, IntervalTable, StreamKey
from airflow_provider_featurestore.core.timeutil import iso

MIXED = "Mixed"
MAX_BUCKETS = 4000


@dataclass
class Bar:
    """A drawn stretch `[start, end)` of a timeline."""

    start: int
    end: int
    seconds: dict[str, int]  # time per status inside the bar
    intervals: int  # stored segments meeting the bar
    job_id: str | None = None  # the job that set all of it, when one did
    segment: tuple[int, int] | None = None  # the exact extent, when one stored segment makes the bar
    _first: int | None = field(default=None, repr=False)  # index of the first/last crossing segment
    _last: int | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return next(iter(self.seconds)) if len(self.seconds) == 1 else MIXED

    def to_json(self) -> dict:
        document: dict = {
            "start": iso(self.start),
            "end": iso(self.end),
            "status": self.status,
            "seconds": dict(self.seconds),
            "intervals": self.intervals,
            "job_id": self.job_id,
        }
        if self.segment is not None:
            document["segment"] = {"start": iso(self.segment[0]), "end": iso(self.segment[1])}
        return document


def bucket_width(start: int, end: int, buckets: int) -> int:
    """Whole seconds per bucket so that `[start, end)` fits in at most `buckets` of them."""
    return max(1, math.ceil((end - start) / max(1, buckets)))


def stream_timeline(
    table: IntervalTable, key: StreamKey, store: str, start: int, end: int, buckets: int
) -> list[Bar]:
    """The bars of one stream over `[start, end)` in at most `buckets` buckets."""
    if end <= start:
        return []
    width = bucket_width(start, end, min(buckets, MAX_BUCKETS))
    return build_bars(table.bucketed(key, store, start, end, width), start, end, width)


def build_bars(rows: BucketedSegments, start: int, end: int, width: int) -> list[Bar]:
    """Bars from what the table read: every bucket holding summed segments becomes one bar (with
    the pieces of its crossing neighbours added); what is left of each crossing segment becomes a
    pure bar of its own; neighbouring pure bars of one status then merge."""

    def bucket_start(b: int) -> int:
        return start + b * width

    def bucket_end(b: int) -> int:
        return min(end, start + (b + 1) * width)

    buckets: dict[int, Bar] = {}
    for row in rows.summed:
        bar = buckets.setdefault(row.bucket, Bar(bucket_start(row.bucket), bucket_end(row.bucket), {}, 0))
        bar.seconds[row.status] = bar.seconds.get(row.status, 0) + row.seconds
        bar.intervals += row.count
        bar.job_id = _same_job(bar, row.job_id, row.count)
        if row.count == 1:
            bar.segment = (row.first_start, row.last_end)
    bars: list[Bar] = []
    for index, seg in enumerate(rows.crossing):
        first_at, last_at = max(seg.start, start), min(seg.end, end)
        first, last = (first_at - start) // width, (last_at - 1 - start) // width
        for b in {first, last} & buckets.keys():
            bar = buckets[b]
            overlap = min(last_at, bar.end) - max(first_at, bar.start)
            bar.seconds[seg.status] = bar.seconds.get(seg.status, 0) + overlap
            bar.intervals += 1
            bar.job_id = _same_job(bar, seg.job_id, 1)
            bar._first = index if bar._first is None else bar._first
            bar._last = index
        own_start = bucket_end(first) if first in buckets else first_at
        own_end = bucket_start(last) if last in buckets else last_at
        if own_end > own_start:
            bars.append(
                Bar(own_start, own_end, {seg.status: own_end - own_start}, 1, seg.job_id,
                    (seg.start, seg.end), index, index)
            )  # fmt: skip
    for bar in buckets.values():
        bar.seconds = {s: bar.seconds[s] for s in iv.STATUSES if bar.seconds.get(s)}
        if bar.intervals != 1:  # the exact extent is kept only for a bar made of one segment
            bar.segment = None
        bars.append(bar)
    bars.sort(key=lambda bar: bar.start)
    return _merge(bars, rows.crossing)


def _same_job(bar: Bar, job_id: str | None, count: int) -> str | None:
    """The bar's job after adding `count` segments set by `job_id` (None once two jobs meet)."""
    if job_id is None:
        return None
    return job_id if bar.intervals == count or bar.job_id == job_id else None


def _merge(bars: list[Bar], crossing: list[iv.Segment]) -> list[Bar]:
    merged: list[Bar] = []
    for bar in bars:
        prev = merged[-1] if merged else None
        if prev is None or prev.end != bar.start or prev.status == MIXED or bar.status != prev.status:
            merged.append(bar)
            continue
        shared = prev._last is not None and prev._last == bar._first  # one segment drawn in both
        prev.intervals += bar.intervals - (1 if shared else 0)
        prev.job_id = prev.job_id if prev.job_id == bar.job_id else None
        prev.seconds[prev.status] += bar.seconds[bar.status]
        prev.end = bar.end
        prev._last = bar._last if bar._last is not None else prev._last
        prev.segment = None
        if prev.intervals == 1 and prev._first is not None:
            seg = crossing[prev._first]
            prev.segment = (seg.start, seg.end)
    return merged


def dominant(bar: Bar) -> str:
    """The status holding most of a bar's time."""
    return max(bar.seconds, key=lambda status: bar.seconds[status])


# ---- the terminal view ----------------------------------------------------------------------

GLYPHS = {iv.COMPLETE: "#", iv.INCOMPLETE: "x", iv.PENDING: "~", iv.NONE: "."}
COLOURS = {iv.COMPLETE: "32", iv.INCOMPLETE: "31", iv.PENDING: "34", iv.NONE: "90"}  # ANSI foreground


def text_bar(bars: list[Bar], start: int, end: int, columns: int, *, colour: bool) -> str:
    """`columns` characters for `[start, end)`: each shows the status holding most of its time
    (blank where nothing was ever requested); coloured blocks on a terminal, glyphs otherwise."""
    cells: list[dict[str, float]] = [defaultdict(float) for _ in range(columns)]
    span = end - start
    for bar in bars:
        for status, seconds in bar.seconds.items():
            _spread(cells, status, seconds, bar.start - start, bar.end - start, span, columns)
    shown: list[str | None] = [max(cell, key=cell.__getitem__) if cell else None for cell in cells]
    out = []
    for shown_status, run in itertools.groupby(shown):
        width = len(list(run))
        if shown_status is None:
            out.append(" " * width)
        elif colour:
            out.append(f"\x1b[{COLOURS[shown_status]}m{'█' * width}\x1b[0m")
        else:
            out.append(GLYPHS[shown_status] * width)
    return "".join(out)


def _spread(
    cells: list[dict[str, float]], status: str, seconds: int, lo: int, hi: int, span: int, columns: int
) -> None:
    """Add a bar's `seconds` of `status` to the cells it covers, in proportion to the overlap."""
    if hi <= lo:
        return
    density = seconds / (hi - lo)
    first, last = lo * columns // span, min(columns - 1, (hi - 1) * columns // span)
    for column in range(first, last + 1):
        cell_lo, cell_hi = column * span / columns, (column + 1) * span / columns
        overlap = min(hi, cell_hi) - max(lo, cell_lo)
        if overlap > 0:
            cells[column][status] += overlap * density


def legend(*, colour: bool) -> str:
    if colour:
        return "  ".join(f"\x1b[{COLOURS[s]}m█\x1b[0m {s}" for s in iv.STATUSES)
    return "  ".join(f"{GLYPHS[s]} {s}" for s in iv.STATUSES)
