"""Quality checks (`checks:` in a spec) on the embedded engine, a real Delta table and a real Redis.

A three-day source whose middle day holds a null, a duplicate and an out-of-range row: with
`severity: error` that day is Incomplete in both stores and nothing of it is in Delta or Redis,
while the other days commit; with `warn` everything commits and the figures are recorded. The
assertions read what landed (Delta rows, Redis hashes, the interval table, `jobs --json`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from conftest import REDIS_URL
from deltalake import DeltaTable

from airflow_provider_featurestore.core.cli import main as cli_main

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
ALL_CHECKS = """checks:
  - {check: not_null, columns: [amount], severity: SEVERITY}
  - {check: unique, columns: [accountID, ts], severity: SEVERITY}
  - {check: range, column: amount, min: 0, max: 1000, severity: SEVERITY}
  - {check: accepted_values, column: kind, values: [card, cash], severity: SEVERITY}
  - {check: min_rows, count: 2, severity: SEVERITY}
"""


def source_rows() -> pd.DataFrame:
    """Day 1 and 3 clean; day 2 (2024-03-02) has one null amount, a duplicated (accountID, ts),
    an amount of 5000 and a kind outside the accepted values. Account `only2` appears on day 2
    only, so its key must never reach Redis when day 2 fails."""
    rows = [
        ("A1", "2024-03-01 10:00:00", 10.0, "card"),
        ("A2", "2024-03-01 11:00:00", 20.0, "cash"),
        ("A1", "2024-03-02 09:00:00", None, "card"),
        ("A2", "2024-03-02 10:00:00", 30.0, "card"),
        ("A2", "2024-03-02 10:00:00", 31.0, "card"),
        ("only2", "2024-03-02 12:00:00", 5000.0, "crypto"),
        ("A1", "2024-03-03 08:00:00", 40.0, "card"),
        ("A3", "2024-03-03 09:00:00", 50.0, "cash"),
    ]
    frame = pd.DataFrame(rows, columns=["accountID", "ts", "amount", "kind"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[us, UTC]")
    return frame


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    project = f"q{uuid.uuid4().hex[:10]}"
    (tmp_path / "featuresets").mkdir()
    (tmp_path / "source").mkdir()
    pq.write_table(
        pa.Table.from_pandas(source_rows(), preserve_index=False), tmp_path / "source" / "part.parquet"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\nfeature_sets: featuresets\noffline_store: {{path: offline}}\n"
        f"online_store: {{redis_url: '{REDIS_URL}'}}\ninterval_table: {{url: 'sqlite:///intervals.db'}}\n"
    )
    yield tmp_path
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def write_spec(root: Path, checks: str) -> None:
    (root / "featuresets" / "payments.yaml").write_text(
        "name: payments\nversion: 1\nindex_columns: [{name: accountID, type: string}]\n"
        "timestamp_column: ts\nsource: {format: parquet, path: source}\n"
        "features: [{name: amount, type: double}, {name: kind, type: string}]\n"
        "materialization: {offline: true, online: true}\n" + checks
    )


def run(root: Path, *args: str) -> int:
    return cli_main([*args, "--config", str(root / "featurestore.yaml")])


def statuses(root: Path, capsys: pytest.CaptureFixture) -> dict[tuple[str, str], str]:
    """(store, day) -> status of each of the three days, from `intervals --json`."""
    capsys.readouterr()
    assert run(root, "intervals", "payments", "--json") == 0
    found = {}
    for interval in json.loads(capsys.readouterr().out):
        for day in DAYS:
            if interval["start"][:10] <= day < interval["end"][:10]:
                found[(interval["store"], day)] = interval["status"]
    return found


def jobs_by_day(root: Path, capsys: pytest.CaptureFixture) -> dict[str, dict]:
    capsys.readouterr()
    assert run(root, "jobs", "payments", "--json") == 0
    return {job["start"][:10]: job for job in json.loads(capsys.readouterr().out)}


def delta_rows(root: Path) -> pd.DataFrame:
    frame = DeltaTable(str(root / "offline" / "payments" / "v1")).to_pandas()
    return frame.sort_values(["ts", "accountID", "amount"]).reset_index(drop=True)


def redis_hash(root: Path, account: str) -> dict[bytes, bytes]:
    project = (root / "featurestore.yaml").read_text().split("\n", 1)[0].split(": ")[1]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k for k in client.scan_iter(f"{project}:payments:v1:*", count=1000) if account.encode() in k]
        return client.hgetall(keys[0]) if keys else {}
    finally:
        client.close()


def test_error_checks_keep_the_bad_day_out_of_both_stores(
    store_root: Path, capsys: pytest.CaptureFixture
) -> None:
    write_spec(store_root, ALL_CHECKS.replace("SEVERITY", "error"))
    assert run(store_root, "backfill", "payments", "--start", DAYS[0], "--end", "2024-03-04") == 1

    assert statuses(store_root, capsys) == {
        ("offline", DAYS[0]): "Complete",
        ("offline", DAYS[1]): "Incomplete",
        ("offline", DAYS[2]): "Complete",
        ("online", DAYS[0]): "Complete",
        ("online", DAYS[1]): "Incomplete",
        ("online", DAYS[2]): "Complete",
    }
    landed = delta_rows(store_root)
    assert sorted(landed["ts"].dt.strftime("%Y-%m-%d").unique()) == [DAYS[0], DAYS[2]]
    assert len(landed) == 4
    assert redis_hash(store_root, "only2") == {}  # its only row was on the failed day
    assert redis_hash(store_root, "A3")  # day 3 reached Redis

    jobs = jobs_by_day(store_root, capsys)
    bad = jobs[DAYS[1]]
    assert bad["state"] == "failed"
    figures = {c["check"]: c for c in bad["checks"]}
    assert figures["not_null"] == {
        "check": "not_null",
        "columns": ["amount"],
        "severity": "error",
        "violations": 1,
        "passed": False,
        "examples": ["accountID=A1, ts=2024-03-02T09:00:00Z"],
    }
    assert figures["unique"]["violations"] == 2  # both rows of the duplicated key
    assert figures["unique"]["examples"] == ["accountID=A2, ts=2024-03-02T10:00:00Z"]
    assert (figures["range"]["column"], figures["range"]["violations"]) == ("amount", 1)
    assert figures["range"]["examples"] == ["5000.0"]
    assert (figures["accepted_values"]["violations"], figures["accepted_values"]["examples"]) == (
        1,
        ["crypto"],
    )
    assert figures["min_rows"]["passed"] is True
    assert "not_null on amount: 1 of 4 row(s)" in bad["error"]
    assert "range on amount: 1 of 4 row(s) violate it (e.g. 5000.0)" in bad["error"]
    assert all(c["passed"] for c in jobs[DAYS[0]]["checks"]) and len(jobs[DAYS[0]]["checks"]) == 5


def test_warn_checks_commit_everything_and_record_the_figures(
    store_root: Path, capsys: pytest.CaptureFixture
) -> None:
    write_spec(store_root, ALL_CHECKS.replace("SEVERITY", "warn"))
    assert run(store_root, "backfill", "payments", "--start", DAYS[0], "--end", "2024-03-04") == 0

    assert set(statuses(store_root, capsys).values()) == {"Complete"}
    assert len(delta_rows(store_root)) == 8  # the duplicate and the null row landed too
    assert redis_hash(store_root, "only2")[b"kind"] == b"crypto"
    day2 = {c["check"]: c for c in jobs_by_day(store_root, capsys)[DAYS[1]]["checks"]}
    assert {name: c["violations"] for name, c in day2.items()} == {
        "not_null": 1,
        "unique": 2,
        "range": 1,
        "accepted_values": 1,
        "min_rows": 0,
    }
    assert all(c["severity"] == "warn" for c in day2.values())
    capsys.readouterr()
    assert run(store_root, "jobs", "payments") == 0
    table = capsys.readouterr().out
    assert (
        "not_null warned (1), unique warned (2), range warned (1), accepted_values warned (1), 1 passed"
        in table
    )


def test_min_rows_fails_a_thin_day(store_root: Path, capsys: pytest.CaptureFixture) -> None:
    write_spec(store_root, "checks:\n  - {check: min_rows, count: 3}\n")
    assert run(store_root, "backfill", "payments", "--start", DAYS[0], "--end", "2024-03-04") == 1
    jobs = jobs_by_day(store_root, capsys)
    assert [jobs[d]["state"] for d in DAYS] == ["failed", "succeeded", "failed"]
    assert "min_rows: 2 row(s), fewer than 3" in jobs[DAYS[0]]["error"]
    assert jobs[DAYS[0]]["checks"][0]["violations"] == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{check: nope, columns: [amount]}", "checks[0]: unknown check 'nope'"),
        ("{check: not_null}", "checks[0].columns: required field is missing"),
        (
            "{check: range, column: kind, min: 1}",
            "checks[0].column: 'kind' is string: range takes a numeric column",
        ),
        ("{check: range, column: amount}", "checks[0]: give min, max or both"),
        ("{check: unique, columns: [bogus]}", "checks[0].columns: 'bogus' is not an index column"),
        ("{check: accepted_values, column: kind}", "checks[0].values: required field is missing"),
        ("{check: min_rows, count: 0}", "checks[0].count: 0 is not a positive integer"),
        (
            "{check: not_null, columns: [amount], severity: fatal}",
            "checks[0].severity: 'fatal' is not one of error, warn",
        ),
        ("{columns: [amount]}", "checks[0]: no 'check:' given"),
    ],
)
def test_a_bad_check_is_refused_in_one_line_and_nothing_is_claimed(
    store_root: Path, capsys: pytest.CaptureFixture, entry: str, message: str
) -> None:
    write_spec(store_root, f"checks:\n  - {entry}\n")
    capsys.readouterr()
    assert run(store_root, "backfill", "payments", "--start", DAYS[0], "--end", "2024-03-04") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"featuresets/payments.yaml: {message}" in err
    assert not (store_root / "intervals.db").exists() and not (store_root / "offline").exists()


def test_a_null_key_fails_only_its_chunk_while_the_others_are_measured(
    store_root: Path, capsys: pytest.CaptureFixture
) -> None:
    """Without a transformation the batch's checks are one query over its source; a null key
    fails that query, so each chunk is measured alone: the bad day fails on its null key, the
    other days commit with their figures."""
    frame = source_rows()
    frame.loc[2, "accountID"] = None  # day 2's first row
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), store_root / "source" / "part.parquet")
    write_spec(store_root, ALL_CHECKS.replace("SEVERITY", "warn"))
    assert run(store_root, "backfill", "payments", "--start", DAYS[0], "--end", "2024-03-04") == 1
    jobs = jobs_by_day(store_root, capsys)
    assert [jobs[d]["state"] for d in DAYS] == ["succeeded", "failed", "succeeded"]
    assert "has a null in 'accountID'" in jobs[DAYS[1]]["error"]
    assert [len(jobs[d]["checks"]) for d in (DAYS[0], DAYS[2])] == [5, 5]
    assert sorted(delta_rows(store_root)["ts"].dt.strftime("%Y-%m-%d").unique()) == [DAYS[0], DAYS[2]]
