"""The status page's per-interval grid (`core/grid.py`) on a real SQLite interval table: one row per
stretch one job set in each store, newest first, each job's reasons, and the filters by data
status and by Airflow run. Time is made by the interval table's own job API (claim, start,
commit, finish, mark_lost), as the runner drives it."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from airflow_provider_featurestore.core import grid
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey
from airflow_provider_featurestore.core.interval_table.job_records import LEASE_EXPIRED
from airflow_provider_featurestore.core.timeutil import iso

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
DAY = 86400
JAN1 = 19723 * DAY  # 2024-01-01T00:00:00Z
KEY = StreamKey("transactions", 1)
STORES = ("offline", "online")
ALL = {"None", "Incomplete", "Complete"}


def day(n: int) -> int:
    return JAN1 + n * DAY


def run_ids(run: str, index: int) -> dict[str, object]:
    return {"dag_id": "featurestore_backfill", "run_id": run, "task_id": "materialize", "map_index": index,
            "try_number": 1}  # fmt: skip


@pytest.fixture
def table(tmp_path: Path) -> IntervalTable:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    config.write_text(config.read_text().replace("project: fraud", f"project: g{uuid.uuid4().hex[:8]}"))
    return FeatureStore(str(config), check_transformations=False).table


def test_rows_reasons_and_filters(table: IntervalTable) -> None:
    # Days 0-1 by run A: day 0 succeeds with a partial lookback and a warned check; day 1 fails.
    a0, a1 = table.claim(KEY, day(0), day(2), ALL, STORES, DAY, airflow=run_ids("A", 0))
    table.start_job(a0.id, airflow=run_ids("A", 0))
    checks = [{"check": "min_rows", "severity": "warn", "violations": 5, "passed": False}]
    table.finish_job(a0.id, {"offline": True, "online": True}, rows_read=10, rows_written={"offline": 7},
                     result={"partial_lookback": True, "checks": checks})  # fmt: skip
    table.start_job(a1.id, airflow=run_ids("A", 1))
    table.finish_job(a1.id, {"offline": False, "online": False}, error="boom")
    # Day 3 by run B: offline Complete, then lost; online still Pending (running).
    (b,) = table.claim(KEY, day(3), day(4), ALL, STORES, DAY, airflow=run_ids("B", 0))
    table.start_job(b.id, airflow=run_ids("B", 0))
    table.commit_stores(b.id, ["offline"], rows_written={"offline": 3})
    table.mark_lost(KEY, "offline", {b.id: "offline lost: the Delta table is gone"})
    # Day 5 by the CLI: its lease ran out.
    (c,) = table.claim(KEY, day(5), day(6), ALL, STORES, DAY)
    table.finish_job(c.id, {"offline": False, "online": False}, error=LEASE_EXPIRED)

    document = grid.document(table, KEY, STORES, day(0), day(6))
    got = [(r["start"], r["stores"]["offline"]["status"], r["stores"]["online"]["status"], r["job_ids"])
           for r in document["rows"]]  # fmt: skip
    assert got == [
        (iso(day(5)), "Incomplete", "Incomplete", [c.id]),
        (iso(day(4)), "None", "None", []),
        (iso(day(3)), "Incomplete", "Pending", [b.id]),
        (iso(day(2)), "None", "None", []),
        (iso(day(1)), "Incomplete", "Incomplete", [a1.id]),
        (iso(day(0)), "Complete", "Complete", [a0.id]),
    ]
    reasons = {job_id: job["reasons"] for job_id, job in document["jobs"].items()}
    assert reasons == {
        a0.id: ["partial lookback", "checks warned"],
        a1.id: ["failed"],
        b.id: ["lost"],
        c.id: ["lease expired"],
    }
    assert document["runs"] == ["A", "B"] and document["total_rows"] == 6
    assert document["jobs"][a0.id]["airflow"]["run_id"] == "A"
    assert document["jobs"][a0.id]["rows_written"] == {"offline": 7}

    pending = grid.document(table, KEY, STORES, day(0), day(6), statuses={"Pending"})
    assert [r["job_ids"] for r in pending["rows"]] == [[b.id]]
    run_a = grid.document(table, KEY, STORES, day(0), day(6), run_id="A")
    assert [r["job_ids"] for r in run_a["rows"]] == [[a1.id], [a0.id]]
    assert run_a["runs"] == ["A", "B"]  # the filter's choices stay
    never = grid.document(table, KEY, ("online",), day(0), day(6), statuses={"None"}, limit=1)
    assert [r["start"] for r in never["rows"]] == [iso(day(4))]
    assert never["truncated"] is True and never["total_rows"] == 2
    # A window cutting a job's chunk shows the part inside it.
    part = grid.document(table, KEY, STORES, day(0) + 3600, day(1) + 7200)
    assert [(r["start"], r["end"]) for r in part["rows"]] == [
        (iso(day(1)), iso(day(1) + 7200)),
        (iso(day(0) + 3600), iso(day(1))),
    ]


def test_rows_split_where_the_stores_differ(table: IntervalTable) -> None:
    (offline,) = table.claim(KEY, day(1), day(3), ALL, ("offline",), 2 * DAY)  # one 2-day chunk
    table.finish_job(offline.id, {"offline": True})
    (online,) = table.claim(KEY, day(2), day(3), ALL, ("online",), DAY)
    document = grid.document(table, KEY, STORES, day(1), day(3))
    assert [(r["start"], r["stores"]["online"]["status"], r["job_ids"]) for r in document["rows"]] == [
        (iso(day(2)), "Pending", sorted([offline.id, online.id])),
        (iso(day(1)), "None", [offline.id]),
    ]
