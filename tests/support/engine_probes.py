"""Probes of the Sail notes' rules, the same code run on each engine's session.

Each probe takes a session and a fresh folder and returns what the engine did as plain JSON
(rows as sorted lists, timestamps as epoch microseconds, errors as one line), so that a test
can run it in process on Sail and in `jvm_worker` on the JVM with delta-spark and compare.
Nothing here asserts: `test_engine_differences.py` states what each engine does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd  # at module level: pandas_udf resolves its type hints here

DAY1, DAY2, DAY3 = "2024-01-01", "2024-01-02", "2024-01-03"
FIXED_TS = 1704079800  # 2024-01-01 03:30:00 UTC: 22:30 the day before in New York


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:600]


def attempt(action: Callable[[], Any]) -> dict[str, Any]:
    """`{"ok": True, "value": ...}` or `{"ok": False, "error": "..."}`."""
    try:
        return {"ok": True, "value": action()}
    except Exception as exc:  # noqa: BLE001 - the probe reports it
        return {"ok": False, "error": one_line(exc)}


def rows(frame) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    """The frame's rows, sorted, with timestamps as epoch microseconds and dates as ISO text."""
    from pyspark.sql import functions as F  # noqa: N812

    columns = []
    for field in frame.schema.fields:
        column = F.col(f"`{field.name}`")
        kind = field.dataType.simpleString()
        if kind.startswith("timestamp"):
            column = F.unix_micros(column.cast("timestamp"))
        elif kind == "date":
            column = column.cast("string")
        columns.append(column.alias(field.name))
    values = [[_plain(v) for v in row] for row in frame.select(*columns).collect()]
    return sorted(values, key=lambda r: [(v is None, str(v)) for v in r])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def types(frame) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.name: f.dataType.simpleString() for f in frame.schema.fields}


def is_sail(spark) -> bool:  # type: ignore[no-untyped-def]
    return spark.conf.get("featurestore.engine", "") == "sail"


def _events(spark, days: list[tuple[str, int, float]]):  # type: ignore[no-untyped-def]
    """Rows (k, ts, value, event_date) at noon UTC of each (day, k, value)."""
    values = ", ".join(f"({k}, timestamp'{d} 12:00:00', cast({v} as double))" for d, k, v in days)
    return spark.sql(f"SELECT col1 AS k, col2 AS ts, col3 AS value FROM VALUES {values}").selectExpr(
        "k", "ts", "value", "to_date(ts) AS event_date"
    )


def _create(spark, path: str, days: list[tuple[str, int, float]]) -> None:  # type: ignore[no-untyped-def]
    _events(spark, days).write.format("delta").partitionBy("event_date").mode("append").save(path)


def _read(spark, path: str) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    return rows(spark.read.format("delta").load(path))


def _delta_rs(path: str) -> list[list[Any]]:
    """The table as delta-rs reads it (timestamps as microseconds), the engine-independent view."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(path).to_pyarrow_table()
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            micros = table.column(index).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            table = table.set_column(index, field.name, micros)
    out = [[_plain(v) for v in row.values()] for row in table.to_pylist()]
    return sorted(out, key=lambda r: [(v is None, str(v)) for v in r])


def _job_predicate(day: str, next_day: str) -> str:
    """A window's replaceWhere, shaped like the job's: the timestamp range and its dates."""
    return (
        f"`ts` >= timestamp'{day} 00:00:00' AND `ts` < timestamp'{next_day} 00:00:00' "
        f"AND `event_date` >= date'{day}' AND `event_date` <= date'{day}'"
    )


# ---- probes ----------------------------------------------------------------------------------


def session_time_zone(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Date/time functions of a column, and a replaceWhere overwrite of a table created under UTC,
    under other session zones."""
    from pyspark.sql import functions as F  # noqa: N812

    out: dict[str, Any] = {}
    try:
        for zone in ("America/New_York", "Etc/UTC"):
            path = os.path.join(root, zone.replace("/", "_"))
            spark.conf.set("spark.sql.session.timeZone", "UTC")
            _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
            spark.conf.set("spark.sql.session.timeZone", zone)
            ts = F.timestamp_seconds(F.col("id") + FIXED_TS)
            frame = spark.range(1).select(
                F.hour(ts).alias("hour"),
                F.to_date(ts).cast("string").alias("to_date"),
                F.date_format(ts, "HH:mm").alias("date_format"),
                F.unix_micros(F.date_trunc("day", ts)).alias("date_trunc_day"),
            )
            result = attempt(lambda frame=frame: frame.collect()[0].asDict())
            overwrite = _events(spark, [(DAY2, 2, 20.0)]).write.format("delta").mode("overwrite")
            result["replace_where"] = attempt(
                lambda path=path, overwrite=overwrite: (
                    overwrite.option("replaceWhere", _job_predicate(DAY2, DAY3)).save(path) or _delta_rs(path)
                )
            )
            out[zone] = result
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    return out


