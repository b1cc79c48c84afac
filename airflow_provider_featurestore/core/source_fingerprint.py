"""A feature set's source as a list of files with their time ranges, taken without reading the
data: what a chunk records of the source it read, and what the source check lists again.

Parquet: every file under the path (recursively; names starting with `.` or `_` are skipped, as
Spark skips them) with its size, mtime and the timestamp column's min/max from the footer's
statistics (a scan of that one column of that one file only when the footer has none). Delta: the
table version and its add actions, with their per-file statistics. CSV: the files with size and
mtime; their time range comes from a scan of that one file's timestamp column. No Spark: the
check runs where no engine does, and the job takes it on its driver before reading the source, so
a file that lands after the listing is found by the next check, never missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.errors import ServiceUnavailable

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow import fs as pafs


class SourceUnavailable(ServiceUnavailable):
    """The source's path cannot be listed (missing, or a scheme pyarrow does not know): nothing
    can be said about what changed, so nothing is marked."""


@dataclass(frozen=True)
class SourceFile:
    """One file of the source: `path` relative to the source's path, `size` in bytes, `mtime`
    (ns; a Delta add action's ms), and the first and last event time in it (epoch seconds,
    truncated; None: no rows)."""

    path: str
    size: int
    mtime: int
    first: int | None
    last: int | None

    @property
    def identity(self) -> tuple[str, int, int]:
        """What says the file is unchanged since it was recorded."""
        return self.path, self.size, self.mtime

    def overlaps(self, start: int, end: int) -> bool:
        """Whether any of its rows may lie in `[start, end)`."""
        return self.first is not None and self.last is not None and self.first < end and self.last >= start

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "size": self.size,
            "mtime": self.mtime,
            "first": self.first,
            "last": self.last,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SourceFile:
        return cls(str(raw["path"]), int(raw["size"]), int(raw["mtime"]), raw.get("first"), raw.get("last"))


@dataclass
class SourceListing:
    """The source now: its files by path, and for a Delta source the table version."""

    location: str
    format: str
    version: int | None = None
    files: dict[str, SourceFile] = field(default_factory=dict)
    ranges_read: int = 0  # files whose time range was read here (a footer, or a column scan)

    def fingerprint(self, start: int, end: int) -> dict[str, Any]:
        """What a chunk whose read range is `[start, end)` records in its job record's `result`:
        the files whose time range overlaps it (and the Delta version)."""
        files = [f.to_json() for f in self.files.values() if f.overlaps(start, end)]
        return {"format": self.format, "version": self.version, "files": files}


def list_source(spec: FeatureSetSpec, known: Iterable[SourceFile] = ()) -> SourceListing:
    """The source of `spec` now. A file whose identity (path, size, mtime) is in `known` keeps
    the time range recorded for it: only new or changed files have theirs read."""
    source = spec.source
    ranges = {f.identity: (f.first, f.last) for f in known}
    column = str(source.timestamp_column or spec.timestamp_column)
    if source.format == "delta":
        return _list_delta(source.path, column, ranges)
    return _list_files(source.path, source.format, column, ranges)


Ranges = Mapping[tuple[str, int, int], tuple[int | None, int | None]]


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(location)
    except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError: an unknown scheme
        raise SourceUnavailable(f"source {location}: cannot be listed: {exc}") from None


def _list_files(location: str, fmt: str, column: str, ranges: Ranges) -> SourceListing:
    from pyarrow import fs as pafs

    filesystem, root = _filesystem(location)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise SourceUnavailable(f"source {location}: does not exist (source.path)")
    if info.type == pafs.FileType.File:
        infos, base = [info], root.rsplit("/", 1)[0]
    else:
        infos, base = filesystem.get_file_info(pafs.FileSelector(root, recursive=True)), root
    listing = SourceListing(location, fmt)
    for item in infos:
        relative = item.path[len(base) :].lstrip("/")
        if item.type != pafs.FileType.File or any(p.startswith((".", "_")) for p in relative.split("/")):
            continue
        size, mtime = int(item.size or 0), int(item.mtime_ns or 0)
        span = ranges.get((relative, size, mtime))
        if span is None:
            span = (
                _parquet_range(filesystem, item.path, column)
                if fmt == "parquet"
                else _csv_range(filesystem, item.path, column)
            )
            listing.ranges_read += 1
        listing.files[relative] = SourceFile(relative, size, mtime, *span)
    return listing


def _list_delta(location: str, column: str, ranges: Ranges) -> SourceListing:
    import pyarrow as pa
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(location)
    except TableNotFoundError:
        raise SourceUnavailable(f"source {location}: no Delta table there (source.path)") from None
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    listing = SourceListing(location, "delta", version=table.version())
    filesystem, root = None, ""
    for action in actions:
        path, size, mtime = str(action["path"]), int(action["size_bytes"]), int(action["modification_time"])
        span = ranges.get((path, size, mtime))
        if span is None:
            low, high = action.get(f"min.{column}"), action.get(f"max.{column}")
            if low is not None and high is not None:
                span = (_epoch(low), _epoch(high))
            else:  # no statistics in the log: that one file's column
                if filesystem is None:
                    filesystem, root = _filesystem(location)
                span = _parquet_range(filesystem, f"{root.rstrip('/')}/{path}", column)
            listing.ranges_read += 1
        listing.files[path] = SourceFile(path, size, mtime, *span)
    return listing


def _parquet_range(filesystem: pafs.FileSystem, path: str, column: str) -> tuple[int | None, int | None]:
    """The column's min/max from the footer's row group statistics; a scan of the column when
    a row group has none (or the values are not times)."""
    import pyarrow.parquet as pq

    with filesystem.open_input_file(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        if column not in names:
            return None, None  # the job fails on this source naming the column; nothing to place
        index = names.index(column)
        lows, highs = [], []
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group)
            if chunk.num_rows == 0:
                continue
            stats = chunk.column(index).statistics
            if stats is None or not stats.has_min_max or not isinstance(stats.min, datetime | date):
                return _span(pq.read_table(handle, columns=[column]).column(column))
            lows.append(_epoch(stats.min))
            highs.append(_epoch(stats.max))
    return (min(lows), max(highs)) if lows else (None, None)


def _csv_range(filesystem: pafs.FileSystem, path: str, column: str) -> tuple[int | None, int | None]:
    """A CSV file's time range: a scan of its timestamp column (the job reads it as text cast to
    a timestamp, so it is parsed here as text too)."""
    import pyarrow as pa
    from pyarrow import csv

    with filesystem.open_input_stream(path) as handle:
        try:
            table = csv.read_csv(
                handle,
                convert_options=csv.ConvertOptions(
                    include_columns=[column], column_types={column: pa.string()}
                ),
            )
        except (pa.ArrowInvalid, KeyError):  # no such column, or no header: nothing to place
            return None, None
    return _span(table.column(column))


def _span(values: pa.ChunkedArray) -> tuple[int | None, int | None]:
    """First and last time of a scanned column, in epoch seconds (UTC; naive times are UTC)."""
    import pandas as pd
    import pyarrow as pa

    text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    times = pd.to_datetime(values.to_pandas(), utc=True, errors="coerce", format="ISO8601" if text else None)
    times = times.dropna()
    if times.empty:
        return None, None
    return _epoch(times.min().to_pydatetime()), _epoch(times.max().to_pydatetime())


def _epoch(value: object) -> int:
    """A statistics value as whole epoch seconds (truncated, as the time axis truncates)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp() // 1)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    raise TypeError(f"not a time: {value!r}")
