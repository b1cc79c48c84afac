"""Backfills on the real embedded engine (Sail), real Delta tables and a real Redis server.

The fraud example is copied per test with its own project name (so its Redis keys are its
own) and recent source data (so the example's 30-day online TTL keeps the values live).
Delta tables are read back with delta-rs, independently of the engine that wrote them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from conftest import ENGINES
from deltalake import DeltaTable
from support.fraud import (  # noqa: F401 - the other test modules import them from here
    DAY,
    EXAMPLE,
    FEATURES,
    FIRST_DAY,
    REDIS_URL,
    ROOT,
    TODAY,
    _generator,
    backfill,
    day,
    engine_of,
    expected_rolling,
    fraud_store,
    offline_rows,
    online_values,
    sort_rows,
    statuses,
    want_accounts,
)

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

# Where a case exercises no path of its own on spark-submit (the same delta-spark writer and
# executor-side online write as Spark Connect, with a slower start), the cluster tier runs it
# on Spark Connect only; the planner-only case runs on the embedded engine alone.
SPARK_CONNECT_ONLY = pytest.mark.parametrize("fraud", ["embedded", "spark-connect"], indirect=True)
PLANNER_ONLY = pytest.mark.parametrize("fraud", ["embedded"], indirect=True)


@pytest.fixture(params=ENGINES)
def fraud(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The acceptance tier: a private fraud feature store on each engine (embedded Sail,
    spark-submit to the standalone cluster, Spark Connect to a JVM server, both with delta-spark)."""
    engine = request.getfixturevalue("spark_services").engine_yaml(request.param)
    yield from fraud_store(tmp_path, monkeypatch, engine)


