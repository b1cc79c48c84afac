"""The DAGs in `dags/` under real Airflow: parsing, and `dag.test()` runs on the real embedded
engine, Delta and Redis.

Airflow reads AIRFLOW_HOME when it is first imported, so every Airflow step runs in a
subprocess with its own home and metadata database; the assertions read the interval table,
the Delta table and Redis from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from deltalake import DeltaTable
from support.airflow_runs import PRINT_RESULT, migrated_airflow_home, run_script
from support.fraud import expected_rolling
from support.intervals_view import statuses as interval_view  # noqa: E402

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86400
TODAY = to_epoch(datetime.now(UTC).date())
FIRST_DAY = TODAY - 10 * DAY


def day(offset: int) -> str:
    return iso(FIRST_DAY + offset * DAY)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated Airflow metadata database for the module (SQLite)."""
    return migrated_airflow_home(tmp_path_factory)


@pytest.fixture
def fraud(tmp_path: Path, airflow_home: Path):  # type: ignore[no-untyped-def]
    """A private fraud feature store with recent data, and the environment Airflow runs with."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"d{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    config.write_text(config.read_text().replace("project: fraud", f"project: {project}"))
    start = datetime.fromtimestamp(FIRST_DAY, UTC).strftime("%Y-%m-%d")
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "generate_data.py"),
            "--out",
            str(root / "data"),
            "--accounts",
            "40",
            "--transactions-per-day",
            "300",
            "--start",
            start,
            "--days",
            "10",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "FEATURESTORE_CONFIG": str(config),
        "FEATURESTORE_REDIS_URL": REDIS_URL,
    }
    yield root, env
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)


def in_airflow(env: dict[str, str], code: str) -> dict:
    """Run `code` in a fresh Python with Airflow configured by `env`; it sets `result`."""
    return run_script(env, textwrap.dedent(code) + PRINT_RESULT)[0]


DAG_TEST = """
import datetime
import runpy
dags = runpy.run_path({dags!r})
dag = dags[{dag_id!r}]
run = dag.test({kwargs})
tis = run.get_task_instances()
result = {{
    "state": str(run.state),
    "run_id": run.run_id,
    "interval": [run.data_interval_start.isoformat(), run.data_interval_end.isoformat()],
    "tasks": sorted([ti.task_id, ti.map_index, str(ti.state)] for ti in tis),
}}
from airflow.models.asset import AssetEvent
from airflow.utils.session import create_session
with create_session() as session:
    result["asset_events"] = sorted(
        [e.asset.name, e.extra.get("start"), e.extra.get("rows_written")]
        for e in session.query(AssetEvent).all()
        if e.source_run_id == run.run_id
    )
