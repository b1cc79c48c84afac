"""The spark-submit (cluster) path, run for real: classic PySpark on the JVM, `--master local[2]`.

Why this test exists: every other test runs the job in-process on Sail (the embedded engine).
A Spark cluster runs the same job file differently: `spark-submit` starts a JVM driver that
runs `spark_jobs/materialize.py` as `__main__`, the provider ships as a `--py-files` zip, the
Redis writes happen in Python workers forked by the JVM executors (`mapInArrow`), and the
result only comes back through the result file. None of that is exercised anywhere else.

Only the online store is written: the offline store is Delta, and delta-spark's jars come from
Maven, which this machine cannot reach, so Delta cannot run on the JVM here. The online path
still runs the whole job (source read with `source_lookback`, the user's PySpark
transformation, the output check, latest row per entity, the Redis write and its guard).

What landed in Redis is checked against an independent pandas computation of the fraud
example's rolling 7-day aggregates. Each spark-submit costs ~10 s of JVM start (30-50 s in all
on a busy 2-core machine), so there are three: a window, an older window (it must not regress
newer values), and a transformation that does not return a declared feature.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from airflow_provider_featurestore.config import FeatureStoreConfig, load_config
from airflow_provider_featurestore.engines import SparkSubmitEngine, Submission
from airflow_provider_featurestore.job_model import BatchSpec, ChunkResult, ChunkSpec
from airflow_provider_featurestore.timeutil import to_epoch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fraud"
# The test Redis server, database 13 (its keys are this module's own).
REDIS_URL = (
    os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/13"
)
DAY = 86400
WEEK = 7 * DAY
TTL = 36500 * DAY  # the example's 30d would expire its 2024 events on arrival
FIRST_DAY, DAYS = "2023-12-25", 9  # source data 2023-12-25 .. 2024-01-02: a full week before both windows
NEW_DAY = to_epoch("2024-01-02")
OLD_DAY = to_epoch("2024-01-01")
FEATURES = ("transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg")
UNDECLARED = "transaction_amount_7d_max"  # declared by the broken v2 spec, never returned
CONF = {"spark.ui.enabled": "false"}  # engine.conf and spark_conf: the job applies them itself


# ---- fixture data ----------------------------------------------------------------------------


def make_fraud_store(root: Path, project: str) -> Path:
    """A private copy of the fraud example with a little generated data; returns its config file.

    Its keys go to Redis db 13 under its own project name; `transactions` v1 keeps its keys for
    100 years (2024 events outlive the TTL); `transactions` v2 declares a feature its
    transformation does not return.
    """
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text()
    text = text.replace("project: fraud", f"project: {project}")
    text = text.replace("${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}", REDIS_URL)
    config.write_text(text)
    spec = root / "featuresets" / "transactions.yaml"
    text = spec.read_text()
    assert "online_ttl: 30d" in text and "version: 1" in text
    spec.write_text(text.replace("online_ttl: 30d", f"online_ttl: {TTL // DAY}d"))
    broken = text.replace("version: 1", "version: 2").replace(
        "materialization:", f"  - {{name: {UNDECLARED}, type: double}}\nmaterialization:"
    )
    (root / "featuresets" / "transactions_v2.yaml").write_text(broken)

    loader = importlib.util.spec_from_file_location("fraud_generate_data", root / "generate_data.py")
    assert loader is not None and loader.loader is not None
    generator = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(generator)
    generator.generate(str(root / "data"), accounts=30, transactions_per_day=30, start=FIRST_DAY, days=DAYS)
    return config


def transactions(config: FeatureStoreConfig) -> pd.DataFrame:
    """The generated source transactions: account, epoch microseconds, whole seconds, amount."""
    table = pq.read_table(config.get("transactions", 1).source.path)
    us = table.column("timestamp").cast(pa.int64()).to_numpy()
    return pd.DataFrame(
        {
            "accountID": table.column("accountID").to_pylist(),
            "us": us,
            "sec": us // 1_000_000,
            "amount": table.column("amount").to_numpy(),
        }
    )


def expected_latest(tx: pd.DataFrame, start: int, end: int) -> dict[str, dict[str, float | int]]:
    """Per account with transactions in `[start, end)`: the features of its latest one there.

    Computed independently of Spark: for a transaction at second t, every transaction of its
    account at a second in `(t - 7d, t]`, itself included (the transform's range frame).
    """
    latest: dict[str, dict[str, float | int]] = {}
    inside = tx[(tx.us >= start * 1_000_000) & (tx.us < end * 1_000_000)]
    for account, rows in inside.groupby("accountID"):
        last = rows.loc[rows.us.idxmax()]
        assert (rows.us == last.us).sum() == 1, "fixture data: two latest rows for one account"
        mine = tx[tx.accountID == account]
        frame = mine.amount[(mine.sec > last.sec - WEEK) & (mine.sec <= last.sec)]
        latest[str(account)] = {
            "_event_time": int(last.us),
            "transaction_amount_7d_sum": float(frame.sum()),
            "transaction_7d_count": len(frame),
            "transaction_amount_7d_avg": float(frame.mean()),
        }
    return latest


def assert_stored(got: dict[str, str], want: dict[str, float | int], account: str) -> None:
    """One Redis hash (as text) holds exactly the expected event time and features."""
    assert set(got) == {"_event_time", *FEATURES}, account
    assert int(got["_event_time"]) == want["_event_time"], account
    assert int(got["transaction_7d_count"]) == want["transaction_7d_count"], account
    for name in ("transaction_amount_7d_sum", "transaction_amount_7d_avg"):
        assert float(got[name]) == pytest.approx(want[name], rel=1e-12), (account, name)


# ---- fixtures --------------------------------------------------------------------------------


@dataclass
class Store:
    config: FeatureStoreConfig
    engine: SparkSubmitEngine
    client: redis.Redis
    tx: pd.DataFrame
    submitted: list[str]  # the --py-files zip of every spark-submit

    def prefix(self, version: int) -> str:
        return self.config.online_key_prefix(self.config.get("transactions", version))

    def keys(self, version: int) -> set[str]:
        return {key.decode() for key in self.client.scan_iter(f"{self.prefix(version)}*", count=1000)}

    def hash(self, account: str) -> dict[str, str]:
        raw = self.client.hgetall(self.prefix(1) + account)
        return {key.decode(): value.decode() for key, value in raw.items()}

    def run(self, version: int, day: int) -> ChunkResult:
        """One spark-submit of a one-chunk batch; its final report."""
        chunk = ChunkSpec(f"submit-{uuid.uuid4().hex[:8]}", day, day + DAY, ("online",))
        reports: list[ChunkResult] = []
        self.engine.run_batch(
            BatchSpec(self.config.config_path, "transactions", version, (chunk,)), CONF, reports.append
        )
        assert [r.done for r in reports] == [True], reports
        return reports[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.fail("spark-submit needs Java: install a JDK 17+ or set JAVA_HOME")
    project = f"submit{uuid.uuid4().hex[:8]}"
    config = load_config(
        str(make_fraud_store(tmp_path_factory.mktemp("submit") / "fraud", project)),
        check_transformations=False,  # the job imports the transformation; this process need not
    )
    client = redis.Redis.from_url(REDIS_URL)
    _delete(client, project)
    engine = SparkSubmitEngine(config, master="local[2]")
    submitted: list[str] = []
    plain = engine.submit

    def submit(submission: Submission) -> None:
        submitted.append(submission.py_files)
        plain(submission)

    engine.submit = submit
    try:
        yield Store(config, engine, client, transactions(config), submitted)
    finally:
        engine.close()
        _delete(client, project)
        client.close()


def _delete(client: redis.Redis, project: str) -> None:
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)


# ---- tests -----------------------------------------------------------------------------------


def test_spark_submit_materializes_online_and_never_regresses(store: Store) -> None:
    expected = expected_latest(store.tx, NEW_DAY, NEW_DAY + DAY)
    result = store.run(1, NEW_DAY)

    assert result.error is None, result.error
    assert result.completed == {"online": True}
    read = (store.tx.us >= (NEW_DAY - WEEK) * 1_000_000) & (store.tx.us < (NEW_DAY + DAY) * 1_000_000)
    assert result.rows_read == int(read.sum())  # the window and its 7-day source_lookback
    assert result.rows_written == {"online": len(expected)}
    assert result.entities == len(expected)
    with zipfile.ZipFile(store.submitted[-1]) as shipped:  # what the executors import on a cluster
        names = set(shipped.namelist())
    assert {"spark_jobs/materialize.py", "airflow_provider_featurestore/online.py"} <= names

    assert store.keys(1) == {store.prefix(1) + account for account in expected}
    for account, want in expected.items():
        assert_stored(store.hash(account), want, account)
        expire_at = store.client.expiretime(store.prefix(1) + account)
        assert expire_at == int(want["_event_time"]) // 1_000_000 + TTL, account

    # A backfill of the day before: its accounts also active on NEW_DAY keep NEW_DAY's values.
    newer = {account: store.hash(account) for account in expected}
    older = expected_latest(store.tx, OLD_DAY, OLD_DAY + DAY)
    only_older = set(older) - set(expected)
    assert only_older and set(older) & set(expected), "fixture data: want both kinds of account"
    result = store.run(1, OLD_DAY)

    assert result.error is None, result.error
    assert result.completed == {"online": True}
    assert result.entities == len(older)
    assert result.rows_written == {"online": len(only_older)}
    assert store.keys(1) == {store.prefix(1) + account for account in {*expected, *older}}
    assert {account: store.hash(account) for account in expected} == newer
    for account in only_older:
        assert_stored(store.hash(account), older[account], account)


def test_spark_submit_reports_a_missing_declared_feature(store: Store) -> None:
    result = store.run(2, NEW_DAY)

    assert result.completed == {"online": False}
    assert result.rows_written == {}
    assert result.error is not None
    assert result.error.startswith("TransformationOutputError:"), result.error
    assert f"no column {UNDECLARED!r}" in result.error, result.error
    assert "transactions_v2.yaml" in result.error, result.error
    assert store.keys(2) == set()


def test_fixture_expectations_follow_the_transform_frame() -> None:
    """The pandas reference counts itself and same-second rows, not rows exactly 7 days older."""
    base = 1_704_153_600  # 2024-01-02T00:00:00Z
    tx = pd.DataFrame(
        {
            "accountID": ["a", "a", "a", "a", "b"],
            "sec": np.array([base - WEEK, base - WEEK + 1, base, base, base], dtype=np.int64),
            "amount": [1000.0, 1.0, 2.0, 4.0, 8.0],
        }
    )
    tx["us"] = tx.sec * 1_000_000 + np.array([0, 0, 5, 9, 0])
    got = expected_latest(tx, base, base + DAY)
    assert got["a"] == {
        "_event_time": base * 1_000_000 + 9,
        "transaction_amount_7d_sum": 7.0,
        "transaction_7d_count": 3,
        "transaction_amount_7d_avg": 7.0 / 3,
    }
    assert got["b"]["transaction_7d_count"] == 1
