"""The textfile's memory across runs (core/metrics_textfile.py), read back with prometheus-client's
parser: counters add, gauges replace, the last success stays until a run succeeds, and the series
of another feature set sharing the file stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from airflow_provider_featurestore.core import metrics_textfile
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.interval_table import JobRecord, JobState
from airflow_provider_featurestore.core.run_figures import RunFigures

pytestmark = pytest.mark.unit


def job(name: str, state: JobState, offline: int, seconds: float) -> JobRecord:
    return JobRecord(
        id=f"{name}{offline}",
        feature_set=name,
        version=1,
        start=0,
        end=86400,
        stores=("offline",),
        state=state,
        rows_read=offline * 2,
        rows_written={"offline": offline},
        result={"seconds": seconds},
    )


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_runs_add_to_the_counters_and_keep_the_other_feature_sets(tmp_path: Path) -> None:
    path = metrics_textfile.checked_path(str(tmp_path / "fs.prom"))
    accounts = RunFigures.of("accounts", 1, [job("accounts", JobState.SUCCEEDED, 40, 1.5)], ("offline",))
    metrics_textfile.write(path, accounts, "succeeded", duration=2.0)
    first = samples(path)
    tx = RunFigures.of("transactions", 1, [job("transactions", JobState.SUCCEEDED, 300, 2.0)], ("offline",))
    metrics_textfile.write(path, tx, "succeeded", duration=3.0)
    failed = RunFigures.of("transactions", 1, [job("transactions", JobState.FAILED, 100, 4.0)], ("offline",))
    metrics_textfile.write(path, failed, "failed", duration=5.0)
    got = samples(path)

    def tx_labels(**more: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({"feature_set": "transactions", "version": "1", **more}.items()))

    assert got[("featurestore_backfill_rows_written_total", tx_labels(store="offline"))] == 400
    assert got[("featurestore_backfill_rows_read_total", tx_labels())] == 800
    assert got[("featurestore_backfill_jobs_total", tx_labels(state="succeeded"))] == 1
    assert got[("featurestore_backfill_jobs_total", tx_labels(state="failed"))] == 1
    assert got[("featurestore_backfill_job_seconds_total", tx_labels(state="failed"))] == 4.0
    assert got[("featurestore_backfill_runs_total", tx_labels(outcome="failed"))] == 1
    assert got[("featurestore_backfill_duration_seconds", tx_labels())] == 5.0  # the last run's
    assert ("featurestore_backfill_last_success_timestamp_seconds", tx_labels()) in got  # the first run's
    assert {k: v for k, v in got.items() if ("feature_set", "accounts") in k[1]} == first


def test_a_file_that_is_not_prometheus_text_is_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "fs.prom").write_text("not { prometheus\n")
    with pytest.raises(BadInput, match=r"^--metrics-textfile .*fs\.prom: exists but is not a readable"):
        metrics_textfile.checked_path(str(tmp_path / "fs.prom"))
