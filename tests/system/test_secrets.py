"""No secret on a command line, in a Spark property, a job record, a log line or an error text.

Why this test exists: a batch's spec carries the online store's resolved URL with its password,
and the spark-submit engine used to pass that spec as an argument, so every local user could read
it with `ps` and Spark recorded it (the driver's `sun.java.command` in the Spark UI and the event
log; Airflow's SparkSubmitHook logs its command line too). A real backfill of the fraud example,
both stores, runs through the spark-submit engine against a Redis server of this test's own with
a random password, once by `engine.master` (plain spark-submit) and once by Airflow connections
(`engine.conn_id` through SparkSubmitHook, `online_store.conn_id`). Meanwhile a thread samples
every process's argv; afterwards the samples, the Spark event log, the interval table's rows,
this process's stdout, stderr and logging, and spark-submit's own output are searched for the
password. Positive controls make the search able to fail: the sampler saw the driver's command
line, the event log holds it, Redis refuses a client without the password, and the rows landed.

One spark-submit per case (each ~40-90 s of JVM on a busy 2-core machine).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest
import redis
from airflow_provider_featurestore.spark_jobs.materialize import read_batch_file
from deltalake import DeltaTable
from support.redis_servers import free_port, stop, wait_until
from support.spark_cluster import SparkServices

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.errors import redact_credentials
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey
from airflow_provider_featurestore.core.materialization.engines import (
    EmbeddedEngine,
    cluster_deploy_mode,
    write_batch_file,
)
from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, ChunkSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
START, END = "2024-01-01", "2024-01-03"  # two daily chunks, one batch: one spark-submit
SAMPLE_SECONDS = 0.2


@pytest.fixture(scope="module")
def spark_master(spark_services: SparkServices) -> str:
    """Every case submits to the session's standalone cluster (a master and two workers)."""
    return spark_services.cluster()


@dataclass
class SecretRedis:
    port: int
    password: str

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


