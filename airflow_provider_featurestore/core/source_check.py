"""Late and changed source data: Complete time whose source changed after its job read it.

Every chunk records the source files its read range (window with `source_lookback`) overlapped,
listed before it read them (`source_fingerprint`). The check lists the source again, without
reading any data (only a new or changed file's footer), and compares, per Complete chunk:
- a file **added** whose time range overlaps the chunk's read range (a late file);
- a recorded file **changed** (size or mtime; for Delta a file no longer in the add actions and
  its replacement), its old range counted by being recorded and its new one by overlapping;
- a recorded file **removed**.
A chunk with such a change is affected: with 7 days of lookback a late row on day D affects the
chunks of days D through D+7. The time of every affected chunk becomes Incomplete in each store
(the Complete segments the stores hold there, written by that job or, online, by a job that read
the offline table), with "source changed: FILE(S)" in the job's error, through the same findings
the lost-state check hands to `IntervalTable.mark_lost` (or to the planner's claim).

Chunks recorded before fingerprints were kept (no `source` in their result) are not checked.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec
from airflow_provider_featurestore.core.consistency import CheckReport, Findings, LostTime
from airflow_provider_featurestore.core.interval_table import JobRecord, StreamKey
from airflow_provider_featurestore.core.source_fingerprint import SourceFile, SourceListing, list_source
from airflow_provider_featurestore.core.timeutil import iso

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.store_view import StoreView

NAMED_FILES = 5  # a reason names at most this many files, then says how many more


@dataclass(frozen=True)
class SourceChange:
    """One file that changed under a chunk's read range: `added`, `changed` or `removed`."""

    path: str
    kind: str

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


@dataclass
class SourceCheckReport(CheckReport):
    """What one source check found: the check's report (`lost`: the time turned, or with
    `dry_run` to be turned, Incomplete) plus the source listed and the files that changed."""

    source: str = ""
    files: int = 0
    ranges_read: int = 0  # files whose footer (or column) was read: the new or changed ones
    chunks_checked: int = 0
    chunks_unrecorded: int = 0  # Complete chunks recorded before fingerprints were kept
    changed_files: dict[str, str] = field(default_factory=dict)  # path -> added/changed/removed
    dry_run: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "source": self.source,
            "files": self.files,
            "ranges_read": self.ranges_read,
            "chunks_checked": self.chunks_checked,
            "chunks_unrecorded": self.chunks_unrecorded,
            "changed_files": [{"path": p, "change": k} for p, k in sorted(self.changed_files.items())],
            "dry_run": self.dry_run,
        }


def inspect_sources(
    store: StoreView, spec: FeatureSetSpec, *, now: float | None = None
) -> tuple[SourceCheckReport, Findings]:
    """List the source once and find the Complete time whose source changed since its job read
    it, changing nothing: findings as `consistency.inspect` gives them (store -> job id ->
    reason). Raises SourceUnavailable when the source cannot be listed."""
    key = StreamKey(spec.name, spec.version)
    report = SourceCheckReport(spec.name, spec.version, source=spec.source.path)
    disabled = store.table.disabled_stores(key)
    enabled = [s for s in STORES if s in spec.enabled_stores() and s not in disabled]
    complete = {name: store.table.complete_segments(key, name) for name in enabled}
    records = store.table.jobs_by_id({s.job_id for segs in complete.values() for s in segs if s.job_id})
    recorded = sorted((r for r in records.values() if "source" in r.result), key=lambda r: r.start)
    report.chunks_unrecorded = len(records) - len(recorded)
    known = [SourceFile.from_json(f) for r in recorded for f in r.result["source"].get("files", ())]
    listing = list_source(spec, known)
    report.files, report.ranges_read, report.chunks_checked = (
        len(listing.files),
        listing.ranges_read,
        len(recorded),
    )
    affected = _affected_chunks(recorded, listing, spec.source_lookback)
    for changes in affected.values():
        report.changed_files.update((c.path, c.kind) for c in changes)
    found_at = iso(int(time.time() if now is None else now))
    windows = sorted((records[job_id].start, records[job_id].end, _reason(changes, found_at))
                     for job_id, changes in affected.items())  # fmt: skip
    findings: Findings = {}
    for name, segments in complete.items():
        report.checked[name] = f"{len(segments)} Complete interval(s) against {report.files} source file(s)"
        lost: dict[str | None, str] = {
            seg.job_id: why for seg in segments if seg.job_id and (why := _overlap(windows, seg))
        }
        if lost:
            findings[name] = lost
    return report, findings


