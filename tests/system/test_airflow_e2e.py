"""End to end against a running Airflow: `api-server`, `scheduler` (LocalExecutor),
`dag-processor` and `triggerer` started for this module on a fresh PostgreSQL metadata database,
the DAGs of `dags/` over a private copy of the fraud example with recent data, runs triggered
and watched through the REST API.

The assertions read what landed: the interval table and the job records (through
`FeatureStore`), the Delta table (delta-rs) and Redis. The copy has a second feature set,
`transactions_slow`: the same features through a transformation that waits while a gate file
exists, so a test can catch a materialize task mid-job and SIGKILL its process. Every service
has the OpenLineage provider's file transport on (`openlineage.jsonl` in the Airflow home).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
import redis
from deltalake import DeltaTable

from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # the support package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.deployment import DAG_ID, Deployment, day, fraud_deployment  # noqa: E402
from support.openlineage_events import datasets, file_transport_env, run_events  # noqa: E402

PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LEASE = 5  # seconds: interval_table.lease while the SIGKILL test runs
FEATURES = ["transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg"]

SLOW_TRANSFORM = '''"""The rolling aggregates, after waiting (at most 120 s) while the gate file SLOW exists."""

import time
from pathlib import Path

from transforms.transactions import transform as rolling

GATE = Path(__file__).with_name("SLOW")


def transform(df, window):
    deadline = time.time() + 120
    while GATE.exists() and time.time() < deadline:
        time.sleep(0.2)
    return rolling(df, window)
'''


def add_slow_feature_set(root: Path) -> None:
    """`transactions_slow`: the transactions features through a transformation held by a gate file."""
    spec = (root / "featuresets" / "transactions.yaml").read_text()
    slow = spec.replace("name: transactions", "name: transactions_slow").replace(
        "transforms.transactions:transform", "transforms.slow:transform"
    )
    slow = "\n".join(line for line in slow.splitlines() if not line.strip().startswith("schedule:"))
    assert "transforms.slow:transform" in slow and "schedule:" not in slow
    (root / "featuresets" / "transactions_slow.yaml").write_text(slow + "\n")
    (root / "transforms" / "slow.py").write_text(SLOW_TRANSFORM)


PAUSE_TRANSFORM = '''"""The rolling aggregates, after sleeping the seconds written in the file PAUSE (if any),
or until PAUSE is removed (a test's clean-up ends the pause of a chunk still sleeping); the file
PAUSED says a chunk is sleeping (in Python, where a signal handler runs at once)."""

import time
from pathlib import Path

from transforms.transactions import transform as rolling

PAUSE = Path(__file__).with_name("PAUSE")


def transform(df, window):
    if PAUSE.exists():
        deadline = time.monotonic() + float(PAUSE.read_text())
        PAUSE.with_name("PAUSED").touch()
        while PAUSE.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    return rolling(df, window)
'''


def add_cancel_feature_set(root: Path) -> None:
    """`transactions_pause`: the transactions features, each chunk paused by the file PAUSE, in
    batches of 3 days (a 6-day backfill is 2 mapped tasks of 3 chunks): the cancel tests."""
    spec = (root / "featuresets" / "transactions.yaml").read_text()
    paused = spec.replace("name: transactions", "name: transactions_pause").replace(
        "transforms.transactions:transform", "transforms.pause:transform"
    )
    paused = paused.replace("max_batch_window: 30d", "max_batch_window: 3d")
    paused = "\n".join(line for line in paused.splitlines() if not line.strip().startswith("schedule:"))
    assert "max_batch_window: 3d" in paused and "schedule:" not in paused
    (root / "featuresets" / "transactions_pause.yaml").write_text(paused + "\n")
    (root / "transforms" / "pause.py").write_text(PAUSE_TRANSFORM)


BROKEN_TRANSFORM = '''"""A transformation that always fails: the lineage FAIL test's feature set."""


def transform(df, window):
    raise RuntimeError("transactions_broken: this transformation always fails")
'''


def add_broken_feature_set(root: Path) -> None:
    """`transactions_broken`: the transactions features through a transformation that raises."""
    spec = (root / "featuresets" / "transactions.yaml").read_text()
    broken = spec.replace("name: transactions", "name: transactions_broken").replace(
        "transforms.transactions:transform", "transforms.broken:transform"
    )
    broken = "\n".join(line for line in broken.splitlines() if not line.strip().startswith("schedule:"))
    assert "transforms.broken:transform" in broken and "schedule:" not in broken
    (root / "featuresets" / "transactions_broken.yaml").write_text(broken + "\n")
    (root / "transforms" / "broken.py").write_text(BROKEN_TRANSFORM)


LINEAGE_FILE = "openlineage.jsonl"  # in the Airflow home


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A private fraud feature store with 10 days of recent data, and Airflow running over it."""
    base = tmp_path_factory.mktemp("airflow_e2e")

    def prepare(root: Path) -> None:
        add_slow_feature_set(root)
        add_cancel_feature_set(root)
        add_broken_feature_set(root)

    lineage = file_transport_env(base / "home" / LINEAGE_FILE)
    with fraud_deployment(base, PG_URL, REDIS_URL, prepare=prepare, env=lineage) as deployed:
        yield deployed


# ---- reading what landed ------------------------------------------------------------------------


def source_rows(root: Path, start: int, end: int) -> pd.DataFrame:
    """The source transactions of `[start, end)`."""
    table = ds.dataset(root / "data" / "source" / "transactions", format="parquet").to_table()
    frame = table.to_pandas()
    times = frame["timestamp"]
    return frame[(times >= _ts(start)) & (times < _ts(end))]


def offline_rows(root: Path, name: str, start: int, end: int) -> pd.DataFrame:
    frame = DeltaTable(str(root / "data" / "offline" / name / "v1")).to_pandas()
    times = frame["timestamp"]
    return frame[(times >= _ts(start)) & (times < _ts(end))]


def _ts(epoch: int) -> pd.Timestamp:
    return pd.Timestamp(epoch, unit="s", tz="UTC")


def job_windows(jobs: list[JobRecord], store: str) -> list[tuple[int, int]]:
    return sorted((j.start, j.end) for j in jobs if store in j.stores)


def union(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def asset_race(d: Deployment) -> str:
    """The explanation when Airflow failed a successful task creating an alias's asset."""
    log = d.airflow.log_path("api-server").read_text(errors="replace")
    if "idx_asset_name_uri_unique" not in log:
        return ""
    return (
        "\nThe API server failed a materialize task that succeeded: two tasks emitted through the "
        "`featurestore` alias at once to an asset Airflow did not know yet, and both created it "
        "(UniqueViolation idx_asset_name_uri_unique; Airflow sets the task failed and drops its "
        "asset events). Declaring the feature sets' assets in the DAGs (e.g. as the plan task's "
        "inlets) registers them at parse time."
    )


def complete(d: Deployment, name: str, store: str) -> list[tuple[int, int]]:
    """The Complete time of one store of a feature set, as epoch-second ranges."""
    return [(to_epoch(a), to_epoch(b)) for a, b, s in d.statuses(name)[store] if s == "Complete"]


def assert_online_latest(d: Deployment, name: str) -> None:
    """Redis holds exactly one key per account with rows in the online-Complete time, each at
    the account's latest event time there, with every feature."""
    rows = pd.concat([source_rows(d.root, a, b) for a, b in complete(d, name, "online")])
    latest = rows.groupby("accountID")["timestamp"].max()
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        prefix = f"{d.project}:{name}:v1:"
        keys = set(client.scan_iter(f"{prefix}*", count=1000)) - {prefix + ":_written"}  # the marker
        assert keys == {prefix + account for account in latest.index}
        for account, moment in latest.items():
            values = client.hgetall(prefix + account)
            assert set(FEATURES) <= set(values), values
            assert int(values["_event_time"]) == moment.value // 1000, (account, values)
    finally:
        client.close()


def lineage_datasets(d: Deployment, name: str) -> tuple[tuple[str, str], ...]:
    """The OpenLineage source, Delta table and Redis datasets of feature set `name` (v1)."""
    return (
        ("file", str(d.root / "data" / "source" / "transactions")),
        ("file", str(d.root / "data" / "offline" / name / "v1")),
        (f"redis://{REDIS_URL.split('://', 1)[1]}", f"{d.project}:{name}:v1"),
    )


def materialize_events(d: Deployment, run_id: str) -> list[dict]:
    """The OpenLineage events of the materialize task(s) of one run, as the services wrote them."""
    return run_events(d.airflow.home / LINEAGE_FILE, f"{d.dag_id}.materialize", run_id)


def assert_lineage(d: Deployment, name: str, run_id: str, jobs: list[JobRecord]) -> None:
    """One successful materialize task's START and COMPLETE name the source as input, the Delta
    table (with its schema) and Redis as outputs; COMPLETE's row counts are the jobs' rows."""
    source, delta, online = lineage_datasets(d, name)
    events = materialize_events(d, run_id)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"], events
    for event in events:
        assert list(datasets(event, "inputs")) == [source], event["inputs"]
        assert set(datasets(event, "outputs")) == {delta, online}, event["outputs"]
    outputs = datasets(events[1], "outputs")
    fields = [f["name"] for f in outputs[delta]["facets"]["schema"]["fields"]]
    assert fields == ["accountID", "timestamp", *FEATURES, "event_date"], fields
    for dataset, store in ((delta, "offline"), (online, "online")):
        rows = sum(j.rows_written[store] for j in jobs)
        assert outputs[dataset]["outputFacets"]["outputStatistics"]["rowCount"] == rows, (store, rows)


def assert_complete(d: Deployment, name: str, start: int, end: int) -> None:
    """`[start, end)` is Complete on both stores, and no time at all is Pending or Incomplete."""
    statuses = d.statuses(name)
    for store in ("offline", "online"):
        assert any(a <= start and end <= b for a, b in union(complete(d, name, store))), statuses
        assert not any(s in ("Pending", "Incomplete") for _a, _b, s in statuses[store]), statuses


# ---- the tests ----------------------------------------------------------------------------------


def test_a_backfill_triggered_through_the_rest_api_materializes_its_window(deployment: Deployment) -> None:
    d = deployment
    start, end = day(1), day(3)
    run_id = d.backfill("transactions", start, end)
    run = d.airflow.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", d.explain(run_id)
    mapped = [(t["map_index"], t["state"]) for t in run["task_instances"] if t["task_id"] == "materialize"]
    assert sorted(mapped) == [(0, "success")], f"{mapped}{asset_race(d)}"  # two days: one batch

    assert_complete(d, "transactions", start, end)
    jobs = [j for j in d.jobs("transactions") if j.airflow and j.airflow["run_id"] == run_id]
    assert len(jobs) == 2 and all(j.state == "succeeded" for j in jobs), [j.to_json() for j in jobs]
    assert union(job_windows(jobs, "offline")) == [(start, end)]
    for job in jobs:
        assert job.airflow is not None
        assert job.airflow["dag_id"] == DAG_ID
        assert job.airflow["run_id"] == run_id
        assert job.airflow["task_id"] == "materialize"
        assert job.rows_written["offline"] > 0 and "online" in job.rows_written

    assert sum(j.rows_written["offline"] for j in jobs) == 600
    # One online write for the batch: each account once, credited to the day of its latest row.
    accounts = source_rows(d.root, start, end)["accountID"].nunique()
    assert sum(j.rows_written["online"] for j in jobs) == accounts

    # Each job's stores got their asset event (through the alias), from the run's publish task.
    found = d.airflow.api(
        "GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100}
    )["asset_events"]
    events = sorted((e["uri"], e["extra"]["job_id"], e["source_task_id"]) for e in found)
    assert events == sorted(
        (f"featurestore://{d.project}/transactions/v1/{store}", job.id, "publish")
        for job in jobs
        for store in ("offline", "online")
    ), f"{events}{asset_race(d)}"

    landed = offline_rows(d.root, "transactions", start, end)
    expected = source_rows(d.root, start, end)
    assert len(landed) == len(expected) == 600
    assert sorted(landed["timestamp"]) == sorted(expected["timestamp"])
    assert sorted(landed["accountID"]) == sorted(expected["accountID"])
    assert not landed[["accountID", "timestamp"]].duplicated().any()
    assert not landed[FEATURES].isna().any().any()
    assert_online_latest(d, "transactions")
    assert_lineage(d, "transactions", run_id, jobs)


def test_a_failing_chunk_emits_openlineage_fail_with_its_datasets(deployment: Deployment) -> None:
    """A transformation that raises fails the chunk and the task: each try's START is followed by
    a FAIL naming the same source, Delta table and Redis, with no rows written."""
    d = deployment
    name = "transactions_broken"
    run_id = d.backfill(name, day(5), day(6))
    run = d.airflow.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "failed", d.explain(run_id)
    jobs = [j for j in d.jobs(name) if j.airflow and j.airflow["run_id"] == run_id]
    assert jobs and all(j.state == "failed" and "always fails" in str(j.error) for j in jobs), jobs
    source, delta, online = lineage_datasets(d, name)
    events = materialize_events(d, run_id)
    assert [e["eventType"] for e in events] == ["START", "FAIL", "START", "FAIL"], events  # retries=1
    for event in events:
        assert list(datasets(event, "inputs")) == [source], event["inputs"]
        assert set(datasets(event, "outputs")) == {delta, online}, event["outputs"]
    for event in events[1::2]:
        outputs = datasets(event, "outputs")
        assert outputs[delta]["outputFacets"]["outputStatistics"]["rowCount"] == 0, outputs


def test_an_invalid_window_fails_the_plan_and_claims_nothing(deployment: Deployment) -> None:
    d = deployment
    before = (d.statuses("transactions"), [j.to_json() for j in d.jobs("transactions")])
    run_id = d.backfill("transactions", day(9), day(6))
    run = d.airflow.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "failed", d.explain(run_id)
    states = {t["task_id"]: t["state"] for t in run["task_instances"] if t["map_index"] == -1}
    assert states["plan"] == "failed", run["task_instances"]
    assert states["finalize"] == "failed", run["task_instances"]
    assert not any(t["state"] == "success" for t in run["task_instances"] if t["task_id"] == "materialize")
    after = (d.statuses("transactions"), [j.to_json() for j in d.jobs("transactions")])
    assert after == before, "a rejected backfill claimed time or wrote a job record"
    assert "is not after" in d.airflow.task_log(DAG_ID, run_id)


def test_a_sigkilled_materialize_task_leaves_incomplete_time_that_a_backfill_repairs(
    deployment: Deployment,
) -> None:
    d = deployment
    name, start, end = "transactions_slow", day(4), day(5)
    config = d.config.read_text()
    gate = d.root / "transforms" / "SLOW"
    d.config.write_text(config.replace("interval_table:\n", f"interval_table:\n  lease: {LEASE}s\n"))
    gate.touch()
    try:
        run_id = d.backfill(name, start, end)

        def running() -> JobRecord | None:
            d.airflow.check_alive()
            return next((j for j in d.jobs(name) if j.state == "running"), None)

        job = d.airflow.wait(running, 120, f"no job of {name} ever ran in run {run_id}", every=0.3)
        assert job.airflow and job.airflow["run_id"] == run_id
        ti = d.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/materialize/0")
        process = d.airflow.wait(
            lambda: d.airflow.task_process(ti["id"]), 30, f"no process runs task instance {ti['id']}"
        )
        supervisor = process.parent()
        assert supervisor is not None and "LocalExecutor" in " ".join(supervisor.cmdline())
        process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        gate.unlink()  # from now on the transformation is quick (Airflow's retry, the repair)
        process.wait(timeout=30)
        assert any(s == "Pending" for _a, _b, s in d.statuses(name)["offline"]), d.statuses(name)

        # Once the lease ran out, planning sees the killed job's time as Incomplete (a dry run
        # writes nothing) - unless Airflow's retry of the task got there first and re-claimed it.
        time.sleep(max(0.0, killed_at + LEASE + 1 - time.time()))
        store = d.store()
        try:
            dead = store.table.job(job.id)
            if dead.state == "running":  # not finished by anyone yet: its heartbeat died with it
                assert dead.lease_expires_at is not None and dead.lease_expires_at < time.time(), dead
            request = store.backfill_request(name, iso(start), iso(end), statuses=["Incomplete"])
            planned = store.claim(request, dry_run=True)
        finally:
            store.close()
        retried = [j for j in d.jobs(name) if j.created_at > killed_at]
        if planned:
            assert union(job_windows(planned, "offline")) == [(start, end)]
            assert union(job_windows(planned, "online")) == [(start, end)]
        else:
            assert retried, f"after the lease, {iso(start)}..{iso(end)} is neither Incomplete nor re-claimed"

        # A backfill of the Incomplete time repairs it. Airflow retries the killed task too
        # (retries=1, 10 s later): whichever claims the time first runs it, the other finds
        # nothing to do. The killed run may end failed: its finalize sees the killed job failed.
        repair_id = d.backfill(name, start, end, data_status=["Incomplete"])
        repair = d.airflow.wait_for_run(DAG_ID, repair_id)
        assert repair["state"] == "success", d.explain(repair_id)
        killed_run = d.airflow.wait_for_run(DAG_ID, run_id)
    finally:
        gate.unlink(missing_ok=True)
        d.config.write_text(config)

    assert d.statuses(name) == {
        "offline": [(iso(start), iso(end), "Complete")],
        "online": [(iso(start), iso(end), "Complete")],
    }, d.explain(run_id)
    jobs = d.jobs(name)
    assert not any(j.state in ("queued", "running") for j in jobs), [j.to_json() for j in jobs]
    killed = next(j for j in jobs if j.id == job.id)
    assert killed.state == "failed" and killed.error, killed.to_json()
    succeeded = [j for j in jobs if j.state == "succeeded"]
    assert union(job_windows(succeeded, "offline")) == [(start, end)]
    assert {j.airflow["run_id"] for j in succeeded} <= {run_id, repair_id}
    materialize_tries = max(
        t["try_number"] for t in killed_run["task_instances"] if t["task_id"] == "materialize"
    )
    assert materialize_tries == 2, "Airflow did not retry the killed task"
    print(
        f"\nkilled run: {killed_run['state']}, materialize tries: {materialize_tries}; "
        f"repaired by {'the retry' if succeeded[0].airflow['run_id'] == run_id else 'the backfill'}; "
        f"dry run after the lease planned {len(planned)} job(s)"
    )
    landed = offline_rows(d.root, name, start, end)
    assert len(landed) == len(source_rows(d.root, start, end)) == 300
    assert not landed[["accountID", "timestamp"]].duplicated().any()
    assert_online_latest(d, name)


def test_two_concurrent_backfills_over_overlapping_windows_run_every_second_once(
    deployment: Deployment,
) -> None:
    d = deployment
    first = d.backfill("transactions", day(5), day(8))
    second = d.backfill("transactions", day(6), day(9))
    runs = {run_id: d.airflow.wait_for_run(DAG_ID, run_id) for run_id in (first, second)}
    for run_id, run in runs.items():
        assert run["state"] == "success", d.explain(run_id)

    assert_complete(d, "transactions", day(5), day(9))
    jobs = [j for j in d.jobs("transactions") if j.airflow and j.airflow["run_id"] in runs]
    assert jobs and all(j.state == "succeeded" for j in jobs), [j.to_json() for j in jobs]
    for store in ("offline", "online"):
        windows = job_windows(jobs, store)
        for (_a, prev_end), (next_start, _b) in zip(windows, windows[1:], strict=False):
            assert prev_end <= next_start, f"{store}: a second was materialized twice: {windows}"
        assert union(windows) == [(day(5), day(9))], windows
    assert sum(j.rows_written["offline"] for j in jobs) == 1200, "a row was written twice"

    landed = offline_rows(d.root, "transactions", day(5), day(9))
    assert len(landed) == len(source_rows(d.root, day(5), day(9))) == 1200
    assert not landed[["accountID", "timestamp"]].duplicated().any()
    assert_online_latest(d, "transactions")


# ---- Airflow's own backfill on a scheduled DAG (the `accounts` feature set: 40 rows a day) ------

SCHEDULED = "featurestore_materialize__accounts"
NOISE = (  # warnings a task log or a CLI call must not carry: none is the user's to fix
    "does not yet fully support pandas",
    "partition_filters",
    "Variable.get from `airflow.models`",
    "graphviz",
)


def airflow_backfill(d: Deployment, first: int, last: int, *args: str) -> str:
    """`airflow backfill create` on the scheduled DAG for the data intervals starting on the
    days `first`..`last` (logical dates, both inclusive), as a user types it on an Airflow host;
    the command's output (stdout and stderr)."""
    dates = [datetime.fromtimestamp(day(n), UTC).isoformat() for n in (first, last)]
    argv = [d.airflow.airflow, "backfill", "create", "--dag-id", SCHEDULED]
    argv += ["--from-date", dates[0], "--to-date", dates[1], *args]
    done = subprocess.run(argv, env=d.airflow.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def backfill_runs(d: Deployment, first: int, last: int, *, completed: bool = True) -> dict[int, str]:
    """The run id per logical day `first`..`last` of the scheduled DAG (`airflow backfill create`
    made them before it returned); with `completed`, once the backfill is complete (the scheduler
    marks it every 30 s once its runs ended; the next backfill of the DAG waits for that)."""

    def done() -> list | None:
        found = d.airflow.api("GET", "/backfills", params={"dag_id": SCHEDULED, "limit": 100})["backfills"]
        return found if found and all(b["completed_at"] for b in found) else None

    if completed:
        d.airflow.wait(done, 300, f"a backfill of {SCHEDULED} never completed", every=2)
    runs = d.airflow.api("GET", f"/dags/{SCHEDULED}/dagRuns", params={"limit": 100})["dag_runs"]
    by_day = {to_epoch(r["logical_date"]): r["dag_run_id"] for r in runs if r["run_type"] == "backfill"}
    return {n: by_day[day(n)] for n in range(first, last + 1)}


def task_states(d: Deployment, run_id: str) -> dict[str, str]:
    run = d.airflow.wait_for_run(SCHEDULED, run_id)
    assert run["state"] == "success", f"run {run_id}\n{d.airflow.task_log(SCHEDULED, run_id)}"
    return {t["task_id"]: t["state"] for t in run["task_instances"]}


def accounts_offline(d: Deployment, first: int, last: int) -> pd.DataFrame:
    frame = offline_rows(d.root, "accounts", day(first), day(last + 1))
    return frame.sort_values(["accountID", "timestamp"]).reset_index(drop=True)


def assert_quiet(text: str, where: str) -> None:
    found = [noise for noise in NOISE if noise in text]
    assert not found, f"{where} carries {found}:\n{text[-3000:]}"


def test_airflow_backfill_materializes_exactly_its_days_skips_them_again_and_force_redoes_them(
    deployment: Deployment,
) -> None:
    d = deployment
    d.airflow.unpause(SCHEDULED)
    output = airflow_backfill(d, 1, 3)
    assert_quiet(output, "airflow backfill create")
    runs = backfill_runs(d, 1, 3)
    listed = subprocess.run(
        [d.airflow.airflow, "dags", "list-runs", SCHEDULED, "--output", "plain"],
        env=d.airflow.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert all(run_id in listed.stdout for run_id in runs.values()), listed.stdout + listed.stderr
    assert_quiet(listed.stdout + listed.stderr, "airflow dags list-runs")  # graphviz warned here
    for run_id in runs.values():
        assert task_states(d, run_id)["materialize"] == "success"
    first = [j for j in d.jobs("accounts") if j.airflow and j.airflow["run_id"] in runs.values()]
    assert sorted((j.start, j.end, j.state) for j in first) == [
        (day(n), day(n + 1), "succeeded") for n in (1, 2, 3)
    ]
    assert all(j.rows_written["offline"] == 40 for j in first), [j.to_json() for j in first]
    landed = accounts_offline(d, 1, 3)
    assert len(landed) == 120 and not landed[["accountID", "timestamp"]].duplicated().any()
    for n, run_id in runs.items():  # our progress lines, and no warning, in a real task log
        logs = d.airflow.task_log(SCHEDULED, run_id, lines=400)
        assert f"1 job(s) claimed for [{iso(day(n))}, {iso(day(n + 1))})" in logs, logs
        assert "[1/1] accounts v1" in logs, logs
        assert_quiet(logs, f"the task logs of {run_id}")

    # Rerun: the same runs, cleared and queued again under their old run ids; Complete time is
    # skipped, and the run shows it.
    airflow_backfill(d, 1, 3, "--reprocess-behavior", "completed")
    assert backfill_runs(d, 1, 3) == runs
    for n, run_id in runs.items():
        states = task_states(d, run_id)
        assert {states[t] for t in ("plan", "materialize", "publish", "finalize")} == {"skipped"}, states
        assert (
            f"nothing to do: [{iso(day(n))}, {iso(day(n + 1))}) is Complete for stores offline, online; "
            "to recompute, backfill with --reprocess-behavior completed and the Param force=true"
        ) in d.airflow.task_log(SCHEDULED, run_id, lines=400)
    assert {j.id for j in d.jobs("accounts") if j.airflow and j.airflow["run_id"] in runs.values()} == {
        j.id for j in first
    }, "a rerun without force wrote a job record"

    # With force the same days are materialized again: 3 new jobs, the rows replaced, not added.
    airflow_backfill(d, 1, 3, "--reprocess-behavior", "completed", "--dag-run-conf", '{"force": true}')
    assert backfill_runs(d, 1, 3) == runs
    for run_id in runs.values():
        assert task_states(d, run_id)["finalize"] == "success"
    mine = [j for j in d.jobs("accounts") if j.airflow and j.airflow["run_id"] in runs.values()]
    forced = [j for j in mine if j.id not in {r.id for r in first}]
    assert sorted((j.start, j.end, j.state) for j in forced) == [
        (day(n), day(n + 1), "succeeded") for n in (1, 2, 3)
    ], [j.to_json() for j in mine]
    assert all(j.airflow and j.airflow["clear_number"] == 2 for j in forced)
    again = accounts_offline(d, 1, 3)
    assert len(again) == 120
    pd.testing.assert_frame_equal(again, landed)
    # The publish task of the forced attempt emitted the events of its own jobs only.
    for run_id in runs.values():
        found = d.airflow.api(
            "GET",
            "/assets/events",
            params={"source_dag_id": SCHEDULED, "source_run_id": run_id, "limit": 100},
        )["asset_events"]
        assert sorted(e["extra"]["job_id"] for e in found) == sorted(
            j.id for j in mine if j.airflow["run_id"] == run_id for _store in ("offline", "online")
        )


def test_airflow_backfill_and_the_form_dag_over_overlapping_days_materialize_each_day_once(
    deployment: Deployment,
) -> None:
    d = deployment
    d.airflow.unpause(SCHEDULED)
    form = d.airflow.trigger(DAG_ID, {"feature_set": "accounts", "start": iso(day(6)), "end": iso(day(9))})
    airflow_backfill(d, 5, 7)  # the data intervals of days 5, 6 and 7
    runs = backfill_runs(d, 5, 7, completed=False)
    assert d.airflow.wait_for_run(DAG_ID, form)["state"] == "success", d.explain(form)
    for run_id in runs.values():
        task_states(d, run_id)  # each succeeds, its plan claiming what the form run did not hold
    jobs = [j for j in d.jobs("accounts") if j.airflow and j.airflow["run_id"] in {form, *runs.values()}]
    assert all(j.state == "succeeded" for j in jobs), [j.to_json() for j in jobs]
    per_day = {n: [j for j in jobs if (j.start, j.end) == (day(n), day(n + 1))] for n in range(5, 9)}
    assert {n: len(found) for n, found in per_day.items()} == {5: 1, 6: 1, 7: 1, 8: 1}, per_day
    assert per_day[5][0].airflow["run_id"] == runs[5] and per_day[8][0].airflow["run_id"] == form
    landed = accounts_offline(d, 5, 8)
    assert len(landed) == 160 and not landed[["accountID", "timestamp"]].duplicated().any()


def test_the_featurestore_cli_on_an_airflow_host_prints_progress_and_no_warning(
    deployment: Deployment,
) -> None:
    """The CLI finds the config through the Variable in the metadata database, as on a host of
    the deployment, and prints its progress lines and nothing else on stderr."""
    d = deployment
    argv = [str(Path(sys.executable).with_name("featurestore")), "backfill", "accounts"]
    argv += ["--start", iso(day(0)), "--end", iso(day(1))]
    done = subprocess.run(
        argv, env=d.airflow.env, cwd=d.airflow.home, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1/1] accounts v1" in done.stderr and "1 succeeded" in done.stderr, done.stderr
    assert_quiet(done.stderr, "featurestore backfill")


# ---- cancel -------------------------------------------------------------------------------------


def days_with_rows(root: Path, name: str, start: int, end: int) -> dict[int, int]:
    """Offline rows per day of `[start, end)` (days without rows left out)."""
    rows = offline_rows(root, name, start, end) if (root / "data" / "offline" / name).exists() else None
    if rows is None or rows.empty:
        return {}
    days = (rows["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(days=1) * 86400
    return {int(k): int(v) for k, v in days.value_counts().items()}


def test_a_backfill_cancelled_after_its_first_commit_keeps_it_and_the_next_redoes_only_the_rest(
    deployment: Deployment,
) -> None:
    d = deployment
    name, start, end = "transactions_pause", day(3), day(9)  # 6 one-day chunks: 2 tasks of 3
    pause = d.root / "transforms" / "PAUSE"
    pause.write_text("2")  # seconds per chunk
    try:
        run_id = d.backfill(name, start, end)
        d.airflow.wait(
            lambda: d.airflow.check_alive() or complete(d, name, "offline"),
            180,
            "no chunk ever committed",
            every=0.3,
        )
        store = d.store()
        try:
            cancelled = store.cancel(name, run_id=run_id)
        finally:
            store.close()
        # At once: nothing Pending; the committed chunks Complete offline, the rest Incomplete.
        statuses = d.statuses(name)
        assert len(cancelled) == 6 and {j.state for j in cancelled} == {"cancelled"}, cancelled
        assert not any(s == "Pending" for store_ in statuses.values() for _a, _b, s in store_), statuses
        kept = complete(d, name, "offline")
        assert kept and union(kept) != [(start, end)], statuses
        run = d.airflow.wait_for_run(DAG_ID, run_id)
    finally:
        pause.unlink(missing_ok=True)
        (d.root / "transforms" / "PAUSED").unlink(missing_ok=True)
    assert run["state"] == "failed", d.explain(run_id)  # finalize: jobs were cancelled
    tries = [(t["state"], t["try_number"]) for t in run["task_instances"] if t["task_id"] == "materialize"]
    assert tries == [("failed", 1), ("failed", 1)], tries  # no retry redoes cancelled time
    assert complete(d, name, "offline") == kept, d.statuses(
        name
    )  # a commit after the cancel stays Incomplete
    jobs = [j for j in d.jobs(name) if j.airflow and j.airflow["run_id"] == run_id]
    assert {(j.state, j.error) for j in jobs} == {("cancelled", "cancelled: by featurestore cancel")}
    # Each task stopped at its next chunk edge: beyond the Complete days, at most its chunk in
    # flight has rows; every day with rows has each source row once.
    written = days_with_rows(d.root, name, start, end)
    kept_days = sum((b - a) // 86400 for a, b in kept)
    assert len(written) <= kept_days + 2 < 6 + 2, (written, kept)
    for first, count in written.items():
        assert count == len(source_rows(d.root, first, first + 86400)), (first, written)

    again_id = d.backfill(name, start, end)
    again = d.airflow.wait_for_run(DAG_ID, again_id)
    assert again["state"] == "success", d.explain(again_id)
    assert_complete(d, name, start, end)
    redo = [j for j in d.jobs(name) if j.airflow and j.airflow["run_id"] == again_id]
    offline_kept = {a for a0, b0 in kept for a in range(a0, b0, 86400)}
    assert sorted((j.start, j.stores) for j in redo) == [
        (t, ("online",) if t in offline_kept else ("offline", "online")) for t in range(start, end, 86400)
    ], "the next backfill redid more than the cancelled time"
    landed = offline_rows(d.root, name, start, end)
    assert len(landed) == len(source_rows(d.root, start, end))
    assert not landed[["accountID", "timestamp"]].duplicated().any()
    assert_online_latest(d, name)


def test_marking_a_running_materialize_task_failed_cancels_its_jobs_at_once(deployment: Deployment) -> None:
    d = deployment
    name, start, end = "transactions_pause", day(1), day(3)
    pause, paused = d.root / "transforms" / "PAUSE", d.root / "transforms" / "PAUSED"
    pause.write_text("30")
    paused.unlink(missing_ok=True)
    try:
        run_id = d.backfill(name, start, end)
        # Airflow's SIGTERM runs on_kill when the task's main thread is in Python (here: the
        # transformation's sleep); one blocked in a long engine call past Airflow's 5 s escalation
        # is SIGKILLed first, and its time waits for the run's finalize (README "Cancelling").
        d.airflow.wait(
            lambda: d.airflow.check_alive() or paused.exists(), 120, f"no chunk of run {run_id} started"
        )
        job = next(j for j in d.jobs(name) if j.state == "running" and j.start == start)
        d.airflow.api(
            "PATCH",
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/materialize/0",
            json={"new_state": "failed"},
        )
        # The lease is 10 minutes: the time turns Incomplete because the jobs were cancelled, by
        # the task's on_kill or, when it runs first, by the run's finalize (Airflow runs the
        # all_done tasks as soon as the task is marked failed, before it signals its process).
        d.airflow.wait(
            lambda: next(j for j in d.jobs(name) if j.id == job.id).state == "cancelled",
            60,
            "neither on_kill nor finalize cancelled the job",
        )
        statuses = d.statuses(name)["offline"]
        assert not any(s == "Pending" for _a, _b, s in statuses), statuses
        assert any(
            s == "Incomplete" and to_epoch(a) <= start and end <= to_epoch(b) for a, b, s in statuses
        ), statuses
        run = d.airflow.wait_for_run(DAG_ID, run_id)
    finally:
        pause.unlink(missing_ok=True)
        paused.unlink(missing_ok=True)
    assert run["state"] == "failed", d.explain(run_id)
    jobs = [j for j in d.jobs(name) if j.airflow and j.airflow["run_id"] == run_id]
    assert {j.state for j in jobs} == {"cancelled"}, [j.to_json() for j in jobs]
    assert {j.error for j in jobs} <= {
        "cancelled: the Airflow task was killed",
        "cancelled: not finished when its Airflow run ended",
    }, [j.to_json() for j in jobs]
    print(f"\nmarked failed: cancelled by {'on_kill' if 'killed' in str(jobs[0].error) else 'finalize'}")
