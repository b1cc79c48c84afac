"""`featurestore cancel` on the real embedded engine (Sail), real Delta tables and a real Redis.

A backfill of one-day chunks whose transformation sleeps a few seconds per chunk (in the
backfill's own process, between its Spark queries) is cancelled from another process: the
running backfill notices within its poll (about a second), stops at its next chunk boundary,
and the next backfill redoes only the time that was cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import redis
from support.fraud import (
    DAY,
    FIRST_DAY,
    REDIS_URL,
    backfill,
    day,
    expected_rolling,
    fraud_store,
    offline_rows,
    sort_rows,
    statuses,
)

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))


@pytest.fixture(params=["embedded"])
def fraud(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fraud feature store on the embedded engine as shipped, or (a test that asks) with
    spark-submit to the standalone cluster: a cancel there ends the spark-submit."""
    engine = (
        None
        if request.param == "embedded"
        else request.getfixturevalue("spark_services").engine_yaml(request.param)
    )
    yield from fraud_store(tmp_path, monkeypatch, engine)


def slow_down(root: Path, seconds: float) -> str:
    """Make the transactions transformation sleep `seconds` per chunk; returns the spec to put back."""
    (root / "transforms" / "slow.py").write_text(
        "import time\nfrom transforms.transactions import transform as rolling\n\n\n"
        f"def transform(df, window):\n    time.sleep({seconds})\n    return rolling(df, window)\n"
    )
    spec = root / "featuresets" / "transactions.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("transforms.transactions:transform", "transforms.slow:transform"))
    return original


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [FEATURESTORE, *args, "--config", str(root / "featurestore.yaml")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def cli_here(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`featurestore ARGS` in this process (no interpreter start): exit status, stdout, stderr."""
    capsys.readouterr()
    try:
        code = cli_main([*args, "--config", str(root / "featurestore.yaml")])
    except SystemExit as exc:  # argparse's own exit (bad arguments)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def start_backfill(root: Path, start: str, end: str) -> subprocess.Popen:
    argv = [FEATURESTORE, "backfill", "transactions", "--start", start, "--end", end]
    argv += ["--config", str(root / "featurestore.yaml")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, what: str, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rows_per_day(frame: pd.DataFrame) -> dict[int, int]:
    seconds = pd.to_datetime(frame["timestamp"], utc=True).astype("int64") // 10**9
    return {int(k): int(v) for k, v in (seconds // DAY * DAY).value_counts().items()}


# spark-submit (`-k` with `"fraud", ["spark-submit"]` here) passes too but takes ~3 minutes on
# the shared CI machine; its own part, ending the spark-submit, is tested in test_engines_stop.
def test_a_cancelled_backfill_stops_at_a_chunk_edge_and_the_next_redoes_only_the_cancelled_time(
    fraud: Path,
) -> None:
    original = slow_down(fraud, 3)
    process = start_backfill(fraud, day(4), day(9))  # 5 one-day chunks, one batch
    store = FeatureStore(str(fraud / "featurestore.yaml"), check_transformations=False)
    wait_for(lambda: any(s == "Complete" for _a, _b, s in statuses(fraud)["offline"]), "the first commit")

    cancel = cli(fraud, "cancel", "transactions", "--all")
    assert cancel.returncode == 0, cancel.stderr
    lines = cancel.stdout.splitlines()
    assert lines[-1].startswith("5 job(s) cancelled"), cancel.stdout
    assert sum("(was running)" in line for line in lines) == 5  # one batch: all five had started
    # At once, before the backfill process has even noticed: nothing Pending, the rest Incomplete.
    offline = statuses(fraud)["offline"]
    assert not any(s == "Pending" for _a, _b, s in offline), offline
    assert (
        offline[0][0] == day(4)
        and offline[0][2] == "Complete"
        and offline[-1]
        == (
            offline[-1][0],
            day(9),
            "Incomplete",
        )
    )
    assert statuses(fraud)["online"] == [(day(4), day(9), "Incomplete")]  # its one write never came
    jobs = store.jobs("transactions")
    assert {j.state for j in jobs} == {"cancelled"}
    assert {j.error for j in jobs} == {"cancelled: by featurestore cancel"}

    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err  # not every job succeeded: exit 1, the summary says why
    assert "0 failed, 5 cancelled" in err, err
    assert "Traceback" not in err and "skipped" not in err  # its own Pending time is not "skipped"
    complete_end = to_epoch(offline[0][1])
    # The batch stopped at a chunk edge: beyond the Complete days, at most the chunk that was
    # being written when the cancel came has rows (its commit landed after the cancel: its time
    # stays Incomplete and the next backfill rewrites it in place).
    written = rows_per_day(offline_rows(fraud))
    assert max(written) < complete_end + DAY, (written, offline)
    assert not list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{store.config.project}:*", count=1000))
    cancelled_ids = {j.id for j in jobs}

    (fraud / "featuresets" / "transactions.yaml").write_text(original)
    assert backfill(fraud, "transactions", "--start", day(4), "--end", day(9)) == 0
    assert statuses(fraud) == {
        "offline": [(day(4), day(9), "Complete")],
        "online": [(day(4), day(9), "Complete")],
    }
    again = [j for j in store.jobs("transactions") if j.id not in cancelled_ids]
    # Only the cancelled time is redone: the committed days' offline rows are read back for the
    # online write (online-only jobs), the others are computed again for both stores.
    assert sorted((j.start, j.stores) for j in again) == [
        (d, ("online",) if d < complete_end else ("offline", "online"))
        for d in range(FIRST_DAY + 4 * DAY, FIRST_DAY + 9 * DAY, DAY)
    ]
    got = sort_rows(offline_rows(fraud).drop(columns=["event_date"]))
    want = sort_rows(expected_rolling(fraud, FIRST_DAY + 4 * DAY, FIRST_DAY + 9 * DAY))
    assert rows_per_day(got) == rows_per_day(want)  # no row lost or duplicated, day by day
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
    store.close()


def test_the_pending_time_of_a_killed_backfill_is_named_and_cancel_releases_it(
    fraud: Path, capsys: pytest.CaptureFixture
) -> None:
    original = slow_down(fraud, 60)
    process = start_backfill(fraud, day(7), day(9))
    store = FeatureStore(str(fraud / "featurestore.yaml"), check_transformations=False)
    wait_for(lambda: any(j.state == "running" for j in store.jobs("transactions")), "the jobs to start")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (fraud / "featuresets" / "transactions.yaml").write_text(original)
    dead = sorted(store.jobs("transactions"), key=lambda j: j.start)

    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(9)) == 0
    err = capsys.readouterr().err
    assert "nothing to do" in err
    for job in dead:
        lease = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(job.lease_expires_at or 0)))
        window = f"[{iso(job.start)}, {iso(job.end)}) offline,online"
        # queued or running: a kill before the batch's next job started leaves that one queued
        assert (
            f"\n  {window} is Pending under job {job.id} ({job.state}; its lease ends at {lease})\n" in err
        ), err
    assert f"`featurestore cancel transactions --job {dead[0].id}` releases a job's time at once" in err

    before = statuses(fraud)
    for bad in (
        ["cancel", "transactions"],  # no selector
        ["cancel", "transactions", "--all", "--job", dead[0].id],  # two
        ["cancel", "transactions", "--job", "nosuchjob"],
        ["cancel", "accounts", "--job", dead[0].id],  # a job of another feature set
        ["cancel", "transactions", "--run", "manual__nosuchrun"],
    ):
        code, _out, err = cli_here(fraud, capsys, *bad)
        assert code == 2 and len(err.splitlines()) == 1, (bad, err)
        assert "Traceback" not in err
    assert statuses(fraud) == before
    assert {j.id: j.state for j in store.jobs("transactions")} == {j.id: j.state for j in dead}  # unchanged

    code, out, err = cli_here(fraud, capsys, "cancel", "transactions", "--job", dead[0].id)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"cancelled {dead[0].id}: transactions v1 [{day(7)}, {day(8)})")
    assert statuses(fraud)["offline"] == [(day(7), day(8), "Incomplete"), (day(8), day(9), "Pending")]
    assert store.table.job(dead[0].id).error == "cancelled: by featurestore cancel"
    code, out, _err = cli_here(fraud, capsys, "cancel", "transactions", "--job", dead[0].id)
    assert code == 0 and "nothing to cancel" in out  # nothing live: no error

    assert backfill(fraud, "transactions", "--start", day(7), "--end", day(9)) == 0
    assert statuses(fraud)["offline"] == [(day(7), day(8), "Complete"), (day(8), day(9), "Pending")]
    err = capsys.readouterr().err
    assert (
        f"skipped, held by live jobs:\n  [{day(8)}, {day(9)}) offline,online is Pending under job {dead[1].id}"
        in err
    )
    store.close()


def test_spark_submit_is_ended_once_every_chunk_left_in_its_batch_was_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain submit's own part of a cancel, without a cluster: a stand-in `spark-submit`
    (a shell script that records its pid and sleeps a minute; the real one passes the test above
    with the spark-submit engine, in ~3 minutes) is ended, and every chunk reported cancelled."""
    from support.fraud import EXAMPLE

    from airflow_provider_featurestore.core.config import load_config
    from airflow_provider_featurestore.core.materialization.engines import SparkSubmitEngine
    from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, ChunkResult, ChunkSpec

    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    pid_file = tmp_path / "pid"
    script = home / "bin" / "spark-submit"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    script.chmod(0o755)
    monkeypatch.setenv("SPARK_HOME", str(home))
    config = load_config(str(EXAMPLE / "featurestore.yaml"), check_transformations=False)
    engine = SparkSubmitEngine(config, master="local[1]")
    chunks = tuple(ChunkSpec(f"job{i}", i * DAY, (i + 1) * DAY, ("offline",)) for i in range(2))
    reports: list[ChunkResult] = []
    cancelled: set[str] = set()

    def stopped(job_id: str) -> bool:
        if pid_file.exists():  # the submit is running: now both jobs are cancelled elsewhere
            cancelled.update(chunk.job_id for chunk in chunks)
        return job_id in cancelled

    engine.launch_batch(
        BatchSpec(str(EXAMPLE / "featurestore.yaml"), "transactions", 1, chunks), {}, reports.append, stopped
    )
    engine.close()
    assert [(r.job_id, r.done, r.completed, r.error) for r in reports] == [
        ("job0", True, {"offline": False}, "cancelled"),
        ("job1", True, {"offline": False}, "cancelled"),
    ]
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