def would_mark(
    store: StoreView, spec: FeatureSetSpec, report: CheckReport, findings: Findings
) -> CheckReport:
    """A dry run's `report.lost`: the Complete segments `mark_lost` would turn Incomplete."""
    key = StreamKey(spec.name, spec.version)
    for name, lost in findings.items():
        for seg in store.table.complete_segments(key, name):
            if seg.job_id in lost:
                report.lost.append(LostTime(name, seg.start, seg.end, seg.job_id, lost[seg.job_id]))
    return report


def _affected_chunks(
    recorded: Sequence[JobRecord], listing: SourceListing, lookback: int
) -> dict[str, list[SourceChange]]:
    """Per chunk (records in order of start) whose source changed: the changes. A file is
    matched to the chunks its range overlaps by two binary searches (over the read ranges'
    starts, and their ends' running maximum), so the work is the overlaps, not files x chunks."""
    starts = [r.start - lookback for r in recorded]
    ends = list(itertools.accumulate((r.end for r in recorded), max))
    overlapping: dict[int, list[SourceFile]] = {}
    for file in listing.files.values():
        if file.first is None or file.last is None:
            continue
        for i in range(bisect.bisect_right(ends, file.first), bisect.bisect_right(starts, file.last)):
            if file.overlaps(starts[i], recorded[i].end):
                overlapping.setdefault(i, []).append(file)
    affected: dict[str, list[SourceChange]] = {}
    for i, record in enumerate(recorded):
        changes = _chunk_changes(record.result["source"], listing, overlapping.get(i, []))
        if changes:
            affected[record.id] = changes
    return affected


def _chunk_changes(
    fingerprint: Mapping[str, object], listing: SourceListing, overlapping: Sequence[SourceFile]
) -> list[SourceChange]:
    """What changed of one chunk's source since it recorded `fingerprint`."""
    if listing.version is not None and fingerprint.get("version") == listing.version:
        return []  # a Delta table at the version the chunk read is the same table
    files = fingerprint.get("files")
    before = {f.path: f for f in map(SourceFile.from_json, files if isinstance(files, list) else [])}
    changes = []
    for path, old in before.items():
        now = listing.files.get(path)
        if now is None:
            changes.append(SourceChange(path, "removed"))
        elif now.identity != old.identity:
            changes.append(SourceChange(path, "changed"))
    changes += [SourceChange(f.path, "added") for f in overlapping if f.path not in before]
    return sorted(changes, key=lambda c: c.path)


def _reason(changes: Sequence[SourceChange], found_at: str) -> str:
    named = ", ".join(map(str, changes[:NAMED_FILES]))
    more = f" and {len(changes) - NAMED_FILES} more" if len(changes) > NAMED_FILES else ""
    return (
        f"source changed: {named}{more}; found by the source check at {found_at}; "
        "the next backfill recomputes it"
    )


def _overlap(windows: Sequence[tuple[int, int, str]], seg: iv.Segment) -> str | None:
    """The reason of the first affected chunk window overlapping the segment, if any."""
    i = bisect.bisect_right(windows, (seg.start, seg.start, "")) - 1
    for start, end, reason in windows[max(i, 0) :]:
        if start >= seg.end:
            return None
        if end > seg.start:
            return reason
    return None
