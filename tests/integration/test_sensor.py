"""`FeatureStoreSensor` and its trigger under real Airflow (`dag.test()`, which runs a deferred
task's trigger in-process) against a real interval table (SQLite).

The window's statuses are set through the interval table's own API (claim: Pending; finish a
job: Complete or Incomplete), from this process or from a thread inside the Airflow run that
waits for a state (the sensor deferred, or rescheduled) before it finishes the job. Airflow reads
AIRFLOW_HOME when first imported, so each Airflow step runs in a subprocess with its own home
(as in test_dags.py); the assertions read the run's states, the interval table and the log.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from support.airflow_runs import PRINT_RESULT, migrated_airflow_home, run_script
from support.fraud import EXAMPLE

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord, StreamKey
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

DAY = 86400
FIRST = to_epoch("2024-03-01")
KEY = StreamKey("transactions", 1)
STORES = ("offline", "online")


def day(offset: int) -> int:
    return FIRST + offset * DAY


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated Airflow metadata database for the module (SQLite)."""
    return migrated_airflow_home(tmp_path_factory)


@pytest.fixture
def fraud(tmp_path: Path, airflow_home: Path):  # type: ignore[no-untyped-def]
    """A private copy of the fraud example's config (no data: nothing is materialized here), its
    interval table opened, and the environment Airflow runs with."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (root / "data").mkdir()
    config = str(root / "featurestore.yaml")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FEATURESTORE_CONFIG": config,
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),  # dag.test() parses the DAG's own file
    }
    store = FeatureStore(config, check_transformations=False)
    yield store, env
    store.close()


def pending(store: FeatureStore, start: int, end: int, stores: tuple[str, ...] = STORES) -> list[JobRecord]:
    """Claim `[start, end)` as Pending, one job per day, as a backfill's plan does."""
    return store.table.claim(KEY, start, end, {"None", "Incomplete"}, stores, DAY)


def statuses(store: FeatureStore) -> dict[str, list[tuple[str, str, str]]]:
    found = store.intervals("transactions")
    return {s: [(iso(i.start), iso(i.end), i.status) for i in items] for s, items in found.items()}


DAG_FILE = """
import datetime
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_provider_featurestore.airflow.sensors import FeatureStoreSensor

def daily_dag(dag_id):
    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        catchup=False,
    )
"""

PRELUDE = """
import datetime, os, runpy, threading, time
import sqlalchemy.orm
from airflow.models import import_all_models
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskreschedule import TaskReschedule
from airflow.models.trigger import Trigger
from airflow.utils.session import create_session
from airflow_provider_featurestore.core.featurestore import FeatureStore

# Every model imported and mapped here, before a watching thread queries while dag.test() imports
# (two threads importing Airflow's models at once deadlock on the import lock).
import_all_models()
sqlalchemy.orm.configure_mappers()
CONFIG = os.environ["FEATURESTORE_CONFIG"]
store = FeatureStore(CONFIG, check_transformations=False)
from airflow.sdk import DAG
dag = next((v for v in runpy.run_path(DAG_FILE_PATH).values() if isinstance(v, DAG)), None)

def deferred(start):
    '''Whether a sensor of this feature store deferred on a window starting at `start`: its
    trigger's row is in Airflow's metadata database.'''
    with create_session() as session:
        rows = session.query(Trigger).filter(Trigger.classpath.like("%.FeatureStoreReadinessTrigger"))
        return any(t.kwargs["config_path"] == CONFIG and t.kwargs["start"] == start for t in rows)

def rescheduled(dag_id, task_id):
    '''How many times the task was rescheduled (a poke returned False).'''
    with create_session() as session:
        return (
            session.query(TaskReschedule).join(TaskInstance, TaskReschedule.ti_id == TaskInstance.id)
            .filter(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id).count()
        )

def once(condition, action):
    '''In a thread: wait until `condition()` holds, note what the window looked like then, and
    run `action()`: the other party of the run (a job that finishes while the sensor waits).'''
    seen = {}
    def watch():
        while not condition():
            time.sleep(0.1)
        seen["before"] = [str(i.status) for items in store.intervals("transactions").values() for i in items]
        action()
    threading.Thread(target=watch, daemon=True).start()
    return seen

def outcome(dag, run):
    return {
        "state": str(run.state),
        "tasks": {ti.task_id: [str(ti.state), ti.try_number] for ti in run.get_task_instances()},
        "interval": [int(run.data_interval_start.timestamp()), int(run.data_interval_end.timestamp())],
    }
"""


