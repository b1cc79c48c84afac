"""The column types a feature set may declare, and what each is in Spark and in Arrow.

One table for the config's validation, the job's output check (Spark SQL types) and the online
codec (Arrow types), so that a new type is one row here, not three edits that can drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class ColumnType:
    name: str  # as written in a spec's `type:`
    spark: str  # the Spark SQL type the transformation's column must have
    arrow: pa.DataType  # the type the online codec reads and writes


TYPES: dict[str, ColumnType] = {
    t.name: t
    for t in (
        ColumnType("string", "string", pa.string()),
        ColumnType("int", "int", pa.int32()),
        ColumnType("long", "bigint", pa.int64()),
        ColumnType("float", "float", pa.float32()),
        ColumnType("double", "double", pa.float64()),
        ColumnType("boolean", "boolean", pa.bool_()),
        ColumnType("timestamp", "timestamp", pa.timestamp("us", tz="UTC")),
        ColumnType("date", "date", pa.date32()),
    )
}
COLUMN_TYPES = tuple(TYPES)
NUMERIC_TYPES = ("int", "long", "float", "double")
