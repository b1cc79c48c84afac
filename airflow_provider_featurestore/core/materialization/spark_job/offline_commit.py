"""The offline commit: a chunk's rows replace exactly its window of the Delta table, in one
commit, retried when another writer committed first; and that commit found again in the log.

Errors are told apart by type: a Spark error's condition (delta-spark's error classes), and on
Sail, whose errors carry none, by what the log shows (another writer's commit landed during ours).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_incrementing

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.materialization.spark_job.offline_read import read_offline_window
from airflow_provider_featurestore.core.materialization.spark_job.predicates import (
    PARTITION_COLUMN,
    offline_predicate,
)
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import on_sail

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

COMMIT_RETRIES = 5
HISTORY_DEPTH = 50  # how far back in the Delta log a commit's own metrics are looked for

# delta-spark's error classes (the part before any ".SUBCLASS") for a commit that lost a race.
CONFLICT_CONDITIONS = frozenset(
    {
        "DELTA_CONCURRENT_APPEND",
        "DELTA_CONCURRENT_DELETE_DELETE",
        "DELTA_CONCURRENT_DELETE_READ",
        "DELTA_CONCURRENT_TRANSACTION",
        "DELTA_CONCURRENT_WRITE",
        "DELTA_METADATA_CHANGED",
        "DELTA_PROTOCOL_CHANGED",
    }
)
# Spark's and delta-spark's error classes for a path that holds no Delta table yet.
MISSING_TABLE_CONDITIONS = frozenset(
    {"PATH_NOT_FOUND", "DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND", "DELTA_EMPTY_DIRECTORY"}
)


class CommitConflict(RuntimeError):
    """Another writer committed to the table while this commit was under way."""


def write_offline(
    spark: SparkSession,
    rows: DataFrame,
    table_path: str,
    spec: FeatureSetSpec,
    start: int,
    end: int,
    *,
    create: bool,
) -> tuple[int, dict | None]:
    """Replace exactly the window's rows of the Delta table in one commit (idempotent); returns
    the rows written, from the commit's own metrics, and the commit itself (`{"version",
    "timestamp"}`, None when the log shows no commit of ours): the consistency check later asks
    the log whether it still holds that commit.

    The rows are already filtered to the window (Sail would append strays). `create`: the first
    write creates the table (Sail cannot `replaceWhere` into a missing table). Concurrent commits
    to one table can conflict; a bounded retry re-runs the (idempotent) overwrite.
    """
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    frame = rows.withColumn(PARTITION_COLUMN, F.to_date(F.col(spec.timestamp_column)))
    predicate = offline_predicate(spec, start, end)
    created = False
    for attempt in Retrying(
        retry=retry_if_exception_type(CommitConflict),
        stop=stop_after_attempt(COMMIT_RETRIES),
        wait=wait_incrementing(start=0.2, increment=0.2),
        reraise=True,
    ):
        with attempt:
            # After a conflict while creating, another writer created the table: replace our window in it.
            created = create and attempt.retry_state.attempt_number == 1
            _commit(spark, frame, table_path, None if created else predicate)
    written, commit = our_commit(spark, table_path, None if created else predicate)
    if written is None:  # the log keeps no metrics we can find: count what landed
        written = read_offline_window(spark, table_path, spec, start, end).count()
    return written, commit


def _commit(spark: SparkSession, frame: DataFrame, table_path: str, predicate: str | None) -> None:
    """One commit: an append that creates the table (`predicate` None), else a replaceWhere
    overwrite; a lost race raises CommitConflict."""
    from pyspark.errors import PySparkException

    began_ms = time.time() * 1000
    writer = frame.write.format("delta").partitionBy(PARTITION_COLUMN)
    try:
        if predicate is None:
            writer.mode("append").save(table_path)
        else:
            writer.mode("overwrite").option("replaceWhere", predicate).save(table_path)
    except PySparkException as exc:
        if _lost_a_race(spark, exc, table_path, began_ms):
            raise CommitConflict(
                f"another writer committed to {table_path} during this commit "
                f"(gave up after {COMMIT_RETRIES} attempts)"
            ) from exc
        raise


def _lost_a_race(spark: SparkSession, exc: Exception, table_path: str, began_ms: float) -> bool:
    """delta-spark names a conflict by its error class; Sail's commit error carries none, so
    there the log tells: a commit newer than our attempt's start is another writer's."""
    condition = _condition(exc)
    if condition is not None:
        return condition.split(".")[0] in CONFLICT_CONDITIONS
    if not on_sail(spark):
        return False
    newest = _newest_commit_ms(table_path)
    return newest is not None and newest >= began_ms - 1000  # a second of slack for the file clock


def _condition(exc: Exception) -> str | None:
    get = getattr(exc, "getCondition", None)
    try:
        return get() if get is not None else None
    except Exception:  # noqa: BLE001 - a classic-Spark error whose JVM side has no error class
        return None


def _newest_commit_ms(table_path: str) -> int | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        history = DeltaTable(table_path).history(1)
    except TableNotFoundError:
        return None
    stamp = history[0].get("timestamp") if history else None
    return None if stamp is None else int(stamp)


def table_exists(spark: SparkSession, table_path: str) -> bool:
    """Whether a Delta table is at `table_path`: asked of delta-rs on Sail (whose tables it
    writes), else of the engine, so any URI the cluster reads works."""
    if on_sail(spark):
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(table_path))
    from pyspark.errors import AnalysisException

    try:
        spark.read.format("delta").load(table_path).schema  # noqa: B018 - analysis raises when missing
        return True
    except AnalysisException as exc:
        condition = _condition(exc)
        if condition is None or condition.split(".")[0] in MISSING_TABLE_CONDITIONS:
            return False
        raise


def our_commit(spark: SparkSession, table_path: str, predicate: str | None) -> tuple[int | None, dict | None]:
    """Our commit in the Delta log: the newest commit whose replaceWhere is `predicate` (None:
    the table's first commit). Returns its `numOutputRows` (None when no such commit or metric is
    found) and `{"version", "timestamp"}` (None when no such commit is found).

    The timestamp is commitInfo's (epoch ms), as delta-rs reads it; it is recorded only on the
    embedded engine, whose history is delta-rs': delta-spark's DESCRIBE HISTORY may show the
    commit file's modification time instead, which the check (reading with delta-rs) would take
    for another commit. The version alone is recorded there.
    """
    try:
        entries = _history(spark, table_path)
    except Exception:  # noqa: BLE001 - the caller counts instead
        return None, None
    for parameters, metrics, entry in entries:
        ours = entry.get("version") == 0 if predicate is None else _same_predicate(parameters, predicate)
        if not ours:
            continue
        commit = None
        if entry.get("version") is not None:
            stamp = entry.get("timestamp")
            commit = {"version": int(entry["version"]), "timestamp": None if stamp is None else int(stamp)}
        rows_out = int(metrics["numOutputRows"]) if "numOutputRows" in metrics else None
        return rows_out, commit
    return None, None


def _history(spark: SparkSession, table_path: str) -> list[tuple[dict, dict, dict[str, Any]]]:
    """(operation parameters, operation metrics, entry) of the newest commits, newest first."""
    if on_sail(spark):
        from deltalake import DeltaTable

        history = DeltaTable(table_path).history(HISTORY_DEPTH)
        return [(h.get("operationParameters") or {}, h.get("operationMetrics") or {}, h) for h in history]
    # delta-spark: the same log through SQL (its predicate is written as a list)
    query = f"DESCRIBE HISTORY delta.`{table_path}` LIMIT {HISTORY_DEPTH}"
    rows = spark.sql(query).select("version", "operationParameters", "operationMetrics").collect()
    return [(r[1] or {}, r[2] or {}, {"version": r[0]}) for r in rows]


def _same_predicate(parameters: dict, predicate: str) -> bool:
    recorded = str(parameters.get("predicate", ""))
    return recorded == predicate or all(literal in recorded for literal in re.findall(r"'[^']*'", predicate))
