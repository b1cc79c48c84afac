"""The `featurestore` command line, run as users run it: the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_featurestore.core.config import load_config
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A private copy of the fraud example; its interval table lives in the copy."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return str(root / "featurestore.yaml")


def run(*args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [FEATURESTORE, *args] + (["--config", config] if config else [])
    env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_CONFIG"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_validate_the_example() -> None:
    result = run("validate", config=str(EXAMPLE / "featurestore.yaml"))
    assert result.returncode == 0, result.stderr
    assert "3 feature set(s): accounts v1, transactions v1, transaction_risk v1 (on-demand)" in result.stdout


def test_list_json(config: str) -> None:
    result = run("list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"name": "accounts", "version": 1, "offline": True, "online": True, "schedule": "@daily"},
        {"name": "transactions", "version": 1, "offline": True, "online": True, "schedule": "@daily"},
    ]


def test_dry_run_of_the_contract_example(config: str) -> None:
    result = run(
        "backfill",
        "transactions",
        "--start",
        "2024-01-01T00:00:00.900Z",
        "--end",
        "2024-01-04T12:00Z",
        "--dry-run",
        "--json",
        config=config,
    )
    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout)
    assert [(j["start"], j["end"]) for j in jobs] == [
        ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
        ("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"),
        ("2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z"),
        ("2024-01-04T00:00:00Z", "2024-01-04T12:00:00Z"),
    ]
    assert all(j["stores"] == ["offline", "online"] for j in jobs)
    # A dry run claims nothing.
    assert json.loads(run("intervals", "transactions", "--json", config=config).stdout) == []
    assert json.loads(run("jobs", "transactions", "--json", config=config).stdout) == []


def test_dry_run_plans_around_pending_and_complete_time(config: str) -> None:
    table = IntervalTable(load_config(config, check_transformations=False).interval_table_url)
    key = StreamKey("transactions", 1)
    day = 86400
    jan1 = 19723 * day
    [first] = table.claim(key, jan1, jan1 + day, {"None"}, ("offline",), day)  # offline Pending on Jan 1
    table.set_status(key, "online", jan1 + day, jan1 + 2 * day, "Complete", "earlier")
    table.close()
    result = run(
        "backfill",
        "transactions",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-03",
        "--dry-run",
        "--json",
        config=config,
    )
    assert json.loads(result.stdout) == [
        {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "stores": ["online"]},
        {"start": "2024-01-02T00:00:00Z", "end": "2024-01-03T00:00:00Z", "stores": ["offline"]},
    ]
    intervals = json.loads(run("intervals", "transactions", "--json", config=config).stdout)
    assert intervals == [
        {
            "store": "offline",
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-02T00:00:00Z",
            "status": "Pending",
        },
        {
            "store": "online",
            "start": "2024-01-02T00:00:00Z",
            "end": "2024-01-03T00:00:00Z",
            "status": "Complete",
        },
    ]
    [job] = json.loads(run("jobs", "transactions", "--json", config=config).stdout)
    assert job["id"] == first.id and job["state"] == "queued" and job["stores"] == ["offline"]
    assert set(job) == {
        "id",
        "feature_set",
        "version",
        "start",
        "end",
        "stores",
        "reads",
        "state",
        "rows_read",
        "rows_written",
        "error",
        "checks",
        "partial_lookback",
        "first_source_time",
        "created_at",
        "started_at",
        "finished_at",
        "airflow",
        "operation",
        "purge",
    }
    assert (job["operation"], job["purge"]) == ("materialize", None)
    assert (job["partial_lookback"], job["first_source_time"]) == (None, None)  # not run yet
    assert job["created_at"].endswith("Z")
    text = run("intervals", "transactions", config=config)
    assert "Pending" in text.stdout and "Complete" in text.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["backfill", "transactions", "--start", "2024-01-02", "--end", "2024-01-01", "--dry-run"], "--end:"),
        (
            ["backfill", "transactions", "--start", "yesterday", "--end", "2024-01-01", "--dry-run"],
            "--start:",
        ),
        (
            [
                "backfill",
                "transactions",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--status",
                "Done",
                "--dry-run",
            ],
            "--status: 'Done' is not one of None, Pending, Complete, Incomplete",
        ),
        (
            [
                "backfill",
                "transactions",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--status",
                "Pending",
                "--dry-run",
            ],
            "--status: Pending",
        ),
        (
            [
                "backfill",
                "transactions",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--store",
                "cache",
                "--dry-run",
            ],
            "--store: 'cache'",
        ),
        (
            ["backfill", "nope", "--start", "2024-01-01", "--end", "2024-01-02", "--dry-run"],
            "feature set 'nope'",
        ),
        (
            [
                "backfill",
                "transactions",
                "--version",
                "7",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--dry-run",
            ],
            "no version 7",
        ),
        (["jobs", "transactions", "--limit", "0"], "--limit"),
        (["intervals", "transactions", "--store", "disk"], "--store"),
        (["backfill", "transactions", "--start", "2024-01-01"], "--end"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(
    config: str, args: list[str], expected: str
) -> None:
    result = run(*args, config=config)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    db = Path(config).parent / "data" / "intervals.db"
    if db.exists():
        table = IntervalTable(f"sqlite:///{db}")
        assert table.known_streams() == [] and table.jobs() == []
        table.close()


def test_a_missing_config_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    result = run("validate", config=str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2
    assert "nowhere.yaml: file not found" in result.stderr and result.stderr.count("\n") == 1
