"""The materialization job's batch: one feature set version, consecutive chunks, one or both
stores, on the Spark session it is given. This is the Spark layer: every engine runs this code
(the embedded engine and Spark Connect call `materialize_batch()` in-process; spark-submit runs
the entry point `spark_jobs/materialize.py` on the cluster's driver, which calls it).
Plain DataFrame API and SQL only, so it behaves the same on Sail and on Spark + delta-spark
(see the project's Sail notes: filter to the window before a `replaceWhere` overwrite; no
dynamic partition overwrite; no `df.rdd`).

A batch runs its chunks in time order. Offline, each chunk's window is transformed and replaced
in its own commit, and reported as it commits. Online, the latest row per entity over all the
batch's committed chunks is written once, so a key is written at most once per batch. A chunk
that fails is reported with its own error; the others go on.

The job touches no interval table: it computes, writes and reports `ChunkResult`s; the caller
records them. A store counts as completed only once its write committed.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig, load_config
from airflow_provider_featurestore.core.materialization.job_model import (
    CANCELLED_CHUNK,
    BatchSpec,
    ChunkResult,
    ChunkSpec,
    Report,
    Stopped,
)
from airflow_provider_featurestore.core.materialization.spark_job.failures import one_line
from airflow_provider_featurestore.core.materialization.spark_job.offline_commit import (
    table_exists,
    write_offline,
)
from airflow_provider_featurestore.core.materialization.spark_job.online_write import (
    OnlineRows,
    write_online_batch,
)
from airflow_provider_featurestore.core.materialization.spark_job.quality import (
    Snapshots,
    check_chunk,
    measure_batch,
)
from airflow_provider_featurestore.core.materialization.spark_job.row_checks import (
    CheckOutcome,
    check_output,
    fail_on_errors,
)
from airflow_provider_featurestore.core.materialization.spark_job.sources import (
    read_range,
    read_source,
    rows_read,
)
from airflow_provider_featurestore.core.materialization.spark_job.transformation import (
    apply_transformation,
    in_window,
)
from airflow_provider_featurestore.core.source_fingerprint import list_source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def materialize_batch(
    spark: SparkSession,
    batch: BatchSpec,
    report: Report,
    config: FeatureStoreConfig | None = None,
    stopped: Stopped | None = None,
) -> None:
    """Materialize a batch on `spark`, reporting every chunk; never raises for a job failure.

    Each chunk gets exactly one report with `done=True` (and, when it writes both stores, one
    before it with `done=False` as its offline commit lands). A chunk whose job `stopped` says
    was cancelled is not started, and its rows are not written online: it is reported done,
    nothing completed, error `cancelled` (the chunk being written when the cancel came finishes).
    """
    results = {
        c.job_id: ChunkResult(c.job_id, completed=dict.fromkeys(c.stores, False)) for c in batch.chunks
    }
    try:
        config = config or load_config(batch.config_path)
        spec = config.get(batch.feature_set, batch.version)
        table_path = config.offline_table_path(spec)
    except Exception as exc:  # noqa: BLE001 - nothing ran: every chunk fails with the reason
        for chunk in batch.chunks:
            _finish(results, report, chunk, one_line(exc))
        return
    _count_rows_read(spark, spec, batch, results)
    snapshots = Snapshots(spark)
    state = _BatchState(
        table_path, measure_batch(spark, spec, [c for c in batch.chunks if not c.from_offline]), snapshots
    )
    try:
        _run_chunks(spark, config, spec, batch, state, results, report, stopped or _never)
    finally:
        snapshots.release()


def _run_chunks(
    spark: SparkSession,
    config: FeatureStoreConfig,
    spec: FeatureSetSpec,
    batch: BatchSpec,
    state: _BatchState,
    results: dict[str, ChunkResult],
    report: Report,
    stopped: Stopped,
) -> None:
    """Each chunk written offline in time order, reported as it commits; then the batch's one
    online write. A cancelled job's chunk is skipped at the boundary before it (or before the
    online write)."""
    online_rows: OnlineRows = []
    for chunk in batch.chunks:
        result = results[chunk.job_id]
        if stopped(chunk.job_id):
            _finish(results, report, chunk, CANCELLED_CHUNK)
            continue
        began = time.perf_counter()
        try:
            rows = _write_chunk(spark, spec, chunk, result, state)
        except Exception as exc:  # noqa: BLE001 - this chunk failed; the batch goes on
            result.seconds = round(time.perf_counter() - began, 3)
            _finish(results, report, chunk, one_line(exc))
            continue
        result.seconds = round(time.perf_counter() - began, 3)
        if "online" in chunk.stores:  # committed offline: read back with the batch's other chunks
            online_rows.append(
                (chunk, None if chunk.from_offline or result.completed.get("offline") else rows)
            )
        if "online" not in chunk.stores:
            _finish(results, report, chunk)
        elif "offline" in chunk.stores:  # offline committed; online comes with the batch's write
            report(
                replace(
                    result,
                    done=False,
                    completed=dict(result.completed),
                    rows_written=dict(result.rows_written),
                )
            )
    cancelled = {chunk.job_id for chunk, _rows in online_rows if stopped(chunk.job_id)}
    for chunk, _rows in online_rows:
        if chunk.job_id in cancelled:
            _finish(results, report, chunk, CANCELLED_CHUNK)
    online_rows = [item for item in online_rows if item[0].job_id not in cancelled]
    if online_rows:
        for chunk, error in write_online_batch(spark, config, spec, state.path, batch, online_rows, results):
            _finish(results, report, chunk, error)


def _never(_job_id: str) -> bool:
    return False


def _finish(
    results: dict[str, ChunkResult], report: Report, chunk: ChunkSpec, error: str | None = None
) -> None:
    """The chunk's last report (`done`), with its error when it failed."""
    result = results.pop(chunk.job_id)
    result.error = error
    report(result)