@pytest.fixture(scope="module")
def secret_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretRedis]:
    """A redis-server with a random password, given in a 0600 config file: `--requirepass PW` on
    its own command line would put the password in the very `ps` output this test searches."""
    folder = tmp_path_factory.mktemp("secret-redis")
    port, password = free_port(), f"pw{secrets.token_hex(16)}"
    conf = folder / "redis.conf"
    conf.write_text(
        f'port {port}\nbind 127.0.0.1\nrequirepass "{password}"\nsave ""\nappendonly no\ndir {folder}\n'
    )
    conf.chmod(0o600)
    with open(folder / "redis.log", "wb") as log:
        process = subprocess.Popen(["redis-server", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    server = SecretRedis(port, password)
    client = server.client()
    try:
        wait_until(client.ping, "the password-protected Redis")
        yield server
    finally:
        client.close()
        stop(process)


class ArgvSampler:
    """Every distinct process command line (`/proc/*/cmdline`, what `ps -eo args` shows), sampled
    every SAMPLE_SECONDS in a thread while the job runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="argv-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                            raw = handle.read()
                    except OSError:  # the process ended meanwhile
                        continue
                    if raw:
                        self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def spark_home_recording_output(folder: Path) -> Path:
    """A SPARK_HOME (and PATH entry: SparkSubmitHook runs `spark-submit` from PATH) whose
    `spark-submit` runs pyspark's own, keeping a copy of its stdout and stderr (the driver's
    logs) and the mode of the file `--batch-file` names (`mode` in the folder)."""
    real = Path(pyspark.__file__).parent
    (folder / "bin").mkdir(parents=True)
    wrapper = folder / "bin" / "spark-submit"
    wrapper.write_text(
        "#!/bin/bash\n"
        "batch=$(printf '%s\\n' \"$@\" | sed -n '/^--batch-file$/{n;p;q;}')\n"
        f'stat -c "%a %n" "$batch" "$(dirname "$batch")" >> "{folder}/mode"\n'
        f'export SPARK_HOME="{real}"\n'
        f'exec "{real}/bin/spark-submit" "$@" > >(tee -a "{folder}/stdout") 2> >(tee -a "{folder}/stderr" >&2)\n'
    )
    wrapper.chmod(0o755)
    return folder


def make_store(root: Path, engine: str, online_store: str, conf: dict[str, str]) -> tuple[Path, str]:
    """A private copy of the fraud example with a little data; returns its config and project."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"secrets{uuid.uuid4().hex[:8]}"
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: {project}")
    text = text.replace("  redis_url: ${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}", online_store)
    engine_block = text[text.index("engine:") :]
    text = text.replace(engine_block, f"engine:\n{engine}  conf: {json.dumps(conf)}\n")
    config.write_text(text)
    spec = root / "featuresets" / "transactions.yaml"
    spec.write_text(spec.read_text().replace("online_ttl: 30d", "online_ttl: 36500d"))  # 2024 events live
    loader = importlib.util.spec_from_file_location("fraud_generate_data", root / "generate_data.py")
    assert loader is not None and loader.loader is not None
    generator = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(generator)
    generator.generate(str(root / "data"), accounts=20, transactions_per_day=20, start="2023-12-25", days=9)
    return config, project


def jvm_conf(services: SparkServices, events: Path) -> dict[str, str]:
    """The cluster configuration (delta-spark by its jars) and an uncompressed event log in `events`."""
    events.mkdir()
    return {
        **services.submit_conf(),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file:{events}",
        "spark.eventLog.compress": "false",
        "spark.ui.enabled": "false",
    }


def interval_table_dump(database: Path) -> str:
    """Every row of every table of the interval table (job records: state, result, error...)."""
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "fs_jobs" in tables, tables
        return "\n".join(
            f"{table}: {row!r}" for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')
        )


@pytest.mark.parametrize("submit_by", ["master", "airflow_connections"])
def test_no_secret_on_a_command_line_in_spark_or_in_records_and_logs(
    submit_by: str,
    spark_master: str,
    spark_services: SparkServices,
    secret_redis: SecretRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.fail("spark-submit needs Java: install a JDK 17+ or set JAVA_HOME")
    password = secret_redis.password
    home = spark_home_recording_output(tmp_path / "spark_home")
    monkeypatch.setenv("SPARK_HOME", str(home))
    monkeypatch.setenv("PATH", f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    events = tmp_path / "events"
    conf = jvm_conf(spark_services, events)
    if submit_by == "master":
        engine = f"  type: spark-submit\n  master: {spark_master}\n"
        online_store = f"  redis_url: {secret_redis.url()}"
    else:  # both secrets from Airflow connections, as a deployment under Airflow has them
        engine = "  type: spark-submit\n  conn_id: featurestore_spark\n"
        online_store = "  conn_id: featurestore_redis"
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
        monkeypatch.setenv(
            "AIRFLOW_CONN_FEATURESTORE_SPARK", json.dumps({"conn_type": "spark", "host": spark_master})
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_FEATURESTORE_REDIS",
            json.dumps(
                {"conn_type": "redis", "host": "127.0.0.1", "port": secret_redis.port, "password": password}
            ),
        )
    config, project = make_store(tmp_path / "fraud", engine, online_store, conf)
    caplog.set_level(logging.INFO)
    # A Spark Connect session earlier in the same process (here Sail's, as a retrieval would
    # open) leaves pyspark's connect-mode variables set: the driver must not inherit them.
    sail = EmbeddedEngine(FeatureStore(str(config), check_transformations=False).config).session()
    assert sail.range(3).count() == 3 and "SPARK_CONNECT_MODE_ENABLED" in os.environ

    with ArgvSampler() as sampler:
        status = cli_main(
            ["backfill", "transactions", "--start", START, "--end", END, "--config", str(config)]
        )
    out, err = capsys.readouterr()

    # The backfill really ran and wrote both stores, into a Redis that refuses a client without
    # the password: the job had the password, so every place it could have leaked to was live.
    assert status == 0, (out, err)
    store = FeatureStore(str(config), check_transformations=False)
    jobs = store.jobs("transactions")
    assert len(jobs) == 2 and all(j.state == "succeeded" for j in jobs), [j.to_json() for j in jobs]
    source = pq.read_table(store.config.get("transactions", 1).source.path).to_pandas()
    inside = source[(source.timestamp >= START) & (source.timestamp < END)]
    offline = DeltaTable(str(tmp_path / "fraud" / "data" / "offline" / "transactions" / "v1"))
    assert offline.to_pyarrow_table().num_rows == len(inside) > 0
    client = secret_redis.client()
    marker = store.online_layout(store.spec("transactions")).marker_key  # not an entity
    keys = {k.decode() for k in client.scan_iter(f"{project}:transactions:v1:*")} - {marker}
    assert keys == {f"{project}:transactions:v1:{a}" for a in inside.accountID.unique()}
    assert client.hget(next(iter(keys)), "transaction_7d_count") is not None
    client.delete(*keys)
    client.close()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=secret_redis.port).get("any")

    # The controls: the sampler saw the driver's command line, the event log holds the
    # application's properties, spark-submit's output was kept, and the spec went as a file only
    # its owner reads.
    driver = [args for args in sampler.seen if "org.apache.spark.deploy.SparkSubmit" in args]
    assert any("--batch-file" in args and "materialize.py" in args for args in driver), sorted(sampler.seen)
    logs = [p for p in events.rglob("*") if p.is_file()]  # Spark 4: a rolling log, a folder per app
    event_log = "\n".join(p.read_text(errors="replace") for p in logs)
    # Spark 4.2 records the driver's system properties with its command line (sun.java.command)
    # redacted; the Spark properties (every --conf, the name) are there as given.
    assert '"sun.java.command":"*********(redacted)"' in event_log, logs
    assert '"spark.jars"' in event_log and '"featurestore transactions v1 batch of 2"' in event_log, logs
    spark_output = (home / "stdout").read_text() + (home / "stderr").read_text()
    assert "FEATURESTORE_RESULT" in spark_output and "SparkContext" in spark_output
    file_mode, folder_mode = (line.split()[0] for line in (home / "mode").read_text().splitlines())
    assert (file_mode, folder_mode) == ("600", "700")
    if submit_by == "airflow_connections":
        # The hook's own log of its command line (structlog, to this process's stdout or stderr).
        assert "Spark-Submit cmd:" in out + err + caplog.text, (out, err)
    records = interval_table_dump(tmp_path / "fraud" / "data" / "intervals.db")
    assert all(j.id in records for j in jobs)

    places = {
        "a process's argv": "\n".join(sampler.seen),
        "the Spark event log": event_log,
        "the interval table": records,
        "the job records (featurestore jobs --json)": json.dumps([j.to_json() for j in jobs]),
        "this process's stdout": out,
        "this process's stderr": err,
        "this process's logging": caplog.text,
        "spark-submit's stdout and stderr": spark_output,
    }
    leaks = [where for where, text in places.items() if password in text]
    assert not leaks, f"the Redis password appears in: {', '.join(leaks)}"
    assert sampler.samples > 10


def test_credentials_in_an_error_text_are_masked_before_a_job_record_keeps_it(tmp_path: Path) -> None:
    """The last guard: an error quoting a URL (a client library's message, a failed
    spark-submit's output) is stored and shown with the URL's password masked."""
    url = "rediss://user:pa%40ss@cache:6380/2"
    assert redact_credentials(f"ConnectionError: {url} refused") == (
        "ConnectionError: rediss://user:***@cache:6380/2 refused"
    )
    assert redact_credentials("unix:///run/redis.sock?db=1&password=hunter2") == (
        "unix:///run/redis.sock?db=1&password=***"
    )
    assert redact_credentials("redis://cache:6379/0 at 12:30 a:b@c") == "redis://cache:6379/0 at 12:30 a:b@c"

    table = IntervalTable(f"sqlite:///{tmp_path}/intervals.db")
    (job,) = table.claim(StreamKey("transactions", 1), 0, 100, {"None"}, ("online",), 1000)
    table.start_job(job.id)
    done = table.finish_job(job.id, {"online": False}, error=f"OnlineStoreUnavailable: {url} refused")
    assert done.error == "OnlineStoreUnavailable: rediss://user:***@cache:6380/2 refused"
    assert "pa%40ss" not in interval_table_dump(tmp_path / "intervals.db")
    table.close()


def test_the_driver_finds_a_shipped_batch_file_by_its_name_in_its_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cluster deploy mode: the submitter's path does not exist on the driver's node; the file
    shipped with `--files` is in the driver's working folder under the same name."""
    batch = BatchSpec("/etc/featurestore.yaml", "transactions", 1, (ChunkSpec("j1", 0, 3600, ("online",)),))
    path = write_batch_file(batch, str(tmp_path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    container = tmp_path / "container"
    container.mkdir()
    shutil.move(path, container / os.path.basename(path))
    monkeypatch.chdir(container)
    assert read_batch_file(path) == batch
    assert cluster_deploy_mode({"spark.submit.deployMode": "cluster"})
    assert cluster_deploy_mode({}, "cluster") and not cluster_deploy_mode({})
    assert not cluster_deploy_mode({"spark.submit.deployMode": "cluster"}, "client")  # the connection wins