"""


def dag_test(env: dict[str, str], dag_id: str, kwargs: str) -> dict:
    return in_airflow(
        env, DAG_TEST.format(dags=str(ROOT / "dags" / "featurestore_dags.py"), dag_id=dag_id, kwargs=kwargs)
    )


def dag_test_with_output(env: dict[str, str], dag_id: str, kwargs: str = "") -> tuple[dict, str]:
    """One `dag.test()` run in a fresh process: the run's result (its task states, the DAG's
    shape and timetable) and everything it printed (the tasks' logs)."""
    script = DAG_TEST.format(dags=str(ROOT / "dags" / "featurestore_dags.py"), dag_id=dag_id, kwargs=kwargs)
    script += """
result["shape"] = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
result["timetable"] = getattr(dag.timetable, "expression", None)
"""
    return run_script(env, script + PRINT_RESULT)


def statuses(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    return interval_view(root / "featurestore.yaml")


def test_the_dags_parse_without_touching_an_engine_redis_or_a_database(fraud) -> None:  # type: ignore[no-untyped-def]
    _root, env = fraud
    result = in_airflow(
        env,
        f"""
        import socket, sys
        import sqlalchemy
        import airflow.sdk  # Airflow's own start-up (its metadata engine) happens before parsing
        def refuse(*args, **kwargs):
            raise AssertionError("a connection was opened while parsing")
        socket.socket.connect = refuse
        sqlalchemy.create_engine = refuse
        import runpy
        dags = runpy.run_path({str(ROOT / "dags" / "featurestore_dags.py")!r})
        found = {{k: v for k, v in dags.items() if k.startswith("featurestore_")}}
        backfill = found["featurestore_backfill"]
        result = {{
            "dag_ids": sorted(found),
            "params": {{k: backfill.params.get_param(k).schema for k in backfill.params}},
            "schedule": {{k: type(d.timetable).__name__ for k, d in found.items()}},
            "heavy": sorted(m for m in ("pysail", "pyspark", "transforms") if m in sys.modules),
        }}
    """,
    )
    assert result["dag_ids"] == [
        "featurestore_backfill",
        "featurestore_materialize__accounts",
        "featurestore_materialize__transactions",
        "featurestore_monitor",
    ]
    params = result["params"]
    assert params["feature_set"]["enum"] == ["accounts", "transactions"]
    assert params["version"]["type"] == ["null", "integer"]
    assert params["start"]["format"] == params["end"]["format"] == "date-time"
    assert params["data_status"]["items"]["enum"] == ["None", "Pending", "Complete", "Incomplete"]
    assert params["stores"]["items"]["enum"] == ["offline", "online"]
    assert params["max_jobs"]["type"] == "integer"
    assert result["schedule"]["featurestore_materialize__transactions"] == "CronDataIntervalTimetable"
    assert result["schedule"]["featurestore_monitor"] == "CronTriggerTimetable"
    assert result["heavy"] == [], "parsing imported an engine or a transformation"


def test_the_form_draws_data_status_and_stores_as_multi_selects(fraud) -> None:  # type: ignore[no-untyped-def]
    """Airflow 3's trigger form draws an array Param as a multi-select only when its options are at
    the Param's top level (`examples` or `enum`); with `items.enum` alone it is a free-text box.
    (The widget itself is checked in a browser in test_status_page.py.)"""
    _root, env = fraud
    result = in_airflow(
        env,
        f"""
        import runpy
        dags = runpy.run_path({str(ROOT / "dags" / "featurestore_dags.py")!r})
        params = dags["featurestore_backfill"].params
        result = {{
            k: {{"schema": params.get_param(k).schema, "default": params[k]}}
            for k in ("data_status", "stores", "max_jobs")
        }}
        for k in ("data_status", "stores", "max_jobs"):
            params.get_param(k).resolve(params[k])  # the defaults are valid values
    """,
    )
    status, stores = result["data_status"], result["stores"]
    assert status["schema"]["type"] == stores["schema"]["type"] == "array"
    assert status["schema"]["examples"] == ["None", "Pending", "Complete", "Incomplete"]
    assert stores["schema"]["examples"] == ["offline", "online"]
    assert (
        "enum" not in status["schema"] and "enum" not in stores["schema"]
    )  # would constrain the array itself
    assert status["default"] == ["None", "Incomplete"]
    assert stores["default"] == ["offline", "online"]
    assert result["max_jobs"]["default"] == 10_000 and result["max_jobs"]["schema"]["minimum"] == 1


def test_with_only_the_airflow_variable_set_the_dags_parse_and_a_backfill_materializes(
    fraud, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The Airflow Variable featurestore_config alone (no FEATURESTORE_CONFIG) names the config to
    the DAG file, parsed by a DagBag, and to the tasks of a backfill run."""
    root, env = fraud
    env = {k: v for k, v in env.items() if k != "FEATURESTORE_CONFIG"}
    env["AIRFLOW_VAR_FEATURESTORE_CONFIG"] = str(root / "featurestore.yaml")  # Airflow's env Variable
    parsed = in_airflow(
        env,
        f"""
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        result = {{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dag_ids": sorted(bag.dag_ids)}}
    """,
    )
    assert parsed == {
        "errors": {},
        "dag_ids": [
            "featurestore_backfill",
            "featurestore_materialize__accounts",
            "featurestore_materialize__transactions",
            "featurestore_monitor",
        ],
    }
    conf = {"feature_set": "transactions", "start": day(7), "end": day(8)}
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "success", run
    offline = DeltaTable(str(root / "data" / "offline" / "transactions" / "v1")).to_pandas()
    assert len(offline) == 300
    expected = expected_rolling(root, FIRST_DAY + 7 * DAY, FIRST_DAY + 8 * DAY)
    latest = expected.sort_values("timestamp").groupby("accountID").last()["transaction_7d_count"]
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)  # this process reads Redis too
    store = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False)
    served = store.get_online("transactions", [{"accountID": a} for a in latest.index])
    store.close()
    assert {row["accountID"]: row["transaction_7d_count"] for row in served} == latest.to_dict()


def test_a_form_backfill_of_more_than_max_jobs_fails_its_plan_naming_the_count(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    conf = {"feature_set": "transactions", "start": day(4), "end": day(7), "max_jobs": 2}
    run, output = dag_test_with_output(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "failed"
    assert ["plan", -1, "failed"] in run["tasks"]
    window = f"[{day(4)}, {day(7)})"
    assert (
        f"bad backfill request: the backfill of transactions v1 {window} would plan 3 jobs, more than the 2 allowed"
        in output
    ), output[-3000:]
    assert statuses(root) == {"offline": [], "online": []}  # nothing claimed
    assert (
        FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).jobs("transactions") == []
    )
    conf["max_jobs"] = 3  # raised: the same backfill runs
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "success", run
    assert statuses(root)["offline"] == [(day(4), day(7), "Complete")]


def test_a_backfill_run_materializes_its_window_with_one_mapped_task_per_batch(fraud) -> None:  # type: ignore[no-untyped-def]
    """... and, with Airflow's stats on StatsD, sends its figures there (`statsd_received`)."""
    root, env = fraud
    receiver = StatsdReceiver()
    env = {
        **env,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(receiver.port),
    }
    conf = {"feature_set": "transactions", "start": day(6), "end": day(9)}
    try:
        run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    finally:
        received = featurestore_stats(receiver.close())
    assert run["state"] == "success", run
    mapped = [t for t in run["tasks"] if t[0] == "materialize"]
    assert len(mapped) == 1 and mapped[0][2] == "success"  # 3 daily jobs: one 30d batch, one task
    assert statuses(root) == {
        "offline": [(day(6), day(9), "Complete")],
        "online": [(day(6), day(9), "Complete")],
    }
    jobs = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).jobs("transactions")
    assert len(jobs) == 3 and all(j.state == "succeeded" for j in jobs)
    for job in jobs:
        assert job.airflow["dag_id"] == "featurestore_backfill"
        assert job.airflow["run_id"] == run["run_id"]
        assert job.airflow["task_id"] == "materialize" and job.airflow["try_number"] == 1
    assert len(DeltaTable(str(root / "data" / "offline" / "transactions" / "v1")).to_pandas()) == 900
    project = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    events = run["asset_events"]
    assert sorted({name for name, _start, _rows in events}) == [
        f"featurestore.{project}.transactions.v1.offline",
        f"featurestore.{project}.transactions.v1.online",
    ]
    offline = sorted((start, rows) for name, start, rows in events if name.endswith(".offline"))
    assert offline == [(day(6), 300), (day(7), 300), (day(8), 300)]
    statsd_received(root, received, jobs=3, offline=900)


def statsd_received(root: Path, received: dict[str, list[str]], *, jobs: int, offline: int) -> None:
    """The materialize task's figures as StatsD got them: rows written per store equal to the
    rows in Delta and the keys in Redis, jobs by state, a timing per job; each under its tagged
    name (here summed over tags, which plain StatsD drops) and with its tags in the name."""
    store = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False)
    layout = store.online_layout(store.spec("transactions"))
    store.close()
    keys = {k.decode() for k in redis.Redis.from_url(REDIS_URL).scan_iter(f"{layout.prefix}*")}
    online = len(keys - {layout.marker_key})  # one key per account, the marker aside
    assert len(DeltaTable(str(root / "data" / "offline" / "transactions" / "v1")).to_pandas()) == offline

    def counted(name: str) -> int:
        values = received.get(name, [])
        assert all(v.endswith("|c") for v in values), values
        return sum(int(v.split("|")[0]) for v in values)

    assert online > 0, received
    assert counted("featurestore.rows_written") == offline + online
    assert counted("featurestore.rows_written.transactions.v1.offline") == offline
    assert counted("featurestore.rows_written.transactions.v1.online") == online
    assert counted("featurestore.jobs.transactions.v1.succeeded") == counted("featurestore.jobs") == jobs
    assert counted("featurestore.rows_read.transactions.v1") == counted("featurestore.rows_read") > 0
    timings = received["featurestore.job_duration.transactions.v1.succeeded"]
    assert len(timings) == len(received["featurestore.job_duration"]) == jobs
    assert all(v.endswith("|ms") for v in timings)


class StatsdReceiver:
    """A StatsD server as far as the wire goes: a UDP socket on loopback that keeps every line
    it receives (a thread drains it while Airflow runs, so no datagram is dropped)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines += self.sock.recv(65535).decode().splitlines()
            except TimeoutError:
                continue

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.lines


def featurestore_stats(lines: list[str]) -> dict[str, list[str]]:
    """Our StatsD lines by name, Airflow's `airflow.` prefix off: {"featurestore.jobs": ["3|c"]}."""
    ours: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.startswith("airflow.featurestore."):
            ours.setdefault(name.removeprefix("airflow."), []).append(value)
    return ours


def test_a_bad_form_value_fails_the_run_and_claims_nothing(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    conf = {"feature_set": "transactions", "start": day(9), "end": day(6)}
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "failed"
    assert ["plan", -1, "failed"] in run["tasks"]
    assert statuses(root) == {"offline": [], "online": []}
    assert (
        FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).jobs("transactions") == []
    )


def test_a_scheduled_run_materializes_exactly_its_data_interval(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    logical = datetime.fromtimestamp(FIRST_DAY + 7 * DAY, UTC)
    run = dag_test(env, "featurestore_materialize__transactions", f"logical_date={logical!r}")
    assert run["state"] == "success", run
    start, end = (iso(to_epoch(t)) for t in run["interval"])
    assert to_epoch(end) - to_epoch(start) == DAY, "the data interval is the schedule's period"
    assert statuses(root) == {"offline": [(start, end, "Complete")], "online": [(start, end, "Complete")]}


def test_a_scheduled_run_marks_online_time_redis_lost_and_the_backfill_dag_repairs_it(
    fraud, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A scheduled run's plan checks the stores first: online time whose Redis data was lost
    (here: every key of this feature store, its marker among them) turns Incomplete with the
    reason in its job, while the run materializes its own interval; the backfill DAG with its
    default data statuses (None, Incomplete) then refills it from the offline table."""
    root, env = fraud
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)  # this process reads Redis too
    config = str(root / "featurestore.yaml")
    logical = datetime.fromtimestamp(FIRST_DAY + 7 * DAY, UTC)
    first = dag_test(env, "featurestore_materialize__transactions", f"logical_date={logical!r}")
    assert first["state"] == "success", first
    s1, e1 = (iso(to_epoch(t)) for t in first["interval"])
    store = FeatureStore(config, check_transformations=False)
    accounts = [{"accountID": f"A{i:04d}"} for i in range(40)]
    served = store.get_online("transactions", accounts)
    assert any(v["transaction_7d_count"] is not None for v in served)
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.scan_iter(f"{store.config.project}:*", count=1000))  # Redis lost it all

    later = datetime.fromtimestamp(FIRST_DAY + 8 * DAY, UTC)
    second = dag_test(env, "featurestore_materialize__transactions", f"logical_date={later!r}")
    assert second["state"] == "success", second
    s2, e2 = (iso(to_epoch(t)) for t in second["interval"])
    assert s2 == e1
    assert statuses(root) == {
        "offline": [(s1, e2, "Complete")],
        "online": [(s1, e1, "Incomplete"), (s2, e2, "Complete")],
    }
    [lost] = [j for j in store.jobs("transactions") if iso(j.start) == s1]
    assert lost.error.startswith("online lost:") and "no longer holds the marker" in lost.error

    conf = {"feature_set": "transactions", "start": s1, "end": e2}
    repair = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert repair["state"] == "success", repair
    assert statuses(root) == {"offline": [(s1, e2, "Complete")], "online": [(s1, e2, "Complete")]}
    [redo] = [j for j in store.jobs("transactions") if j.airflow and j.airflow["run_id"] == repair["run_id"]]
    assert (iso(redo.start), redo.stores, redo.reads) == (s1, ("online",), "offline")
    now = store.get_online("transactions", accounts)
    for old, new in zip(served, now, strict=True):  # day 1's values back, or day 2's fresher ones
        assert new["transaction_7d_count"] is not None or old["transaction_7d_count"] is None
    assert store.check("transactions").consistent
    store.close()


def test_a_backfill_larger_than_max_map_length_runs_in_batches(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    spec = root / "featuresets" / "transactions.yaml"
    spec.write_text(spec.read_text().replace("max_batch_window: 30d", "max_batch_window: 1d"))
    env = {**env, "AIRFLOW__CORE__MAX_MAP_LENGTH": "2"}
    conf = {"feature_set": "transactions", "start": day(4), "end": day(9), "stores": ["offline"]}
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "success", run
    assert len([t for t in run["tasks"] if t[0] == "materialize"]) == 2  # 5 one-day batches in 2 tasks
    assert statuses(root)["offline"] == [(day(4), day(9), "Complete")]
    assert statuses(root)["online"] == []  # never requested
    jobs = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).jobs("transactions")
    assert len(jobs) == 5 and {j.stores for j in jobs} == {("offline",)}


def test_task_groups_are_contiguous_batches_and_never_more_than_allowed() -> None:
    from airflow_provider_featurestore.airflow.operators.featurestore import task_groups
    from airflow_provider_featurestore.core.interval_table import JobRecord

    jobs = [JobRecord(f"j{i}", "t", 1, i * DAY, (i + 1) * DAY, ("offline",), "queued") for i in range(5000)]
    ids = [j.id for j in jobs]
    groups = task_groups(jobs, 30 * DAY, 1024)
    assert [i for g in groups for i in g] == ids  # every job once, in time order
    assert len(groups) == 167 and all(len(g) == 30 for g in groups[:-1])  # a batch per task
    groups = task_groups(jobs, DAY, 1024)  # 5000 one-day batches: several per task
    assert len(groups) <= 1024 and [i for g in groups for i in g] == ids
    assert task_groups(jobs[:3], DAY, 1024) == [["j0"], ["j1"], ["j2"]]
    assert task_groups(jobs[:3], 30 * DAY, 1024) == [["j0", "j1", "j2"]]
    assert task_groups([], DAY, 1024) == []


def test_the_example_training_dag_waits_for_its_day_then_trains_on_it(fraud) -> None:  # type: ignore[no-untyped-def]
    """A real backfill (the backfill DAG, the embedded engine, Redis) completes two days; the
    training run for the first of them finds its day Complete offline (its sensor succeeds on the
    first look) and trains on exactly that day's rows."""
    root, env = fraud
    run = dag_test(
        env,
        "featurestore_backfill",
        f"run_conf={{'feature_set': 'transactions', 'start': {day(7)!r}, 'end': {day(9)!r}}}",
    )
    assert run["state"] == "success", run
    training = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE / "dags")}
    logical = datetime.fromtimestamp(FIRST_DAY + 8 * DAY, UTC)  # a manual run's interval: the day before
    result = in_airflow(
        training,
        f"""
        import datetime
        import runpy
        module = runpy.run_path({str(EXAMPLE / "dags" / "train_fraud_model.py")!r})
        dag = next(v for v in module.values() if getattr(v, "dag_id", None) == "train_fraud_model")
        run = dag.test(logical_date={logical!r})
        result = {{
            "state": str(run.state),
            "tasks": sorted([ti.task_id, str(ti.state)] for ti in run.get_task_instances()),
            "interval": [run.data_interval_start.isoformat(), run.data_interval_end.isoformat()],
        }}
    """,
    )
    assert result["state"] == "success", result
    assert result["tasks"] == [["train", "success"], ["wait_for_features", "success"]]
    assert [iso(to_epoch(t)) for t in result["interval"]] == [day(7), day(8)]
    model = json.loads((root / "data" / "models" / "fraud_model.json").read_text())
    assert model["rows"] == 300 and len(model["weights"]) == 4  # day 7's rows, not day 8's
    assert [iso(to_epoch(t)) for t in model["window"]] == [day(7), day(8)]
    assert model["features"][0] == "transactions:transaction_amount_7d_sum"


def test_a_mapped_task_on_spark_submit_submits_its_batch_once_and_records_chunks_as_they_land(fraud) -> None:  # type: ignore[no-untyped-def]
    """The cluster path under Airflow: one spark-submit for a 3-day batch, counted by a
    `spark-submit` on SPARK_HOME that logs each call and runs pyspark's own. The first day's
    transformation fails at once and the last day's takes a while, so the interval table must show
    the first day Incomplete while the batch's application is still running."""
    import contextlib
    import threading

    import pyspark

    root, env = fraud
    config = root / "featurestore.yaml"
    config.write_text(
        config.read_text().replace(
            "  type: embedded                     # a local Spark session in the worker",
            "  type: spark-submit\n  master: local[2]",
        )
    )
    first, last = FIRST_DAY + 6 * DAY, FIRST_DAY + 8 * DAY
    (root / "transforms" / "timed.py").write_text(
        "import time\nfrom transforms.transactions import transform as rolling\n\n\n"
        "def transform(df, window):\n"
        "    start = int(window.start.timestamp())\n"
        f"    if start == {first}:\n"
        "        raise ValueError('no feed for this day')\n"
        f"    if start == {last}:\n"
        "        time.sleep(8)\n"
        "    return rolling(df, window)\n"
    )
    spec = root / "featuresets" / "transactions.yaml"
    spec.write_text(
        spec.read_text().replace("transforms.transactions:transform", "transforms.timed:transform")
    )
    home, calls = root / "spark_home", root / "spark_submit_calls.log"
    (home / "bin").mkdir(parents=True)
    real = Path(pyspark.__file__).parent
    wrapper = home / "bin" / "spark-submit"
    wrapper.write_text(
        "#!/bin/sh\n"  # one line per call: how many chunks its batch (the --batch-file) holds
        "batch=$(printf '%s\\n' \"$@\" | sed -n '/^--batch-file$/{n;p;q;}')\n"
        f'grep -o \'"job_id"\' "$batch" | wc -l >> "{calls}"\n'
        f'export SPARK_HOME="{real}"\nexec "{real}/bin/spark-submit" "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**env, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable}

    seen: list[dict] = []
    outcome: dict = {}
    conf = {"feature_set": "transactions", "start": day(6), "end": day(9), "stores": ["online"]}
    runner = threading.Thread(
        target=lambda: outcome.update(run=dag_test(env, "featurestore_backfill", f"run_conf={conf!r}"))
    )
    runner.start()
    while runner.is_alive():
        with contextlib.suppress(Exception):  # the interval table may not exist yet
            seen.append(statuses(root))
        runner.join(0.2)
    run = outcome["run"]
    assert run["state"] == "failed", run  # a job failed: the run says so
    assert len([t for t in run["tasks"] if t[0] == "materialize"]) == 1
    # One spark-submit for the 3-day batch; the task's retry re-claims the failed day alone.
    assert calls.read_text().split() == ["3", "1"]
    assert {"online": [(day(6), day(7), "Incomplete"), (day(7), day(9), "Pending")], "offline": []} in seen
    assert statuses(root)["online"] == [(day(6), day(7), "Incomplete"), (day(7), day(9), "Complete")]
    by_start = {
        iso(j.start): j for j in FeatureStore(str(config), check_transformations=False).jobs("transactions")
    }
    assert "no feed for this day" in by_start[day(6)].error
    assert by_start[day(7)].state == by_start[day(8)].state == "succeeded"
    assert all(j.airflow["task_id"] == "materialize" for j in by_start.values())


def test_a_scheduled_run_marks_time_whose_source_changed_and_a_default_backfill_redoes_it(fraud) -> None:  # type: ignore[no-untyped-def]
    """A scheduled run's plan runs the source check too: a late file for a day an earlier run
    materialized turns that day Incomplete in both stores, "source changed: FILE" in its job,
    while the run materializes its own interval (reading the late rows in its lookback)."""
    import pyarrow.parquet as pq

    root, env = fraud
    config = str(root / "featurestore.yaml")
    logical = datetime.fromtimestamp(FIRST_DAY + 7 * DAY, UTC)
    first = dag_test(env, "featurestore_materialize__transactions", f"logical_date={logical!r}")
    assert first["state"] == "success", first
    s1, e1 = (iso(to_epoch(t)) for t in first["interval"])
    source = root / "data" / "source" / "transactions"
    day_file = source / f"part-{s1[:10]}.parquet"
    pq.write_table(pq.read_table(day_file).slice(0, 5), source / "part-late.parquet")  # late rows of that day

    later = datetime.fromtimestamp(FIRST_DAY + 8 * DAY, UTC)
    second = dag_test(env, "featurestore_materialize__transactions", f"logical_date={later!r}")
    assert second["state"] == "success", second
    s2, e2 = (iso(to_epoch(t)) for t in second["interval"])
    assert statuses(root) == {
        "offline": [(s1, e1, "Incomplete"), (s2, e2, "Complete")],
        "online": [(s1, e1, "Incomplete"), (s2, e2, "Complete")],
    }
    with FeatureStore(config, check_transformations=False) as store:
        [marked] = [j for j in store.jobs("transactions") if iso(j.start) == s1]
        assert (marked.error or "").startswith("source changed: part-late.parquet (added)")
        assert store.check_sources("transactions").consistent  # the second run recorded it


def test_a_scheduled_dag_starts_no_earlier_than_source_start(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    spec = root / "featuresets" / "transactions.yaml"
    spec.write_text(
        spec.read_text().replace("  source_delay: 0s\n", f"  source_delay: 0s\n  start: {day(3)}\n")
    )
    code = f"""
import runpy
dag = runpy.run_path({str(ROOT / "dags" / "featurestore_dags.py")!r})["featurestore_materialize__transactions"]
result = dag.start_date.isoformat()
"""
    assert to_epoch(in_airflow(env, code)) == FIRST_DAY + 3 * DAY  # materialization.start is 2024-01-01


# ---- featurestore_monitor -----------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "airflow_provider_featurestore.core.cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def set_freshness(root: Path, name: str, value: str) -> None:
    spec = root / "featuresets" / f"{name}.yaml"
    spec.write_text(
        spec.read_text().replace("materialization:\n", f"materialization:\n  freshness: {value}\n")
    )


def test_the_monitor_fails_the_sla_task_of_the_late_feature_set_only_and_names_the_repair(fraud) -> None:  # type: ignore[no-untyped-def]
    """Real backfills make transactions Complete up to today (within its 2d SLA) and accounts
    only up to a week ago (late); the monitor's lost-state check finds both stores holding their
    time, then the accounts task fails naming each late store and the backfill that repairs it,
    while the transactions task succeeds. The command it names does repair it."""
    root, env = fraud
    set_freshness(root, "accounts", "2d")
    set_freshness(root, "transactions", "2d")
    for name, start, end in (("accounts", day(2), day(3)), ("transactions", day(9), day(10))):
        done = cli(env, "backfill", name, "--start", start, "--end", end)
        assert done.returncode == 0, done.stderr
    run, output = dag_test_with_output(env, "featurestore_monitor")
    assert run["state"] == "failed"
    assert run["tasks"] == [
        ["accounts", -1, "failed"],
        ["checks.lost_state", -1, "success"],
        ["checks.source_changes", -1, "success"],
        ["transactions", -1, "success"],
    ]
    checks = ["checks.lost_state", "checks.source_changes"]
    assert run["shape"] == {
        "checks.lost_state": [],
        "checks.source_changes": [],
        "accounts": checks,
        "transactions": checks,
    }
    assert run["timetable"] == "*/15 * * * *"
    for store in ("offline", "online"):
        assert f"accounts v1 {store}: late: Complete until {day(3)}, 7d " in output, output[-3000:]
        assert f"transactions v1 {store}: ok: Complete until {day(10)}" in output
    repairs = sorted(
        set(
            re.findall(
                r"repair: (featurestore backfill accounts --version 1 --store \w+ --start \S+Z --end \S+Z)",
                output,
            )
        )
    )
    assert [r.split(" --start ")[0] for r in repairs] == [
        "featurestore backfill accounts --version 1 --store offline",
        "featurestore backfill accounts --version 1 --store online",
    ]
    assert all(f"--start {day(3)} --end " in r for r in repairs)
    for repair in repairs:
        done = cli(env, *repair.split()[1:])
        assert done.returncode == 0, done.stderr
    status = cli(env, "status", "--json")
    assert status.returncode == 0, status.stdout
    assert {(r["feature_set"], r["store"], r["state"]) for r in json.loads(status.stdout)} == {
        (name, store, "ok") for name in ("accounts", "transactions") for store in ("offline", "online")
    }


def test_the_monitor_check_marks_lost_state_and_the_sla_tasks_still_judge_what_it_left(fraud) -> None:  # type: ignore[no-untyped-def]
    """Redis loses a feature store's keys: the monitor's lost-state check marks the online time
    Incomplete and fails naming it; the SLA tasks run anyway (all_done) and judge what is left:
    transactions online, with nothing Complete any more, is late; accounts has no SLA."""
    root, env = fraud
    set_freshness(root, "transactions", "2d")
    (root / "featurestore.yaml").write_text(
        (root / "featurestore.yaml").read_text() + 'monitor:\n  schedule: "@hourly"\n'
    )
    done = cli(env, "backfill", "transactions", "--start", day(9), "--end", day(10))
    assert done.returncode == 0, done.stderr
    project = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.scan_iter(f"{project}:*", count=1000))  # Redis lost it all
    client.close()
    run, output = dag_test_with_output(env, "featurestore_monitor")
    assert run["timetable"] == "0 * * * *"  # monitor.schedule, the preset as cron
    assert run["tasks"] == [
        ["accounts", -1, "success"],
        ["checks.lost_state", -1, "failed"],
        ["checks.source_changes", -1, "success"],
        ["transactions", -1, "failed"],
    ]
    assert "lost state marked Incomplete in transactions v1; not checked (unreachable): none" in output
    assert f"transactions v1 online [{day(9)}, {day(10)}): online lost:" in output
    assert "transactions v1 online: late: nothing Complete yet, SLA 2d (172800 s)" in output
    assert f"transactions v1 offline: ok: Complete until {day(10)}" in output
    assert statuses(root) == {
        "offline": [(day(9), day(10), "Complete")],
        "online": [(day(9), day(10), "Incomplete")],
    }


def test_monitor_default_args_give_every_monitor_task_its_alerting(fraud) -> None:  # type: ignore[no-untyped-def]
    _root, env = fraud
    result = in_airflow(
        env,
        """
        from airflow_provider_featurestore.airflow.dag_factory import build_dags
        def page_the_on_call(context):
            pass
        args = {"on_failure_callback": page_the_on_call, "email": ["oncall@example.com"]}
        dag = build_dags(monitor_default_args=args)["featurestore_monitor"]
        result = {}
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            result[task.task_id] = [[c.__name__ for c in callbacks], list(task.email or [])]
    """,
    )
    assert result == {
        name: [["page_the_on_call"], ["oncall@example.com"]]
        for name in ("checks.lost_state", "checks.source_changes", "accounts", "transactions")
    }


def test_the_monitor_source_check_marks_time_whose_source_changed(fraud) -> None:  # type: ignore[no-untyped-def]
    """A late file lands for a day a backfill made Complete: the monitor's source check turns
    that day and the days whose 7-day lookback reads it Incomplete in both stores and fails
    naming them; the lost-state check finds nothing; the next default backfill repairs it."""
    import pyarrow.parquet as pq

    root, env = fraud
    done = cli(env, "backfill", "transactions", "--start", day(7), "--end", day(10))
    assert done.returncode == 0, done.stderr
    source = root / "data" / "source" / "transactions"
    late_day = day(8)[:10]
    pq.write_table(
        pq.read_table(source / f"part-{late_day}.parquet").slice(0, 5), source / "part-late.parquet"
    )
    run, output = dag_test_with_output(env, "featurestore_monitor")
    assert run["tasks"] == [
        ["accounts", -1, "success"],
        ["checks.lost_state", -1, "success"],
        ["checks.source_changes", -1, "failed"],
        ["transactions", -1, "success"],
    ]
    assert "changed source data marked Incomplete in transactions v1" in output
    assert statuses(root) == {
        store: [(day(7), day(8), "Complete"), (day(8), day(10), "Incomplete")]
        for store in ("offline", "online")
    }
    repaired = cli(env, "backfill", "transactions", "--start", day(7), "--end", day(10))
    assert repaired.returncode == 0, repaired.stderr
    assert statuses(root) == {store: [(day(7), day(10), "Complete")] for store in ("offline", "online")}


# ---- a scheduled DAG's plan with nothing to do, and its Param force --------------------------


def test_a_scheduled_run_over_complete_time_is_skipped_and_force_rematerializes_it(fraud) -> None:  # type: ignore[no-untyped-def]
    """What a native backfill does over a day already Complete: the plan, and every task after
    it, ends skipped, saying so in one line; with the Param force the day is materialized again,
    the Delta rows replaced (not added)."""
    root, env = fraud
    config = str(root / "featurestore.yaml")
    dag_id = "featurestore_materialize__transactions"
    logical = datetime.fromtimestamp(FIRST_DAY + 7 * DAY, UTC)
    first = dag_test(env, dag_id, f"logical_date={logical!r}")
    assert first["state"] == "success", first
    start, end = (iso(to_epoch(t)) for t in first["interval"])
    assert len(FeatureStore(config, check_transformations=False).jobs("transactions")) == 1

    again, output = dag_test_with_output(env, dag_id, f"logical_date={logical!r}")
    assert again["state"] == "success", again
    states = {task: state for task, _index, state in again["tasks"]}
    assert states == {
        "wait_for_source": "success",
        "plan": "skipped",
        "materialize": "skipped",
        "publish": "skipped",
        "finalize": "skipped",
    }, again["tasks"]
    assert (
        f"transactions v1: nothing to do: [{start}, {end}) is Complete for stores offline, online; "
        "to recompute, backfill with --reprocess-behavior completed and the Param force=true"
    ) in output, output[-3000:]
    assert len(FeatureStore(config, check_transformations=False).jobs("transactions")) == 1

    forced, output = dag_test_with_output(
        env, dag_id, f"logical_date={logical!r}, run_conf={{'force': True}}"
    )
    assert forced["state"] == "success", forced
    assert "force: Complete time is materialized again too" in output
    # The task logs carry our progress lines, and none of the warnings no user can act on.
    assert "transactions v1: 1 job(s) claimed for" in output and "[1/1] transactions v1" in output
    noise = ("does not yet fully support pandas", "partition_filters", "Variable.get from", "graphviz")
    assert not [n for n in noise if n in output], output[-3000:]
    jobs = FeatureStore(config, check_transformations=False).jobs("transactions")
    assert [(iso(j.start), iso(j.end), j.state) for j in jobs] == [(start, end, "succeeded")] * 2
    assert jobs[0].rows_written["offline"] == 300
    assert statuses(root) == {"offline": [(start, end, "Complete")], "online": [(start, end, "Complete")]}
    assert len(DeltaTable(str(root / "data" / "offline" / "transactions" / "v1")).to_pandas()) == 300


def test_a_bad_force_value_fails_the_plan_and_claims_nothing(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    code = f"""
import runpy
from airflow.sdk.exceptions import AirflowFailException
dag = runpy.run_path({str(ROOT / "dags" / "featurestore_dags.py")!r})["featurestore_materialize__transactions"]
plan = dag.get_task("plan")
plan.start, plan.end, plan.force = {day(7)!r}, {day(8)!r}, "maybe"
try:
    plan.execute({{"ti": None}})
    result = "ran"
except AirflowFailException as exc:
    result = str(exc)
"""
    assert in_airflow(env, code) == "bad backfill request: force: 'maybe' is not true or false"
    assert statuses(root) == {"offline": [], "online": []}


# ---- several feature stores in one Airflow ---------------------------------------------------


def second_store(root: Path, tmp_path: Path, project: str) -> Path:
    """A copy of the fraud store (its data included) under another project name."""
    other = tmp_path / "other"
    shutil.copytree(root, other, ignore=shutil.ignore_patterns("intervals.db", "offline", "__pycache__"))
    config = other / "featurestore.yaml"
    config.write_text(re.sub(r"(?m)^project: .*$", f"project: {project}", config.read_text()))
    return other


def test_two_configs_in_the_variable_build_two_prefixed_sets_of_dags_each_bound_to_its_config(
    fraud, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Parsing only: a backfill on each store's DAG landing in that store alone is run on a
    running Airflow by tests/system/test_two_stores.py."""
    root, env = fraud
    first = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    second = f"s{uuid.uuid4().hex[:10]}"
    other = second_store(root, tmp_path, second)
    env = {k: v for k, v in env.items() if k != "FEATURESTORE_CONFIG"}
    configs = [str(root / "featurestore.yaml"), str(other / "featurestore.yaml")]
    env["AIRFLOW_VAR_FEATURESTORE_CONFIG"] = json.dumps(configs)
    parsed = in_airflow(
        env,
        f"""
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        result = {{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dag_ids": sorted(bag.dag_ids),
                   "config_paths": sorted({{t.config_path for d in bag.dags.values() for t in d.tasks
                                            if d.dag_id.startswith({second!r}) and hasattr(t, "config_path")}})}}
    """,
    )
    names = (
        "featurestore_backfill",
        "featurestore_materialize__accounts",
        "featurestore_materialize__transactions",
    )
    expected = sorted(f"{p}__{n}" for p in (first, second) for n in (*names, "featurestore_monitor"))
    assert parsed == {"errors": {}, "dag_ids": expected, "config_paths": [configs[1]]}


def test_two_configs_of_one_project_fail_parsing_naming_both_files(fraud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    other = second_store(root, tmp_path, "unused")
    config = other / "featurestore.yaml"
    project = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    config.write_text(re.sub(r"(?m)^project: .*$", f"project: {project}", config.read_text()))
    env = {k: v for k, v in env.items() if k != "FEATURESTORE_CONFIG"}
    env["AIRFLOW_VAR_FEATURESTORE_CONFIG"] = json.dumps([str(root / "featurestore.yaml"), str(config)])
    error = in_airflow(
        env,
        f"""
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        result = [str(v).strip().splitlines()[-1] for v in bag.import_errors.values()]
    """,
    )
    assert (
        len(error) == 1
        and f"project: {project!r} is also the project of {root / 'featurestore.yaml'}" in error[0]
    )
    assert str(config) in error[0] or "other/featurestore.yaml" in error[0], error


def test_one_store_per_dag_file_with_prefix_project(fraud) -> None:  # type: ignore[no-untyped-def]
    root, env = fraud
    project = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    code = f"""
from airflow_provider_featurestore.airflow.dag_factory import build_dags
result = sorted(build_dags({str(root / "featurestore.yaml")!r}, prefix_project=True))
"""
    assert in_airflow(env, code) == sorted(
        f"{project}__{n}"
        for n in (
            "featurestore_backfill",
            "featurestore_materialize__accounts",
            "featurestore_materialize__transactions",
            "featurestore_monitor",
        )
    )
