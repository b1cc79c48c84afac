"""docker/ without Docker (it cannot run on this project's machines): the compose file parses,
everything it builds, mounts and runs exists in the repository, the container layout loads as
a feature store, the connections it sets are the ones the feature store names and read as the
hooks read them, and the Dockerfiles pin the versions setup.cfg pins."""

from __future__ import annotations

import configparser
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from airflow_provider_featurestore.core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
CONTAINER_ROOT = "/opt/featurestore"


def pins() -> dict[str, str]:
    """`name==version` pins of setup.cfg's install_requires."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    found = {}
    for line in parser["options"]["install_requires"].split("\n"):
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([0-9.]+)\s*$", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def bind_mounts(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of a service's bind mounts (named volumes left out)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((DOCKER / source).resolve(), target))
    return mounts


def test_the_compose_file_has_every_service_with_a_health_check() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "airflow-init",
        *AIRFLOW_SERVICES,
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
    }
    for name, service in SERVICES.items():
        if name != "airflow-init":  # a one-shot job: the others wait for it to complete
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name, command in AIRFLOW_SERVICES.items():
        assert SERVICES[name]["command"] == [command]
        assert SERVICES[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert SERVICES[worker]["command"][-1] == "spark://spark-master:7077"
    assert "--requirepass" in SERVICES["redis"]["command"]


def test_everything_built_and_mounted_exists_in_the_repository() -> None:
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), (name, build)
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name}: {source} (mounted at {target}) is not in the repository"
            assert source.is_relative_to(ROOT), (name, source)
    # The Dockerfiles copy only what exists.
    for dockerfile in DOCKER.glob("*.Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
                for source in sources:
                    assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}"
    # Every container that runs jobs sees the shared data volume at the same path.
    for name in [*AIRFLOW_SERVICES, "spark-worker-1", "spark-worker-2"]:
        assert f"featurestore-data:{CONTAINER_ROOT}/data" in SERVICES[name]["volumes"], name


def test_the_container_layout_loads_as_the_feature_store(tmp_path: Path) -> None:
    """Rebuild the Airflow containers' /opt/featurestore from the bind mounts and load it as
    the DAGs do: every spec and transformation is where featurestore.yaml looks."""
    service = SERVICES["airflow-scheduler"]
    for source, target in bind_mounts(service):
        if not target.startswith(CONTAINER_ROOT):
            continue
        where = tmp_path / target.removeprefix(CONTAINER_ROOT).lstrip("/")
        where.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, where)
        else:
            shutil.copy(source, where)
    config_path = service["environment"]["FEATURESTORE_CONFIG"]
    assert config_path.startswith(CONTAINER_ROOT)
    config = load_config(str(tmp_path / config_path.removeprefix(CONTAINER_ROOT).lstrip("/")))
    assert sorted(spec.name for spec in config.feature_sets) == ["accounts", "transactions"]
    assert config.engine.type == "spark-submit"
    assert config.offline_path == str(tmp_path / "data" / "offline")
    for spec in config.feature_sets:  # sources on the shared volume, as generate_data writes them
        assert spec.source.path.startswith(str(tmp_path / "data" / "source")), spec.source.path
    assert config.engine.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_the_connections_are_the_ones_the_feature_store_names_and_the_hooks_read() -> None:
    from airflow.models.connection import Connection
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections

    env = SERVICES["airflow-scheduler"]["environment"]
    config = yaml.safe_load((DOCKER / "featurestore.yaml").read_text())
    named = {
        config["engine"]["conn_id"],
        config["online_store"]["conn_id"],
        config["interval_table"]["conn_id"],
    }
    set_here = {key.removeprefix("AIRFLOW_CONN_").lower() for key in env if key.startswith("AIRFLOW_CONN_")}
    assert named == set_here

    def connection(conn_id: str) -> Connection:
        value = env[f"AIRFLOW_CONN_{conn_id.upper()}"].replace(
            "${REDIS_PASSWORD:-featurestore}", "featurestore"
        )
        if value.startswith("{"):
            return Connection.from_json(value, conn_id=conn_id)
        return Connection(conn_id=conn_id, uri=value)

    spark = connection(config["engine"]["conn_id"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", env["AIRFLOW_CONN_SPARK_DEFAULT"])
        resolved = SparkSubmitHook(conn_id=spark.conn_id)._resolve_connection()
    assert resolved["master"] == "spark://spark-master:7077" and resolved["deploy_mode"] == "client"

    redis_conn = connection(config["online_store"]["conn_id"])
    with pytest.MonkeyPatch.context() as patch:  # read by RedisHook, as the feature store's hook reads it
        patch.setenv(f"AIRFLOW_CONN_{redis_conn.conn_id.upper()}", redis_conn.as_json())
        url = AirflowConnections().redis_url(redis_conn.conn_id)
    assert url == "redis://:featurestore@redis:6379/0"
    assert "${REDIS_PASSWORD:-featurestore}" in SERVICES["redis"]["command"]

    intervals = connection(config["interval_table"]["conn_id"])
    assert (intervals.conn_type, intervals.host, intervals.schema) == ("postgres", "postgres", "featurestore")
    assert "CREATE DATABASE featurestore" in (DOCKER / "postgres-init.sql").read_text()
    # The passwords file the simple auth manager reads holds every user compose declares.
    users = [entry.split(":")[0] for entry in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")]
    assert sorted(json.loads((DOCKER / "simple_auth_manager_passwords.json").read_text())) == sorted(users)


def test_the_dockerfiles_pin_what_setup_cfg_pins() -> None:
    pinned = pins()
    import airflow

    for dockerfile in ("airflow.Dockerfile", "spark.Dockerfile"):
        text = (DOCKER / dockerfile).read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
        assert args["PYSPARK_VERSION"] == pinned["pyspark"], dockerfile
        assert args["DELTA_VERSION"] == pinned["delta-spark"], dockerfile
        assert args["SCALA_BINARY"] == "2.13", dockerfile  # Spark 4 is Scala 2.13 only
        assert args["PYTHON_VERSION"] == "3.11", dockerfile  # driver and executors: one Python
        # The jars by Maven coordinates through the one script the tests use, never a host's URL.
        assert "scripts/delta-jars.sh" in text and "maven" in text, dockerfile
        assert "repo1.maven.org" not in text and "https://" not in text, dockerfile
    airflow_args = dict(
        re.findall(r"^ARG (\w+)=(\S+)$", (DOCKER / "airflow.Dockerfile").read_text(), flags=re.M)
    )
    # The image's Airflow is the one this project is tested with (setup.cfg: >=3,<4).
    assert airflow_args["AIRFLOW_VERSION"] == airflow.__version__
    assert airflow_args["AIRFLOW_VERSION"].startswith("3.")