def in_airflow(env: dict[str, str], code: str, dags: str = "") -> tuple[dict, str]:
    """Write a DAG file of DAG_FILE + `dags` (which builds one DAG) into the DAGs
    folder, then run PRELUDE (`dag` is that DAG) + `code` (which sets `result`) in a fresh Python
    with Airflow configured by `env`; returns `result` and the process's output (the task logs)."""
    dag_file = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "sensor_dags.py"
    dag_file.parent.mkdir(exist_ok=True)
    dag_file.write_text(DAG_FILE + textwrap.dedent(dags))
    script = PRELUDE.replace("DAG_FILE_PATH", repr(str(dag_file))) + textwrap.dedent(code) + PRINT_RESULT
    return run_script(env, script, timeout=300)


def test_a_deferred_sensor_succeeds_once_the_pending_window_completes(fraud) -> None:  # type: ignore[no-untyped-def]
    """The window is Pending when the run starts: the sensor defers (its trigger is registered),
    the trigger polls in-process, a job finishing in another thread completes the window, and
    the sensor succeeds. Its window is the run's data interval (no start/end given)."""
    store, env = fraud
    [job] = pending(store, day(3), day(4))
    result, output = in_airflow(
        env,
        f"""
        seen = once(lambda: deferred({day(3)}), lambda: store.table.finish_job({job.id!r}, {{"offline": True, "online": True}}))
        run = dag.test(logical_date=datetime.datetime.fromtimestamp({day(4)}, datetime.timezone.utc))
        result = {{**outcome(dag, run), "seen": seen}}
        """,
        dags="""
        with daily_dag("sensor_deferred") as dag:
            FeatureStoreSensor(task_id="wait", feature_set="transactions", poll_interval=0.2, retries=0)
        """,
    )
    assert result["state"] == "success", output[-4000:]
    assert result["tasks"] == {"wait": ["success", 1]}
    assert result["interval"] == [day(3), day(4)]  # a manual run's interval is the day before it
    assert result["seen"]["before"] == ["Pending", "Pending"]  # it had deferred on a Pending window
    assert statuses(store) == {s: [(iso(day(3)), iso(day(4)), "Complete")] for s in STORES}
    window = f"transactions v1 [{iso(day(3))}, {iso(day(4))})"
    assert f"{window} is not Complete: offline Pending" in output
    assert f"{window} is Complete in offline, online" in output


def test_the_trigger_yields_nothing_while_pending_then_the_outcome(fraud) -> None:  # type: ignore[no-untyped-def]
    """The trigger's run() coroutine driven directly: after several looks at a Pending window it
    has fired no event; once the job finishes it fires "ready". A second trigger with
    fail_when_incomplete fires "fail" naming the Incomplete time when its job fails."""
    store, env = fraud
    [ok, bad] = pending(store, day(1), day(3), ("offline",))
    result, _output = in_airflow(
        env,
        f"""
        import asyncio
        import structlog.testing
        from airflow_provider_featurestore.airflow.triggers import FeatureStoreReadinessTrigger

        def looks(logs):
            '''How many undecided looks the trigger has logged.'''
            return len([e for e in logs if "looking again" in e["event"]])

        def trigger(start, end, fail):
            kwargs = dict(
                feature_set="transactions", version=1, stores=["offline"], start=start, end=end,
                config_path=CONFIG, poll_interval=0.05, fail_when_incomplete=fail,
            )
            made = FeatureStoreReadinessTrigger(**kwargs)
            classpath, serialized = made.serialize()
            assert classpath == "airflow_provider_featurestore.airflow.triggers.featurestore.FeatureStoreReadinessTrigger"
            return FeatureStoreReadinessTrigger(**serialized)  # as the triggerer rebuilds it

        async def drive(start, end, fail, job_id, completed):
            '''Run the trigger until it has looked 3 times more; then finish the job; then its event.'''
            with structlog.testing.capture_logs() as logs:
                runs = trigger(start, end, fail).run()
                event = asyncio.ensure_future(anext(runs))
                while looks(logs) < 3 and not event.done():
                    await asyncio.sleep(0.01)
                fired_while_pending = event.done()
                await asyncio.to_thread(store.table.finish_job, job_id, {{"offline": completed}})
                payload = (await asyncio.wait_for(event, 120)).payload
                await runs.aclose()
            return {{"fired_while_pending": fired_while_pending, "looks": looks(logs), "payload": payload}}

        result = {{
            "ready": asyncio.run(drive({day(1)}, {day(2)}, False, {ok.id!r}, True)),
            "fail": asyncio.run(drive({day(2)}, {day(3)}, True, {bad.id!r}, False)),
        }}
        """,
    )
    ready, fail = result["ready"], result["fail"]
    assert ready["fired_while_pending"] is False and fail["fired_while_pending"] is False
    assert ready["looks"] >= 3 and fail["looks"] >= 3
    assert ready["payload"] == {
        "verdict": "ready",
        "message": f"transactions v1 [{iso(day(1))}, {iso(day(2))}) is Complete in offline",
    }
    assert fail["payload"] == {
        "verdict": "fail",
        "message": f"transactions v1 [{iso(day(2))}, {iso(day(3))}) has Incomplete time and no job Pending "
        f"on it: offline [{iso(day(2))}, {iso(day(3))}); backfill it with data status Incomplete",
    }


