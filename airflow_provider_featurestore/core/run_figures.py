"""The figures a backfill reports to monitoring, computed once from its job records: jobs by final
state, rows read, rows written per store, and each job's seconds.

One mechanism for both places the platform looks: `featurestore backfill --metrics-textfile`
(node_exporter's textfile collector, `metrics_textfile.py`) and the Airflow materialize task
(Airflow's stats, `airflow/operators/run_stats.py`) read the same `RunFigures`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from airflow_provider_featurestore.core.interval_table import JobRecord, JobState

FINAL_STATES: tuple[JobState, ...] = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
"""The states a job ends in; a live job (queued, running) is not counted until it ends."""


def job_seconds(record: JobRecord) -> float | None:
    """How long the job's own work took: the engine's measure of its chunk (`result.seconds`), else
    its record's start-to-finish time; None for a job that never started (cancelled while queued).
    The engine's measure first: in a batch every job starts with the batch, so start-to-finish
    would count the chunks before it too."""
    seconds = record.result.get("seconds")
    if isinstance(seconds, int | float) and seconds > 0:
        return float(seconds)
    if record.started_at is not None and record.finished_at is not None:
        return max(0.0, record.finished_at - record.started_at)
    return None


@dataclass(frozen=True)
class RunFigures:
    """What the ended jobs of one feature set version did. Every final state has a count (zero
    included), and every store asked has a row count, so a series exists before its first event."""

    feature_set: str
    version: int
    jobs: dict[str, int]
    rows_read: int
    rows_written: dict[str, int]
    job_seconds: dict[str, float]
    durations: tuple[tuple[str, float], ...] = field(default=())
    """(final state, seconds) of each ended job that ran: the timings Airflow's stats receive."""

    @property
    def succeeded(self) -> bool:
        """Whether every ended job succeeded (also when there was none: nothing to do)."""
        return all(count == 0 for state, count in self.jobs.items() if state != JobState.SUCCEEDED)

    @classmethod
    def of(
        cls, feature_set: str, version: int, records: Iterable[JobRecord], stores: Sequence[str] = ()
    ) -> RunFigures:
        """The figures of these jobs (live ones left out); `stores`: the stores asked, counted
        even when nothing was written to them."""
        ended = [r for r in records if r.state in FINAL_STATES]
        rows_written = dict.fromkeys(stores, 0)
        for record in ended:
            for store, rows in record.rows_written.items():
                rows_written[store] = rows_written.get(store, 0) + int(rows)
        durations = tuple((str(r.state), seconds) for r in ended if (seconds := job_seconds(r)) is not None)
        return cls(
            feature_set=feature_set,
            version=version,
            jobs={str(s): sum(1 for r in ended if r.state == s) for s in FINAL_STATES},
            rows_read=sum(r.rows_read or 0 for r in ended),
            rows_written=rows_written,
            job_seconds={str(s): sum(t for state, t in durations if state == s) for s in FINAL_STATES},
            durations=durations,
        )


def per_version(records: Sequence[JobRecord]) -> list[RunFigures]:
    """The figures of each feature set version among these records, in name and version order."""
    key = lambda r: (r.feature_set, r.version)  # noqa: E731
    return [
        RunFigures.of(name, version, same) for (name, version), same in groupby(sorted(records, key=key), key)
    ]