@pytest.fixture
def embedded_fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fraud feature store on the embedded engine only (its own config, as shipped)."""
    yield from fraud_store(tmp_path, monkeypatch, None)


def assert_online_latest(fraud: Path, want: pd.DataFrame) -> pd.DataFrame:
    """Redis holds each account's latest row of `want` (the pandas computation); returns those
    rows, by account."""
    latest = want.sort_values("timestamp").groupby("accountID").tail(1).set_index("accountID")
    stored = online_values(fraud, list(latest.index))
    for account, row in latest.iterrows():
        assert float(stored[account]["transaction_amount_7d_sum"]) == pytest.approx(
            row.transaction_amount_7d_sum
        )
        assert int(stored[account]["transaction_7d_count"]) == row.transaction_7d_count
        assert int(stored[account]["_event_time"]) == row.timestamp.value // 1000
    return latest


@SPARK_CONNECT_ONLY  # on spark-submit: test_a_multi_day_backfill_is_one_engine_run checks both stores
def test_backfill_writes_what_pandas_computes_to_both_stores(fraud: Path) -> None:
    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(9)) == 0
    got = sort_rows(offline_rows(fraud).drop(columns=["event_date"]))
    want = sort_rows(expected_rolling(fraud, FIRST_DAY + 7 * DAY, FIRST_DAY + 9 * DAY))
    assert len(got) == len(want) == 600
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
    latest = assert_online_latest(fraud, want)
    assert statuses(fraud) == {
        "offline": [(day(7), day(9), "Complete")],
        "online": [(day(7), day(9), "Complete")],
    }
    store = FeatureStore(str(fraud / "featurestore.yaml"))
    jobs = store.jobs("transactions")
    assert [j.state for j in jobs] == ["succeeded", "succeeded"]
    assert sum(j.rows_written["offline"] for j in jobs) == 600
    # One batch, one online write: each key once, credited to the job whose window holds its
    # latest row (a job per day used to write every account of its day).
    landed = pd.to_datetime(latest["timestamp"], utc=True).dt.floor("D").value_counts()
    assert {iso(j.start): j.rows_written["online"] for j in jobs} == {
        day(7): landed.get(pd.Timestamp(day(7)), 0),
        day(8): landed.get(pd.Timestamp(day(8)), 0),
    }
    assert sum(j.rows_written["online"] for j in jobs) == len(latest) == 39
    assert all(j.rows_read == 8 * 300 for j in jobs)  # the day and its 7-day lookback


@SPARK_CONNECT_ONLY
def test_a_complete_window_again_submits_nothing_and_a_forced_rerun_changes_nothing(fraud: Path) -> None:
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    table_path = str(fraud / "data" / "offline" / "transactions" / "v1")
    before = sort_rows(offline_rows(fraud))
    version = DeltaTable(table_path).version()

    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    assert DeltaTable(table_path).version() == version, "a Complete window was written again"
    assert len(FeatureStore(str(fraud / "featurestore.yaml")).jobs("transactions")) == 1

    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9), "--status", "Complete") == 0
    after = sort_rows(offline_rows(fraud))
    assert DeltaTable(table_path).version() > version
    pd.testing.assert_frame_equal(after, before)  # same rows, no duplicates


@PLANNER_ONLY
def test_a_backfill_over_complete_time_only_fills_the_gap(fraud: Path, capsys: pytest.CaptureFixture) -> None:
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    capsys.readouterr()
    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(10), "--json") == 0
    import json

    jobs = json.loads(capsys.readouterr().out)
    assert [(j["start"], j["end"]) for j in jobs] == [(day(7), day(8)), (day(9), day(10))]
    assert statuses(fraud)["offline"] == [(day(7), day(10), "Complete")]
    assert len(offline_rows(fraud)) == 900


@SPARK_CONNECT_ONLY
def test_an_older_window_never_regresses_online_values(fraud: Path) -> None:
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    accounts = [f"A{i:04d}" for i in range(40)]
    newer = online_values(fraud, accounts)
    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(8)) == 0
    after = online_values(fraud, accounts)
    fresh = [a for a in accounts if newer[a]]
    assert len(fresh) > 30 and all(after[a] == newer[a] for a in fresh)
    # Accounts with nothing on the newer day take the older day's latest row.
    older = expected_rolling(fraud, FIRST_DAY + 7 * DAY, FIRST_DAY + 8 * DAY)
    gained = sorted(set(older["accountID"]) - set(fresh))
    assert all(after[a] for a in gained)
    [older_job, _newer_job] = FeatureStore(str(fraud / "featurestore.yaml")).jobs("transactions")
    assert older_job.state == "succeeded" and older_job.rows_written["online"] == len(gained)


def test_a_redis_outage_leaves_offline_complete_and_a_repair_reads_the_offline_table(
    fraud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 1
    assert statuses(fraud) == {
        "offline": [(day(8), day(9), "Complete")],
        "online": [(day(8), day(9), "Incomplete")],
    }
    [failed] = FeatureStore(str(fraud / "featurestore.yaml")).jobs("transactions")
    assert failed.state == "failed" and "127.0.0.1:1" in failed.error

    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9), "--status", "Incomplete") == 0
    repair = FeatureStore(str(fraud / "featurestore.yaml")).jobs("transactions")[0]
    assert repair.stores == ("online",) and repair.reads == "offline" and repair.rows_read == 0
    assert repair.rows_written == {"online": want_accounts(fraud, 8)}
    assert statuses(fraud)["online"] == [(day(8), day(9), "Complete")]
    want = expected_rolling(fraud, FIRST_DAY + 8 * DAY, FIRST_DAY + 9 * DAY)
    latest = want.sort_values("timestamp").groupby("accountID").tail(1).set_index("accountID")
    stored = online_values(fraud, list(latest.index))
    assert all(int(stored[a]["transaction_7d_count"]) == r.transaction_7d_count for a, r in latest.iterrows())


def test_a_transformation_returning_a_wrong_column_fails_cleanly(
    fraud: Path, capsys: pytest.CaptureFixture
) -> None:
    transform = fraud / "transforms" / "transactions.py"
    transform.write_text(transform.read_text().replace('alias("transaction_7d_count")', 'alias("tx_count")'))
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 1
    err = capsys.readouterr().err
    assert "no column 'transaction_7d_count'" in err
    assert statuses(fraud) == {
        "offline": [(day(8), day(9), "Incomplete")],
        "online": [(day(8), day(9), "Incomplete")],
    }
    assert not (fraud / "data" / "offline" / "transactions" / "v1" / "_delta_log").exists()


def start_slow_backfill(
    fraud: Path, stderr: int | None = subprocess.DEVNULL, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """A `featurestore backfill` process (`extra`: more arguments) whose transformation sleeps a
    minute, once its first job is running; returns the process and the spec's original text (to
    put back)."""
    (fraud / "transforms" / "slow.py").write_text(
        "import time\nfrom transforms.transactions import transform as rolling\n\n\n"
        "def transform(df, window):\n    time.sleep(60)\n    return rolling(df, window)\n"
    )
    spec = fraud / "featuresets" / "transactions.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("transforms.transactions:transform", "transforms.slow:transform"))
    featurestore = str(Path(sys.executable).with_name("featurestore"))
    config = str(fraud / "featurestore.yaml")
    argv = [
        featurestore,
        "backfill",
        "transactions",
        "--start",
        day(7),
        "--end",
        day(9),
        "--config",
        config,
        *extra,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    store = FeatureStore(config)
    deadline = time.time() + 60
    while time.time() < deadline and not any(j.state == "running" for j in store.jobs("transactions")):
        time.sleep(0.2)
    assert any(j.state == "running" for j in store.jobs("transactions")), "the job never started"
    return process, original


def test_a_killed_backfill_leaves_no_pending_after_the_next_one(fraud: Path) -> None:
    config = fraud / "featurestore.yaml"
    config.write_text(config.read_text().replace("interval_table:\n", "interval_table:\n  lease: 3s\n"))
    process, original = start_slow_backfill(fraud)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert any(s == "Pending" for _a, _b, s in statuses(fraud)["offline"])

    (fraud / "featuresets" / "transactions.yaml").write_text(original)
    time.sleep(3.5)  # the dead job's lease runs out
    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(9)) == 0
    assert statuses(fraud) == {
        "offline": [(day(7), day(9), "Complete")],
        "online": [(day(7), day(9), "Complete")],
    }
    store = FeatureStore(str(config))
    assert sorted(j.state for j in store.jobs("transactions")) == [
        "failed",
        "failed",
        "succeeded",
        "succeeded",
    ]
    assert all(
        "lease expired" in j.error or "interrupted" in j.error for j in store.jobs("transactions") if j.error
    )


def test_ctrl_c_leaves_the_time_incomplete_not_pending(embedded_fraud: Path) -> None:
    fraud = embedded_fraud
    process, _original = start_slow_backfill(fraud, stderr=subprocess.PIPE)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "interrupted" in err
    assert statuses(fraud) == {
        "offline": [(day(7), day(9), "Incomplete")],
        "online": [(day(7), day(9), "Incomplete")],
    }
    store = FeatureStore(str(fraud / "featurestore.yaml"))
    # Both days are one batch, one engine run: the interrupt ends both of its jobs.
    assert sorted(j.error.split(":")[0] for j in store.jobs("transactions")) == ["interrupted", "interrupted"]


def _write_profiles(root: Path, rows: list[dict]) -> None:
    folder = root / "data" / "source" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "userID": pa.array([r["userID"] for r in rows]),
            "timestamp": pa.array([r["timestamp"] for r in rows], pa.timestamp("us", tz="UTC")),
            "score": pa.array([r["score"] for r in rows], pa.float64()),
        }
    )
    pq.write_table(table, folder / "part-0.parquet")
    (root / "featuresets" / "profiles.yaml").write_text(
        "name: profiles\nversion: 1\nindex_columns:\n  - {name: userID, type: string}\n"
        "timestamp_column: timestamp\nsource: {format: parquet, path: data/source/profiles}\n"
        "features:\n  - {name: score, type: double}\n"
        "materialization: {offline: true, online: true, online_ttl: 1h, max_job_window: 1d}\n"
    )


@SPARK_CONNECT_ONLY
def test_online_ttl_expires_keys_and_skips_expired_rows(fraud: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # expires shortly after the backfill has written it (a JVM engine's backfill takes longer)
    margin = timedelta(seconds={"embedded": 3, "spark-connect": 30}.get(engine_of(fraud), 60))
    soon = now - timedelta(hours=1) + margin
    gone = now - timedelta(hours=2)  # expired an hour ago: never written
    _write_profiles(
        fraud,
        [
            {"userID": "u1", "timestamp": soon, "score": 1.5},
            {"userID": "u2", "timestamp": gone, "score": 2.5},
        ],
    )
    start = iso(to_epoch(now) - 3 * 3600)
    assert backfill(fraud, "profiles", "--start", start, "--end", iso(to_epoch(now) + 60)) == 0
    store = FeatureStore(str(fraud / "featurestore.yaml"))
    prefix = store.config.online_key_prefix(store.spec("profiles"))
    client = redis.Redis.from_url(REDIS_URL)
    assert client.expiretime(prefix + "u1") == to_epoch(soon) + 3600
    assert not client.exists(prefix + "u2")
    assert store.get_online("profiles", [{"userID": "u1"}, {"userID": "u2"}]) == [
        {"userID": "u1", "score": 1.5},
        {"userID": "u2", "score": None},
    ]
    time.sleep(max(0.0, to_epoch(soon) + 3600 - time.time()) + 1)
    assert not client.exists(prefix + "u1")
    assert store.get_online("profiles", [{"userID": "u1"}])[0]["score"] is None
    assert len(offline_rows_of(fraud, "profiles")) == 2  # the offline store keeps history


def offline_rows_of(root: Path, name: str) -> pd.DataFrame:
    return DeltaTable(str(root / "data" / "offline" / name / "v1")).to_pandas()


def test_get_online_disable_and_enable(embedded_fraud: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    fraud = embedded_fraud
    config = ["--config", str(fraud / "featurestore.yaml")]
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    capsys.readouterr()
    assert (
        cli_main(
            [
                "get-online",
                "transactions",
                "--key",
                "accountID=A0001",
                "--key",
                "accountID=nobody",
                "--features",
                "transaction_7d_count",
                "--json",
                *config,
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["accountID"] == "A0001" and isinstance(rows[0]["transaction_7d_count"], int)
    assert rows[1] == {"accountID": "nobody", "transaction_7d_count": None}

    assert cli_main(["disable-online", "transactions", *config]) == 0
    assert f"{want_accounts(fraud, 8)} keys purged" in capsys.readouterr().out
    assert statuses(fraud)["online"] == [(day(8), day(9), "None")]
    assert online_values(fraud, ["A0001"]) == {"A0001": {}}
    get_online = ["get-online", "transactions", "--key", "accountID=A0001", *config]
    assert cli_main(get_online) == 2  # not a row of blanks as if the entity were unknown
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "featurestore get-online: the online store of transactions v1 is disabled: run "
        "`featurestore enable-online transactions`, then backfill it\n"
    )
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9), "--store", "online") == 2
    assert "disabled" in capsys.readouterr().err

    assert cli_main(["enable-online", "transactions", *config]) == 0
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 0
    latest = FeatureStore(str(fraud / "featurestore.yaml")).jobs("transactions")[0]
    assert latest.stores == ("online",) and latest.reads == "offline"
    assert online_values(fraud, ["A0001"])["A0001"]["transaction_7d_count"] == str(
        rows[0]["transaction_7d_count"]
    )
    capsys.readouterr()
    assert cli_main([*get_online, "--features", "transaction_7d_count", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [rows[0]]  # served again


def test_a_multi_day_backfill_is_one_engine_run(
    fraud: Path, capsys: pytest.CaptureFixture, request: pytest.FixtureRequest
) -> None:
    """Three daily chunks, one batch: one engine run (on the cluster: one application), each
    chunk's rows as pandas computes them, offline and online."""
    services = request.getfixturevalue("spark_services")
    before = {app["id"] for app in services.applications()} if engine_of(fraud) == "spark-submit" else set()
    assert backfill(fraud, "transactions", "--start", day(6), "--end", day(9)) == 0
    assert "batch 1/1: 3 job(s)" in capsys.readouterr().err
    if engine_of(fraud) == "spark-submit":
        new = [app for app in services.applications() if app["id"] not in before]
        assert [app["name"] for app in new] == ["featurestore transactions v1 batch of 3"]
    got = sort_rows(offline_rows(fraud).drop(columns=["event_date"]))
    want = sort_rows(expected_rolling(fraud, FIRST_DAY + 6 * DAY, FIRST_DAY + 9 * DAY))
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
    assert_online_latest(fraud, want)
    assert statuses(fraud)["offline"] == [(day(6), day(9), "Complete")]


