"""Engines: where a batch of materialization jobs runs. The job code (the `spark_job` package) is the same
on all of them, and a batch is one engine run on each.

- `embedded`: a Sail server started once per process (no JVM, no cluster), called in-process.
- `spark-connect`: a remote Spark Connect endpoint (`sc://host:15002`), called in-process.
- `spark-submit`: a Spark cluster (or `local[N]`): one `spark-submit` of the job file per batch,
  the package shipped as `--py-files`; each chunk's result comes back as a file in a result
  folder, read while the application runs (or as a marker line of the driver's output).
  The batch (it carries the resolved Redis URL, password included) never goes on a command line
  or into a Spark property: it is a mode-0600 file in the submitter's private folder, named by
  `--batch-file PATH` (and shipped with `--files` in cluster deploy mode).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_featurestore.core.config import FeatureStoreConfig
from airflow_provider_featurestore.core.config.connections import ConfigConnections
from airflow_provider_featurestore.core.connection_resolver import Submission, Submitter
from airflow_provider_featurestore.core.errors import BadInput, redact_credentials
from airflow_provider_featurestore.core.materialization import spark_job
from airflow_provider_featurestore.core.materialization.job_model import (
    CANCELLED_CHUNK,
    RESULT_MARKER,
    BatchSpec,
    ChunkResult,
    Report,
    Stopped,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

UTC_CONF: dict[str, Any] = {"spark.sql.session.timeZone": "UTC"}
# delta-spark rebuilds the table's state after each commit in `snapshotPartitions` tasks (50 by
# default, sized for logs of millions of files). A feature table's log holds a few files per
# chunk, and a batch commits once per chunk: 50 tasks per commit made an hourly chunk cost ~5 s
# on local[2], 4 tasks ~2.5 s (benchmarks/README.md). Spark writes Parquet timestamps as INT96 by
# default, which Sail's Parquet reader (the embedded engine's read of the offline table) takes
# as timestamp_ntz and cannot merge with INT64 UTC files: a table continued on Sail after Spark
# would not read back (docs/engines.md). A user's engine.conf or spark_conf wins.
DELTA_SPARK_DEFAULT_CONF = {
    "spark.databricks.delta.snapshotPartitions": "4",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
# pyspark 4.2 warns on every import that it does not fully support pandas 3; the job uses no
# pandas conversion, so the warning is noise in every user's log.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


class Engine(Protocol):
    def launch_batch(
        self, batch: BatchSpec, conf: Mapping[str, str], report: Report, stopped: Stopped | None = None
    ) -> None:
        """Run the batch as one engine run, calling `report` for each chunk report as it lands;
        a chunk whose job `stopped` says was cancelled is not run (see `Stopped`)."""
        ...

    def close(self) -> None: ...


class _SessionEngine:
    """An engine that holds a Spark Connect session and runs the job in this process."""

    def __init__(self, config: FeatureStoreConfig) -> None:
        self.config = config
        self._lock = threading.Lock()

    def session(self) -> SparkSession:
        raise NotImplementedError

    default_conf: Mapping[str, str] = {}

    def launch_batch(
        self, batch: BatchSpec, conf: Mapping[str, str], report: Report, stopped: Stopped | None = None
    ) -> None:
        spark = self.session()
        with self._lock:  # runtime conf is per session: one batch at a time sets it
            for key, value in {**self.default_conf, **conf, **UTC_CONF}.items():
                spark.conf.set(key, value)
            spark_job.materialize_batch(spark, batch, report, self.config, stopped)

    def close(self) -> None:
        pass


class _Sail:
    """The process's one Sail server and session; stopped in the right order at exit."""

    lock = threading.Lock()
    server: Any = None  # pysail's SparkConnectServer (untyped)
    spark: SparkSession | None = None
    checkpoints: str | None = None  # SAIL_EXECUTION__CHECKPOINT__PATH's folder

    @classmethod
    def session(cls) -> SparkSession:
        with cls.lock:
            if cls.spark is None:
                os.environ.setdefault("RUST_LOG", "error")  # Sail's own logs: errors only
                # Where localCheckpoint() keeps its snapshots (a chunk with quality checks):
                # private to this process, emptied after every batch and removed at exit.
                cls.checkpoints = tempfile.mkdtemp(prefix="featurestore-sail-checkpoints-")
                os.environ["SAIL_EXECUTION__CHECKPOINT__PATH"] = Path(cls.checkpoints).as_uri()
                from pysail.spark import SparkConnectServer
                from pyspark.sql import SparkSession

                server = SparkConnectServer(ip="127.0.0.1", port=0)
                server.start(background=True)
                host, port = server.listening_address
                cls.server = server
                cls.spark = (
                    SparkSession.builder.remote(f"sc://{host}:{port}")
                    .config(
                        map={
                            **UTC_CONF,
                            spark_job.LATEST_METHOD_CONF: "join",
                            spark_job.ENGINE_CONF: "sail",
                        }
                    )
                    .create()
                )
                atexit.register(cls.stop)
            return cls.spark

    @classmethod
    def clear_checkpoints(cls) -> None:
        """Remove the snapshots of the batch that just ended: Sail keeps them for the session's
        life, and one session serves every batch of this process."""
        if cls.checkpoints is not None:
            for entry in Path(cls.checkpoints).iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    @classmethod
    def stop(cls) -> None:
        """The session first (or the process hangs at exit), then the server. The session's stop
        is a call to the server that pyspark retries for minutes when the server is busy or gone
        (after a Ctrl-C, say): it gets STOP_SECONDS in a thread, then the server stops anyway."""
        with cls.lock:
            if cls.spark is not None:
                stopping = threading.Thread(target=cls.spark.stop, name="featurestore-sail-stop", daemon=True)
                stopping.start()
                stopping.join(STOP_SECONDS)
                cls.spark = None
            if cls.server is not None:
                cls.server.stop()
                cls.server = None
            if cls.checkpoints is not None:
                shutil.rmtree(cls.checkpoints, ignore_errors=True)
                cls.checkpoints = None


