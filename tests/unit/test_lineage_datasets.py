"""The lineage modules without a running Airflow: dataset naming, and that the operators import
no OpenLineage code, with the provider installed (only the listener loads it) or without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_featurestore.airflow.lineage.naming import location_dataset, redis_dataset

ROOT = Path(__file__).resolve().parents[2]
OURS = """
import runpy, sys
import airflow.sdk  # Airflow's provider manager reads every provider's get_provider_info
{block}
before = set(sys.modules)
from airflow_provider_featurestore.airflow.operators import featurestore, monitor
from airflow_provider_featurestore.airflow.sensors import featurestore as sensor
dags = runpy.run_path({dags!r})
task = dags["featurestore_backfill"].get_task("materialize")
from airflow_provider_featurestore.airflow.lineage.spark_parent import with_parent_job
from airflow_provider_featurestore.core.materialization.engines import SparkSubmitEngine
engine = SparkSubmitEngine(None, master="local[1]")  # the config is only kept
result = {{
    "loaded": sorted(m for m in set(sys.modules) - before if "openlineage" in m),
    "unchanged": with_parent_job(engine, {{}}) is engine,
    "has_methods": hasattr(featurestore.FeatureStoreMaterializeOperator, "get_openlineage_facets_on_start"),
}}
print("RESULT " + json.dumps(result))
"""
# Makes `openlineage` and the Airflow provider unimportable from here on, as when they are not
# installed (Airflow's own provider discovery, which reads installed packages, has run by then).
UNINSTALLED = """
import importlib.abc
class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "openlineage" or name.startswith("airflow.providers.openlineage"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Uninstalled())
"""


def run(tmp_path: Path, block: str) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FEATURESTORE_CONFIG": str(ROOT / "examples" / "fraud" / "featurestore.yaml"),
    }
    env.pop("AIRFLOW__OPENLINEAGE__TRANSPORT", None)
    code = "import json\n" + OURS.format(dags=str(ROOT / "dags" / "featurestore_dags.py"), block=block)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_importing_the_operators_and_parsing_the_dags_loads_no_openlineage_code(tmp_path: Path) -> None:
    result = run(tmp_path, "")
    assert result == {"loaded": [], "unchanged": True, "has_methods": True}


def test_without_the_provider_the_operators_import_and_the_dags_parse_as_before(tmp_path: Path) -> None:
    result = run(tmp_path, UNINSTALLED)
    assert result == {"loaded": [], "unchanged": True, "has_methods": True}


@pytest.mark.parametrize(
    ("location", "dataset"),
    [
        ("/data/source/transactions", ("file", "/data/source/transactions")),
        ("file://nas/share/tx", ("file://nas", "/share/tx")),
        ("s3://bucket/raw/tx", ("s3://bucket", "raw/tx")),
        ("s3a://bucket/raw/tx/", ("s3://bucket", "raw/tx/")),
        ("s3://key:secret@bucket/raw", ("s3://bucket", "raw")),
        ("gs://bucket/raw/tx", ("gs://bucket", "raw/tx")),
        ("abfss://box@acct.dfs.core.windows.net/raw", ("abfss://box@acct.dfs.core.windows.net", "raw")),
        ("hdfs://namenode:8020/warehouse/tx", ("hdfs://namenode:8020", "/warehouse/tx")),
    ],
)
def test_files_and_object_stores_are_named_as_the_openlineage_spec_says(
    location: str, dataset: tuple[str, str]
) -> None:
    assert location_dataset(location) == dataset


@pytest.mark.parametrize(
    ("url", "namespace"),
    [
        ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
        ("redis://:s3cret@cache.internal:6380/2", "redis://cache.internal:6380/2"),
        ("rediss://user:s3cret@cache.internal", "redis://cache.internal:6379/0"),
        ("unix:///run/redis.sock?db=3&password=s3cret", "redis+unix:///run/redis.sock/3"),
    ],
)
def test_a_redis_store_is_named_by_host_port_and_db_never_its_password(url: str, namespace: str) -> None:
    assert redis_dataset(url, "fraud:transactions:v1:") == (namespace, "fraud:transactions:v1")


def test_an_online_only_job_over_offline_complete_time_reads_the_delta_table_and_writes_redis_only() -> None:
    from airflow_provider_featurestore.airflow.lineage.facets import operator_lineage
    from airflow_provider_featurestore.core.config import load_config
    from airflow_provider_featurestore.core.interval_table import JobRecord, JobState

    config = load_config(str(ROOT / "examples" / "fraud" / "featurestore.yaml"))
    job = JobRecord(
        "j1", "transactions", 1, 0, 86400, ("online",), JobState.SUCCEEDED, reads="offline",
        rows_written={"online": 40},
    )  # fmt: skip
    lineage = operator_lineage(config, "redis://:pw@cache:6380/1", [job], written=[job])
    delta = str(ROOT / "examples" / "fraud" / "data" / "offline" / "transactions" / "v1")
    [read] = lineage.inputs
    assert (read.namespace, read.name) == ("file", delta)
    assert [f.name for f in read.facets["schema"].fields][:2] == ["accountID", "timestamp"]
    [written] = lineage.outputs
    assert (written.namespace, written.name) == ("redis://cache:6380/1", "fraud:transactions:v1")
    assert written.outputFacets["outputStatistics"].rowCount == 40
