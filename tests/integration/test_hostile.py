"""Hostile input and unlucky operators: each case gets one clear line, the right exit status,
and changes nothing.

Why this file exists: every case here once printed a Python traceback, exited 0 on a failure,
hung, or wrote data it should have refused. Each test runs the real `featurestore` command line
(in this process, or as the installed console script where a signal or a pipe is the point) on a
private copy of the fraud example, and asserts three things: the exit status, the one line on
stderr naming what is wrong (no traceback), and that the interval table, the offline folder and
the Redis keys are exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import REDIS_URL

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))
DAY = 86400
JAN1 = 19723 * DAY  # 2024-01-01


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Store:
    """A private fraud feature store: its config, and a fingerprint of every piece of state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "featurestore.yaml"
        self.project = f"h{uuid.uuid4().hex[:10]}"
        self.config.write_text(self.config.read_text().replace("project: fraud", f"project: {self.project}"))

    def set(self, old: str, new: str, file: str = "featurestore.yaml") -> None:
        path = self.root / file
        text = path.read_text()
        assert old in text, (old, file)
        path.write_text(text.replace(old, new))

    def state(self) -> dict[str, object]:
        """The interval table's bytes, the offline folder's files and this project's Redis keys."""
        database = self.root / "data" / "intervals.db"
        offline = self.root / "data" / "offline"
        client = redis.Redis.from_url(REDIS_URL)
        keys = sorted(client.scan_iter(f"{self.project}:*", count=1000))
        client.close()
        return {
            "intervals": hashlib.sha256(database.read_bytes()).hexdigest() if database.exists() else None,
            "offline": sorted(str(p.relative_to(offline)) for p in offline.rglob("*"))
            if offline.exists()
            else [],
            "redis": keys,
        }

    def complete_day(self) -> None:
        """Some state to lose: 2024-01-01 of transactions Complete in both stores (recorded only)."""
        table = IntervalTable(f"sqlite:///{self.root / 'data' / 'intervals.db'}")
        key = StreamKey("transactions", 1)
        for job in table.claim(key, JAN1, JAN1 + DAY, {"None"}, ("offline", "online"), DAY):
            table.start_job(job.id)
            table.finish_job(job.id, {"offline": True, "online": True})
        table.close()


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "offline", "*.db"))
    (root / "data").mkdir(exist_ok=True)
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    monkeypatch.delenv("FEATURESTORE_DEBUG", raising=False)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    store = Store(root)
    yield store
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]