class EmbeddedEngine(_SessionEngine):
    """Sail in this process: starts in under a second, writes Delta natively."""

    def session(self) -> SparkSession:
        return _Sail.session()

    def launch_batch(
        self, batch: BatchSpec, conf: Mapping[str, str], report: Report, stopped: Stopped | None = None
    ) -> None:
        try:
            super().launch_batch(batch, conf, report, stopped)
        finally:
            with self._lock:
                _Sail.clear_checkpoints()


class SparkConnectEngine(_SessionEngine):
    """A remote Spark Connect server; the driver-side code runs here, the work there."""

    default_conf = DELTA_SPARK_DEFAULT_CONF

    def __init__(self, config: FeatureStoreConfig, remote: str) -> None:
        super().__init__(config)
        self.remote = remote
        self._spark: SparkSession | None = None

    def session(self) -> SparkSession:
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._spark = SparkSession.builder.remote(self.remote).config(map=UTC_CONF).create()
        return self._spark

    def close(self) -> None:
        if self._spark is not None:
            self._spark.stop()
            self._spark = None


def cluster_deploy_mode(conf: Mapping[str, str], deploy_mode: object = None) -> bool:
    """Whether the driver runs on the cluster (`deploy_mode`, as a connection gives it, else
    `spark.submit.deployMode`): then it cannot read the submitter's files and the batch file goes
    with `--files`. In client mode it does not, so no copy of the secret lands in Spark's folders."""
    return str(deploy_mode or conf.get("spark.submit.deployMode") or "client") == "cluster"