@SPARK_CONNECT_ONLY
def test_quality_checks_give_the_same_figures_on_every_engine(
    fraud: Path, capsys: pytest.CaptureFixture
) -> None:
    """The checks' one aggregation on Sail and on Spark with delta-spark: a warn check records,
    an error check keeps the day out of both stores, and the counts are what pandas finds."""
    spec = fraud / "featuresets" / "transactions.yaml"
    spec.write_text(
        spec.read_text()
        + "checks:\n"
        + "  - {check: unique, columns: [accountID, timestamp]}\n"
        + "  - {check: range, column: transaction_amount_7d_sum, min: 0}\n"
        + "  - {check: min_rows, count: 1000000, severity: warn}\n"
        + "  - {check: accepted_values, column: accountID, values: [A0001]}\n"
    )
    start = FIRST_DAY + 8 * DAY
    want = expected_rolling(fraud, start, start + DAY)
    assert backfill(fraud, "transactions", "--start", day(8), "--end", day(9)) == 1
    capsys.readouterr()
    assert cli_main(["jobs", "transactions", "--json", "--config", str(fraud / "featurestore.yaml")]) == 0
    (job,) = json.loads(capsys.readouterr().out)
    figures = {c["check"]: (c["violations"], c["passed"]) for c in job["checks"]}
    assert figures, job["error"]
    others = int((want["accountID"] != "A0001").sum())
    assert figures == {
        "unique": (int(want.duplicated(["accountID", "timestamp"], keep=False).sum()), True),
        "range": (0, True),
        "min_rows": (1_000_000 - len(want), False),
        "accepted_values": (others, False),
    }
    assert (
        job["state"] == "failed"
        and f"accepted_values on accountID: {others:,} of {len(want):,} row(s)" in job["error"]
    )
    assert statuses(fraud) == {
        "offline": [(day(8), day(9), "Incomplete")],
        "online": [(day(8), day(9), "Incomplete")],
    }
    assert not (fraud / "data" / "offline" / "transactions" / "v1" / "_delta_log").exists()
