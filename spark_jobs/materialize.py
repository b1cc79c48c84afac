"""The materialization job: one feature set version, one feature window, one or both stores.

Every engine runs this same code: the embedded engine and Spark Connect call `run()` with their
session in-process; spark-submit runs this file (`main()`), which builds a classic session.
Plain DataFrame API and SQL only, so it behaves the same on Sail and on Spark + delta-spark
(see the project's Sail notes: filter to the window before a `replaceWhere` overwrite; no
dynamic partition overwrite; no `df.rdd`).

The job touches no interval table: it computes, writes and returns a `JobResult`; the caller
records it. A store counts as completed only once its write committed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

from airflow_provider_featurestore.config import FeatureSetSpec, FeatureStoreConfig, load_config
from airflow_provider_featurestore.online import OnlineLayout, OnlineStore
from airflow_provider_featurestore.timeutil import to_datetime

PARTITION_COLUMN = "event_date"
COMMIT_RETRIES = 5
RESULT_MARKER = "FEATURESTORE_RESULT "
ENGINE_CONF = "featurestore.engine"  # "sail" on the embedded engine's session: see _sail_files
LATEST_METHOD_CONF = "featurestore.latestPerEntity"  # "window" (default) or "join": see latest_per_entity

SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "date": "date",
}


class TransformationOutputError(ValueError):
    """The transformation returned a frame that does not match the spec's declared columns."""


@dataclass(frozen=True)
class JobSpec:
    """What an engine hands the job: which feature set, which window, which stores."""

    config_path: str
    feature_set: str
    version: int
    start: int
    end: int
    stores: tuple[str, ...]
    job_id: str
    from_offline: bool = False  # online-only job over time whose offline status is Complete
    redis_url: str | None = None  # resolved by the caller when the config names an Airflow connection

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        raw = json.loads(text)
        raw["stores"] = tuple(raw["stores"])
        return cls(**raw)


@dataclass
class JobResult:
    """What a job did; `completed` says per store whether its write committed."""

    rows_read: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    entities: int | None = None
    seconds: float = 0.0
    completed: dict[str, bool] = field(default_factory=dict)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class FeatureWindow:
    """The window a transformation is asked for: `[start, end)` as UTC datetimes."""

    start: datetime
    end: datetime


def run(spark, job: JobSpec, config: FeatureStoreConfig | None = None) -> JobResult:  # type: ignore[no-untyped-def]
    """Materialize one job on `spark`; never raises for a job failure, reports it instead."""
    began = time.perf_counter()
    result = JobResult(completed=dict.fromkeys(job.stores, False))
    try:
        config = config or load_config(job.config_path)
        spec = config.get(job.feature_set, job.version)
        table_path = config.offline_table_path(spec)
        if job.from_offline:
            rows = read_offline_window(spark, table_path, spec, job.start, job.end)
        else:
            source = read_source(spark, spec, job.start - spec.source_lookback, job.end)
            result.rows_read = source.count()
            rows = in_window(
                check_output(apply_transformation(spec, source, job), spec), spec, job.start, job.end
            )
        if "offline" in job.stores:
            write_offline(spark, rows, table_path, spec, job.start, job.end)
            result.completed["offline"] = True
            # The online store reads back what just committed: no second run of the transformation.
            rows = read_offline_window(spark, table_path, spec, job.start, job.end)
            result.rows_written["offline"] = rows.count()
        if "online" in job.stores:
            redis_url = job.redis_url or config.redis_url
            if not redis_url:
                raise ValueError(
                    "online_store: no redis_url (an Airflow conn_id is resolved only under Airflow)"
                )
            written, entities = write_online(rows, redis_url, OnlineLayout.from_spec(config, spec))
            result.rows_written["online"], result.entities = written, entities
            result.completed["online"] = True
    except Exception as exc:  # noqa: BLE001 - a job failure is a result, with its message
        result.error = _one_line(exc)
    result.seconds = round(time.perf_counter() - began, 3)
    return result


# ---- reading -------------------------------------------------------------------------------