class SparkSubmitEngine:
    """spark-submit of the job's entry point (`spark_jobs/materialize.py`, installed as
    `airflow_provider_featurestore.spark_jobs.materialize`), the package shipped as `--py-files`.

    `submit` is how the command runs: a plain `spark-submit --master M` here, or Airflow's
    SparkSubmitHook (through the connection resolver) when the config names a connection.
    """

    def __init__(
        self, config: FeatureStoreConfig, *, master: str | None = None, submit: Submitter | None = None
    ) -> None:
        if submit is None and not master:
            raise BadInput("engine: spark-submit needs engine.master (or engine.conn_id under Airflow)")
        self.config = config
        self.master = master
        self.submit = submit or self._plain_submit
        self._workdir = tempfile.mkdtemp(prefix="featurestore-submit-")
        self._package: str | None = None

    def package(self) -> str:
        """A zip of the provider's package for the driver and executors, built once per process."""
        if self._package is None:
            path = os.path.join(self._workdir, "featurestore.zip")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                root = Path(sys.modules[PACKAGE].__file__ or "").parent
                for file in root.rglob("*.py"):
                    archive.write(file, str(file.relative_to(root.parent)))
            self._package = path
        return self._package

    def launch_batch(
        self, batch: BatchSpec, conf: Mapping[str, str], report: Report, stopped: Stopped | None = None
    ) -> None:
        """One spark-submit for the whole batch. The submit runs in a thread; this thread reports
        each chunk result file as the driver writes it, so statuses move while the batch runs.
        Once every chunk not reported yet was cancelled (`stopped`), the spark-submit is ended:
        the chunk it was writing is rolled back with its uncommitted Delta commit. A batch with
        only some chunks cancelled runs on (their commits land, but their time stays Incomplete)."""
        result_dir = tempfile.mkdtemp(prefix="batch-", dir=self._workdir)
        batch_file = write_batch_file(batch, self._workdir)
        submission = Submission(
            args=("--batch-file", batch_file, "--result-dir", result_dir),
            conf={**DELTA_SPARK_DEFAULT_CONF, **conf, **UTC_CONF},
            py_files=self.package(),
            batch_file=batch_file,
            name=f"featurestore {batch.feature_set} v{batch.version} batch of {len(batch.chunks)}",
        )
        outcome: dict[str, object] = {}

        def submit() -> None:
            try:
                outcome["output"] = self.submit(submission)
            except Exception as exc:  # noqa: BLE001 - reported per chunk below
                outcome["error"] = exc

        seen: set[tuple[str, bool]] = set()

        def deliver(result: ChunkResult) -> None:
            if (result.job_id, result.done) not in seen:
                seen.add((result.job_id, result.done))
                report(result)

        thread = threading.Thread(target=submit, name="featurestore-spark-submit", daemon=True)
        thread.start()
        delivered: set[str] = set()
        while thread.is_alive():
            thread.join(RESULT_POLL_SECONDS)
            for result in _new_results(result_dir, delivered):
                deliver(result)
            left = [c.job_id for c in batch.chunks if (c.job_id, True) not in seen]
            if stopped is not None and left and all(stopped(job_id) for job_id in left):
                submission.stop.set()
        for result in _new_results(result_dir, delivered):
            deliver(result)
        # Cluster deploy mode writes the folder on the driver's node: read the marker lines.
        for line in str(outcome.get("output") or "").splitlines():
            if line.startswith(RESULT_MARKER):
                deliver(ChunkResult.from_json(line[len(RESULT_MARKER) :]))
        if submission.stop.is_set():
            error = CANCELLED_CHUNK
        elif "error" in outcome:
            error = redact_credentials(f"spark-submit failed: {outcome['error']}")
        else:
            error = "spark-submit reported no result"
        for chunk in batch.chunks:
            if (chunk.job_id, True) not in seen:
                deliver(ChunkResult(chunk.job_id, completed=dict.fromkeys(chunk.stores, False), error=error))
        shutil.rmtree(result_dir, ignore_errors=True)
        os.unlink(batch_file)

    def _plain_submit(self, submission: Submission) -> str:
        command = [spark_submit_binary(), "--master", str(self.master), "--name", submission.name]
        command += ["--py-files", submission.py_files]
        if cluster_deploy_mode(submission.conf):
            command += ["--files", submission.batch_file]
        for key, value in submission.conf.items():
            command += ["--conf", f"{key}={value}"]
        command += [entry_point(), *submission.args]
        process = subprocess.Popen(
            command,
            env=submit_environment(command[0], str(self.master)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        with ended_on(submission.stop, process.terminate):
            stdout, stderr = process.communicate()
        if process.returncode != 0:  # `run` still reads the job's own result when it wrote one
            lines = [line for line in stderr.splitlines() if line.strip() and not _spark_log_noise(line)]
            tail = " | ".join(lines[-5:])
            raise RuntimeError(f"exit {process.returncode}: {tail}")
        return stdout

    def close(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)


PACKAGE = "airflow_provider_featurestore"
ENTRY_POINT = f"{PACKAGE}.spark_jobs.materialize"


def entry_point() -> str:
    """The file spark-submit runs: the job's entry point, found by its module name without
    importing it (it is the one module that imports the core from outside)."""
    spec = importlib.util.find_spec(ENTRY_POINT)
    if spec is None or not spec.origin:
        raise BadInput(f"engine: {ENTRY_POINT} is not installed; reinstall airflow-provider-featurestore")
    return spec.origin


CONNECT_MODE_VARIABLES = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")
RESULT_POLL_SECONDS = 0.25
STOP_SECONDS = 5.0  # the longest wait for a Spark Connect session to close


@contextlib.contextmanager
def ended_on(stop: threading.Event, end: Callable[[], None]) -> Iterator[None]:
    """While the block runs (a spark-submit), call `end` once if `stop` is set: how a batch whose
    chunks were all cancelled ends its spark-submit, by the plain submit and Airflow's hook alike."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(RESULT_POLL_SECONDS):
                if not done.is_set():
                    end()
                return

    watcher = threading.Thread(target=watch, name="featurestore-submit-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def write_batch_file(batch: BatchSpec, folder: str) -> str:
    """The batch as a JSON file only its owner can read (mkstemp creates it 0600, in a 0700
    folder); the driver is handed its path, never its contents."""
    handle, path = tempfile.mkstemp(prefix="batch-", suffix=".json", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(batch.to_json())
    return path


def _new_results(result_dir: str, delivered: set[str]) -> list[ChunkResult]:
    """The chunk result files the driver renamed into `result_dir` since the last look, in order."""
    names = sorted(n for n in os.listdir(result_dir) if n.endswith(".json") and n not in delivered)
    results = []
    for name in names:
        with open(os.path.join(result_dir, name), encoding="utf-8") as handle:
            results.append(ChunkResult.from_json(handle.read()))
        delivered.add(name)
    return results


def _spark_log_noise(line: str) -> bool:
    """Spark's own log lines and JVM frames, which hide the Python error in a failed submit."""
    return any(
        mark in line for mark in (" WARN ", " INFO ", "log4j", "incubator modules")
    ) or line.lstrip().startswith("at ")


def submit_environment(binary: str, master: str) -> dict[str, str]:
    """The environment every spark-submit runs in, whoever launches it (the plain submit or
    Airflow's hook). A Spark Connect session earlier in this process (Sail, a retrieval, a test)
    leaves pyspark's connect-mode variables set; a driver that inherits them tries to connect
    instead of starting its own SparkContext, and fails within seconds."""
    env = {k: v for k, v in os.environ.items() if k not in CONNECT_MODE_VARIABLES}
    if "SPARK_HOME" not in env and binary == str(Path(sys.executable).with_name("spark-submit")):
        env["SPARK_HOME"] = pip_spark_home()  # pip's spark-submit looks for it with `python` on PATH
    if master.startswith("local"):  # executors share this machine: use this Python
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def die_with_parent() -> None:
    """In the spark-submit child: ask Linux for SIGTERM when the submitting thread dies, so a
    killed backfill leaves no driver committing on its own after its leases ran out (the next
    backfill redoes that time). Elsewhere nothing is done."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def pip_spark_home() -> str:
    """The Spark distribution inside the pip-installed pyspark."""
    import pyspark

    return str(Path(pyspark.__file__).resolve().parent)


def spark_submit_binary() -> str:
    """`$SPARK_HOME/bin/spark-submit`, else the one beside this Python (pyspark ships it), else PATH."""
    candidates = []
    if os.environ.get("SPARK_HOME"):
        candidates.append(os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"))
    candidates.append(str(Path(sys.executable).with_name("spark-submit")))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("spark-submit")
    if not found:
        raise BadInput("engine: spark-submit not found: install Spark or set SPARK_HOME")
    return found


def engine_for(config: FeatureStoreConfig, connections: ConfigConnections | None = None) -> Engine:
    """The engine `engine.type` names; what `engine.conn_id` names comes from `connections`."""
    connections = connections or ConfigConnections(config)
    engine = config.engine
    if engine.type == "embedded":
        return EmbeddedEngine(config)
    if engine.type == "spark-connect":
        return SparkConnectEngine(config, str(connections.spark_connect_remote))
    return SparkSubmitEngine(config, master=engine.master, submit=connections.spark_submitter)
