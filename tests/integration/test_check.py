"""Consistency checks: state lost behind our back is found, marked Incomplete, and repaired.

Real parts only: the fraud example materialized by the embedded engine (Sail) into real Delta
tables and a real Redis; SQLite and PostgreSQL interval tables. The losses are the real ones: a
`_delta_log` commit file deleted (Sail leaves its `.crc` beside it), the table folder deleted, a
FLUSHDB, and a Redis server of the test's own restarted without persistence.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import redis
from conftest import REDIS_URL
from deltalake import DeltaTable
from support.redis_servers import free_port

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
DAY = 86400
TODAY = to_epoch(datetime.now(UTC).date())
FIRST_DAY = TODAY - 10 * DAY  # source data: the 10 days before today (the 30d online TTL keeps it live)
ACCOUNTS = [{"accountID": f"A{i:04d}"} for i in range(40)]


def day(offset: int) -> str:
    return iso(FIRST_DAY + offset * DAY)


class OwnRedis:
    """A throwaway redis-server without persistence, which a test may restart (losing all)."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip("redis-server is not installed (the restart test needs a server of its own)")
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*argv, "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


class Fraud:
    """A private fraud feature store with 10 days of recent data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = str(root / "featurestore.yaml")
        self.table_path = root / "data" / "offline" / "transactions" / "v1"

    def cli(self, *args: str) -> int:
        return cli_main([*args, "--config", self.config])

    def store(self) -> FeatureStore:
        return FeatureStore(self.config, check_transformations=False)

    def statuses(self) -> dict[str, list[tuple[str, str, str]]]:
        with self.store() as store:
            return {
                s: [(iso(i.start), iso(i.end), i.status) for i in items]
                for s, items in store.intervals("transactions").items()
            }

    def jobs(self) -> list[dict]:
        with self.store() as store:
            return [r.to_json() for r in store.jobs("transactions")]

    def raw_jobs(self) -> list[dict]:
        """The job records with their stored `result` (the key samples among it)."""
        with self.store() as store:
            return [
                {"id": r.id, "start": iso(r.start), "result": r.result} for r in store.jobs("transactions")
            ]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(os.environ["FEATURESTORE_REDIS_URL"], decode_responses=True)

    def entity_keys(self) -> list[str]:
        """The feature set's entity keys in Redis (SCAN on its prefix), without the marker."""
        with self.store() as store:
            layout = store.online_layout(store.spec("transactions"))
        client = self.redis()
        keys = sorted(k for k in client.scan_iter(f"{layout.prefix}*", count=1000) if k != layout.marker_key)
        client.close()
        return keys

    def state(self) -> object:
        """Every row of the interval table (its three tables), to prove nothing changed."""
        with self.store() as store, store.table.engine.connect() as conn:
            return [
                sorted(tuple(map(str, row)) for row in conn.exec_driver_sql(f"SELECT * FROM {name}"))
                for name in ("fs_streams", "fs_intervals", "fs_jobs")
            ]

    def offline_rows(self) -> pd.DataFrame:
        frame = DeltaTable(str(self.table_path)).to_pandas()
        return frame.sort_values(["accountID", "timestamp"]).reset_index(drop=True)

    def online(self) -> list[dict]:
        with self.store() as store:
            return store.get_online("transactions", ACCOUNTS)

    def newest_commit(self) -> Path:
        return sorted((self.table_path / "_delta_log").glob("*.json"))[-1]


@pytest.fixture(params=["sqlite", "postgresql"])
def fraud(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fraud]:
    yield from _fraud(request, tmp_path, monkeypatch, request.param)


@pytest.fixture
def fraud_sqlite(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fraud]:
    yield from _fraud(request, tmp_path, monkeypatch, "sqlite")