def _ts_literal(epoch: int) -> str:
    return f"timestamp'{to_datetime(epoch).strftime('%Y-%m-%d %H:%M:%S')}'"


def _window_predicate(column: str, start: int, end: int) -> str:
    return f"`{column}` >= {_ts_literal(start)} AND `{column}` < {_ts_literal(end)}"


def _offline_predicate(spec: FeatureSetSpec, start: int, end: int) -> str:
    """The window over the offline table, with the partition range that implies, so that the
    overwrite and the read-back prune by partition (measured: replaceWhere 0.58 s -> 0.50 s
    at 1M rows on Sail) instead of reading every file's statistics."""
    first = to_datetime(start).strftime("%Y-%m-%d")
    last = to_datetime(end - 1).strftime("%Y-%m-%d")
    dates = f"`{PARTITION_COLUMN}` >= date'{first}' AND `{PARTITION_COLUMN}` <= date'{last}'"
    return f"{_window_predicate(spec.timestamp_column, start, end)} AND {dates}"


def read_source(spark, spec: FeatureSetSpec, start: int, end: int):  # type: ignore[no-untyped-def]
    """The source rows with event time in `[start, end)`; the filter is pushed down to the scan."""
    source = spec.source
    reader = spark.read.format(source.format)
    if source.format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    frame = reader.load(source.path)
    if source.timestamp_column not in frame.columns:
        raise ValueError(
            f"source {source.path}: no column {source.timestamp_column!r} (source.timestamp_column)"
        )
    if source.format == "csv":  # CSV types differ between engines: the event time is read as UTC text
        frame = frame.withColumn(source.timestamp_column, frame[source.timestamp_column].cast("timestamp"))
    return frame.where(_window_predicate(source.timestamp_column, start, end))


def read_offline_window(spark, table_path: str, spec: FeatureSetSpec, start: int, end: int):  # type: ignore[no-untyped-def]
    """The feature rows of `[start, end)` in the offline table (partition column dropped)."""
    first = to_datetime(start).strftime("%Y-%m-%d")
    last = to_datetime(end - 1).strftime("%Y-%m-%d")
    files = _sail_files(spark, table_path, [(PARTITION_COLUMN, ">=", first), (PARTITION_COLUMN, "<=", last)])
    if files:
        return spark.read.parquet(*files).where(_window_predicate(spec.timestamp_column, start, end))
    frame = spark.read.format("delta").load(table_path)
    return frame.where(_offline_predicate(spec, start, end)).drop(PARTITION_COLUMN)


def read_offline_table(spark, table_path: str):  # type: ignore[no-untyped-def]
    """Every feature row of the offline table (partition column dropped)."""
    files = _sail_files(spark, table_path, None)
    if files:
        return spark.read.parquet(*files)
    return spark.read.format("delta").load(table_path).drop(PARTITION_COLUMN)


def _sail_files(spark, table_path: str, partition_filters: list | None) -> list[str]:  # type: ignore[no-untyped-def]
    """On Sail, the data files of the table's current snapshot (listed by delta-rs), to read with
    Sail's Parquet reader; elsewhere, or when there are none, [] (read as Delta).

    Sail's Delta reader answers a column whose min equals its max in a file from the file's JSON
    statistics, and parses some doubles one ulp off (0.9560017096289753 reads back as
    0.9560017096289752): constant columns, single-row files. Its Parquet reader is exact.
    """
    if spark.conf.get(ENGINE_CONF, "") != "sail":
        return []
    from deltalake import DeltaTable

    return list(DeltaTable(table_path).file_uris(partition_filters))


def apply_transformation(spec: FeatureSetSpec, source, job: JobSpec):  # type: ignore[no-untyped-def]
    transform = spec.load_transformation()
    if transform is None:
        return source
    window = FeatureWindow(to_datetime(job.start), to_datetime(job.end))
    output = transform(source, window)
    if output is None or not hasattr(output, "columns"):
        raise TransformationOutputError(
            f"transformation {spec.transformation} returned {type(output).__name__}, not a DataFrame"
        )
    return output


