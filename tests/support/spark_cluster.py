"""Apache Spark with delta-spark for the engine tier: a standalone cluster and a Spark Connect server.

Why here: the job must behave the same on a real cluster as on the embedded engine, and the only
way to know is to run it there. Everything is started from the pinned PySpark's own
distribution (`spark-class ... Master` / `... Worker`, and `SparkConnectServer` through
spark-submit) as separate processes on loopback ports, once per test session, and stopped at
its end. The delta-spark jars come by their Maven coordinates (`scripts/delta-jars.sh`).

The Spark settings are `docker/featurestore.yaml`'s `engine.conf`: the one cluster configuration
that the compose set-up uses too, so the tests run what a deployment runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER_CONFIG = ROOT / "docker" / "featurestore.yaml"
WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "1536m"
START_TIMEOUT = 240.0
# The JIT of the tests' short-lived JVMs (spark-submit drivers, the cluster's daemons and
# executors: seconds to a minute each, on tiny data), given as JAVA_TOOL_OPTIONS by conftest.py:
# C2 compilation costs them more than it returns. Quiet, a one-batch spark-submit test went from
# 72 s to 48 s, the spark-submit tier from ~690 s to ~550 s. The long-lived servers (the Spark
# Connect server, the JVM worker) keep the default JIT: under C1 the Spark Connect retrieval
# test took 176 s instead of 70-105 s. Tests only; deployments and benchmarks keep the defaults.
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1"


def long_lived_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a JVM serving many queries: without the tests' short-lived JIT setting."""
    if env.get("JAVA_TOOL_OPTIONS") == SHORT_LIVED_JVM:
        env = {k: v for k, v in env.items() if k != "JAVA_TOOL_OPTIONS"}
    return env


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def delta_jars() -> str:
    """The delta-spark and delta-storage jars, comma-separated (fetched once, then cached)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "delta-jars.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/delta-jars.sh failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def cluster_conf() -> dict[str, str]:
    """`engine.conf` of docker/featurestore.yaml: the settings every cluster run uses."""
    config = yaml.safe_load(DOCKER_CONFIG.read_text())
    return {str(k): str(v) for k, v in config["engine"]["conf"].items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(what: str, ready, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s: {log.read_text()[-2000:]}")


@dataclass
class SparkServices:
    """A standalone master with two workers, and a Spark Connect server, all with delta-spark."""

    workdir: Path
    jars: str = ""
    master_url: str = ""
    master_ui: str = ""
    connect_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)
    started_s: dict[str, float] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_") or k == "SPARK_HOME"}
        env.update(
            SPARK_HOME=str(spark_home()),
            PYSPARK_PYTHON=sys.executable,
            SPARK_LOG_DIR=str(self.workdir / "logs"),
            SPARK_NO_DAEMONIZE="1",
        )
        return env

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / f"{name}.log"
        handle = open(log, "w")  # noqa: SIM115 - the process writes it until it stops
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env or self.env(), start_new_session=True
        )
        self.processes.append(process)
        return process, log

    def start_cluster(self) -> None:
        began = time.monotonic()
        self.jars = delta_jars()
        self.started_s["delta jars"] = time.monotonic() - began
        began = time.monotonic()
        spark_class = str(spark_home() / "bin" / "spark-class")
        port, ui = free_port(), free_port()
        master, log = self._spawn(
            "master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(ui)],
        )  # fmt: skip
        self.master_url = f"spark://127.0.0.1:{port}"
        self.master_ui = f"http://127.0.0.1:{ui}"

        def workers_alive() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as response:
                state = json.load(response)
            return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE") >= WORKERS

        for number in range(1, WORKERS + 1):
            self._spawn(
                f"worker-{number}",
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY, "--webui-port", str(free_port()),
                 "--work-dir", str(self.workdir / f"worker-{number}"), self.master_url],
            )  # fmt: skip
        _wait("the Spark master and its workers", workers_alive, master, log)
        self.started_s["standalone cluster"] = time.monotonic() - began

    def start_connect(self) -> None:
        """A JVM Spark Connect server on its own `local[2]` (so it never holds the cluster's cores)."""
        began = time.monotonic()
        port = free_port()
        command = [
            str(spark_home() / "bin" / "spark-submit"),
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master", "local[2]", "--jars", self.jars or delta_jars(),
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.ui.enabled=false",
        ]  # fmt: skip
        for key, value in cluster_conf().items():
            if not key.startswith("spark.executor."):
                command += ["--conf", f"{key}={value}"]
        command.append("spark-internal")
        server, log = self._spawn("connect", command, long_lived_env(self.env()))

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        _wait("the Spark Connect server", listening, server, log)
        self.connect_url = f"sc://127.0.0.1:{port}"
        self.started_s["spark connect server"] = time.monotonic() - began

    def applications(self) -> list[dict]:  # type: ignore[type-arg]
        """The master's applications, running and completed (its JSON API)."""
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=5) as response:
            state = json.load(response)
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def cluster(self) -> str:
        """The master URL, the cluster started on first use."""
        if not self.master_url:
            self.start_cluster()
        return self.master_url

    def connect(self) -> str:
        """The Spark Connect URL, the server started on first use."""
        if not self.connect_url:
            self.jars = self.jars or delta_jars()
            self.start_connect()
        return self.connect_url

    def engine_yaml(self, engine: str) -> str:
        """The `engine:` section of a featurestore.yaml for `engine` (embedded, spark-submit or
        spark-connect), with the cluster configuration."""
        if engine == "embedded":
            return "engine:\n  type: embedded\n  conf:\n    spark.sql.shuffle.partitions: 4\n"
        if engine == "spark-connect":
            return f"engine:\n  type: spark-connect\n  remote: {self.connect()}\n"
        master = self.cluster()
        conf = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in self.submit_conf().items())
        return f"engine:\n  type: spark-submit\n  master: {master}\n  conf:\n{conf}"

    def submit_conf(self) -> dict[str, str]:
        """engine.conf for `spark-submit` to the cluster: the cluster configuration plus the jars
        and this Python for the executors (the workers run on this machine)."""
        return {**cluster_conf(), "spark.jars": self.jars, "spark.pyspark.python": sys.executable}

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()
