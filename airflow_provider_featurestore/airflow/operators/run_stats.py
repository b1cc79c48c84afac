"""The materialize tasks' figures through Airflow's stats interface: StatsD, Datadog's DogStatsD or
OpenTelemetry, whichever the deployment configured in `[metrics]` (nothing when none is).

The figures are the core's (`core/run_figures.py`, the same as `backfill --metrics-textfile`);
this module only forwards them. Each is sent under two names, as Airflow sends its own:
- a tagged name (`featurestore.rows_written`, tags feature_set, version, store) for the backends
  that carry tags (DogStatsD, OpenTelemetry, StatsD with `statsd_influxdb_enabled`);
- the same with the tags in the name (`featurestore.rows_written.transactions.v1.offline`) for
  plain StatsD, which drops tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.run_figures import RunFigures, per_version

try:  # Airflow 3.1+: the task SDK's stats (airflow.stats is a deprecated shim there)
    from airflow.sdk.observability import stats
except ImportError:  # pragma: no cover - Airflow 3.0
    from airflow.stats import Stats as stats  # type: ignore[no-redef]  # noqa: N813

PREFIX = "featurestore."


def _incr(name: str, count: int, tags: dict[str, str]) -> None:
    if count:
        stats.incr(PREFIX + name, count, tags=tags)
        stats.incr(PREFIX + ".".join([name, *_in_name(tags)]), count)


def _in_name(tags: dict[str, str]) -> list[str]:
    """The tags as name parts, in a fixed order: feature set, `v<version>`, then store or state."""
    parts = [tags["feature_set"], f"v{tags['version']}"]
    return parts + [tags[k] for k in ("store", "state") if k in tags]


def emit_figures(figures: RunFigures) -> None:
    """Send one feature set version's figures: counters of rows and of jobs by final state, and
    a timing per ended job."""
    fs = {"feature_set": figures.feature_set, "version": str(figures.version)}
    for store, rows in figures.rows_written.items():
        _incr("rows_written", rows, {**fs, "store": store})
    _incr("rows_read", figures.rows_read, fs)
    for state, count in figures.jobs.items():
        _incr("jobs", count, {**fs, "state": state})
    for state, seconds in figures.durations:
        tags = {**fs, "state": state}
        stats.timing(PREFIX + "job_duration", timedelta(seconds=seconds), tags=tags)
        stats.timing(PREFIX + ".".join(["job_duration", *_in_name(tags)]), timedelta(seconds=seconds))


def emit(records: Iterable[JobRecord]) -> None:
    """Send the figures of these job records (the ones still live are not counted: they are
    counted by whoever ends them)."""
    for figures in per_version(list(records)):
        emit_figures(figures)