def test_fail_when_incomplete_fails_at_once_or_when_the_awaited_job_fails_naming_the_time(fraud) -> None:  # type: ignore[no-untyped-def]
    """Two sensors with fail_when_incomplete (and retries, which must not be used): one whose
    window is already partly Incomplete fails on its first look; one that deferred on a Pending
    window fails when that job fails. Both name the Incomplete range and its store."""
    store, env = fraud
    [early] = pending(store, day(1), day(2))
    store.table.finish_job(early.id, {"offline": False, "online": True})  # offline Incomplete
    [late] = pending(store, day(5), day(6), ("online",))
    result, output = in_airflow(
        env,
        f"""
        seen = once(lambda: deferred({day(5)}), lambda: store.table.finish_job({late.id!r}, {{}}, error="lost worker"))
        run = dag.test(logical_date=datetime.datetime.fromtimestamp({day(8)}, datetime.timezone.utc))
        result = {{**outcome(dag, run), "seen": seen}}
        """,
        dags=f"""
        with daily_dag("sensor_fails") as dag:
            common = dict(feature_set="transactions", fail_when_incomplete=True, poll_interval=0.2, retries=2)
            FeatureStoreSensor(task_id="incomplete_already", start="{iso(day(1))}", end="{iso(day(2))}", **common)
            FeatureStoreSensor(task_id="job_fails_later", stores="online", start={day(5)}, end={day(6)}, **common)
        """,
    )
    assert result["state"] == "failed"
    assert result["tasks"] == {"incomplete_already": ["failed", 1], "job_fails_later": ["failed", 1]}
    assert result["seen"]["before"][-1] == "Pending"  # the online day was Pending while it waited
    for start, store_name in ((day(1), "offline"), (day(5), "online")):
        end = start + DAY
        assert (
            f"transactions v1 [{iso(start)}, {iso(end)}) has Incomplete time and no job Pending on it: "
            f"{store_name} [{iso(start)}, {iso(end)}); backfill it with data status Incomplete"
        ) in output, output[-4000:]


def test_deferrable_false_pokes_in_reschedule_mode_until_the_window_completes(fraud) -> None:  # type: ignore[no-untyped-def]
    store, env = fraud
    [job] = pending(store, day(2), day(3), ("offline",))
    result, output = in_airflow(
        env,
        f"""
        assert dag.get_task("wait").mode == "reschedule"
        seen = once(
            lambda: rescheduled("sensor_reschedule", "wait") > 0,
            lambda: store.table.finish_job({job.id!r}, {{"offline": True}}),
        )
        run = dag.test(logical_date=datetime.datetime.fromtimestamp({day(3)}, datetime.timezone.utc))
        result = {{
            **outcome(dag, run),
            "seen": seen,
            "reschedules": rescheduled("sensor_reschedule", "wait"),
            "deferred": deferred({day(2)}),
        }}
        """,
        dags="""
        with daily_dag("sensor_reschedule") as dag:
            FeatureStoreSensor(
                task_id="wait", feature_set="transactions", version=1, stores=["offline"],
                deferrable=False, poll_interval=1, retries=0,
            )
        """,
    )
    assert result["state"] == "success", output[-4000:]
    assert result["tasks"] == {"wait": ["success", 1]}
    assert result["interval"] == [day(2), day(3)]
    assert result["seen"]["before"] == ["Pending"]  # the first poke saw it Pending: False
    assert result["reschedules"] >= 1 and result["deferred"] is False
    assert statuses(store)["offline"] == [(iso(day(2)), iso(day(3)), "Complete")]