def refused(
    store: Store, capsys: pytest.CaptureFixture[str], args: list[str], status: int, *needles: str
) -> str:
    """Run the CLI; assert the exit status, one stderr line holding every needle and no
    traceback, and no change to any state. Returns the line."""
    before = store.state()
    try:
        got = cli_main([*args, "--config", str(store.config)])
    except SystemExit as exc:  # argparse's own exit for a bad argument, as the console script gets it
        got = exc.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == status, (got, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert store.state() == before
    return lines[0]


# ---- the interval table ------------------------------------------------------------------


def test_a_garbage_interval_table_file(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    (fraud.root / "data" / "intervals.db").write_bytes(os.urandom(4096))
    refused(
        fraud,
        capsys,
        ["intervals", "transactions"],
        2,
        "interval_table.url",
        "intervals.db",
        "not a usable SQLite",
    )


def test_a_truncated_interval_table_file(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    fraud.complete_day()
    database = fraud.root / "data" / "intervals.db"
    database.write_bytes(database.read_bytes()[:1500])
    refused(fraud, capsys, ["intervals", "transactions"], 2, "interval_table.url", "intervals.db")


def test_an_unreachable_postgresql_interval_table(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    fraud.set(
        "  url: sqlite:///data/intervals.db",
        f"  url: postgresql+psycopg2://fs:s3cretpw@127.0.0.1:{closed_port()}/fs?connect_timeout=3",
    )
    line = refused(
        fraud, capsys, ["jobs", "transactions"], 1, "cannot reach the interval table", "interval_table.url"
    )
    assert "s3cretpw" not in line and "***" in line


def test_an_interval_table_of_another_program(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    with sqlite3.connect(fraud.root / "data" / "intervals.db") as conn:
        conn.execute("CREATE TABLE fs_intervals (x INTEGER)")
        conn.execute("CREATE TABLE fs_jobs (y TEXT)")
    refused(
        fraud, capsys, ["jobs", "transactions"], 2, "interval_table.url", "fs_intervals", "not this package's"
    )


def test_a_missing_config_file(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["list", "--config", str(fraud.root / "nowhere" / "featurestore.yaml")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "nowhere/featurestore.yaml" in lines[0] and "not found" in lines[0], lines


# ---- config and specs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            "  start: 2024-01-01\n",
            "  start: 2024-02-30\n",
            ["transactions.yaml", "start", "2024-02-30"],
        ),
        (
            "  start: 2024-01-01\n",
            "  start: 0001-01-01\n",
            ["transactions.yaml", "start", "1900-01-01"],
        ),
        (
            "  start: 2024-01-01\n",
            "  start: 2024\n",
            ["transactions.yaml", "start", "not a date"],
        ),
        ("version: 1", "version: -3", ["transactions.yaml", "version"]),
        ("name: transactions", "name: 'Robert; DROP TABLE'", ["transactions.yaml", "name"]),
    ],
    ids=["impossible-date", "year-1", "number-as-date", "negative-version", "bad-name"],
)
def test_a_bad_spec_field(
    fraud: Store, capsys: pytest.CaptureFixture[str], old: str, new: str, needles: list[str]
) -> None:
    fraud.set(old, new, "featuresets/transactions.yaml")
    refused(fraud, capsys, ["validate"], 2, *needles)


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("redis://localhost:sixthree/0", ["online_store.redis_url", "port"]),
        ("redis://localhost:99999/0", ["online_store.redis_url", "port"]),
        ("redis://localhost:6379/zero", ["online_store.redis_url", "database"]),
        ("redis//:hunter2@cache:6379/0", ["online_store.redis_url", "not a Redis URL"]),
        ("redis://:hunter2@cache:port/0", ["online_store.redis_url", "port"]),
    ],
    ids=["word-port", "port-range", "word-db", "no-scheme-with-password", "bad-port-with-password"],
)
def test_a_bad_redis_url_is_refused_with_its_password_masked(
    fraud: Store, capsys: pytest.CaptureFixture[str], url: str, needles: list[str]
) -> None:
    fraud.set("redis_url: ${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}", f"redis_url: '{url}'")
    line = refused(fraud, capsys, ["validate"], 2, *needles)
    assert "hunter2" not in line


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        ("project: PROJECT", "project: Fraud!", ["featurestore.yaml", "project", "Fraud!"]),
        (
            "redis_url: ${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}",
            "redis_url: ${NOPE_UNSET_FS_VAR}",
            ["online_store.redis_url", "NOPE_UNSET_FS_VAR", "not set"],
        ),
        ("feature_sets: featuresets", "feature_sets: nosuchdir", ["feature_sets", "nosuchdir"]),
        ("  url: sqlite:///data/intervals.db", "  url: notaurl", ["interval_table.url"]),
        ("  type: embedded", "  type: flink", ["engine.type", "flink"]),
        ("offline_store:", "offline_stor:", ["featurestore.yaml", "offline_store"]),
    ],
    ids=[
        "bad-project",
        "unset-variable",
        "missing-spec-folder",
        "bad-table-url",
        "unknown-engine",
        "typo-key",
    ],
)
def test_a_bad_config_field(
    fraud: Store, capsys: pytest.CaptureFixture[str], old: str, new: str, needles: list[str]
) -> None:
    fraud.set(old.replace("PROJECT", fraud.project), new)
    refused(fraud, capsys, ["validate"], 2, *needles)


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        ("type: double}", "type: decimal}", ["transactions.yaml", "features[0].type", "decimal"]),
        ("max_job_window: 1d", "max_job_window: 1w", ["transactions.yaml", "max_job_window", "1w"]),
        ("max_job_window: 1d", "max_job_window: 0s", ["transactions.yaml", "max_job_window", "0s"]),
        ('schedule: "@daily"', 'schedule: "@sometimes"', ["transactions.yaml", "schedule", "@sometimes"]),
        ("transactions:transform", "nosuch:transform", ["transactions.yaml", "transformation", "nosuch"]),
        (
            "transactions:transform",
            "transactions:nosuchfn",
            ["transactions.yaml", "transformation", "nosuchfn"],
        ),
        ("format: parquet", "format: orc", ["transactions.yaml", "source.format", "orc"]),
    ],
    ids=[
        "unknown-type",
        "unknown-unit",
        "zero-window",
        "bad-schedule",
        "no-module",
        "no-function",
        "bad-format",
    ],
)
def test_a_bad_spec_value(
    fraud: Store, capsys: pytest.CaptureFixture[str], old: str, new: str, needles: list[str]
) -> None:
    fraud.set(old, new, "featuresets/transactions.yaml")
    refused(fraud, capsys, ["validate"], 2, *needles)