def check_output(frame, spec: FeatureSetSpec):  # type: ignore[no-untyped-def]
    """Every index column, the timestamp and every feature present with its declared type;
    the result holds exactly those columns, in that order."""
    actual = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    declared = [*spec.index_columns, *spec.features]
    where = f"transformation {spec.transformation}" if spec.transformation else f"source {spec.source.path}"
    for column in [*declared, None]:
        name = column.name if column else spec.timestamp_column
        wanted = SPARK_TYPES[column.type] if column else "timestamp"
        if name not in actual:
            raise TransformationOutputError(
                f"{where} output has no column {name!r} declared in {spec.spec_path} (columns: {', '.join(actual)})"
            )
        got = actual[name]
        if got != wanted and not (column is None and got == "timestamp_ntz"):
            raise TransformationOutputError(
                f"{where} output column {name!r} is {got}, declared {column.type if column else 'timestamp'} "
                f"in {spec.spec_path}: cast it in the transformation"
            )
    names = [c.name for c in spec.index_columns] + [spec.timestamp_column] + [c.name for c in spec.features]
    frame = frame.select(*[f"`{n}`" for n in names])
    if actual[spec.timestamp_column] == "timestamp_ntz":
        frame = frame.withColumn(spec.timestamp_column, frame[spec.timestamp_column].cast("timestamp"))
    return frame


def in_window(frame, spec: FeatureSetSpec, start: int, end: int):  # type: ignore[no-untyped-def]
    """Only the rows whose event time is inside the job's window."""
    return frame.where(_window_predicate(spec.timestamp_column, start, end))


# ---- writing -------------------------------------------------------------------------------


def write_offline(spark, rows, table_path: str, spec: FeatureSetSpec, start: int, end: int) -> None:  # type: ignore[no-untyped-def]
    """Replace exactly the window's rows of the Delta table in one commit (idempotent).

    The rows are already filtered to the window (Sail would append strays). The first write
    creates the table (Sail cannot `replaceWhere` into a missing table). Concurrent commits to
    one table can conflict; a bounded retry re-runs the (idempotent) overwrite.
    """
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    frame = rows.withColumn(PARTITION_COLUMN, F.to_date(F.col(spec.timestamp_column)))
    predicate = _offline_predicate(spec, start, end)
    for attempt in range(1, COMMIT_RETRIES + 1):
        try:
            writer = frame.write.format("delta").partitionBy(PARTITION_COLUMN)
            if table_exists(spark, table_path):
                writer.mode("overwrite").option("replaceWhere", predicate).save(table_path)
            else:
                writer.mode("append").save(table_path)
            return
        except Exception as exc:
            if attempt == COMMIT_RETRIES or not _is_commit_conflict(exc):
                raise
            time.sleep(0.2 * attempt)


