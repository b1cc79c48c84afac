"""One feature table, written in turns by Sail and by Spark with delta-spark.

Why: a team prototypes on a laptop (the embedded engine, Sail) and moves to a cluster (Spark +
delta-spark) with the same offline table, and may come back. Each step runs the real job
(`airflow_provider_featurestore.core.materialization.spark_job.materialize_batch`, offline chunks of the fraud example's transactions) on one
engine: in process on Sail, in the JVM worker on a classic session as spark-submit runs it.
After each step the table must read back the same rows on Sail (the job's reader and Sail's own
Delta reader), on delta-spark and through delta-rs; those rows must be what pandas computes from
the source alone; the version must advance by one commit per chunk; and a re-run of a window
written by the other engine must replace it (same rows, no duplicates).

The JVM-first table is created with `checkpointInterval=2`, so Sail and delta-rs also read
delta-spark checkpoints (a long-lived table's log has them; the default is every 10 commits).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deltalake import DeltaTable
from support import engine_probes
from support.fraud import EXAMPLE, _generator, expected_rolling
from support.jvm_worker import JvmWorker

from airflow_provider_featurestore.core.materialization import spark_job
from airflow_provider_featurestore.core.materialization.engines import _Sail
from airflow_provider_featurestore.core.timeutil import to_epoch

DAY = 86400
FIRST_DAY = to_epoch("2024-01-01")
COLUMNS = [
    "accountID",
    "timestamp",
    "transaction_amount_7d_sum",
    "transaction_7d_count",
    "transaction_amount_7d_avg",
]
CHECKPOINT_EVERY_2 = {"spark.databricks.delta.properties.defaults.checkpointInterval": "2"}


def day(offset: int) -> list[int]:
    """The window of source day `offset`, as [start, end) epochs."""
    return [FIRST_DAY + offset * DAY, FIRST_DAY + (offset + 1) * DAY]


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    """The fraud example with 10 days of source data from 2024-01-01; returns its config file."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    _generator().generate(
        str(root / "data"), accounts=40, transactions_per_day=300, start="2024-01-01", days=10
    )
    yield root / "featurestore.yaml"
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]


class Table:
    """The feature table and the steps run on it, each engine's view of it checked after each."""

    def __init__(self, config: Path, jvm: JvmWorker) -> None:
        self.config = config
        self.jvm = jvm
        self.path = str(config.parent / "data" / "offline" / "transactions" / "v1")
        self.windows: set[tuple[int, int]] = set()
        self.version = -1

    def run(self, engine: str, windows: list[list[int]], conf: dict[str, str] | None = None) -> None:
        """The job on `engine` for `windows`; every chunk must commit the rows pandas expects."""
        args: dict[str, Any] = {
            "config_path": str(self.config),
            "feature_set": "transactions",
            "windows": windows,
            "conf": conf,
        }
        if engine == "sail":
            reports = engine_probes.run_job(_Sail.session(), **args)
        else:
            reports = self.jvm.call("run_job", **args)
        assert [r["error"] for r in reports] == [None] * len(windows), reports
        for report, (start, end) in zip(reports, windows, strict=True):
            assert report["completed"] == {"offline": True}
            assert report["rows_written"]["offline"] == len(expected_rolling(self.config.parent, start, end))
        self.windows.update((start, end) for start, end in windows)
        version = DeltaTable(self.path).version()
        assert version == self.version + len(windows), f"{engine}: version {self.version} -> {version}"
        self.version = version
        self.check()

    def check(self) -> None:
        """The four readers agree row for row, and with pandas; no duplicates."""
        spark = _Sail.session()
        job_reader = frame(engine_probes.rows(spark_job.read_offline_table(spark, self.path)), COLUMNS)
        sail_delta = frame(engine_probes.read_delta(spark, self.path), [*COLUMNS, "event_date"])
        jvm_delta = frame(self.jvm.call("read_delta", path=self.path), [*COLUMNS, "event_date"])
        delta_rs = frame(engine_probes._delta_rs(self.path), [*COLUMNS, "event_date"])

        pd.testing.assert_frame_equal(jvm_delta, delta_rs, check_exact=True)
        pd.testing.assert_frame_equal(job_reader, delta_rs[COLUMNS], check_exact=True)
        # Sail's Delta reader can be one ulp off (see docs/engines.md): the job reads Parquet on Sail.
        pd.testing.assert_frame_equal(sail_delta, delta_rs, check_exact=False, rtol=1e-15)
        dates = pd.to_datetime(delta_rs["timestamp"], unit="us", utc=True).dt.strftime("%Y-%m-%d")
        assert (delta_rs["event_date"] == dates).all()
        assert not delta_rs.duplicated(["accountID", "timestamp"]).any()

        want = pd.concat([expected_rolling(self.config.parent, s, e) for s, e in sorted(self.windows)])
        want["timestamp"] = want["timestamp"].astype("datetime64[us, UTC]").astype("int64")
        want = sort(want[COLUMNS])
        assert len(delta_rs) == len(want)
        pd.testing.assert_frame_equal(delta_rs[COLUMNS], want, check_dtype=False, rtol=1e-9)


def frame(values: list[list[Any]], columns: list[str]) -> pd.DataFrame:
    return sort(pd.DataFrame(values, columns=columns))


def sort(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values(["accountID", "timestamp", "transaction_amount_7d_sum"]).reset_index(drop=True)


def test_a_sail_table_continued_by_delta_spark(example: Path, jvm: JvmWorker) -> None:
    table = Table(example, jvm)
    table.run("sail", [day(1), day(2)])
    table.run("jvm", [day(3), day(2)])  # a new window, and a re-run of one Sail wrote
    table.run("sail", [day(3), day(4)])  # back on Sail: a window delta-spark wrote, and a new one
    assert table.version == 5


def test_a_delta_spark_table_continued_by_sail(example: Path, jvm: JvmWorker) -> None:
    table = Table(example, jvm)
    table.run("jvm", [day(4), day(5), day(6)], conf=CHECKPOINT_EVERY_2)
    assert Path(table.path, "_delta_log", f"{2:020d}.checkpoint.parquet").exists()  # what Sail reads next
    table.run("sail", [day(7), day(8), day(5)])
    table.run("jvm", [day(7)])
    assert table.version == 6
