"""`featurestore backfill --metrics-textfile PATH` on the embedded engine, Delta and Redis: the file
node_exporter's textfile collector reads, parsed by prometheus-client's own parser, against the
rows that landed and the job records `featurestore jobs --json` prints."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families
from support.fraud import REDIS_URL, backfill, day, fraud_store, statuses
from test_materialize import start_slow_backfill

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore

LABELS = {"feature_set": "transactions", "version": "1"}


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    yield from fraud_store(tmp_path, monkeypatch, None)


def parsed(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The file's samples: per sample name, per label set (sorted pairs), the value."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted({**LABELS, **labels}.items()))]


def jobs_json(root: Path, capsys: pytest.CaptureFixture) -> list[dict]:
    capsys.readouterr()
    assert cli_main(["jobs", "transactions", "--json", "--config", str(root / "featurestore.yaml")]) == 0
    return json.loads(capsys.readouterr().out)


def landed(root: Path) -> tuple[int, int]:
    """Rows in the Delta table, and entity keys in Redis (the feature set's marker key aside)."""
    offline = len(DeltaTable(str(root / "data" / "offline" / "transactions" / "v1")).to_pandas())
    store = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False)
    layout = store.online_layout(store.spec("transactions"))
    store.close()
    keys = {k.decode() for k in redis.Redis.from_url(REDIS_URL).scan_iter(f"{layout.prefix}*")}
    return offline, len(keys - {layout.marker_key})


def test_the_textfile_counts_the_rows_that_landed_and_the_jobs_by_state(
    fraud: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "textfile" / "transactions.prom"
    path.parent.mkdir()
    assert (
        backfill(fraud, "transactions", "--start", day(6), "--end", day(9), "--metrics-textfile", str(path))
        == 0
    )
    samples = parsed(path)
    offline, online = landed(fraud)
    assert offline == 900 and online > 0
    assert value(samples, "featurestore_backfill_rows_written_total", store="offline") == offline
    assert value(samples, "featurestore_backfill_rows_written_total", store="online") == online
    jobs = jobs_json(fraud, capsys)
    for state in ("succeeded", "failed", "cancelled"):
        want = sum(1 for j in jobs if j["state"] == state)
        assert value(samples, "featurestore_backfill_jobs_total", state=state) == want
    assert value(samples, "featurestore_backfill_jobs_total", state="succeeded") == 3
    assert value(samples, "featurestore_backfill_rows_read_total") == sum(j["rows_read"] for j in jobs)
    assert value(samples, "featurestore_backfill_runs_total", outcome="succeeded") == 1
    assert value(samples, "featurestore_backfill_job_seconds_total", state="succeeded") > 0
    assert value(samples, "featurestore_backfill_duration_seconds") > 0
    first_success = value(samples, "featurestore_backfill_last_success_timestamp_seconds")
    assert [p.name for p in path.parent.iterdir()] == ["transactions.prom"]  # no temp file left

    # A run with nothing to do is a successful run: counted, its jobs add nothing.
    assert (
        backfill(fraud, "transactions", "--start", day(6), "--end", day(9), "--metrics-textfile", str(path))
        == 0
    )
    again = parsed(path)
    assert value(again, "featurestore_backfill_runs_total", outcome="succeeded") == 2
    assert value(again, "featurestore_backfill_jobs_total", state="succeeded") == 3
    assert value(again, "featurestore_backfill_rows_written_total", store="offline") == offline
    assert value(again, "featurestore_backfill_last_success_timestamp_seconds") >= first_success


def test_a_failed_run_is_counted_and_leaves_the_last_success_where_it_was(
    fraud: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "transactions.prom"
    assert (
        backfill(fraud, "transactions", "--start", day(7), "--end", day(8), "--metrics-textfile", str(path))
        == 0
    )
    success = value(parsed(path), "featurestore_backfill_last_success_timestamp_seconds")
    transform = fraud / "transforms" / "transactions.py"
    transform.write_text(transform.read_text().replace('alias("transaction_7d_count")', 'alias("tx_count")'))
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]  # the first run imported the transformation in this process
    assert (
        backfill(fraud, "transactions", "--start", day(8), "--end", day(9), "--metrics-textfile", str(path))
        == 1
    )
    samples = parsed(path)
    assert value(samples, "featurestore_backfill_runs_total", outcome="failed") == 1
    assert value(samples, "featurestore_backfill_runs_total", outcome="succeeded") == 1
    failed = [j for j in jobs_json(fraud, capsys) if j["state"] == "failed"]
    assert len(failed) == 1 and value(samples, "featurestore_backfill_jobs_total", state="failed") == 1
    assert value(samples, "featurestore_backfill_rows_written_total", store="offline") == 300  # day 7's
    assert value(samples, "featurestore_backfill_last_success_timestamp_seconds") == success


@pytest.mark.parametrize(
    "where",
    ["missing/transactions.prom", "a-file/transactions.prom", "transactions.txt", "."],
    ids=["directory-missing", "parent-is-a-file", "not-prom", "a-directory"],
)
def test_a_bad_path_exits_2_in_one_line_and_claims_nothing(
    fraud: Path, tmp_path: Path, capsys: pytest.CaptureFixture, where: str
) -> None:
    (tmp_path / "a-file").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())
    path = str(tmp_path / where)
    capsys.readouterr()
    assert (
        backfill(fraud, "transactions", "--start", day(7), "--end", day(9), "--metrics-textfile", path) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"featurestore backfill: --metrics-textfile {path}: ") and "\n" not in err, err
    assert statuses(fraud) == {"offline": [], "online": []}
    assert jobs_json(fraud, capsys) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, partial or other


def test_an_interrupted_run_writes_its_figures_as_it_stops(fraud: Path, tmp_path: Path) -> None:
    path = tmp_path / "transactions.prom"
    process, _original = start_slow_backfill(
        fraud, stderr=subprocess.PIPE, extra=("--metrics-textfile", str(path))
    )
    assert not path.exists()  # written at the end of the run
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "interrupted" in err
    samples = parsed(path)
    assert value(samples, "featurestore_backfill_runs_total", outcome="interrupted") == 1
    assert (
        value(samples, "featurestore_backfill_jobs_total", state="failed") == 2
    )  # both ended as interrupted
    assert value(samples, "featurestore_backfill_rows_written_total", store="offline") == 0
    assert "featurestore_backfill_last_success_timestamp_seconds" not in samples