def fingerprint_sources(
    spec: FeatureSetSpec, chunks: list[ChunkSpec], results: dict[str, ChunkResult]
) -> None:
    """Record in each chunk's result the source files its read range overlaps: listed once per
    batch, BEFORE the source is read, so a file landing after the listing is one the source
    check finds later (a needless repair at worst, never a miss). A source that cannot be listed
    leaves no fingerprint: the check then cannot see that chunk's source, and says so."""
    if not chunks:
        return
    try:
        listing = list_source(spec)
    except Exception:  # noqa: BLE001 - the read itself meets an unreadable source, per chunk
        return
    for chunk in chunks:
        results[chunk.job_id].source = listing.fingerprint(*read_range(chunk, spec))


def _count_rows_read(
    spark: SparkSession, spec: FeatureSetSpec, batch: BatchSpec, results: dict[str, ChunkResult]
) -> None:
    """Each chunk's rows read and its source coverage, in one pass over the batch's source, after
    the source's files were listed (fingerprint_sources)."""
    from_source = [c for c in batch.chunks if not c.from_offline]
    fingerprint_sources(spec, from_source, results)
    try:
        for job_id, read in (rows_read(spark, spec, from_source) if from_source else {}).items():
            result = results[job_id]
            result.rows_read, result.first_source_time = read.rows, read.first
            result.partial_lookback = read.partial_lookback
    except Exception:  # noqa: BLE001 - an unreadable source fails each chunk below, with its own error
        pass


class _BatchState:
    """What the batch's chunks share: the offline table (whether it exists is asked once, before
    its first commit) and the quality checks measured for the whole batch at once."""

    def __init__(self, path: str, checks: dict[str, list[CheckOutcome]], snapshots: Snapshots) -> None:
        self.path = path
        self.exists: bool | None = None
        self.checks = checks
        self.snapshots = snapshots


def _write_chunk(
    spark: SparkSession, spec: FeatureSetSpec, chunk: ChunkSpec, result: ChunkResult, state: _BatchState
) -> DataFrame | None:
    """One chunk's rows, checked, and committed offline when it writes that store; returns its
    rows (None when they come from the offline table: online-only over offline-Complete time)."""
    if chunk.from_offline:  # nothing read from the source: its rows are the offline table's
        result.rows_read = 0
        return None
    rows = chunk_rows(spark, spec, chunk)
    if spec.checks:
        rows, outcomes = check_chunk(rows, spec, state.checks.get(chunk.job_id), state.snapshots)
        result.checks = [outcome.to_json() for outcome in outcomes]
        fail_on_errors(outcomes, spec)
    if "offline" in chunk.stores:
        if state.exists is None:
            state.exists = table_exists(spark, state.path)
        result.rows_written["offline"], result.offline_commit = write_offline(
            spark, rows, state.path, spec, chunk.start, chunk.end, create=not state.exists
        )
        state.exists = True
        result.completed["offline"] = True
    return rows


def chunk_rows(spark: SparkSession, spec: FeatureSetSpec, chunk: ChunkSpec) -> DataFrame:
    """The chunk's feature rows: its source with lookback, transformed, checked, kept to its window."""
    source = read_source(spark, spec, *read_range(chunk, spec))
    output = check_output(apply_transformation(spec, source, chunk), spec)
    return in_window(output, spec, chunk.start, chunk.end)
