"""A classic PySpark session on the JVM with delta-spark, in its own process, driven by JSON lines.

Why a process of its own: a Sail session is Spark Connect, and pyspark's connect-mode variables
(`SPARK_CONNECT_MODE_ENABLED`, `SPARK_REMOTE`, `SPARK_LOCAL_REMOTE`) make a classic session in
the same process try to connect instead. The JVM starts once (15-35 s on 2 cores) and serves
every request of a test session.

Protocol: one JSON object per stdin line, `{"op": NAME, "args": {...}}`; one stdout line per
request, `JVM_RESULT {"ok": true, "value": ...}` or `{"ok": false, "error": "..."}`. `NAME` is a
function of `engine_probes` (called as `f(spark, **args)`).

    JvmWorker.start() -> worker; worker.call("probe_name", root="/tmp/x"); worker.close()
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from airflow_provider_featurestore.core.materialization.engines import CONNECT_MODE_VARIABLES
from support.spark_cluster import delta_jars, long_lived_env

ROOT = Path(__file__).resolve().parents[2]
MARKER = "JVM_RESULT "


def classic_session(jars: str):  # type: ignore[no-untyped-def]
    """A local[2] session with delta-spark, UTC, no UI: what a spark-submit of the job gets."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("featurestore-tests-jvm")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.databricks.delta.snapshotPartitions", "4")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


class JvmWorker:
    """The client side: starts `python tests/jvm_worker.py` and sends it requests one at a time."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    def start(cls, log: Path) -> JvmWorker:
        env = long_lived_env({k: v for k, v in os.environ.items() if k not in CONNECT_MODE_VARIABLES})
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
        env["PYSPARK_PYTHON"] = sys.executable
        env["FEATURESTORE_DELTA_JARS"] = delta_jars()
        process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            env=env,
            cwd=str(ROOT),
        )
        worker = cls(process, log)
        worker.call("ping")  # waits for the JVM
        return worker

    def call(self, op: str, **args: Any) -> Any:
        """The value `op` returned in the worker; raises `JvmError` with the worker's error text."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(MARKER):
                answer = json.loads(line[len(MARKER) :])
                if not answer["ok"]:
                    raise JvmError(answer["error"])
                return answer["value"]
        tail = self.log.read_text()[-3000:]
        raise RuntimeError(f"the JVM worker exited ({self.process.poll()}): {tail}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck JVM
                self.process.kill()
                self.process.wait()


class JvmError(RuntimeError):
    """A request failed in the JVM worker; the message is the worker's one-line error."""


def serve() -> None:
    """The worker side: build the session, answer requests until stdin closes."""
    from support import engine_probes

    spark = classic_session(os.environ["FEATURESTORE_DELTA_JARS"])
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # anything the probes or Spark print stays off the protocol channel
    try:
        for line in sys.stdin:
            request = json.loads(line)
            began = time.perf_counter()
            try:
                if request["op"] == "ping":
                    value: Any = spark.version
                else:
                    value = getattr(engine_probes, request["op"])(spark, **request["args"])
                answer = {"ok": True, "value": value}
            except Exception as exc:  # noqa: BLE001 - sent back to the test
                traceback.print_exc()
                answer = {"ok": False, "error": engine_probes.one_line(exc)}
            print(f"[jvm_worker] {request['op']}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
            real_stdout.write(MARKER + json.dumps(answer, default=str) + "\n")
            real_stdout.flush()
    finally:
        spark.stop()


if __name__ == "__main__":
    serve()
