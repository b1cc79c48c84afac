"""The package as Airflow sees it: a provider its provider manager lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_airflow_lists_the_provider(tmp_path: Path) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [airflow, "providers", "list", "-o", "json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(result.stdout)}
    assert providers["airflow-provider-featurestore"]["version"] == "0.1.0"
    shown = subprocess.run(
        [airflow, "providers", "get", "airflow-provider-featurestore", "--full", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    [info] = json.loads(shown.stdout)
    assert info["hooks"] == [
        {
            "integration-name": "Feature Store",
            "python-modules": [
                "airflow_provider_featurestore.airflow.hooks.featurestore",
                "airflow_provider_featurestore.airflow.hooks.connections",
            ],
        }
    ]
    assert info["operators"][0]["python-modules"] == [
        "airflow_provider_featurestore.airflow.operators.featurestore",
        "airflow_provider_featurestore.airflow.operators.monitor",
    ]
    assert info["sensors"][0]["python-modules"] == [
        "airflow_provider_featurestore.airflow.sensors.featurestore"
    ]
    assert info["triggers"][0]["python-modules"] == [
        "airflow_provider_featurestore.airflow.triggers.featurestore"
    ]
    # The connection types the hook reads are the Redis and Spark providers' own, listed by Airflow.
    hooks = subprocess.run(
        [airflow, "providers", "hooks", "-o", "json"], capture_output=True, text=True, env=env, timeout=300
    )
    types = {h["connection_type"]: h["class"] for h in json.loads(hooks.stdout)}
    assert types["redis"] == "airflow.providers.redis.hooks.redis.RedisHook"
    assert types["spark"] == "airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook"
    assert types["spark_connect"] == "airflow.providers.apache.spark.hooks.spark_connect.SparkConnectHook"


def test_the_core_never_imports_airflow() -> None:
    code = (
        "import sys, airflow_provider_featurestore.core.cli, airflow_provider_featurestore.core.featurestore;"
        "print([m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
