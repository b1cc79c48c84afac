"""Benchmark: the status page's server time over 100,000 intervals per store.

Why: the status page promises a timeline that stays quick however many intervals a stream
has, because the interval table sums the segments inside a bucket in SQL
(`IntervalTable.bucketed`) and only the bucket-crossing segments come back whole. This checks
that against one feature set version (`transactions` v1 of the fraud example) whose `offline`
and `online` streams hold 100,000 hour-long intervals each (Complete / Incomplete / None,
cycling), with 1,000 job records.

What is timed, per database, through the functions the page's API calls (no HTTP: the API sits
behind Airflow's auth), each figure the median of `--repeats` runs (time.perf_counter); the
figures, baseline included, run in turn round after round, after one untimed warm-up round
(the fastest run is shown too: on a shared machine it moves less than the median):

* timeline  -- `report.timeline_document(store, spec, ("offline", "online"), None, None, 1000)`:
               `/api/timeline` for the whole axis in 1,000 buckets; count = bars drawn;
* bucketed  -- of that, `IntervalTable.bucketed` of both stores alone (the SQL); count = rows
               read;
* overview  -- `report.overview(store)`: `/api/feature-sets` (extent and freshness per stream,
               every feature set of the example); count = feature set versions;
* jobs      -- `report.jobs_document(store.jobs("transactions", limit=200))`: `/api/jobs`;
* json      -- `json.dumps` of the three documents (what the server encodes);
* page      -- all of the above in one go: the server time of a first page load;
* zoomed    -- `timeline_document` over 30 days in 1,000 buckets (every interval drawn whole;
               not part of the page figure).

Each figure is printed beside a bare baseline measured in the same run, as a ratio (ours /
bare): `SELECT start_s, end_s, status, job_id` of the same 200,000 rows through the raw DB-API
cursor of the same engine (one query, both stores, every row fetched).

Run: `python benchmarks/status_page.py [--pg URL] [--intervals 100000] [--jobs 1000]
[--repeats 7] [--analyze]`. SQLite runs in a temporary folder (deleted); PostgreSQL runs when
`--pg` is given or `$FEATURESTORE_TEST_PG_URL` is set, in a fresh schema (dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import DAY, HOUR, INSERT_BATCH, ORIGIN, STORES, aligned, check, postgresql_url, seed_rows, timed

from airflow_provider_featurestore.core import report
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import (
    BucketedSegments,
    IntervalTable,
    JobRecord,
    StreamKey,
    job_row,
    jobs,
    segments,
    streams,
)
from airflow_provider_featurestore.core.timeline import bucket_width

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud"
NAME, VERSION = "transactions", 1
BUCKETS = 1000
JOBS_SHOWN = 200


@dataclass(frozen=True)
class Measurement:
    database: str
    what: str
    count: int
    seconds: float
    baseline: float | None = None
    best: float | None = None  # the fastest run

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.baseline if self.baseline else None


# ---- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_url(folder: str) -> Iterator[str]:
    yield f"sqlite:///{folder}/intervals.db"


def feature_store(folder: str, url: str) -> FeatureStore:
    """A copy of the fraud example in `folder` whose interval table is `url`, loaded as the
    status page loads it."""
    root = Path(folder) / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text()
    if "url: sqlite:///data/intervals.db" not in text:
        raise SystemExit(f"{config}: no `url: sqlite:///data/intervals.db` line to point elsewhere")
    config.write_text(text.replace("url: sqlite:///data/intervals.db", f"url: {url}"))
    return FeatureStore(str(config), check_transformations=False)


# ---- timing helpers -----------------------------------------------------------------------


def interleaved(
    figures: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Per figure, the seconds of `repeats` calls and its last result. The figures run
    in turn, round after round (after one untimed warm-up round), so that a burst of load on a
    shared machine lands on all of them rather than on one."""
    runs: dict[str, list[float]] = {what: [] for what in figures}
    results: dict[str, object] = {}
    for round_ in range(repeats + 1):
        for what, func in figures.items():
            seconds, results[what] = timed(func)
            if round_:
                runs[what].append(seconds)
    return runs, results


# ---- the table ----------------------------------------------------------------------------


