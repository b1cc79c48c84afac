"""Source coverage and late or changed source data, on the real things: the fraud example (a
7-day lookback over one parquet file per day) materialized by the embedded engine (Sail) into
a real Delta table and a real Redis; files added, rewritten and removed under the source; and
the result compared with a recompute in pandas over the source as it is now.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_check import ACCOUNTS, DAY, FIRST_DAY, Fraud, _fraud, day

from airflow_provider_featurestore.core.timeutil import iso

EIGHT_DAYS = ["backfill", "transactions", "--start", day(1), "--end", day(9)]


@pytest.fixture
def fraud(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fraud]:
    yield from _fraud(request, tmp_path, monkeypatch, "sqlite")


def source_dir(fraud: Fraud) -> Path:
    return fraud.root / "data" / "source" / "transactions"


def day_file(fraud: Fraud, offset: int) -> Path:
    return source_dir(fraud) / f"part-{day(offset)[:10]}.parquet"


def cli_json(fraud: Fraud, capsys: pytest.CaptureFixture[str], status: int, *args: str) -> Any:
    capsys.readouterr()
    assert fraud.cli(*args, "--json") == status
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return json.loads(out)


def expected_rows(fraud: Fraud, start: int, end: int) -> pd.DataFrame:
    """The transformation recomputed in pandas over the whole source as it is now: per row in
    [start, end), its account's amount sum, count and mean over rows in (t - 7d, t] (seconds)."""
    source = pq.read_table(source_dir(fraud)).to_pandas()
    stamps = pd.to_datetime(source["timestamp"], utc=True)
    source["s"] = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    out = []
    for account, rows in source.sort_values("s", kind="stable").groupby("accountID"):
        seconds, amounts = rows["s"].to_numpy(), rows["amount"].to_numpy()
        total = np.concatenate([[0.0], np.cumsum(amounts)])
        hi = np.searchsorted(seconds, seconds, "right")
        lo = np.searchsorted(seconds, seconds - 7 * 86400 + 1, "left")
        frame = pd.DataFrame(
            {
                "accountID": account,
                "timestamp": rows["timestamp"].to_numpy(),
                "transaction_amount_7d_sum": total[hi] - total[lo],
                "transaction_7d_count": (hi - lo).astype("int64"),
            }
        )
        out.append(frame[(rows["s"].to_numpy() >= start) & (rows["s"].to_numpy() < end)])
    frame = pd.concat(out)
    frame["transaction_amount_7d_avg"] = frame["transaction_amount_7d_sum"] / frame["transaction_7d_count"]
    return frame.sort_values(["accountID", "timestamp"]).reset_index(drop=True)


def assert_offline_equals_recompute(fraud: Fraud) -> pd.DataFrame:
    got = fraud.offline_rows()
    want = expected_rows(fraud, FIRST_DAY + DAY, FIRST_DAY + 9 * DAY)
    got = got[want.columns].reset_index(drop=True)
    for frame in (got, want):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
    return want


def assert_online_is_latest(fraud: Fraud, want: pd.DataFrame) -> None:
    latest = want.sort_values("timestamp", kind="stable").groupby("accountID").tail(1).set_index("accountID")
    for row in fraud.online():
        if row["accountID"] in latest.index:
            expected = latest.loc[row["accountID"]]
            assert row["transaction_7d_count"] == expected["transaction_7d_count"], row
            assert row["transaction_amount_7d_sum"] == pytest.approx(expected["transaction_amount_7d_sum"])


def late_file(fraud: Fraud, offset: int, amount: float) -> Path:
    """A new file of 40 rows (one per account) at noon of day `offset`, copying the schema of that
    day's file: late data for a day already materialized."""
    template = pq.read_table(day_file(fraud, offset)).slice(0, len(ACCOUNTS))
    noon = (FIRST_DAY + offset * DAY + 12 * 3600) * 1_000_000
    times = pa.array([noon + i for i in range(len(ACCOUNTS))], template.schema.field("timestamp").type)
    table = template.set_column(template.schema.get_field_index("timestamp"), "timestamp", times)
    table = table.set_column(template.schema.get_field_index("accountID"), "accountID",
                             pa.array([a["accountID"] for a in ACCOUNTS], pa.string()))  # fmt: skip
    table = table.set_column(template.schema.get_field_index("amount"), "amount",
                             pa.array([amount] * len(ACCOUNTS), pa.float64()))  # fmt: skip
    path = source_dir(fraud) / f"part-late-{offset}.parquet"
    pq.write_table(table, path)
    return path


def incomplete(fraud: Fraud) -> dict[str, list[tuple[str, str]]]:
    return {
        s: [(a, b) for a, b, status in items if status == "Incomplete"]
        for s, items in fraud.statuses().items()
    }


