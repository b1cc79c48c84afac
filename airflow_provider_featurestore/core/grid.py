"""The per-interval grid of the status page: one row per stretch of time that one job (or none)
set in each store, newest first, with that job's record and the reasons its time is what it is.

Why rows of stored segments and not of data intervals: a data interval merges the time of many
jobs, while an operator asks about one chunk (its job, rows, checks, Airflow run and log). The
interval table keeps one segment per job, so the union of the stores' segment edges gives each
chunk its row, and a gap nobody requested shows as None.

Reasons come from the job record: its state (`cancelled`), its result (`partial_lookback`,
failed or warned checks) and the reasons the contract writes into its error ("lost", "source
changed", the lease's expiry).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord, StreamKey
from airflow_provider_featurestore.core.interval_table.job_records import LEASE_EXPIRED
from airflow_provider_featurestore.core.interval_table.job_state import JobState
from airflow_provider_featurestore.core.timeutil import iso

DEFAULT_ROWS = 500
# The reasons the contract writes into a job's error (after any error it had, "; "-separated).
ERROR_REASONS = (
    ("lost", ("offline lost:", "online lost:")),
    ("late data", ("source changed:",)),
    ("lease expired", (LEASE_EXPIRED.split(":")[0] + ":",)),
)


@dataclass(frozen=True)
class Cell:
    """One store's status over a row, and the job that set it (None: nobody did)."""

    status: str
    job_id: str | None


@dataclass(frozen=True)
class Row:
    start: int
    end: int
    cells: Mapping[str, Cell]

    @property
    def job_ids(self) -> list[str]:
        return sorted({c.job_id for c in self.cells.values() if c.job_id is not None})


def rows(table: IntervalTable, key: StreamKey, stores: Sequence[str], start: int, end: int) -> list[Row]:
    """The rows of `[start, end)` over `stores`, oldest first: a row ends wherever any store's
    stored segment does."""
    found = {s: _clipped(table.segments(key, s, start, end), start, end) for s in stores}
    edges = sorted({start, end} | {e for segs in found.values() for seg in segs for e in seg[:2]})
    out: list[Row] = []
    cursor = {s: 0 for s in stores}
    for lo, hi in zip(edges, edges[1:], strict=False):
        cells = {}
        for s in stores:
            segs = found[s]
            while cursor[s] < len(segs) and segs[cursor[s]].end <= lo:
                cursor[s] += 1
            seg = segs[cursor[s]] if cursor[s] < len(segs) and segs[cursor[s]].start <= lo else None
            cells[s] = Cell(seg.status, seg.job_id) if seg else Cell(iv.NONE, None)
        out.append(Row(lo, hi, cells))
    return out


def _clipped(segments: Sequence[iv.Segment], start: int, end: int) -> list[iv.Segment]:
    return [
        iv.Segment(max(s.start, start), min(s.end, end), s.status, s.job_id)
        for s in segments
        if s.end > start and s.start < end
    ]


def reasons(job: JobRecord) -> list[str]:
    """Why the job's time is what it is, as short words: cancelled, lost, late data (a source
    file changed), lease expired, failed (any other error), partial lookback, checks failed or
    warned."""
    found = []
    if job.state == JobState.CANCELLED:
        found.append("cancelled")
    parts = [p.strip() for p in (job.error or "").split("; ")]
    for word, prefixes in ERROR_REASONS:
        if any(p.startswith(prefixes) for p in parts):
            found.append(word)
    if job.state == JobState.FAILED and not found:
        found.append("failed")
    if job.result.get("partial_lookback"):
        found.append("partial lookback")
    checks = job.result.get("checks", [])
    if any(not c.get("passed", True) and c.get("severity") == "error" for c in checks):
        found.append("checks failed")
    if any(not c.get("passed", True) and c.get("severity") != "error" for c in checks):
        found.append("checks warned")
    return found


def document(
    table: IntervalTable,
    key: StreamKey,
    stores: Sequence[str],
    start: int,
    end: int,
    *,
    statuses: Collection[str] = (),
    run_id: str | None = None,
    limit: int = DEFAULT_ROWS,
) -> dict:
    """The grid as the page's JSON: rows newest first, those with a store in `statuses` (all by
    default) and set by a job of Airflow run `run_id` (any by default), at most `limit`; each
    row's jobs in `jobs` by id (with their reasons); `runs`: the Airflow runs of every row, for
    the run filter."""
    everything = rows(table, key, stores, start, end)
    records = table.jobs_by_id({j for row in everything for j in row.job_ids})
    runs = sorted({r.airflow["run_id"] for r in records.values() if r.airflow and r.airflow.get("run_id")})
    chosen = [r for r in reversed(everything) if _matches(r, records, statuses, run_id)]
    shown = chosen[:limit]
    jobs = {j: records[j] for row in shown for j in row.job_ids if j in records}
    return {
        "start": iso(start),
        "end": iso(end),
        "stores": list(stores),
        "total_rows": len(chosen),
        "truncated": len(chosen) > limit,
        "runs": runs,
        "rows": [_row_json(row) for row in shown],
        "jobs": {j: {**record.to_json(), "reasons": reasons(record)} for j, record in jobs.items()},
    }


def _matches(
    row: Row, records: Mapping[str, JobRecord], statuses: Collection[str], run_id: str | None
) -> bool:
    if statuses and not any(c.status in statuses for c in row.cells.values()):
        return False
    if run_id is None:
        return True
    return any((records.get(j) and (records[j].airflow or {}).get("run_id")) == run_id for j in row.job_ids)


def _row_json(row: Row) -> dict:
    return {
        "start": iso(row.start),
        "end": iso(row.end),
        "stores": {s: {"status": c.status, "job_id": c.job_id} for s, c in row.cells.items()},
        "job_ids": row.job_ids,
    }