def job_rows(count: int, intervals: int) -> list[dict[str, object]]:
    """`count` finished daily jobs spread over the axis, as the table stores them."""
    days = max(1, intervals * HOUR // DAY)
    rows = []
    for k in range(count):
        start = ORIGIN + (k * days // count) * DAY
        record = JobRecord(
            id=f"bench{k:011d}",
            feature_set=NAME,
            version=VERSION,
            start=start,
            end=start + DAY,
            stores=STORES,
            state="succeeded" if k % 4 else "failed",
            rows_read=1000 + k,
            rows_written={"offline": 1000 + k, "online": 900 + k},
            error=None if k % 4 else "online store unreachable",
            created_at=1_700_000_000.0 + k,
            started_at=1_700_000_000.5 + k,
            finished_at=1_700_000_001.0 + k,
        )
        rows.append(job_row(record))
    return rows


def fill(table: IntervalTable, count: int, job_count: int) -> None:
    """Bulk-insert both streams' rows, `count` segments per store, and the job records."""
    with table.engine.begin() as conn:
        conn.execute(
            streams.insert(),
            [{"feature_set": NAME, "version": VERSION, "store": s, "disabled": False} for s in STORES],
        )
        for store in STORES:
            batch: list[dict[str, object]] = []
            for row in seed_rows(NAME, VERSION, store, count):
                batch.append(row)
                if len(batch) == INSERT_BATCH:
                    conn.execute(segments.insert(), batch)
                    batch = []
            if batch:
                conn.execute(segments.insert(), batch)
        if job_count:
            conn.execute(jobs.insert(), job_rows(job_count, count))


def bare_select(table: IntervalTable) -> int:
    """Baseline: every row of both streams through the raw DB-API cursor; returns how many."""
    connection = table.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT start_s, end_s, status, job_id FROM fs_intervals"
            f" WHERE feature_set = '{NAME}' AND version = {VERSION}"
        )
        rows = cursor.fetchall()
        cursor.close()
    finally:
        connection.close()
    return len(rows)


# ---- one database -------------------------------------------------------------------------


def bench_database(name: str, url: str, folder: str, args: argparse.Namespace) -> list[Measurement]:
    store = feature_store(folder, url)
    try:
        return run_phases(name, store, args)
    finally:
        store.close()


def run_phases(name: str, store: FeatureStore, args: argparse.Namespace) -> list[Measurement]:
    table = store.table
    out: list[Measurement] = []
    seconds, _ = timed(lambda: fill(table, args.intervals, args.jobs))
    out.append(Measurement(name, "fill (bulk insert, setup)", 2 * args.intervals, seconds))
    if args.analyze:
        with table.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    spec = store.spec(NAME, VERSION)
    check(spec.enabled_stores() == STORES, f"expected {NAME} v{VERSION} to write {STORES}")

    axis_end = ORIGIN + args.intervals * HOUR
    key = StreamKey(NAME, VERSION)
    width = bucket_width(ORIGIN, axis_end, BUCKETS)

    def timeline() -> dict:
        return report.timeline_document(store, spec, spec.enabled_stores(), None, None, BUCKETS)

    def bucketed() -> list[BucketedSegments]:
        return [table.bucketed(key, s, ORIGIN, axis_end, width) for s in STORES]

    def overview() -> list[dict]:
        return report.overview(store)

    def job_list() -> list[dict]:
        return report.jobs_document(store.jobs(NAME, VERSION, JOBS_SHOWN))

    def encode() -> str:
        return json.dumps(documents, separators=(",", ":"))

    def page() -> str:
        return json.dumps(
            {"feature_sets": overview(), "timeline": timeline(), "jobs": job_list()}, separators=(",", ":")
        )

    def zoomed() -> dict:
        return report.timeline_document(store, spec, STORES, axis_end - 30 * DAY, axis_end, BUCKETS)

    documents = {"feature_sets": overview(), "timeline": timeline(), "jobs": job_list()}
    figures: dict[str, Callable[[], object]] = {
        "bare": lambda: bare_select(table),
        "timeline": timeline,
        "bucketed": bucketed,
        "overview": overview,
        "jobs": job_list,
        "json": encode,
        "page": page,
        "zoomed": zoomed,
    }
    runs, result = interleaved(figures, args.repeats)
    bare = statistics.median(runs["bare"])

    rows = result["bare"]
    check(rows == 2 * args.intervals, f"bare select saw {rows:,} rows")
    drawn = {s: result["timeline"]["stores"][s]["bars"] for s in STORES}
    check(all(0 < len(bars) <= 2 * BUCKETS + 1 for bars in drawn.values()), "bars out of bounds")
    check(
        all(
            sum(sum(b["seconds"].values()) for b in bars) == args.intervals * HOUR for bars in drawn.values()
        ),
        "the bars' seconds do not add up to the axis",
    )
    fresh = next(r for r in result["overview"] if r["name"] == NAME)["stores"]["offline"]["freshness"]
    check(fresh is not None, "no freshness")
    check(len(result["jobs"]) == min(JOBS_SHOWN, args.jobs), f"{len(result['jobs'])} jobs listed")

    def row(what: str, figure: str, count: int) -> None:
        out.append(Measurement(name, what, count, statistics.median(runs[figure]), bare, min(runs[figure])))

    row(f"timeline, whole axis, {BUCKETS:,} buckets (bars)", "timeline", sum(map(len, drawn.values())))
    row(
        "  of which bucketed() SQL (rows)",
        "bucketed",
        sum(len(r.crossing) + len(r.summed) for r in result["bucketed"]),
    )
    row("overview (feature set versions)", "overview", len(result["overview"]))
    row(f"jobs, limit {JOBS_SHOWN}", "jobs", len(result["jobs"]))
    row("json.dumps of the three (bytes)", "json", len(result["json"]))
    row("page: all of the above (bytes)", "page", len(result["page"]))
    row(
        f"timeline, 30 days, {BUCKETS:,} buckets (bars)",
        "zoomed",
        sum(len(result["zoomed"]["stores"][s]["bars"]) for s in STORES),
    )
    out.append(Measurement(name, "bare SELECT of both streams (rows)", rows, bare, bare, min(runs["bare"])))
    return out


# ---- report -------------------------------------------------------------------------------


def format_table(rows: Sequence[Measurement]) -> str:
    header = ("database", "what", "count", "seconds", "best s", "bare s", "ours/bare")
    lines = [header]
    for m in rows:
        lines.append(
            (
                m.database,
                m.what,
                f"{m.count:,}",
                f"{m.seconds:.4f}",
                f"{m.best:.4f}" if m.best is not None else "-",
                f"{m.baseline:.4f}" if m.baseline is not None else "-",
                f"{m.ratio:.2f}x" if m.ratio is not None else "-",
            )
        )
    return aligned(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pg",
        default=os.environ.get("FEATURESTORE_TEST_PG_URL"),
        help="PostgreSQL server to run on too, in a fresh schema (default: $FEATURESTORE_TEST_PG_URL, else SQLite only)",
    )
    parser.add_argument("--intervals", type=int, default=100_000, help="hour-long intervals per store")
    parser.add_argument("--jobs", type=int, default=1000, help="job records of the feature set version")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (the median is shown)")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after the fill (planner statistics; off by default)",
    )
    args = parser.parse_args(argv)
    if args.intervals < 3 or args.jobs < 0 or args.repeats < 1:
        parser.error("--intervals must be at least 3, --jobs at least 0 and --repeats at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    databases = ["sqlite"] + (["postgresql"] if args.pg else [])
    results: list[Measurement] = []
    for name in databases:
        print(
            f"[{name}] {args.intervals:,} intervals x {len(STORES)} stores, {args.jobs:,} jobs ...",
            file=sys.stderr,
        )
        folder = tempfile.mkdtemp(prefix="fs_bench_status_")
        try:
            with sqlite_url(folder) if name == "sqlite" else postgresql_url(args.pg) as url:
                results.extend(bench_database(name, url, folder, args))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(format_table(results))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nmedian of {args.repeats} interleaved runs after a warm-up; total wall time {time.perf_counter() - started:.1f}s; "
        f"load average {load} on {os.cpu_count()} cpus"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
