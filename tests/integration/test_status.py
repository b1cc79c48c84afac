"""`featurestore status`: freshness against the SLA, read from a real interval table (SQLite and
PostgreSQL). Complete time is made through the interval table's own job API (claim, start,
finish) where the test is about freshness; one test materializes with a real backfill on the
embedded engine, Delta and Redis.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REDIS_URL

from airflow_provider_featurestore.core import freshness
from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey
from airflow_provider_featurestore.core.timeutil import iso, now_epoch, to_epoch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
DAY = 86400
TRANSACTIONS, ACCOUNTS = StreamKey("transactions", 1), StreamKey("accounts", 1)


class Store:
    """A private copy of the fraud example (no source data unless generated), its SLAs set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = str(root / "featurestore.yaml")

    def set_sla(self, name: str, value: str | None) -> None:
        spec = self.root / "featuresets" / f"{name}.yaml"
        text = spec.read_text()
        lines = [line for line in text.splitlines() if not line.startswith("  freshness:")]
        if value is not None:
            at = lines.index("materialization:") + 1
            lines.insert(at, f"  freshness: {value}")
        spec.write_text("\n".join(lines) + "\n")

    def table(self) -> IntervalTable:
        return FeatureStore(self.config, check_transformations=False).table

    def status(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = cli_main(["status", *args, "--config", self.config])
        except SystemExit as exc:  # argparse refuses an argument by exiting itself
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err


def materialize(
    table: IntervalTable,
    key: StreamKey,
    start: int,
    end: int,
    stores: tuple[str, ...] = ("offline", "online"),
    *,
    succeed: bool = True,
    finished: float | None = None,
) -> None:
    """Time made Complete (or Incomplete, its job failed) by the interval table's own job API."""
    statuses = {"None", "Incomplete", "Complete"}
    for job in table.claim(key, start, end, statuses, stores, end - start):
        table.start_job(job.id)
        done = dict.fromkeys(stores, succeed)
        table.finish_job(job.id, done, error=None if succeed else "boom", now=finished)


def make_store(tmp_path: Path, table_url: str | None = None) -> Store:
    """The fraud example's copy, its interval table on `table_url` (default: its SQLite file);
    transactions with a 2d freshness SLA, accounts without one."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: s{uuid.uuid4().hex[:10]}")
    if table_url is not None:
        text = text.replace("url: sqlite:///data/intervals.db", f"url: '{table_url}'")
    config.write_text(text)
    store = Store(root)
    store.set_sla("transactions", "2d")
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store on each database."""
    return make_store(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None)


@pytest.fixture
def fs_sqlite(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def test_a_late_feature_set_reports_late_with_its_lag_and_exits_3(
    fs: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    table = fs.table()
    until = now_epoch() - 3 * DAY
    materialize(table, TRANSACTIONS, until - 2 * DAY, until)
    before = now_epoch()
    code, out, err = fs.status(capsys, "transactions", "--json")
    after = now_epoch()
    assert code == 3, err
    rows = json.loads(out)
    assert [(r["store"], r["state"], r["complete_until"], r["sla_s"]) for r in rows] == [
        ("offline", "late", iso(until), 2 * DAY),
        ("online", "late", iso(until), 2 * DAY),
    ]
    for row in rows:
        assert before - until <= row["lag_s"] <= after - until  # now minus complete_until
        assert row["incomplete_intervals"] == 0 and row["failed_jobs_24h"] == 0
        assert set(row) == {
            "feature_set", "version", "store", "complete_until", "lag_s", "sla_s", "state",
            "incomplete_intervals", "failed_jobs_24h",
        }  # fmt: skip
    assert err == ""


def test_a_fresh_feature_set_reports_ok_and_exits_0(fs: Store, capsys: pytest.CaptureFixture[str]) -> None:
    table = fs.table()
    now = now_epoch()
    materialize(table, TRANSACTIONS, now - 5 * DAY, now)  # Complete up to now
    code, out, err = fs.status(capsys, "transactions", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["store"], r["state"], r["complete_until"]) for r in rows] == [
        ("offline", "ok", iso(now)),
        ("online", "ok", iso(now)),
    ]
    assert all(0 <= r["lag_s"] < 60 for r in rows)


def test_without_an_sla_the_state_is_no_sla_whatever_the_lag(
    fs: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    table = fs.table()
    until = now_epoch() - 30 * DAY
    materialize(table, ACCOUNTS, until - DAY, until)
    code, out, err = fs.status(capsys, "accounts", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["store"], r["state"], r["sla_s"], r["complete_until"]) for r in rows] == [
        ("offline", "no_sla", None, iso(until)),
        ("online", "no_sla", None, iso(until)),
    ]
    assert all(r["lag_s"] >= 30 * DAY for r in rows)


def test_an_sla_with_nothing_complete_is_late_with_null_lag(
    fs: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = fs.status(capsys, "transactions", "--json")
    assert code == 3
    assert [(r["complete_until"], r["lag_s"], r["state"]) for r in json.loads(out)] == [
        (None, None, "late"),
        (None, None, "late"),
    ]


def test_every_feature_set_as_an_aligned_table(fs: Store, capsys: pytest.CaptureFixture[str]) -> None:
    table = fs.table()
    until = now_epoch() - 3 * DAY
    materialize(table, TRANSACTIONS, until - DAY, until, ("offline",))
    code, out, _err = fs.status(capsys)
    assert code == 3  # transactions is late
    lines = out.splitlines()
    assert [h.strip() for h in lines[0].split("  ") if h.strip()] == [
        "NAME", "VERSION", "STORE", "COMPLETE UNTIL", "LAG", "SLA", "STATE", "INCOMPLETE", "FAILED 24H",
    ]  # fmt: skip
    cells = [line.split() for line in lines[1:5]]
    assert " ".join(cells[0]) == "accounts 1 offline - - - no_sla 0 0"
    assert cells[2][:4] == ["transactions", "1", "offline", iso(until)]
    assert cells[2][4:] == ["3d", "0h", "2d", "late", "0", "0"]  # the lag as a person reads it
    assert cells[3] == ["transactions", "1", "online", "-", "-", "2d", "late", "0", "0"]
    state_column = lines[0].index("STATE")
    assert all(line[state_column:].split()[0] in ("no_sla", "late") for line in lines[1:5])  # aligned
    assert (
        f"repair: featurestore backfill transactions --version 1 --store offline --start {iso(until)}" in out
    )


def test_incomplete_intervals_and_the_failed_jobs_of_the_last_day_are_counted(
    fs: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    table = fs.table()
    now = now_epoch() // DAY * DAY  # today's midnight: a one-day window is one job
    materialize(
        table, TRANSACTIONS, now - 10 * DAY, now - 9 * DAY, succeed=False, finished=time.time() - 2 * DAY
    )
    materialize(table, TRANSACTIONS, now - 9 * DAY, now - 8 * DAY, succeed=False)  # adjacent: one interval
    materialize(table, TRANSACTIONS, now - 8 * DAY, now - 4 * DAY)
    materialize(table, TRANSACTIONS, now - 4 * DAY, now - 3 * DAY, ("online",), succeed=False)
    code, out, _err = fs.status(capsys, "transactions", "--json")
    assert code == 3
    counts = {r["store"]: (r["incomplete_intervals"], r["failed_jobs_24h"]) for r in json.loads(out)}
    # offline: [-10d, -8d) Incomplete; online: that and [-4d, -3d); failed in 24 h: 2 of the 3
    assert counts == {"offline": (1, 2), "online": (2, 2)}


def test_assess_at_a_given_now_judges_the_sla_boundary(fs: Store) -> None:
    store = FeatureStore(fs.config, check_transformations=False)
    t0 = to_epoch("2024-03-01")
    materialize(store.table, TRANSACTIONS, t0 - DAY, t0, ("offline",))
    spec = [store.spec("transactions")]
    at_sla = freshness.assess(store.table, spec, now=t0 + 2 * DAY)
    assert [(r.store, r.lag_s, r.state) for r in at_sla] == [
        ("offline", 2 * DAY, "ok"),
        ("online", None, "late"),
    ]
    past = freshness.assess(store.table, spec, now=t0 + 2 * DAY + 1)
    assert (past[0].lag_s, past[0].state) == (2 * DAY + 1, "late")
    assert past[0].repair_command() == (
        "featurestore backfill transactions --version 1 --store offline "
        f"--start {iso(t0)} --end {iso(t0 + 2 * DAY + 1)}"
    )
    store.close()


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2x", "materialization.freshness: '2x' is not a duration"),
        ("0s", "materialization.freshness: must be longer than 0s"),
        ("-1d", "materialization.freshness: '-1d' is not a duration"),
        ("[1d]", "materialization.freshness: expected an integer, got a list"),
    ],
)
def test_a_bad_freshness_is_refused_by_every_command_in_one_line(
    fs_sqlite: Store, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    fs = fs_sqlite
    fs.set_sla("transactions", value)
    spec = str(fs.root / "featuresets" / "transactions.yaml")
    for command in (["validate"], ["status"], ["status", "transactions", "--json"], ["list"]):
        capsys.readouterr()
        assert cli_main([*command, "--config", fs.config]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1 and f"{spec}: {message}" in err, err
    assert not (fs.root / "data").exists()  # nothing written: no interval table was created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "featurestore status: NAME: feature set 'nope' not found; known: accounts, transactions"),
        (["transactions", "--version", "2"], "--version: feature set 'transactions' has no version 2"),
        (["--version", "1"], "--version: give the feature set's name too"),
        (["transactions", "--version", "0"], "argument --version: '0' is not an integer"),
        (["transactions", "accounts"], "unrecognized arguments: accounts"),
    ],
)
def test_bad_status_arguments_exit_2_in_one_line_and_change_nothing(
    fs: Store, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    table = fs.table()
    materialize(table, TRANSACTIONS, 0, DAY)
    before = table.intervals(TRANSACTIONS, ("offline", "online")), table.jobs()
    code, out, err = fs.status(capsys, *args)
    assert code == 2
    assert out == "" and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err
    after = table.intervals(TRANSACTIONS, ("offline", "online")), table.jobs()
    assert [r.to_json() for r in after[1]] == [r.to_json() for r in before[1]] and after[0] == before[0]


# ---- a real backfill ----------------------------------------------------------------------


def test_a_real_backfill_makes_its_store_fresh_and_the_other_stays_late(
    fs_sqlite: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded engine writes yesterday's offline rows: offline is then Complete up to
    today's midnight (within a 2d SLA), online was never materialized (late): exit 3."""
    fs = fs_sqlite
    today = to_epoch(datetime.now(UTC).date())
    start = datetime.fromtimestamp(today - 8 * DAY, UTC).strftime("%Y-%m-%d")
    subprocess.run(
        [sys.executable, str(EXAMPLE / "generate_data.py"), "--out", str(fs.root / "data"), "--accounts", "20",
         "--transactions-per-day", "100", "--start", start, "--days", "8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    monkeypatch.chdir(fs.root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yesterday = ["--start", iso(today - DAY), "--end", iso(today), "--store", "offline"]
    assert cli_main(["backfill", "transactions", *yesterday, "--config", fs.config]) == 0
    code, out, err = fs.status(capsys, "transactions", "--json")
    assert code == 3, err
    rows = {r["store"]: r for r in json.loads(out)}
    assert rows["offline"]["state"] == "ok" and rows["offline"]["complete_until"] == iso(today)
    assert 0 <= rows["offline"]["lag_s"] < DAY + 60
    assert rows["online"]["state"] == "late" and rows["online"]["complete_until"] is None
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]
