"""The source's coverage rule and its fingerprint, without Spark: `partial_lookback` on chosen
first rows; real parquet, CSV and Delta files listed with their time ranges (footer statistics,
a column scan, add actions), and a listing matched to chunks' read ranges."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from airflow_provider_featurestore.core.config.model import Column, FeatureSetSpec, SourceSpec
from airflow_provider_featurestore.core.errors import ServiceUnavailable
from airflow_provider_featurestore.core.interval_table import JobRecord, JobState
from airflow_provider_featurestore.core.materialization.spark_job.sources import partial_lookback
from airflow_provider_featurestore.core.source_check import _affected_chunks
from airflow_provider_featurestore.core.source_fingerprint import list_source

DAY = 86400
T0 = int(datetime(2024, 1, 10, tzinfo=UTC).timestamp())


def spec(
    path: str = "/nowhere", fmt: str = "parquet", lookback: int = 7 * DAY, start: int | None = None
) -> FeatureSetSpec:
    return FeatureSetSpec(
        name="tx",
        version=1,
        index_columns=(Column("id", "string"),),
        timestamp_column="ts",
        source=SourceSpec(fmt, path, "ts", 0, start),
        source_lookback=lookback,
        features=(Column("x", "long"),),
    )


def test_partial_lookback_rule() -> None:
    read_start = T0 - 7 * DAY
    assert not partial_lookback(spec(), read_start, read_start + 3600)  # an hour in: covered
    assert not partial_lookback(spec(), read_start, read_start + DAY)  # at most a day late
    assert partial_lookback(spec(), read_start, read_start + DAY + 1)
    assert partial_lookback(spec(), read_start, None)  # no row at all
    assert not partial_lookback(spec(lookback=0), T0, None)  # no lookback: nothing to cover
    short = spec(lookback=4 * 3600)  # half of a short lookback: 2 hours
    assert partial_lookback(short, read_start, read_start + 2 * 3600 + 1)
    assert partial_lookback(spec(start=read_start + 1), read_start, read_start)  # before source.start


def day_table(offset: int, rows: int = 3) -> pa.Table:
    times = [datetime.fromtimestamp(T0 + offset * DAY + i * 3600, UTC) for i in range(rows)]
    return pa.table(
        {"id": ["a"] * rows, "ts": pa.array(times, pa.timestamp("us", tz="UTC")), "x": list(range(rows))}
    )


def test_parquet_listing_reads_footers_skips_hidden_files_and_reuses_known_ranges(tmp_path: Path) -> None:
    (tmp_path / "d=1").mkdir()
    pq.write_table(day_table(0), tmp_path / "a.parquet")
    pq.write_table(day_table(1), tmp_path / "d=1" / "b.parquet")
    pq.write_table(day_table(5), tmp_path / "_tmp.parquet")
    (tmp_path / ".b.parquet.crc").write_bytes(b"x")
    listing = list_source(spec(str(tmp_path)))
    assert sorted(listing.files) == ["a.parquet", "d=1/b.parquet"] and listing.ranges_read == 2
    a = listing.files["a.parquet"]
    assert (a.first, a.last) == (T0, T0 + 2 * 3600)
    again = list_source(spec(str(tmp_path)), listing.files.values())
    assert again.ranges_read == 0 and again.files == listing.files
    assert [f["path"] for f in listing.fingerprint(T0 + DAY, T0 + 2 * DAY)["files"]] == ["d=1/b.parquet"]
    with pytest.raises(ServiceUnavailable, match="does not exist"):
        list_source(spec(str(tmp_path / "gone")))


def test_csv_and_delta_listings(tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "a.csv").write_text("id,ts,x\na,2024-01-10 05:00:00,1\na,2024-01-11T00:00:00Z,2\n")
    [csv] = list_source(spec(str(tmp_path / "csv"), "csv")).files.values()
    assert (csv.first, csv.last) == (T0 + 5 * 3600, T0 + DAY)
    write_deltalake(str(tmp_path / "delta"), day_table(0))
    write_deltalake(str(tmp_path / "delta"), day_table(3), mode="append")
    listing = list_source(spec(str(tmp_path / "delta"), "delta"))
    assert listing.version == 1
    assert sorted((f.first, f.last) for f in listing.files.values()) == [
        (T0, T0 + 2 * 3600),
        (T0 + 3 * DAY, T0 + 3 * DAY + 2 * 3600),
    ]


def test_a_late_file_affects_the_chunks_whose_read_range_meets_it(tmp_path: Path) -> None:
    for offset in range(10):
        pq.write_table(day_table(offset), tmp_path / f"day{offset}.parquet")
    the_spec = spec(str(tmp_path))
    before = list_source(the_spec)
    records = [
        JobRecord(f"j{d}", "tx", 1, T0 + d * DAY, T0 + (d + 1) * DAY, ("offline",), JobState.SUCCEEDED,
                  result={"source": before.fingerprint(T0 + (d - 7) * DAY, T0 + (d + 1) * DAY)})
        for d in range(1, 10)
    ]  # fmt: skip
    assert _affected_chunks(records, list_source(the_spec, before.files.values()), 7 * DAY) == {}
    pq.write_table(day_table(3, rows=1), tmp_path / "late.parquet")
    (tmp_path / "day8.parquet").unlink()
    affected = _affected_chunks(records, list_source(the_spec, before.files.values()), 7 * DAY)
    assert sorted(affected) == [f"j{d}" for d in range(3, 10)]
    assert [str(c) for c in affected["j3"]] == ["late.parquet (added)"]
    assert [str(c) for c in affected["j9"]] == ["day8.parquet (removed)", "late.parquet (added)"]
