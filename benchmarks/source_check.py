"""Benchmark: `featurestore check --sources` over 1,000 source files and 1,000 Complete chunks.

Why: the source check promises to find late and changed source files without reading the data:
a listing, plus a footer per new or changed file. This builds that case and times the check
beside a raw baseline measured in the same run.

Setup (not timed): a feature store in a temporary folder whose parquet source holds `--files`
files, one per day (`--rows` rows each), a 7-day lookback and daily chunks; `--files` Complete
offline chunks are created through the interval table API (claim, start, finish with the
fingerprint each chunk records, as the Spark job would: the source listed once), not by running
1,000 Spark jobs.

What is timed (median of `--repeat` runs, time.perf_counter):
* unchanged  -- `FeatureStore.check_sources(name, dry_run=True)` with the source as recorded:
                the listing, the job records read, 1,000 chunks compared; no footer read;
* touched    -- the same after every file's mtime changed (`os.utime`): every footer is read
                again and every chunk is found affected (a dry run: nothing is marked);
* baseline   -- a bare `pyarrow.fs` recursive listing plus `pq.ParquetFile(...).metadata` of
                each of the same files: the least any check that looks at the files' time
                ranges can do.

Run: `python benchmarks/source_check.py [--files 1000] [--rows 10] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_featurestore.core.featurestore import FeatureStore  # noqa: E402
from airflow_provider_featurestore.core.interval_table import StreamKey  # noqa: E402
from airflow_provider_featurestore.core.materialization.job_model import ChunkResult  # noqa: E402
from airflow_provider_featurestore.core.materialization.runner import result_record  # noqa: E402
from airflow_provider_featurestore.core.source_fingerprint import list_source  # noqa: E402

DAY = 86400
T0 = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())
SPEC = """name: events
version: 1
index_columns:
  - {name: id, type: string}
timestamp_column: ts
source: {format: parquet, path: source, timestamp_column: ts}
source_lookback: 7d
features:
  - {name: x, type: long}
materialization: {offline: true, max_job_window: 1d}
"""


def build(folder: Path, files: int, rows: int) -> str:
    """The feature store, its source files and `files` Complete chunks; returns the config path."""
    (folder / "featuresets").mkdir()
    (folder / "source").mkdir()
    (folder / "featuresets" / "events.yaml").write_text(SPEC)
    config = folder / "featurestore.yaml"
    config.write_text(
        "project: bench\noffline_store: {path: offline}\ninterval_table: {url: sqlite:///intervals.db}\n"
    )
    for day in range(files):
        stamps = [(T0 + day * DAY + i * (DAY // rows)) * 1_000_000 for i in range(rows)]
        table = pa.table(
            {
                "id": [f"e{i}" for i in range(rows)],
                "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                "x": list(range(rows)),
            }
        )
        pq.write_table(table, folder / "source" / f"day={day:05d}.parquet")
    with FeatureStore(str(config), check_transformations=False) as store:
        spec = store.spec("events")
        listing = list_source(spec)  # what each batch lists before reading
        request = store.backfill_request("events", T0, T0 + files * DAY)
        for record in store.claim(request, check=False, log=lambda _m: None):
            store.table.start_job(record.id)
            result = ChunkResult(
                record.id, completed={"offline": True}, rows_read=rows, rows_written={"offline": rows}
            )
            result.source = listing.fingerprint(record.start - spec.source_lookback, record.end)
            store.table.finish_job(record.id, result.completed, result=result_record(result))
        complete = store.table.complete_segments(StreamKey("events", 1), "offline")
        assert sum(s.end - s.start for s in complete) == files * DAY, "every chunk Complete"
    return str(config)


def median_seconds(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times: list[float] = []
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def bare(folder: Path) -> int:
    """A bare recursive listing and a footer read of every file: the baseline."""
    filesystem = pafs.LocalFileSystem()
    infos = filesystem.get_file_info(pafs.FileSelector(str(folder / "source"), recursive=True))
    groups = 0
    for info in infos:
        if info.type == pafs.FileType.File:
            with filesystem.open_input_file(info.path) as handle:
                groups += pq.ParquetFile(handle).metadata.num_row_groups
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        config = build(folder, args.files, args.rows)
        print(
            f"build: {args.files:,} files, {args.files:,} Complete chunks in {time.perf_counter() - began:.1f}s"
        )
        base, groups = median_seconds(lambda: bare(folder), args.repeat)
        assert groups == args.files
        with FeatureStore(config, check_transformations=False) as store:
            clean, report = median_seconds(lambda: store.check_sources("events", dry_run=True), args.repeat)
            assert report.lost == [] and report.ranges_read == 0 and report.chunks_checked == args.files
            touched = []
            for _ in range(args.repeat):
                for path in (folder / "source").iterdir():
                    os.utime(path, ns=(time.time_ns(), time.time_ns()))
                began = time.perf_counter()
                report = store.check_sources("events", dry_run=True)
                touched.append(time.perf_counter() - began)
            assert report.ranges_read == args.files and len(report.lost) == args.files
    print(f"{'what':<44} {'seconds':>8} {'bare s':>8} {'ours/bare':>9}")
    print(f"{'bare: listing + footer of each file':<44} {base:8.3f} {base:8.3f} {1.0:8.2f}x")
    print(f"{'check --sources, source unchanged':<44} {clean:8.3f} {base:8.3f} {clean / base:8.2f}x")
    worst = statistics.median(touched)
    print(f"{'check --sources, every file touched':<44} {worst:8.3f} {base:8.3f} {worst / base:8.2f}x")


if __name__ == "__main__":
    main()