def replace_where_strays(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A replaceWhere overwrite of day 2 whose rows include one of day 3 (outside the predicate)."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0), (DAY3, 3, 3.0)])
    write = attempt(
        lambda: (
            _events(spark, [(DAY2, 2, 20.0), (DAY3, 3, 30.0)])
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", _job_predicate(DAY2, DAY3))
            .save(path)
        )
    )
    return {"write": write, "after": _delta_rs(path)}


def replace_where_missing_table(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A replaceWhere overwrite into a path that holds no table yet."""
    path = os.path.join(root, "t")
    write = attempt(
        lambda: (
            _events(spark, [(DAY2, 2, 2.0)])
            .write.format("delta")
            .partitionBy("event_date")
            .mode("overwrite")
            .option("replaceWhere", _job_predicate(DAY2, DAY3))
            .save(path)
        )
    )
    return {"write": write, "after": attempt(lambda: _delta_rs(path))}


def dynamic_partition_overwrite(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An overwrite with partitionOverwriteMode=dynamic of day 2 only, into a 3-day table."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0), (DAY3, 3, 3.0)])
    write = attempt(
        lambda: (
            _events(spark, [(DAY2, 2, 20.0)])
            .write.format("delta")
            .partitionBy("event_date")
            .mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .save(path)
        )
    )
    return {"write": write, "after": _delta_rs(path)}


def merge_schema(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An append with one more column and mergeSchema=true; read back by the engine and delta-rs."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
    wider = _events(spark, [(DAY3, 3, 3.0)]).selectExpr("*", "'x' AS extra")
    write = attempt(
        lambda: wider.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
    )
    return {
        "write": write,
        "engine": attempt(lambda: _read(spark, path)),
        "delta_rs": _delta_rs(path),
        "columns": _delta_rs_columns(path),
    }


def overwrite_changed_schema(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Overwrites with a changed schema (no overwriteSchema): a whole-table overwrite with a column
    renamed, and the job's own replaceWhere overwrite with a column added."""
    path = os.path.join(root, "full")
    _create(spark, path, [(DAY1, 1, 1.0)])
    renamed = _events(spark, [(DAY1, 1, 1.0)]).withColumnRenamed("value", "renamed")
    full = attempt(lambda: renamed.write.format("delta").mode("overwrite").save(path))
    full_after = {"rows": _delta_rs(path), "columns": _delta_rs_columns(path)}
    path2 = os.path.join(root, "window")
    _create(spark, path2, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
    added = _events(spark, [(DAY2, 2, 20.0)]).selectExpr("*", "cast(7 as bigint) AS added")
    window = attempt(
        lambda: (
            added.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", _job_predicate(DAY2, DAY3))
            .save(path2)
        )
    )
    window_after = {"rows": _delta_rs(path2), "columns": _delta_rs_columns(path2)}
    return {"full": full, "full_after": full_after, "window": window, "window_after": window_after}


def _delta_rs_columns(path: str) -> list[str]:
    from deltalake import DeltaTable

    return [f.name for f in DeltaTable(path).schema().fields]


def merge_update_delete(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """SQL MERGE INTO, UPDATE and DELETE on a path table, and the delta-spark Python DeltaTable API."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
    table = f"delta.`{path}`"
    out: dict[str, Any] = {}
    _events(spark, [(DAY2, 2, 20.0), (DAY3, 3, 3.0)]).createOrReplaceTempView("probe_updates")
    out["merge_sql"] = attempt(
        lambda: (
            spark.sql(
                f"MERGE INTO {table} t USING probe_updates s ON t.k = s.k "
                "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
            ).collect()
            and _delta_rs(path)
        )
    )
    out["update_sql"] = attempt(
        lambda: spark.sql(f"UPDATE {table} SET value = value + 100 WHERE k = 1").collect() and _delta_rs(path)
    )
    out["delete_sql"] = attempt(
        lambda: spark.sql(f"DELETE FROM {table} WHERE k = 2").collect() and _delta_rs(path)
    )

    def python_api() -> int:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(spark, path).toDF().count()

    out["delta_table_api"] = attempt(python_api)
    spark.catalog.dropTempView("probe_updates")
    return out


def table_maintenance(spark, root: str, only: list[str] | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """DESCRIBE HISTORY, OPTIMIZE, VACUUM and writeTo(...).overwritePartitions() on a path table
    (`only`: those of them; OPTIMIZE and VACUUM cost ~40 s on local[2])."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
    _create(spark, path, [(DAY1, 4, 4.0)])
    table = f"delta.`{path}`"
    # VACUUM lists the table's folders in this many tasks (10,000 by default: 96 s on local[2])
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.parallelism", "4")
    timed = {}
    for name, action in {
        "describe_history": lambda: len(spark.sql(f"DESCRIBE HISTORY {table}").collect()),
        "optimize": lambda: len(spark.sql(f"OPTIMIZE {table}").collect()),
        "vacuum": lambda: len(spark.sql(f"VACUUM {table} RETAIN 168 HOURS").collect()),
        "overwrite_partitions": lambda: (
            _events(spark, [(DAY2, 2, 20.0)]).writeTo(table).overwritePartitions() or _delta_rs(path)
        ),
    }.items():
        if only is not None and name not in only:
            continue
        began = time.perf_counter()
        timed[name] = attempt(action)
        timed[name]["seconds"] = round(time.perf_counter() - began, 1)
    return timed


def dataframe_apis(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """df.rdd, approxQuantile and percentile_approx, and the Python UDF kinds."""
    from pyspark.sql import functions as F  # noqa: N812

    frame = spark.range(10).selectExpr("id", "cast(id as double) AS x")

    def arrow(batches):  # type: ignore[no-untyped-def]
        for batch in batches:
            yield batch.select(["id"])

    def pandas_batches(frames):  # type: ignore[no-untyped-def]
        for part in frames:
            yield part[["id"]]

    def group(part: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"n": [len(part)]})

    def plus_one(series: pd.Series) -> pd.Series:
        return series + 1

    return {
        "rdd": attempt(lambda: frame.rdd.count()),
        "approx_quantile": attempt(lambda: frame.approxQuantile("x", [0.5], 0.0)),
        "percentile_approx": attempt(lambda: frame.select(F.percentile_approx("x", 0.5)).collect()[0][0]),
        "map_in_arrow": attempt(lambda: frame.mapInArrow(arrow, "id long").count()),
        "map_in_pandas": attempt(lambda: frame.mapInPandas(pandas_batches, "id long").count()),
        "pandas_udf": attempt(
            lambda: (
                frame.select(F.pandas_udf(plus_one, "double")("x").alias("y")).agg(F.sum("y")).collect()[0][0]
            )
        ),
        "apply_in_pandas": attempt(
            lambda: frame.groupBy((F.col("id") % 2).alias("g")).applyInPandas(group, "n long").count()
        ),
    }


def csv_infer_schema(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The types `inferSchema` gives a CSV source's columns."""
    path = os.path.join(root, "source.csv")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("ts,small,big,x,name,flag\n")
        handle.write("2024-01-01 03:30:00,7,9999999999,1.5,a,true\n")
        handle.write("2024-01-02 04:00:00,8,9999999998,2.5,b,false\n")
    frame = spark.read.option("header", "true").option("inferSchema", "true").csv(path)
    return {"types": types(frame), "ts_micros": sorted(r[0] for r in rows(frame.select("ts")))}


def partition_types(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Hive-style partition columns of a parquet folder, and a Delta table's date partition column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = os.path.join(root, "parquet")
    for day, n in ((DAY1, 1), (DAY2, 2)):
        part = os.path.join(folder, f"day={day}", f"n={n}")
        os.makedirs(part)
        pq.write_table(pa.table({"value": [float(n)]}), os.path.join(part, "part-0.parquet"))
    path = os.path.join(root, "delta")
    _create(spark, path, [(DAY1, 1, 1.0)])
    return {
        "hive_parquet": types(spark.read.parquet(folder)),
        "delta_partition": types(spark.read.format("delta").load(path)),
    }


def union_missing_columns(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """unionByName(allowMissingColumns=True): the type of a column only one side has."""
    left = spark.range(2).selectExpr("id")
    right = spark.range(2).selectExpr("id", "'x' AS name")
    union = left.unionByName(right, allowMissingColumns=True)
    return {"types": types(union), "rows": rows(union)}


def integer_overflow(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """BIGINT arithmetic past its range, and a cast of a too-large value to INT."""
    return {
        "bigint_add": attempt(
            lambda: spark.range(1).selectExpr("9223372036854775807 + (id + 1) AS v").collect()[0][0]
        ),
        "cast_to_int": attempt(
            lambda: spark.range(1).selectExpr("cast(3000000000 + id AS int) AS v").collect()[0][0]
        ),
    }


def nanosecond_parquet(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A parquet file whose timestamps are nanoseconds, and the same in microseconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = {}
    for unit in ("ns", "us"):
        path = os.path.join(root, f"{unit}.parquet")
        stamp = pa.array([FIXED_TS * 10**9], pa.timestamp("ns", tz="UTC")).cast(pa.timestamp(unit, tz="UTC"))
        pq.write_table(pa.table({"ts": stamp}), path, coerce_timestamps=None, version="2.6")
        out[unit] = attempt(lambda path=path: rows(spark.read.parquet(path)))
    return out


def concurrent_writers(spark, root: str, trials: int = 3) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two threads at once, each a replaceWhere overwrite of its own day of one table, `trials` times."""
    path = os.path.join(root, "t")
    _create(spark, path, [(DAY1, 1, 1.0), (DAY2, 2, 2.0)])
    outcomes = []
    barrier = threading.Barrier(2)  # reusable: both threads of a trial start their write together
    for trial in range(trials):
        results: dict[str, dict[str, Any]] = {}

        def write(day: str, next_day: str, k: int, trial: int = trial, results: dict = results) -> None:
            frame = _events(spark, [(day, k, float(100 * (trial + 1) + k))])
            barrier.wait()
            results[day] = attempt(
                lambda: (
                    frame.write.format("delta")
                    .mode("overwrite")
                    .option("replaceWhere", _job_predicate(day, next_day))
                    .save(path)
                )
            )

        threads = [
            threading.Thread(target=write, args=(DAY1, DAY2, 1)),
            threading.Thread(target=write, args=(DAY2, DAY3, 2)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append({day: result.get("error") for day, result in sorted(results.items())})
    return {"outcomes": outcomes, "after": _delta_rs(path)}


def parquet_files(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What a partitioned Delta write puts in its Parquet files: the timestamp's physical type,
    with the engine's default and with outputTimestampType=TIMESTAMP_MICROS, and the columns."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    key = "spark.sql.parquet.outputTimestampType"
    before = spark.conf.get(key, None)
    out = {}
    try:
        for setting in (None, "TIMESTAMP_MICROS"):
            if setting is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, setting)
            path = os.path.join(root, str(setting))
            _create(spark, path, [(DAY1, 1, 1.0)])
            file = pq.ParquetFile(DeltaTable(path).file_uris()[0].removeprefix("file://"))
            column = file.schema.column(file.schema_arrow.get_field_index("ts"))
            out[str(setting)] = {
                "ts": f"{column.physical_type} {column.logical_type}",
                "columns": file.schema_arrow.names,
            }
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
    return out


def delta_reader_exactness(spark, root: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A double that is constant within a file (min = max in the file's statistics), read by the
    engine's Delta reader and by its Parquet reader over the files delta-rs lists."""
    from deltalake import DeltaTable

    path = os.path.join(root, "t")
    value = 0.9560017096289753
    spark.createDataFrame([(1, value)], "k int, x double").write.format("delta").save(path)
    files = DeltaTable(path).file_uris()
    return {
        "written": value,
        "delta_reader": spark.read.format("delta").load(path).collect()[0]["x"],
        "parquet_reader": spark.read.parquet(*files).collect()[0]["x"],
    }


# ---- the job's own code, for the cross-engine test --------------------------------------------


def run_job(  # type: ignore[no-untyped-def]
    spark, config_path: str, feature_set: str, windows: list[list[int]], conf: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """`spark_job.materialize_batch` of offline chunks `windows` ([start, end) epochs) as one
    batch with the conf a runner gives it (and `conf` over it); returns the final chunk reports."""
    import json

    from airflow_provider_featurestore.core.config import load_config
    from airflow_provider_featurestore.core.materialization import spark_job
    from airflow_provider_featurestore.core.materialization.engines import DELTA_SPARK_DEFAULT_CONF, UTC_CONF
    from airflow_provider_featurestore.core.materialization.job_model import BatchSpec, ChunkSpec

    config = load_config(config_path)
    spec = config.get(feature_set)
    extra, conf = conf, {**config.engine.conf, **spec.materialization.spark_conf}
    if not is_sail(spark):
        conf = {**DELTA_SPARK_DEFAULT_CONF, **conf}
    conf = {**conf, **(extra or {}), **UTC_CONF}
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    batch = BatchSpec(
        config_path,
        feature_set,
        spec.version,
        tuple(ChunkSpec(f"{feature_set}-{s}-{e}", s, e, ("offline",)) for s, e in windows),
    )
    reports: list[dict[str, Any]] = []
    try:
        spark_job.materialize_batch(spark, batch, lambda r: reports.append(json.loads(r.to_json())), config)
    finally:  # the worker's session serves the other tests too
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    return [r for r in reports if r["done"]]


def read_delta(spark, path: str) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    """The table through the engine's own Delta reader."""
    return _read(spark, path)
