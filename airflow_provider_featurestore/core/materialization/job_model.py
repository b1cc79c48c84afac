"""What an engine is handed and what it reports back: a batch of chunks, and per chunk a result.

A backfill's unit of record is the chunk (one job record, at most `max_job_window` of time);
its unit of execution is the batch: consecutive chunks of one feature set version run as one
engine run (one Spark session, one `spark-submit`). Inside a batch each chunk is transformed
and written offline in its own commit and reported as soon as that commit lands; the online
store is written once for the whole batch. Plain data, JSON both ways: the spark-submit driver
gets the batch as a JSON file (never on its command line: it holds the Redis URL's password) and
reports each chunk as a JSON line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_MARKER = "FEATURESTORE_RESULT "
"""Starts the line a spark-submit driver prints per chunk report: the engine reads the reports
from the driver's output where the result folder is not shared (cluster deploy mode)."""


@dataclass(frozen=True)
class ChunkSpec:
    """One claimed job inside a batch: its window `[start, end)` and the stores it writes."""

    job_id: str
    start: int
    end: int
    stores: tuple[str, ...]
    from_offline: bool = False  # online-only over offline-Complete time: read the Delta table


@dataclass(frozen=True)
class BatchSpec:
    """Consecutive chunks of one feature set version, in time order, run as one engine run.
    What the job needs to reopen the config and the online store wherever the driver runs."""

    config_path: str
    feature_set: str
    version: int
    chunks: tuple[ChunkSpec, ...]
    redis_url: str | None = None  # resolved by the caller when the config names an Airflow connection

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        raw = json.loads(text)
        chunks = tuple(ChunkSpec(**{**c, "stores": tuple(c["stores"])}) for c in raw.pop("chunks"))
        return cls(**raw, chunks=chunks)


@dataclass
class ChunkResult:
    """What one chunk did so far. `completed` says per store whether its write committed; `done`
    is False for a report with more to come (offline committed, the batch's online write not yet)."""

    job_id: str
    done: bool = True
    completed: dict[str, bool] = field(default_factory=dict)
    rows_read: int | None = None
    rows_written: dict[str, int] = field(default_factory=dict)
    entities: int | None = None
    seconds: float = 0.0
    error: str | None = None
    # What the consistency check (consistency.py) later verifies: the Delta commit this chunk's
    # offline write produced ({"version": v, "timestamp": ms or None}), whether its online
    # write set the feature set version's marker key, and a sample of the keys that write stored
    # ([[key, expires epoch seconds or None], ...]; online/sample.py).
    offline_commit: dict[str, Any] | None = None
    online_marker: bool = False
    online_sample: list[list[Any]] | None = None
    # The spec's quality checks as measured on this chunk's rows (row_checks.CheckOutcome.to_json).
    checks: list[dict[str, Any]] = field(default_factory=list)
    # Source coverage, from the pass that counts rows_read: the first source row's event time in
    # the chunk's read range (epoch seconds) and whether that range was short of data (see
    # spark_job/sources.partial_lookback). None: not read from the source.
    first_source_time: int | None = None
    partial_lookback: bool | None = None
    # The source files its read range overlapped, listed before the read (SourceListing.fingerprint):
    # what the source check (source_check.py) compares with the source as it is later.
    source: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChunkResult:
        raw: dict[str, Any] = json.loads(text)
        return cls(**raw)


Report = Callable[[ChunkResult], None]
"""Called by an engine for each chunk report, in the order the chunks' writes commit."""

Stopped = Callable[[str], bool]
"""Whether a job of the batch was ended by another process (cancelled, or its lease expired):
the engine asks before each chunk and before the batch's online write, and does not start the
work of a job it says yes to (its chunk is reported done, nothing completed, error `cancelled`)."""

CANCELLED_CHUNK = "cancelled"
"""The error of a chunk an engine did not run (or whose spark-submit it ended) because its job
was cancelled; the job's record keeps the cancel's own reason."""


def batches(chunks: Sequence[Any], max_batch_window: int) -> list[list[Any]]:
    """Consecutive items (anything with `start` and `end`, in time order) grouped so that each
    group's windows add up to at most `max_batch_window`; a chunk longer than that is a batch alone."""
    groups: list[list[Any]] = []
    covered = 0
    for chunk in chunks:
        length = chunk.end - chunk.start
        if not groups or covered + length > max_batch_window:
            groups.append([])
            covered = 0
        groups[-1].append(chunk)
        covered += length
    return groups