def test_a_spec_defined_twice(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    specs = fraud.root / "featuresets"
    (specs / "copy.yaml").write_bytes((specs / "transactions.yaml").read_bytes())
    refused(fraud, capsys, ["validate"], 2, "transactions", "version 1", "already defined")


def test_a_binary_spec_file(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    (fraud.root / "featuresets" / "garbage.yaml").write_bytes(b"\xef\xbb" + bytes(range(256)) * 8)
    refused(fraud, capsys, ["list"], 2, "garbage.yaml")


def test_a_config_nested_too_deeply(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    fraud.config.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    refused(fraud, capsys, ["validate"], 2, "featurestore.yaml")


@pytest.mark.parametrize("content", [b"\x00\xff\xfe garbage", b"- a\n- b\n", b"", b"project: [unclosed\n"])
def test_a_garbage_config_file(fraud: Store, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    fraud.config.write_bytes(content)
    refused(fraud, capsys, ["list"], 2, "featurestore.yaml")


def test_a_config_that_is_a_folder(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    fraud.config.unlink()
    fraud.config.mkdir()
    refused(fraud, capsys, ["list"], 2, "featurestore.yaml")


def test_a_transformation_module_that_exits_on_import(
    fraud: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    (fraud.root / "transforms" / "exits.py").write_text("import sys\nsys.exit(0)\n")
    fraud.set(
        "transforms.transactions:transform", "transforms.exits:transform", "featuresets/transactions.yaml"
    )
    refused(fraud, capsys, ["validate"], 2, "transactions.yaml", "transformation", "SystemExit")


# ---- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["jobs", "transactions", "--limit", "99999999999999999999"], ["--limit", "2147483647"]),
        (["jobs", "transactions", "--limit", "0"], ["--limit"]),
        (["jobs", "transactions", "--limit", "ten"], ["--limit"]),
        (["intervals", "transactions", "--version", "1e9"], ["--version"]),
        (
            ["backfill", "transactions", "--start", "0001-01-01", "--end", "0001-01-03"],
            ["--start", "1900-01-01"],
        ),
        (
            ["backfill", "transactions", "--start", "2024-01-01", "--end", "9999-12-31"],
            ["--end", "2200-01-01"],
        ),
        (
            ["backfill", "transactions", "--start", "2024-01-02", "--end", "2024-01-01"],
            ["--end", "not after"],
        ),
        (["backfill", "transactions", "--start", "yesterday", "--end", "2024-01-01"], ["--start"]),
        (
            ["backfill", "transactions", "--start", "2024-01-01", "--end", "2024-01-02", "--store", "disk"],
            ["--store"],
        ),
        (["backfill", "nosuchset", "--start", "2024-01-01", "--end", "2024-01-02"], ["nosuchset"]),
        (
            ["backfill", "transactions", "--start", "2024-01-01", "--end", "2024-01-02", "--max-jobs", "-1"],
            ["--max-jobs"],
        ),
        (["intervals", "transactions", "--version", "9"], ["no version 9"]),
        (
            ["get-online", "transactions", "--key", "accountID=A0001", "--features", "nosuch"],
            ["--features", "nosuch"],
        ),
        (["get-online", "transactions", "--key", "A0001"], ["--key", "accountID=VALUE"]),
        (["get-online", "transactions", "--key", "nobody=1"], ["--key"]),
    ],
    ids=lambda value: (
        "-".join(value)
        if isinstance(value, list) and value and value[0] in ("jobs", "intervals", "backfill", "get-online")
        else None
    ),
)
def test_a_bad_argument(
    fraud: Store, capsys: pytest.CaptureFixture[str], args: list[str], needles: list[str]
) -> None:
    fraud.complete_day()
    refused(fraud, capsys, args, 2, *needles)


def test_a_window_of_centuries_is_refused_with_its_size(
    fraud: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    fraud.complete_day()
    args = ["backfill", "transactions", "--start", "1901-01-01", "--end", "2199-01-01"]
    line = refused(fraud, capsys, args, 2, "would plan 108,", "more than the 10,000 allowed")
    assert "narrow the window" in line
    # Allowed on purpose it plans (a dry run here: nothing claimed, nothing written).
    planned = int(line.split("would plan ")[1].split()[0].replace(",", ""))
    before = fraud.state()
    assert (
        cli_main([*args, "--dry-run", "--json", "--max-jobs", "200000", "--config", str(fraud.config)]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == planned > 100_000
    assert fraud.state() == before


# ---- services going away -----------------------------------------------------------------


def test_get_online_with_redis_down(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://:pw123456@127.0.0.1:{closed_port()}/0")
    line = refused(
        fraud,
        capsys,
        ["get-online", "transactions", "--key", "accountID=A0001"],
        1,
        "cannot reach the online store",
    )
    assert "pw123456" not in line


def test_disable_online_with_redis_down_changes_nothing(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fraud.complete_day()
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    refused(fraud, capsys, ["disable-online", "transactions"], 1, "cannot reach the online store")
    store = FeatureStore(str(fraud.config), check_transformations=False)
    assert [i.status for i in store.intervals("transactions")["online"]] == ["Complete"]
    assert store.table.disabled_stores(StreamKey("transactions", 1)) == set()
    store.close()


def test_a_redis_that_wants_a_password(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from support.redis_servers import free_port, start_server, stop, wait_until

    port = free_port()
    server = start_server(tmp_path / "redis", "--port", str(port), "--requirepass", "right-pw-4567")
    try:
        wait_until(lambda: redis.Redis(port=port, password="right-pw-4567").ping(), "the Redis server")
        for url in (f"redis://127.0.0.1:{port}/0", f"redis://:wrong-pw-8910@127.0.0.1:{port}/0"):
            monkeypatch.setenv("FEATURESTORE_REDIS_URL", url)
            line = refused(
                fraud,
                capsys,
                ["get-online", "transactions", "--key", "accountID=A0001"],
                1,
                "the online store refused us",
                "give its password in online_store.redis_url",
            )
            assert "wrong-pw-8910" not in line
    finally:
        stop(server)


def test_something_else_listening_where_redis_should_be(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listener:  # accepts, then closes every connection unanswered
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        stop_serving = threading.Event()

        def hang_up() -> None:
            listener.settimeout(0.2)
            while not stop_serving.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    continue
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                connection.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        try:
            refused(
                fraud,
                capsys,
                ["get-online", "transactions", "--key", "accountID=A0001"],
                1,
                "does not speak Redis",
                "online_store.redis_url",
            )
        finally:
            stop_serving.set()
            thread.join(5)


def test_verbose_shows_the_traceback(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    args = ["get-online", "transactions", "--key", "accountID=A0001", "--config", str(fraud.config)]
    assert cli_main([*args, "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith(
        "featurestore get-online: cannot reach"
    )
    monkeypatch.setenv("FEATURESTORE_DEBUG", "1")
    assert cli_main(args) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_listing_piped_into_head(fraud: Store) -> None:
    table = IntervalTable(f"sqlite:///{fraud.root / 'data' / 'intervals.db'}")
    table.claim(
        StreamKey("transactions", 1), JAN1, JAN1 + 300 * DAY, {"None"}, ("offline",), 3600, max_jobs=None
    )
    table.close()
    done = subprocess.run(
        f"'{FEATURESTORE}' jobs transactions --config '{fraud.config}' | head -n 2",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert len(done.stdout.splitlines()) == 2, done.stdout
    assert done.stderr == "", done.stderr


def test_a_command_without_config_on_a_host_where_airflow_was_never_set_up(
    fraud: Store, tmp_path: Path
) -> None:
    """Airflow is installed (a dependency) but its metadata database was never migrated, as on a
    newcomer's machine: the config lookup asks for the Airflow Variable first, and Airflow's own
    error log of the missing table (a traceback, which it writes to stdout) must reach neither
    stream: `--json` promises a JSON document on stdout and nothing else."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {  # a newcomer's shell: none of the test session's Airflow settings
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(home),
        "FEATURESTORE_CONFIG": str(fraud.config),
    }
    done = subprocess.run(
        [FEATURESTORE, "list", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert {row["name"] for row in json.loads(done.stdout)} == {"accounts", "transactions"}, done.stdout[
        :3000
    ]
    assert done.stderr == "", done.stderr


# ---- jobs that fail, and signals (the embedded engine, real data) ------------------------


def with_data(store: Store) -> None:
    """Four days of the example's data from 2024-01-01, a little of it."""
    import importlib.util

    loader = importlib.util.spec_from_file_location("fraud_generate_data", store.root / "generate_data.py")
    assert loader is not None and loader.loader is not None
    generator = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(generator)
    generator.generate(
        str(store.root / "data"), accounts=20, transactions_per_day=30, start="2023-12-25", days=11
    )


def use_transformation(store: Store, name: str, body: str) -> None:
    """The transactions spec calls `transforms.<name>:transform`, whose body is `body`."""
    (store.root / "transforms" / f"{name}.py").write_text(
        "import sys, time\nfrom pyspark.sql import functions as F\n"
        "from transforms.transactions import transform as rolling\n\n\n"
        f"def transform(df, window):\n{body}\n"
    )
    store.set(
        "transforms.transactions:transform", f"transforms.{name}:transform", "featuresets/transactions.yaml"
    )


def statuses(store: Store) -> dict[str, list[str]]:
    found = FeatureStore(str(store.config), check_transformations=False)
    try:
        return {s: [i.status for i in found.intervals("transactions")[s]] for s in ("offline", "online")}
    finally:
        found.close()


TWO_DAYS = ["backfill", "transactions", "--start", "2024-01-01", "--end", "2024-01-03"]


def failed_backfill(store: Store, capsys: pytest.CaptureFixture[str]) -> str:
    """Backfill TWO_DAYS; assert it exits 1 with no traceback and leaves both stores' time
    Incomplete. Returns its stderr."""
    assert cli_main([*TWO_DAYS, "--config", str(store.config)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert statuses(store) == {"offline": ["Incomplete"], "online": ["Incomplete"]}
    return err


def test_a_transformation_calling_exit_fails_its_jobs_with_status_1(
    fraud: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with_data(fraud)
    use_transformation(fraud, "quits", "    sys.exit(0)")
    err = failed_backfill(fraud, capsys)
    assert "called exit(0) instead of returning a DataFrame" in err
    assert not (fraud.root / "data" / "offline" / "transactions").exists()


def test_null_index_values_fail_the_chunk_and_reach_no_store(
    fraud: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with_data(fraud)
    body = (
        "    out = rolling(df, window)\n"
        "    return out.withColumn('accountID', F.when(F.hour('timestamp') % 2 == 0, F.lit(None))"
        ".otherwise(F.col('accountID')))"
    )
    use_transformation(fraud, "nullkeys", body)
    before = fraud.state()
    err = failed_backfill(fraud, capsys)
    assert "output has a null in 'accountID'" in err
    assert fraud.state()["redis"] == before["redis"] == []
    offline = fraud.root / "data" / "offline" / "transactions" / "v1"
    if offline.exists():  # a table may have been created empty by nobody; never with rows
        from deltalake import DeltaTable

        assert DeltaTable(str(offline)).to_pyarrow_table().num_rows == 0


def test_a_missing_source_fails_its_jobs_naming_the_path(
    fraud: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with_data(fraud)
    fraud.set("path: data/source/transactions", "path: data/source/moved", "featuresets/transactions.yaml")
    err = failed_backfill(fraud, capsys)
    assert "source " in err and "data/source/moved: no parquet data there: check source.path" in err
    assert fraud.state()["redis"] == [] and not (fraud.root / "data" / "offline" / "transactions").exists()


def test_a_corrupt_source_file_fails_its_jobs(fraud: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with_data(fraud)
    source = fraud.root / "data" / "source" / "transactions"
    for file in source.rglob("*.parquet"):
        file.write_bytes(os.urandom(2048))
    err = failed_backfill(fraud, capsys)
    assert "Parquet" in err or "parquet" in err, err
    assert fraud.state()["redis"] == []


def test_redis_down_during_a_backfill_prints_short_lines_and_keeps_the_whole_error(
    fraud: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_data(fraud)
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", f"redis://:pw-77889900@127.0.0.1:{closed_port()}/0")
    assert cli_main([*TWO_DAYS, "--config", str(fraud.config)]) == 1
    out, err = capsys.readouterr()
    console = out + err
    assert "Traceback" not in console and "Python worker" not in console and "pw-77889900" not in console
    failures = [line for line in console.splitlines() if "failed;" in line and "error:" in line]
    assert len(failures) == 2 and all(len(line) < 600 for line in failures), failures
    assert all(line.endswith("start Redis or fix online_store.redis_url") for line in failures), failures
    assert "whole errors: featurestore jobs transactions --json" in console.splitlines()[-1]
    assert statuses(fraud) == {"offline": ["Complete"], "online": ["Incomplete"]}
    store = FeatureStore(str(fraud.config), check_transformations=False)
    errors = [job.error or "" for job in store.jobs("transactions")]
    store.close()
    assert len(errors) == 2 and all(
        "cannot reach the online store" in e and "pw-77889900" not in e for e in errors
    )


SLOW_DRIVER = "    time.sleep(60)\n    return rolling(df, window)"
SLOW_QUERY = (  # the engine is busy in a query (a Python UDF that sleeps), not this process
    "    nap = F.udf(lambda x: (time.sleep(60), x)[1], 'string')\n"
    "    return rolling(df, window).withColumn('accountID', nap('accountID'))"
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("where", ["starting", "in-the-driver", "in-a-query"])
def test_a_signal_ends_a_backfill_within_seconds_and_leaves_nothing_pending(
    fraud: Store, sig: signal.Signals, where: str
) -> None:
    with_data(fraud)
    use_transformation(fraud, "slow", SLOW_QUERY if where == "in-a-query" else SLOW_DRIVER)
    argv = [FEATURESTORE, *TWO_DAYS, "--config", str(fraud.config)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = FeatureStore(str(fraud.config), check_transformations=False)
    if where == "starting":
        time.sleep(0.5)
    else:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            j.state == "running" for j in store.jobs("transactions")
        ):
            time.sleep(0.1)
        time.sleep(1.0 if where == "in-a-query" else 0.2)
        assert process.poll() is None, process.communicate()
    sent = time.monotonic()
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert took < 15, f"{took:.1f} s to end after {sig.name}: {err}"
    assert process.returncode != 0 and "Traceback" not in err, err
    intervals = store.intervals("transactions")
    assert all(i.status != "Pending" for s in intervals.values() for i in s), intervals
    jobs = store.jobs("transactions")
    assert all(j.state in ("failed", "succeeded") for j in jobs)
    assert all(j.error.startswith(("interrupted", "not run")) for j in jobs if j.state == "failed"), jobs
    store.close()
