"""OpenLineage under real Airflow: `dag.test()` runs of the backfill DAG with the OpenLineage
provider's file transport, and the events it wrote (the provider's listener fires under
`dag.test()` in Airflow 3.3, as under a scheduler).

The fraud store and the `dag.test()` helpers are test_dags.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import openlineage_events
from support.openlineage_events import NAMESPACE, datasets, file_transport_env
from test_dags import airflow_home, dag_test, day, fraud  # noqa: F401 - fixtures

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord

TASK = "featurestore_backfill.materialize"


@pytest.fixture
def lineage(fraud) -> tuple[Path, dict[str, str], Path]:  # type: ignore[no-untyped-def]  # noqa: F811
    """test_dags's fraud store, its env with OpenLineage's file transport (the provider's
    `append`: one event a line, never overwritten), and that file."""
    root, env = fraud
    events = root / "openlineage.jsonl"
    return root, {**env, **file_transport_env(events)}, events


def task_events(path: Path, job_name: str = TASK) -> list[dict]:
    return openlineage_events.task_events(path, job_name)


def jobs(root: Path) -> list[JobRecord]:
    store = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False)
    try:
        return store.jobs("transactions")
    finally:
        store.close()


def expected(root: Path, env: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
    """The source, the Delta table and the Redis dataset of transactions v1 in the fraud store."""
    project = FeatureStore(str(root / "featurestore.yaml"), check_transformations=False).config.project
    redis = env["FEATURESTORE_REDIS_URL"].split("://", 1)[1]
    return (
        ("file", str(root / "data" / "source" / "transactions")),
        ("file", str(root / "data" / "offline" / "transactions" / "v1")),
        (f"redis://{redis}", f"{project}:transactions:v1"),
    )


def test_a_backfill_emits_start_and_complete_with_the_source_the_delta_table_and_redis(lineage) -> None:  # type: ignore[no-untyped-def]
    root, env, path = lineage
    conf = {"feature_set": "transactions", "start": day(6), "end": day(8)}
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "success", run
    source, delta, redis = expected(root, env)
    events = task_events(path)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, complete = events
    for event in events:
        assert list(datasets(event, "inputs")) == [source]
        assert set(datasets(event, "outputs")) == {delta, redis}
    outputs = datasets(complete, "outputs")
    fields = [(f["name"], f["type"]) for f in outputs[delta]["facets"]["schema"]["fields"]]
    assert fields == [
        ("accountID", "string"),
        ("timestamp", "timestamp"),
        ("transaction_amount_7d_sum", "double"),
        ("transaction_7d_count", "long"),
        ("transaction_amount_7d_avg", "double"),
        ("event_date", "date"),
    ]
    assert outputs[delta]["facets"]["storage"]["storageLayer"] == "delta"
    records = jobs(root)
    assert len(records) == 2 and all(r.state == "succeeded" for r in records)
    for dataset, store in ((delta, "offline"), (redis, "online")):
        rows = sum(r.rows_written[store] for r in records)
        assert rows > 0
        assert outputs[dataset]["outputFacets"]["outputStatistics"]["rowCount"] == rows
    assert "outputStatistics" not in datasets(start, "outputs")[delta].get("outputFacets", {})


def test_a_failing_spark_submit_batch_emits_fail_with_its_datasets_and_passes_the_parent_job(lineage) -> None:  # type: ignore[no-untyped-def]
    """On spark-submit the batch's Spark conf carries the task's OpenLineage parent job and run
    (as Airflow's Spark provider passes them). The `spark-submit` here records its arguments and
    runs nothing, so every chunk fails ("spark-submit reported no result"), and so does the task:
    each try emits FAIL with the same datasets, and its START's run id is the parentRunId its
    spark-submit was given."""
    root, env, path = lineage
    config = root / "featurestore.yaml"
    config.write_text(
        config.read_text().replace(
            "  type: embedded                     # a local Spark session in the worker",
            "  type: spark-submit\n  master: local[2]",
        )
    )
    home, calls = root / "spark_home", root / "spark_submit_calls.log"
    (home / "bin").mkdir(parents=True)
    wrapper = home / "bin" / "spark-submit"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" END >> "{calls}"\n')
    wrapper.chmod(0o755)
    env = {**env, "SPARK_HOME": str(home)}
    conf = {"feature_set": "transactions", "start": day(6), "end": day(7)}
    run = dag_test(env, "featurestore_backfill", f"run_conf={conf!r}")
    assert run["state"] == "failed", run
    records = jobs(root)
    assert records and all(r.state == "failed" and "reported no result" in r.error for r in records)
    source, delta, redis = expected(root, env)
    events = task_events(path)
    assert [e["eventType"] for e in events] == ["START", "FAIL", "START", "FAIL"]  # retries=1
    for event in events:
        assert list(datasets(event, "inputs")) == [source]
        assert set(datasets(event, "outputs")) == {delta, redis}
    for event in events[1::2]:
        assert datasets(event, "outputs")[delta]["outputFacets"]["outputStatistics"]["rowCount"] == 0
    submits = [parent_conf(call.splitlines()) for call in calls.read_text().split("\nEND\n") if call.strip()]
    assert [s["spark.openlineage.parentRunId"] for s in submits] == [e["run"]["runId"] for e in events[::2]]
    for submitted in submits:
        assert submitted["spark.openlineage.parentJobName"] == TASK
        assert submitted["spark.openlineage.parentJobNamespace"] == NAMESPACE
        assert submitted["spark.openlineage.rootParentJobName"] == "featurestore_backfill"
        assert submitted["spark.openlineage.rootParentJobNamespace"] == NAMESPACE
        assert submitted["spark.openlineage.rootParentRunId"]


def parent_conf(args: list[str]) -> dict[str, str]:
    """The `--conf spark.openlineage.*=...` properties of one recorded spark-submit call."""
    pairs = [args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--conf"]
    return {key: value for key, value in pairs if key.startswith("spark.openlineage.")}
