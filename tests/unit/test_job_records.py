"""Job records and the schema check on a SQLite interval table in a temporary folder: the states
land in `fs_jobs` as their plain words, come back as `JobState`, and reach the JSON unchanged; a
database whose tables of our names are another program's is refused before anything is written."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord, JobState, StreamKey

KEY = StreamKey("transactions", 1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "intervals.db"


@pytest.fixture
def table(db: Path) -> Iterator[IntervalTable]:
    opened = IntervalTable(f"sqlite:///{db}", lease_seconds=60)
    yield opened
    opened.close()


def stored_states(db: Path) -> dict[str, object]:
    """Each job's `state` column as SQLite holds it, read past SQLAlchemy and the package."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT id, state FROM fs_jobs").fetchall())


def test_every_state_is_stored_as_its_word_and_read_back_as_a_job_state(
    table: IntervalTable, db: Path
) -> None:
    done, broken, lost = table.claim(KEY, 0, 300, {"None"}, ("offline",), 100, now=1000.0)
    assert stored_states(db) == {done.id: "queued", broken.id: "queued", lost.id: "queued"}

    table.start_job(done.id, now=1000.0)
    table.start_job(broken.id, now=1000.0)
    assert stored_states(db)[done.id] == "running"
    table.finish_job(done.id, {"offline": True}, now=1001.0)
    table.finish_job(broken.id, {"offline": False}, error="boom", now=1001.0)
    assert table.expire_stale(KEY, now=2000.0) == [lost.id]  # its lease ended at 1060

    assert stored_states(db) == {done.id: "succeeded", broken.id: "failed", lost.id: "failed"}
    assert all(type(state) is str for state in stored_states(db).values())
    records = table.jobs_by_id([done.id, broken.id, lost.id])
    assert {job_id: r.state for job_id, r in records.items()} == {
        done.id: JobState.SUCCEEDED,
        broken.id: JobState.FAILED,
        lost.id: JobState.FAILED,
    }
    assert all(isinstance(r.state, JobState) for r in records.values())
    assert "lease expired" in (records[lost.id].error or "")
    assert table.intervals(KEY, ("offline",))["offline"] == [
        iv.Interval(0, 100, iv.COMPLETE),
        iv.Interval(100, 300, iv.INCOMPLETE),
    ]


def test_the_json_shows_the_state_as_a_plain_word(table: IntervalTable) -> None:
    [claimed] = table.claim(KEY, 0, 100, {"None"}, ("offline",), 100, now=1000.0)
    shown = table.job(claimed.id).to_json()
    assert type(shown["state"]) is str and json.loads(json.dumps(shown))["state"] == "queued"
    # A record built with the word (as a caller may) shows the same.
    spelled = JobRecord("j1", "t", 1, 0, 60, ("offline",), "failed").to_json()
    assert type(spelled["state"]) is str and spelled["state"] == "failed"
    assert [state.value for state in JobState] == ["queued", "running", "succeeded", "failed", "cancelled"]


def test_a_finished_job_ignores_a_late_heartbeat_and_a_second_finish(table: IntervalTable, db: Path) -> None:
    [claimed] = table.claim(KEY, 0, 100, {"None"}, ("offline",), 100, now=1000.0)
    table.finish_job(claimed.id, {"offline": False}, error="redis://user:secret@host:6379 refused")
    assert not table.heartbeat(claimed.id)
    table.finish_job(claimed.id, {"offline": True})  # the record keeps its end; its time is not Pending
    record = table.job(claimed.id)
    assert stored_states(db) == {claimed.id: "failed"}
    assert record.error == "redis://user:***@host:6379 refused" and record.lease_expires_at is None
    assert table.intervals(KEY, ("offline",))["offline"] == [iv.Interval(0, 100, iv.INCOMPLETE)]


def test_mark_lost_adds_the_reason_to_the_error_of_the_job_that_set_the_time(table: IntervalTable) -> None:
    first, second = table.claim(KEY, 0, 200, {"None"}, ("offline",), 100)
    table.finish_job(first.id, {"offline": True})
    table.finish_job(second.id, {"offline": True}, error="slow")
    turned = table.mark_lost(KEY, "offline", {second.id: "Delta commit 3 is gone"})
    assert turned == [iv.Segment(100, 200, iv.INCOMPLETE, second.id)]
    assert table.job(second.id).error == "slow; Delta commit 3 is gone"
    assert table.job(first.id).error is None
    assert table.intervals(KEY, ("offline",))["offline"] == [
        iv.Interval(0, 100, iv.COMPLETE),
        iv.Interval(100, 200, iv.INCOMPLETE),
    ]


def test_tables_of_another_program_are_refused_before_anything_is_written(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE fs_jobs (id TEXT PRIMARY KEY, owner TEXT)")
        conn.commit()
    with pytest.raises(BadInput, match=r"table fs_jobs has no column\(s\) feature_set, version, .*airflow"):
        IntervalTable(f"sqlite:///{db}")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == ["fs_jobs"]


def test_a_file_that_is_no_database_is_refused_as_bad_input(db: Path) -> None:
    db.write_bytes(b"not a database, just text\n" * 100)
    with pytest.raises(BadInput, match="not a usable SQLite interval table"):
        IntervalTable(f"sqlite:///{db}")
    assert db.read_bytes() == b"not a database, just text\n" * 100