def test_the_feature_store_reads_a_windows_readiness_and_refuses_bad_arguments(fraud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`FeatureStore.readiness` (what the sensor and its trigger call), without Airflow: the
    default stores are the enabled ones nobody disabled; each bad argument is one BadInput line."""
    from airflow_provider_featurestore.core.errors import BadInput

    store, _env = fraud
    [job] = pending(store, day(1), day(2), ("offline",))
    store.table.finish_job(job.id, {"offline": True})
    ready = store.readiness("transactions", iso(day(1)), iso(day(2)), stores="offline")
    assert ready.complete and list(ready.stores) == ["offline"]
    both = store.readiness("transactions", day(1), day(2))
    assert list(both.stores) == list(STORES) and both.times("None") == [("online", (day(1), day(2), "None"))]
    store.table.set_disabled(KEY, "online", True)  # featurestore disable-online
    assert store.readiness("transactions", day(1), day(2)).complete
    cases = [
        (
            "stores: online materialization of transactions v1 is disabled",
            day(1),
            day(2),
            {"stores": "online"},
        ),
        ("feature set 'transactions' has no version 7", day(1), day(2), {"version": 7}),
        ("end: 2024-03-02T00:00:00Z is not after start 2024-03-02T00:00:00Z", day(1), day(1), {}),
        ("start: 'soon' is not a timestamp", "soon", day(2), {}),
    ]
    for message, start, end, kwargs in cases:
        with pytest.raises(BadInput, match=f"^{message}"):
            store.readiness("transactions", start, end, prefix="", **kwargs)
    spec = tmp_path / "fraud" / "featuresets" / "transactions.yaml"
    spec.write_text(spec.read_text().replace("  source_delay: 0s", "  source_delay: 0s\n  start: 2024-03-03"))
    late = FeatureStore(str(tmp_path / "fraud" / "featurestore.yaml"), check_transformations=False)
    with pytest.raises(
        BadInput, match="^start: 2024-03-02T00:00:00Z is before source.start 2024-03-03T00:00:00Z"
    ):
        late.readiness("transactions", day(1), day(2), prefix="")
    late.close()


def test_bad_arguments_fail_at_once_in_one_line(fraud) -> None:  # type: ignore[no-untyped-def]
    store, env = fraud
    result, output = in_airflow(
        env,
        """
        run = dag.test(logical_date=datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc))
        result = outcome(dag, run)
        """,
        dags="""
        with daily_dag("sensor_bad_arguments") as dag:
            common = dict(poll_interval=0.2, retries=2)
            FeatureStoreSensor(task_id="unknown_set", feature_set="payments", **common)
            FeatureStoreSensor(task_id="unknown_store", feature_set="transactions", stores="nearline", **common)
            FeatureStoreSensor(
                task_id="reversed", feature_set="transactions", start="2024-03-02", end="2024-03-01", **common
            )
            FeatureStoreSensor(task_id="unparseable", feature_set="transactions", start="last tuesday", **common)
        """,
    )
    assert result["state"] == "failed"
    assert result["tasks"] == {
        name: ["failed", 1] for name in ("unknown_set", "unknown_store", "reversed", "unparseable")
    }
    bad = "bad FeatureStoreSensor arguments: "
    for line in (
        bad + "feature set 'payments' not found; known: accounts, transactions",
        bad + "stores: 'nearline' is not one of offline, online",
        bad + "end: 2024-03-01T00:00:00Z is not after start 2024-03-02T00:00:00Z: a window is [start, end)",
        bad + "start: 'last tuesday' is not a timestamp: use ISO-8601",
    ):
        assert line in output, line
    assert statuses(store) == {"offline": [], "online": []}  # a sensor never writes