def _fraud(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> Iterator[Fraud]:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"c{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: {project}")
    if database == "postgresql":
        url = request.getfixturevalue("pg_url")
        text = text.replace("url: sqlite:///data/intervals.db", f"url: '{url}'")
    config.write_text(text)
    start = datetime.fromtimestamp(FIRST_DAY, UTC).strftime("%Y-%m-%d")
    subprocess.run(
        [sys.executable, str(EXAMPLE / "generate_data.py"), "--out", str(root / "data"), "--accounts", "40",
         "--transactions-per-day", "300", "--start", start, "--days", "10"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    monkeypatch.delenv("FEATURESTORE_DEBUG", raising=False)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield Fraud(root)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]


THREE_DAYS = ["backfill", "transactions", "--start", day(6), "--end", day(9)]


def check_json(fraud: Fraud, capsys: pytest.CaptureFixture[str], status: int) -> dict:
    capsys.readouterr()
    assert fraud.cli("check", "transactions", "--json") == status
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return json.loads(out)


# ---- offline ------------------------------------------------------------------------------


def test_a_deleted_newest_commit_is_marked_incomplete_and_a_backfill_repairs_it(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fraud.cli(*THREE_DAYS) == 0
    before = fraud.offline_rows()
    online = fraud.online()
    live = sum(v["transaction_7d_count"] is not None for v in online)
    assert len(before) == 900 and live == before["accountID"].nunique() > 30
    newest = fraud.newest_commit()
    assert newest.with_suffix(".crc").exists()  # Sail's checksum stays beside the deleted commit
    newest.unlink()
    assert len(DeltaTable(str(fraud.table_path), version=int(newest.stem) - 1).to_pandas()) == 600

    report = check_json(fraud, capsys, 1)
    assert report["consistent"] is False
    [lost] = report["lost"]
    assert (lost["store"], lost["start"], lost["end"]) == ("offline", day(8), day(9))
    assert f"Delta commit {int(newest.stem)} of this job is no longer in the log" in lost["reason"]
    assert fraud.statuses() == {
        "offline": [(day(6), day(8), "Complete"), (day(8), day(9), "Incomplete")],
        "online": [(day(6), day(9), "Complete")],  # the marker is there: online holds its time
    }
    by_start = {j["start"]: j for j in fraud.jobs()}
    assert by_start[day(8)]["id"] == lost["job_id"] and by_start[day(8)]["error"] == lost["reason"]
    assert by_start[day(6)]["error"] is None and by_start[day(7)]["error"] is None

    # Checked again: the lost time is already Incomplete, nothing Complete is missing.
    assert check_json(fraud, capsys, 0)["lost"] == []
    assert fraud.cli(*THREE_DAYS) == 0  # default statuses None,Incomplete: only the lost day
    jobs = fraud.jobs()
    assert len(jobs) == 4 and (jobs[0]["start"], jobs[0]["stores"]) == (day(8), ["offline"])
    assert fraud.statuses()["offline"] == [(day(6), day(9), "Complete")]
    pd.testing.assert_frame_equal(fraud.offline_rows(), before)  # exactly the rows, none twice
    assert check_json(fraud, capsys, 0)["consistent"] is True


def test_a_deleted_table_folder_marks_every_offline_window_and_a_backfill_rebuilds_it(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    assert (
        fraud.cli("backfill", "transactions", "--start", day(2), "--end", day(3), "--store", "offline") == 0
    )
    before = fraud.offline_rows()
    assert len(before) == 1200
    shutil.rmtree(fraud.table_path)

    capsys.readouterr()
    assert fraud.cli("check", "transactions") == 1
    out = capsys.readouterr().out
    assert "Delta table" in out and "is gone" in out and "repair: featurestore backfill transactions" in out
    assert fraud.statuses() == {
        "offline": [(day(2), day(3), "Incomplete"), (day(3), day(6), "None"), (day(6), day(9), "Incomplete")],
        "online": [(day(6), day(9), "Complete")],
    }
    assert all("is gone" in j["error"] for j in fraud.jobs())

    assert (
        fraud.cli("backfill", "transactions", "--start", day(2), "--end", day(9), "--status", "Incomplete")
        == 0
    )
    assert fraud.statuses()["offline"] == [
        (day(2), day(3), "Complete"),
        (day(3), day(6), "None"),
        (day(6), day(9), "Complete"),
    ]
    pd.testing.assert_frame_equal(fraud.offline_rows(), before)
    assert check_json(fraud, capsys, 0)["consistent"] is True


# ---- online -------------------------------------------------------------------------------


def test_a_redis_restarted_without_persistence_is_found_and_refilled(
    fraud_sqlite: Fraud,
    own_redis: OwnRedis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fraud = fraud_sqlite
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", own_redis.url)
    assert fraud.cli(*THREE_DAYS) == 0
    served = fraud.online()
    offline_before = fraud.offline_rows()
    assert sum(v["transaction_7d_count"] is not None for v in served) == offline_before["accountID"].nunique()

    own_redis.restart()  # no RDB, no AOF: every key is gone
    assert all(v["transaction_7d_count"] is None for v in fraud.online())
    report = check_json(fraud, capsys, 1)
    assert {(x["store"], x["start"], x["end"]) for x in report["lost"]} == {
        ("online", day(6), day(7)),
        ("online", day(7), day(8)),
        ("online", day(8), day(9)),
    }
    assert all(f"{own_redis.url} no longer holds the marker" in x["reason"] for x in report["lost"])
    assert fraud.statuses() == {
        "offline": [(day(6), day(9), "Complete")],
        "online": [(day(6), day(9), "Incomplete")],
    }
    assert all("online lost" in j["error"] for j in fraud.jobs())

    assert fraud.cli(*THREE_DAYS) == 0  # online only, from the offline table
    repair = fraud.jobs()[:3]
    assert all(j["stores"] == ["online"] and j["reads"] == "offline" for j in repair)
    assert fraud.statuses()["online"] == [(day(6), day(9), "Complete")]
    assert fraud.online() == served
    pd.testing.assert_frame_equal(fraud.offline_rows(), offline_before)
    assert check_json(fraud, capsys, 0)["consistent"] is True


def test_a_plain_backfill_after_the_losses_redoes_them_without_a_check(
    fraud: Fraud, own_redis: OwnRedis, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", own_redis.url)
    assert fraud.cli(*THREE_DAYS) == 0
    rows, served = fraud.offline_rows(), fraud.online()
    fraud.newest_commit().unlink()
    redis.Redis.from_url(own_redis.url).flushdb()

    capsys.readouterr()
    assert fraud.cli(*THREE_DAYS) == 0
    err = capsys.readouterr().err
    assert err.count("was Complete, now Incomplete") == 4, err  # offline day 8; online days 6, 7, 8
    jobs = fraud.jobs()
    redone = sorted((j["start"], tuple(j["stores"]), j["reads"]) for j in jobs[:3])
    assert redone == [
        (day(6), ("online",), "offline"),
        (day(7), ("online",), "offline"),
        (day(8), ("offline", "online"), "source"),
    ]
    assert all(j["state"] == "succeeded" for j in jobs)
    assert fraud.statuses() == {
        "offline": [(day(6), day(9), "Complete")],
        "online": [(day(6), day(9), "Complete")],
    }
    pd.testing.assert_frame_equal(fraud.offline_rows(), rows)
    assert fraud.online() == served
    assert check_json(fraud, capsys, 0)["consistent"] is True


# ---- nothing lost, nothing reachable -------------------------------------------------------


def test_a_consistent_store_checks_clean_and_changes_nothing(
    fraud: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fraud.cli(*THREE_DAYS) == 0
    before = fraud.state()
    report = check_json(fraud, capsys, 0)
    assert report["consistent"] is True and report["lost"] == []
    assert set(report["checked"]) == {"offline", "online"} and report["skipped"] == {}
    assert "log at version 2" in report["checked"]["offline"]
    sampled = sum(len(job["result"].get("online_sample", [])) for job in fraud.raw_jobs())
    assert sampled > 30
    assert report["checked"]["online"].endswith(f": present; {sampled} sampled keys of 3 job(s) present")
    assert fraud.cli("check", "transactions") == 0
    out = capsys.readouterr().out
    assert f"{sampled} sampled keys of 3 job(s) present" in out and ": consistent" not in out
    assert "transactions v1: no loss found in what was verified above" in out
    assert fraud.state() == before


def test_redis_down_during_the_check_changes_nothing(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    fraud.newest_commit().unlink()  # offline time is lost too: still nothing may change
    before = fraud.state()
    port = free_port()
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://:s3cretpw@127.0.0.1:{port}/0")
    capsys.readouterr()
    assert fraud.cli("check", "transactions") == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith(
        f"featurestore check: cannot reach the online store at redis://127.0.0.1:{port}/0"
    )
    assert "s3cretpw" not in err and "start Redis or fix online_store.redis_url" in err
    assert fraud.state() == before


def test_bad_input_exits_2_with_one_line(fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]) -> None:
    for args, needle in (
        (["check", "nosuchset"], "nosuchset"),
        (["check", "transactions", "--version", "7"], "no version 7"),
        (["check", "transactions", "--version", "zero"], "--version"),
    ):
        capsys.readouterr()
        try:
            status = fraud_sqlite.cli(*args)
        except SystemExit as exc:  # argparse's own exit, as the console script gets it
            status = exc.code
        err = capsys.readouterr().err
        assert status == 2 and len(err.splitlines()) == 1 and needle in err, (args, err)
    missing = cli_main(["check", "transactions", "--config", str(fraud_sqlite.root / "nowhere.yaml")])
    assert missing == 2 and "nowhere.yaml" in capsys.readouterr().err


def test_a_log_cut_back_and_written_again_is_found_by_its_commit_timestamp(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The newest commit (and its checksum) deleted, then another writer commits: the log ends
    at the same version again, but that version is not the job's commit any more."""
    from deltalake import write_deltalake

    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    before = fraud.offline_rows()
    newest = fraud.newest_commit()
    newest.unlink()
    newest.with_suffix(".crc").unlink()
    table = DeltaTable(str(fraud.table_path))
    write_deltalake(str(fraud.table_path), table.to_pyarrow_table().slice(0, 0), mode="append")
    assert DeltaTable(str(fraud.table_path)).version() == int(newest.stem)  # the same number, refilled

    [lost] = check_json(fraud, capsys, 1)["lost"]
    assert (lost["store"], lost["start"], lost["end"]) == ("offline", day(8), day(9))
    assert f"Delta commit {int(newest.stem)} of" in lost["reason"] and "is not this job's" in lost["reason"]
    assert fraud.statuses()["offline"] == [(day(6), day(8), "Complete"), (day(8), day(9), "Incomplete")]
    assert fraud.cli(*THREE_DAYS) == 0
    pd.testing.assert_frame_equal(fraud.offline_rows(), before)
    assert check_json(fraud, capsys, 0)["consistent"] is True


def test_a_gap_in_the_log_is_unreadable_not_lost_and_changes_nothing(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    sorted((fraud.table_path / "_delta_log").glob("*.json"))[1].unlink()  # a commit in the middle
    before = fraud.state()
    capsys.readouterr()
    assert fraud.cli("check", "transactions") == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert f"cannot read the offline table at {fraud.table_path}" in err and "_delta_log" in err
    assert fraud.state() == before


def test_a_dry_run_plans_the_lost_time_and_changes_nothing(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    fraud.newest_commit().unlink()
    before = fraud.state()
    capsys.readouterr()
    assert fraud.cli(*THREE_DAYS, "--dry-run", "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"start": day(8), "end": day(9), "stores": ["offline"]}]
    assert "offline [" in err and "is lost (the backfill would redo it)" in err
    assert fraud.state() == before


# ---- online: some keys lost (the sampled keys) ---------------------------------------------


def latest_offline(fraud: Fraud) -> dict[str, int]:
    """Per account, the transaction count of its latest offline row: what Redis must serve."""
    rows = fraud.offline_rows().sort_values(["accountID", "timestamp"])
    return {
        a: int(r["transaction_7d_count"])
        for a, r in rows.groupby("accountID").tail(1).set_index("accountID").iterrows()
    }


def test_a_tenth_of_the_keys_deleted_is_found_marked_and_refilled(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Partial loss (a DEL by hand, eviction) keeps the marker; the sampled keys show it."""
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    expected = latest_offline(fraud)
    served = fraud.online()
    assert {
        r["accountID"]: r["transaction_7d_count"] for r in served if r["transaction_7d_count"] is not None
    } == expected
    offline_before, statuses_before = fraud.offline_rows(), fraud.statuses()
    keys = fraud.entity_keys()
    deleted = keys[::10]  # every tenth key, by name: ~10%
    client = fraud.redis()
    assert client.delete(*deleted) == len(deleted) >= 4
    client.close()

    # What the check must find: per job, its sampled keys that were deleted (exactly).
    jobs = sorted(fraud.raw_jobs(), key=lambda j: j["start"])
    short = {j["id"]: sum(k in deleted for k, _e in j["result"]["online_sample"]) for j in jobs}
    sizes = {j["id"]: len(j["result"]["online_sample"]) for j in jobs}
    assert sum(short.values()) > 0  # 32-key samples of ~40 keys: a miss has odds below 1 in 1,000
    first = next(j for j in jobs if short[j["id"]])

    report = check_json(fraud, capsys, 1)
    assert report["consistent"] is False
    lost_online = [x for x in report["lost"] if x["store"] == "online"]
    assert lost_online and all(x["store"] == "online" for x in report["lost"])  # offline untouched
    assert min(x["start"] for x in lost_online) == first["start"]
    assert max(x["end"] for x in lost_online) == day(9)
    for item in lost_online:
        if short[item["job_id"]]:
            assert item["reason"].startswith(
                f"online partly lost: {short[item['job_id']]} of {sizes[item['job_id']]} sampled keys of job "
                f"{item['job_id']} missing at {REDIS_URL}"
            ), item["reason"]
        else:
            assert f"sampled keys of the earlier job {first['id']} missing" in item["reason"]
    assert fraud.statuses()["offline"] == statuses_before["offline"]
    assert fraud.statuses()["online"][-1] == (first["start"], day(9), "Incomplete")
    assert {j["id"]: j["error"] for j in fraud.jobs() if j["error"]} == {
        x["job_id"]: x["reason"] for x in lost_online
    }

    capsys.readouterr()
    assert fraud.cli(*THREE_DAYS) == 0  # the default statuses: the lost online time, from offline
    redone = fraud.jobs()[: len(lost_online)]
    assert all(j["stores"] == ["online"] and j["reads"] == "offline" for j in redone)
    assert fraud.statuses() == statuses_before
    assert fraud.entity_keys() == keys
    assert fraud.online() == served
    assert {
        r["accountID"]: r["transaction_7d_count"]
        for r in fraud.online()
        if r["transaction_7d_count"] is not None
    } == expected
    pd.testing.assert_frame_equal(fraud.offline_rows(), offline_before)
    report = check_json(fraud, capsys, 0)
    assert report["consistent"] is True and "sampled keys of" in report["checked"]["online"]


def test_online_keys_expiring_by_ttl_are_not_a_loss(fraud_sqlite: Fraud) -> None:
    """Expiry is the contract: the check does not look up a sampled key past its recorded expiry
    (event time + online_ttl), while the same key gone before it is a loss."""
    from airflow_provider_featurestore.core import consistency

    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    keys = fraud.entity_keys()
    client = fraud.redis()
    with fraud.store() as store:
        layout = store.online_layout(store.spec("transactions"))
        assert client.ttl(layout.marker_key) == -1 and all(client.ttl(k) > 0 for k in keys)
        expiries = [e for j in fraud.raw_jobs() for _k, e in j["result"]["online_sample"]]
        assert all(
            abs(e - time.time() - client.ttl(k)) < 60
            for j in fraud.raw_jobs()
            for k, e in j["result"]["online_sample"]
        )
        client.delete(*keys)  # as Redis does when the keys expire
        spec = store.spec("transactions")
        report, findings = consistency.inspect(store, spec, ["online"], now=max(expiries))
        assert (
            findings == {}
            and f"({len(expiries)} more past their online_ttl, not looked up)" in report.checked["online"]
        )
        report, findings = consistency.inspect(store, spec, ["online"], now=min(expiries) - 1)
        assert set(findings) == {"online"}  # before their expiry, the same keys gone are a loss
    client.close()
    assert fraud.statuses()["online"] == [(day(6), day(9), "Complete")]  # inspect changes nothing


def test_jobs_recorded_without_a_key_sample_are_covered_by_the_marker_only(
    fraud_sqlite: Fraud, capsys: pytest.CaptureFixture[str]
) -> None:
    fraud = fraud_sqlite
    assert fraud.cli(*THREE_DAYS) == 0
    jobs = fraud.raw_jobs()
    with fraud.store() as store, store.table.engine.begin() as conn:  # as written before samples were kept
        for job in jobs:
            old = {k: v for k, v in job["result"].items() if k != "online_sample"}
            conn.exec_driver_sql("UPDATE fs_jobs SET result = ? WHERE id = ?", (json.dumps(old), job["id"]))
    client = fraud.redis()
    client.delete(*fraud.entity_keys()[::10])
    client.close()
    report = check_json(fraud, capsys, 0)  # the loss is not seen: the words must not claim it was
    assert report["checked"]["online"].endswith(
        ": present; 0 sampled keys of 0 job(s) present; 3 job(s) recorded before key samples were kept: "
        "covered by the marker only"
    )