def table_exists(spark, table_path: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether a Delta table is at `table_path` (asked of the engine, so any URI works)."""
    try:
        spark.read.format("delta").load(table_path).schema  # noqa: B018 - analysis raises when missing
        return True
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if any(
            m in text
            for m in (
                "No commit files",
                "not a Delta table",
                "PATH_NOT_FOUND",
                "does not exist",
                "DELTA_MISSING",
                "No such file",
            )
        ):
            return False
        raise


def _is_commit_conflict(exc: Exception) -> bool:
    text = str(exc)
    return any(
        m in text
        for m in (
            "Failed to commit transaction",
            "ConcurrentAppend",
            "ConcurrentWrite",
            "ConcurrentDelete",
            "ProtocolChanged",
            "MetadataChanged",
            "already exists",
        )
    )


def latest_per_entity(rows, index_names: list[str], timestamp_column: str, method: str = "window"):  # type: ignore[no-untyped-def]
    """The row with the latest event time in the window, per entity key.

    `window` (the default): a row_number() window function, one row per entity; the faster
    on classic Spark (local[2], 1M rows: 1.1 s against 1.6 s). `join` (the embedded engine's):
    the latest time per entity by a hash aggregate, joined back to the rows on (key, time)
    with the aggregate as the build side: on Sail, which sorts the whole window for the
    window function, 2.5x faster and 100 MB less memory at 1M rows. Rows sharing their
    entity's latest time are all kept (the online write keeps the last one written, as
    arbitrary as row_number's pick). Rows with a null key value are passed through, so the
    online write still rejects them. (With a null-safe join condition instead, Sail hashed
    on the time alone: 114 s instead of 0.4 s when many entities share an event time.)
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    if method == "join":
        keys = [F.col(f"`{n}`") for n in index_names]
        latest = rows.groupBy(*keys).agg(F.max(F.col(f"`{timestamp_column}`")).alias(timestamp_column))
        joined = latest.join(rows, on=[*index_names, timestamp_column], how="inner")
        keyless = rows.where(" OR ".join(f"`{n}` IS NULL" for n in index_names))
        return joined.select(*[f"`{c}`" for c in rows.columns]).unionByName(keyless)
    order = Window.partitionBy(*[F.col(f"`{n}`") for n in index_names]).orderBy(
        F.col(f"`{timestamp_column}`").desc()
    )
    return rows.withColumn("_fs_rank", F.row_number().over(order)).where("_fs_rank = 1").drop("_fs_rank")


def write_online(rows, redis_url: str, layout: OnlineLayout, partitions: int = 4) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Write the latest row per entity to Redis from the executors; returns (written, entities).

    Each task opens its own connection and writes its partition in batches; only per-task
    counts come back to the driver.
    """
    index_names = [c.name for c in layout.index_columns]
    method = rows.sparkSession.conf.get(LATEST_METHOD_CONF, "window")
    latest = latest_per_entity(rows, index_names, layout.timestamp_column, method).repartition(partitions)
    now = int(time.time())

    def write_partition(batches):  # type: ignore[no-untyped-def]
        import pyarrow as pa

        store = OnlineStore(redis_url)
        total = written = 0
        try:
            for batch in batches:
                stats = store.write(layout, batch, now=now)
                total += stats.rows
                written += stats.written
        finally:
            store.close()
        yield pa.record_batch(
            [pa.array([total], pa.int64()), pa.array([written], pa.int64())], names=["rows", "written"]
        )

    counts = latest.mapInArrow(write_partition, "rows long, written long").collect()
    return sum(r["written"] for r in counts), sum(r["rows"] for r in counts)


_RAISED = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Unavailable|Exit|Interrupt|Failure|Timeout): .*")


def _one_line(exc: BaseException) -> str:
    """The failure in one line. An exception raised in a Python worker reaches the driver wrapped
    in the worker's traceback (PythonException); the exception it ends with comes first here,
    the traceback after it, so a truncated view still says what went wrong."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    message = f"{type(exc).__name__}: {text}"
    if "Traceback (most recent call last)" in text:
        frames = text.rfind('File "')
        raised = _RAISED.search(text, frames if frames >= 0 else 0)
        if raised is not None:
            message = f"{raised.group(0)} (in a Python worker; {message})"
    return message[:2000]


# ---- spark-submit entry point --------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`spark-submit spark_jobs/materialize.py --job JSON [--result-file PATH]`."""
    parser = argparse.ArgumentParser(prog="materialize.py")
    parser.add_argument("--job", required=True, help="the JobSpec as JSON")
    parser.add_argument("--result-file", help="also write the JobResult JSON here")
    args = parser.parse_args(argv)
    job = JobSpec.from_json(args.job)

    from pyspark.sql import SparkSession

    config = load_config(job.config_path)
    # engine.conf and spark_conf arrive as --conf from the submitter; only UTC is insisted on here.
    builder = SparkSession.builder.appName(f"featurestore {job.feature_set} v{job.version} {job.job_id}")
    spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    try:
        result = run(spark, job, config)
    finally:
        spark.stop()
    text = result.to_json()
    if args.result_file:
        with open(args.result_file, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(RESULT_MARKER + text, flush=True)
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
