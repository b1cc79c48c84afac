"""`featurestore backfill --metrics-textfile PATH`: a backfill's figures as a Prometheus text file
for node_exporter's textfile collector, written through prometheus-client, atomically (a temp
file beside PATH, then a rename), at the end of every run: succeeded, failed, interrupted, or
with nothing to do.

The file is the counters' memory: a run adds its figures to the counters the file already holds
(so `rate()` and `increase()` work across runs; deleting the file is a counter reset), replaces
its own gauges, and keeps the series of other feature sets that share the file.
`featurestore_backfill_last_success_timestamp_seconds` moves only when a run succeeded: the
usual idiom to alert on a backfill that has not succeeded for too long.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord
from airflow_provider_featurestore.core.run_figures import RunFigures

OPTION = "--metrics-textfile"
PREFIX = "featurestore_backfill_"
FS = ("feature_set", "version")


@dataclass(frozen=True)
class Family:
    """One metric family of the file: its Prometheus type, labels and help text."""

    kind: str  # "counter": a run adds to it; "gauge": a run replaces it
    labels: tuple[str, ...]
    help: str


FAMILIES: dict[str, Family] = {
    PREFIX + "runs": Family(
        "counter", (*FS, "outcome"), "Backfill runs by outcome (succeeded, failed, interrupted)."
    ),
    PREFIX + "jobs": Family("counter", (*FS, "state"), "Materialization jobs by final state."),
    PREFIX + "rows_read": Family("counter", FS, "Source rows the jobs read."),
    PREFIX + "rows_written": Family("counter", (*FS, "store"), "Rows the jobs wrote, per store."),
    PREFIX + "job_seconds": Family(
        "counter", (*FS, "state"), "Seconds the jobs took, summed by final state (over jobs_total: the mean)."
    ),
    PREFIX + "duration_seconds": Family("gauge", FS, "Wall-clock seconds of the last backfill run."),
    PREFIX + "last_success_timestamp_seconds": Family(
        "gauge", FS, "Unix time the last successful backfill run ended."
    ),
}

Values = dict[str, dict[tuple[str, ...], float]]
"""Per family name, per label values (in the family's label order), the value."""


def checked_path(text: str) -> Path:
    """PATH, once proven writable (a probe file created and removed in its directory), before
    anything is claimed. BadInput, in one line naming the option, otherwise."""
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        raise BadInput(
            f"{OPTION} {text}: is a directory; give a file path in it, e.g. {path / 'featurestore.prom'}"
        )
    if path.suffix != ".prom":
        raise BadInput(
            f"{OPTION} {text}: node_exporter's textfile collector reads only *.prom files; name it e.g. {path.stem}.prom"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(
            f"{OPTION} {text}: cannot write in {path.parent}: {exc.strerror or exc}; "
            "create the directory or give a writable path"
        ) from None
    try:
        previous(path)
    except (OSError, ValueError) as exc:
        raise BadInput(
            f"{OPTION} {text}: exists but is not a readable Prometheus text file ({exc}); remove it or give another path"
        ) from None
    return path


def previous(path: Path) -> Values:
    """The values of our families in the file as it is ({} when there is none); ValueError when
    it is not Prometheus text. Samples whose labels are not the family's are left out."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values: Values = {}
    for metric in text_string_to_metric_families(text):
        family = FAMILIES.get(metric.name)
        if family is None or metric.type != family.kind:
            continue
        for sample in metric.samples:
            if sample.name in (metric.name, metric.name + "_total") and set(sample.labels) == set(
                family.labels
            ):
                values.setdefault(metric.name, {})[tuple(sample.labels[n] for n in family.labels)] = (
                    sample.value
                )
    return values


def run_values(figures: RunFigures, outcome: str, *, duration: float, ended: float) -> Values:
    """This run's values (the last success only when it succeeded)."""
    fs = (figures.feature_set, str(figures.version))
    values: Values = {
        PREFIX + "runs": {(*fs, outcome): 1},
        PREFIX + "jobs": {(*fs, state): count for state, count in figures.jobs.items()},
        PREFIX + "rows_read": {fs: figures.rows_read},
        PREFIX + "rows_written": {(*fs, store): rows for store, rows in figures.rows_written.items()},
        PREFIX + "job_seconds": {(*fs, state): seconds for state, seconds in figures.job_seconds.items()},
        PREFIX + "duration_seconds": {fs: round(duration, 3)},
    }
    if outcome == "succeeded":
        values[PREFIX + "last_success_timestamp_seconds"] = {fs: round(ended, 3)}
    return values


def merged(old: Values, new: Values) -> Values:
    """`new` over `old`: counters add, gauges replace; label sets only one side has stay."""
    result: Values = {name: dict(series) for name, series in old.items()}
    for name, series in new.items():
        kept = result.setdefault(name, {})
        for labels, value in series.items():
            kept[labels] = kept.get(labels, 0) + value if FAMILIES[name].kind == "counter" else value
    return result


class _Values(Collector):
    """prometheus-client's view of computed values (no `_created` series: a counter here lives
    across runs, not since this process started)."""

    def __init__(self, values: Values) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        for name, family in FAMILIES.items():
            series = self.values.get(name)
            if not series:
                continue
            make = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
            metric = make(name, family.help, labels=family.labels)
            for labels, value in sorted(series.items()):
                metric.add_metric(list(labels), value)
            yield metric


def write(path: Path, figures: RunFigures, outcome: str, *, duration: float) -> None:
    """Add this run to the file at `path` and replace it atomically. A file that became
    unreadable meanwhile starts over (said on stderr) rather than losing this run."""
    try:
        old = previous(path)
    except (OSError, ValueError) as exc:
        print(
            f"featurestore backfill: {OPTION} {path}: unreadable ({exc}); its counters start over",
            file=sys.stderr,
        )
        old = {}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Values(merged(old, run_values(figures, outcome, duration=duration, ended=time.time())))
    )
    write_to_textfile(str(path), registry)


@dataclass
class Recording:
    """One backfill's textfile: the jobs it claims, as it claims them (`on_claim`), counted at
    its end (`end`)."""

    path: Path
    table: IntervalTable
    feature_set: str
    version: int
    stores: tuple[str, ...]
    job_ids: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def on_claim(self, records: Sequence[JobRecord]) -> None:
        self.job_ids += [r.id for r in records]

    def end(self, outcome: str | None) -> None:
        """Read the claimed jobs' final records and write the file (`outcome` None: from the
        jobs). A failure is one line on stderr and never hides the backfill's own outcome."""
        try:
            records = list(self.table.jobs_by_id(self.job_ids).values())
            figures = RunFigures.of(self.feature_set, self.version, records, self.stores)
            outcome = outcome or ("succeeded" if figures.succeeded else "failed")
            write(self.path, figures, outcome, duration=time.monotonic() - self.began)
        except Exception as exc:  # noqa: BLE001 - the backfill's outcome is what the caller reports
            print(
                f"featurestore backfill: {OPTION} {self.path}: not written: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


@contextlib.contextmanager
def recorded(recording: Recording | None) -> Iterator[Recording | None]:
    """Around a backfill: at its end, however it ends, `recording` writes its figures (None: no
    file asked). Bad input before any claim writes nothing (nothing ran); an interrupt is
    `interrupted`, any other exception `failed`; else the jobs say."""
    outcome: str | None = "failed"
    try:
        yield recording
        outcome = None
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    except BadInput:
        if recording is not None and not recording.job_ids:
            recording = None
        raise
    finally:
        if recording is not None:
            recording.end(outcome)