def test_partial_lookback_and_a_late_file_marked_then_repaired(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fraud.cli(*EIGHT_DAYS) == 0
    jobs = {j["start"]: j for j in cli_json(fraud, capsys, 0, "jobs", "transactions")}
    first_row = pq.read_table(day_file(fraud, 0)).column("timestamp")
    first = pc.min(first_row).as_py()
    first_time = iso(int((first if first.tzinfo else first.replace(tzinfo=UTC)).timestamp()))
    # The source starts on day 0: days 1-6 read 7 days back, before it; day 7 reads [day 0, day 8).
    assert [jobs[day(d)]["partial_lookback"] for d in range(1, 9)] == [True] * 6 + [False] * 2
    assert {jobs[day(d)]["first_source_time"] for d in range(1, 8)} == {first_time}
    capsys.readouterr()
    assert fraud.cli("jobs", "transactions") == 0
    assert f"partial from {first_time}" in capsys.readouterr().out
    assert cli_json(fraud, capsys, 0, "check", "transactions", "--sources")["lost"] == []
    before = fraud.state()

    late = late_file(fraud, 3, 9999.0)
    dry = cli_json(fraud, capsys, 1, "check", "transactions", "--sources", "--dry-run")
    assert dry["dry_run"] is True and fraud.state() == before  # only reported
    report = cli_json(fraud, capsys, 1, "check", "transactions", "--sources")
    affected = [(day(d), day(d + 1)) for d in range(3, 9)]  # its read range (7 days back) meets day 3
    assert sorted({(x["start"], x["end"]) for x in report["lost"]}) == affected
    assert report["changed_files"] == [{"path": late.name, "change": "added"}]
    assert incomplete(fraud) == {"offline": [(day(3), day(9))], "online": [(day(3), day(9))]}
    for job in cli_json(fraud, capsys, 0, "jobs", "transactions"):
        marked = (job["start"], job["end"]) in affected
        assert (job["error"] or "").startswith(f"source changed: {late.name} (added)") == marked
    assert cli_json(fraud, capsys, 0, "check", "transactions", "--sources")["lost"] == []  # found once

    assert fraud.cli(*EIGHT_DAYS) == 0  # default statuses: only the marked days
    assert incomplete(fraud) == {"offline": [], "online": []}
    want = assert_offline_equals_recompute(fraud)
    assert (want["transaction_amount_7d_sum"] >= 9999.0).sum() > 0  # the late rows count
    assert_online_is_latest(fraud, want)
    assert cli_json(fraud, capsys, 0, "check", "transactions", "--sources")["lost"] == []


def test_a_file_changed_in_place_and_a_file_removed_are_found(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fraud.cli(*EIGHT_DAYS) == 0
    changed = day_file(fraud, 6)
    table = pq.read_table(changed)
    doubled = pc.multiply(table.column("amount"), 2.0)
    pq.write_table(table.set_column(table.schema.get_field_index("amount"), "amount", doubled), changed)
    report = cli_json(fraud, capsys, 1, "check", "transactions", "--sources")
    assert report["changed_files"] == [{"path": changed.name, "change": "changed"}]
    assert incomplete(fraud)["offline"] == [(day(6), day(9))]

    removed = day_file(fraud, 2)
    removed.unlink()
    report = cli_json(fraud, capsys, 1, "check", "transactions", "--sources")
    assert report["changed_files"] == [{"path": removed.name, "change": "removed"}]
    assert sorted({x["start"] for x in report["lost"]}) == [day(d) for d in range(2, 6)]  # 6-8 already were
    assert "(removed)" in report["lost"][0]["reason"]
    assert fraud.cli(*EIGHT_DAYS) == 0
    assert incomplete(fraud) == {"offline": [], "online": []}
    assert_online_is_latest(fraud, assert_offline_equals_recompute(fraud))
    assert cli_json(fraud, capsys, 0, "check", "transactions", "--sources")["lost"] == []


def spec_with(fraud: Fraud, line: str) -> None:
    spec = fraud.root / "featuresets" / "transactions.yaml"
    text = spec.read_text().replace("  source_delay: 0s\n", f"  source_delay: 0s\n  {line}\n")
    spec.write_text(text)


def test_source_start_refuses_earlier_time_in_one_line_and_claims_nothing(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_with(fraud, f"start: {day(2)}")
    before = fraud.state()
    capsys.readouterr()
    assert fraud.cli(*EIGHT_DAYS) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--start" in err[0] and "source.start" in err[0], err
    assert fraud.state() == before and fraud.jobs() == []
    assert fraud.cli("backfill", "transactions", "--start", day(2), "--end", day(4), "--dry-run") == 0


@pytest.mark.parametrize(
    ("value", "says"),
    [("2024", "is not a date"), ("yesterday", "start"), ("1800-01-01", "start"), ("[1]", "start")],
)
def test_bad_source_start_is_one_line_exit_2(
    fraud: Fraud, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    spec_with(fraud, f"start: {value}")
    capsys.readouterr()
    assert fraud.cli("validate") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source.start" in err[0] and says in err[0], err


def test_bad_input_for_the_new_flags_is_one_line_exit_2_and_changes_nothing(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fraud.state()
    for args, says in [
        (["check", "transactions", "--dry-run"], "--dry-run"),
        (["check", "nosuch", "--sources"], "nosuch"),
        (["check", "transactions", "--sources", "--version", "0"], "--version"),
        (["check", "transactions", "--sources", "--version", "9"], "no version 9"),
    ]:
        capsys.readouterr()
        try:
            status = fraud.cli(*args)
        except SystemExit as exc:  # argparse's own checks (a --version that is not 1 or more)
            status = int(exc.code or 0)
        assert status == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (args, err)
    assert fraud.state() == before


def test_a_source_that_cannot_be_listed_changes_nothing(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fraud.state()
    source_dir(fraud).rename(fraud.root / "moved")
    capsys.readouterr()
    assert fraud.cli("check", "transactions", "--sources") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0], err
    assert fraud.state() == before
