"""Time a backfill cannot plan because a live job holds it Pending, said with the job, its lease
end and the way to release it: after a `kill -9`, that time waits for a lease fixed when the job
was claimed, and a backfill that only said "nothing to do" left the user guessing.

Read after the claim (and only over the backfill's window), never inside the planner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord, StreamKey
from airflow_provider_featurestore.core.timeutil import iso

SHOWN = 3  # Pending times described one by one; past that, how many more


@dataclass(frozen=True)
class PendingTime:
    """`[start, end)` of `stores`, Pending under the live `job`."""

    start: int
    end: int
    stores: tuple[str, ...]
    job: JobRecord

    def describe(self) -> str:
        job = self.job
        lease = (
            "" if job.lease_expires_at is None else f"; its lease ends at {iso(int(job.lease_expires_at))}"
        )
        return (
            f"[{iso(self.start)}, {iso(self.end)}) {','.join(self.stores)} is Pending under job {job.id} "
            f"({job.state}{lease})"
        )


def pending_time(
    table: IntervalTable,
    key: StreamKey,
    start: int,
    end: int,
    stores: Sequence[str],
    mine: Iterable[str] = (),
) -> list[PendingTime]:
    """The Pending time of `[start, end)` in `stores` held by live jobs other than `mine` (those
    the backfill asking just claimed): one entry per job and window, its stores together."""
    mine = set(mine)
    found: dict[tuple[str, int, int], list[str]] = {}
    for store in stores:
        owned: list[iv.Segment] = []
        for segment in table.segments(key, store, start, end):
            if segment.status != iv.PENDING or segment.job_id is None or segment.job_id in mine:
                continue
            if owned and owned[-1].end == segment.start and owned[-1].job_id == segment.job_id:
                owned[-1] = owned[-1]._replace(end=segment.end)
            else:
                owned.append(segment)
        for segment in owned:
            window = (str(segment.job_id), max(segment.start, start), min(segment.end, end))
            found.setdefault(window, []).append(store)
    jobs = table.jobs_by_id({job_id for job_id, _a, _b in found})
    items = [
        PendingTime(a, b, tuple(s), jobs[job_id]) for (job_id, a, b), s in found.items() if job_id in jobs
    ]
    return sorted(items, key=lambda item: (item.start, item.stores))


def pending_lines(pending: Sequence[PendingTime]) -> list[str]:
    """The first SHOWN Pending times, how many more, and how to release a dead job's time."""
    if not pending:
        return []
    lines = [item.describe() for item in pending[:SHOWN]]
    name, example = pending[0].job.feature_set, pending[0].job.id
    if len(pending) > SHOWN:
        lines.append(f"and {len(pending) - SHOWN} more (`featurestore jobs {name}` lists the jobs)")
    lines.append(
        f"if no process runs those jobs any more (a killed backfill), `featurestore cancel {name} --job {example}` "
        f"releases a job's time at once (`--all`: every live job of {name})"
    )
    return lines
