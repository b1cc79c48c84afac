"""Benchmark: the interval table at scale, on SQLite and PostgreSQL.

Why: the interval table promises that "reads and writes touch only the rows around the
affected range, so the table has no cap on its size". This checks that promise against a
table of 100,000 data intervals per store (two stores: `offline` and `online`), hour-long,
cycling Complete / Incomplete / None, for one feature set version.

What is timed, per database:

* build   -- bulk-inserting the rows with SQLAlchemy Core (setup; reported, never compared);
* read    -- `IntervalTable.intervals(key, ("offline", "online"))`: every interval of both stores;
* plan    -- `IntervalTable.claim(..., dry_run=True)` over the whole extent, statuses
             {None, Incomplete}, both stores, max_job_window 1d: the number of jobs planned;
* claim   -- 1,000 real `claim` calls, each over one Incomplete hour (one job), each followed
             by `start_job` and `finish_job` (success and failure alternating).

Each figure is printed beside a raw baseline measured in the same run, as a ratio (ours /
bare): for read and plan, a bare `SELECT start_s, end_s, status ... ORDER BY start_s` per store
fetching every row through the same engine; for claim, 1,000 transactions each doing one UPDATE
of one `fs_intervals` row and one INSERT into a scratch table. Reads and plans are the median
of 3 runs (time.perf_counter).

Run: `python benchmarks/intervals.py [--intervals 100000] [--jobs 1000]
[--databases sqlite,postgresql] [--pg-url URL] [--analyze] [--profile read|plan|claim]`.
PostgreSQL gets a fresh schema (dropped afterwards); SQLite a temporary file (deleted).

`--analyze` runs ANALYZE after the build; off by default, because SQLite never gathers
planner statistics by itself (and the test PostgreSQL runs with autovacuum off).

Profiling findings (pyinstrument, 100k intervals; details in benchmarks/README.md):
* claim+finish is O(table) per call without planner statistics: `_convert_pending` filters the
  whole stream by job_id (uq index prefix, not ix_fs_intervals_job), and on PostgreSQL the
  `_slice` floor query `max(start_s) ... start_s < :start` scans every row below `start`;
  `ORDER BY start_s DESC LIMIT 1` or a (stream, job_id) index would make both O(log n).
* the dry-run plan is ~30x a bare read: it reads each whole stream three times (`_extend`,
  the plan, `_overlay`), builds 66,666 job rows through `dataclasses.asdict` (~20%), writes
  every Pending patch and then rolls it all back (~30%; on PostgreSQL this leaves dead rows).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from common import (
    CYCLE,
    DAY,
    HOUR,
    INSERT_BATCH,
    ORIGIN,
    STORES,
    T,
    aligned,
    check,
    postgresql_url,
    seed_rows,
    timed,
)

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey, segments, streams

DEFAULT_PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEY = StreamKey("bench_features", 1)
REPEATS = 3


@dataclass(frozen=True)
class Measurement:
    """One timed figure, with its bare baseline (None for setup phases)."""

    database: str
    what: str
    count: int
    seconds: float
    baseline: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.baseline if self.baseline else None


# ---- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    """A fresh SQLite file, deleted afterwards (with its WAL and shared-memory files)."""
    folder = tempfile.mkdtemp(prefix="fs_bench_")
    path = os.path.join(folder, "intervals.db")
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        os.rmdir(folder)


def database_url(name: str, pg_url: str) -> contextlib.AbstractContextManager[str]:
    if name == "sqlite":
        return sqlite_url()
    if name == "postgresql":
        return postgresql_url(pg_url)
    raise SystemExit(f"unknown database {name!r}: use sqlite, postgresql")


# ---- timing helpers -----------------------------------------------------------------------


def median_timed(func: Callable[[], T], repeats: int = REPEATS) -> tuple[float, T]:
    """Median seconds over `repeats` calls, and the last result."""
    runs = [timed(func) for _ in range(repeats)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


@contextlib.contextmanager
def profiled(enabled: bool, label: str) -> Iterator[None]:
    """Profile the block when `enabled`, to stderr: pyinstrument if installed (sampling, low
    overhead), else cProfile (top functions by cumulative time; inflates call-heavy code)."""
    if not enabled:
        yield
        return
    print(f"\n=== profile: {label} ===", file=sys.stderr)
    try:
        from pyinstrument import Profiler
    except ImportError:
        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        return
    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


# ---- the table ----------------------------------------------------------------------------


def hour_status(index: int) -> str:
    return CYCLE[index % len(CYCLE)]


def build(table: IntervalTable, count: int) -> None:
    """Bulk-insert the streams and `count` segments per store in one transaction."""
    with table.engine.begin() as conn:
        conn.execute(
            streams.insert(),
            [{"feature_set": KEY.feature_set, "version": KEY.version, "store": s} for s in STORES],
        )
        for store in STORES:
            batch: list[dict[str, object]] = []
            for row in seed_rows(KEY.feature_set, KEY.version, store, count):
                batch.append(row)
                if len(batch) == INSERT_BATCH:
                    conn.execute(segments.insert(), batch)
                    batch = []
            if batch:
                conn.execute(segments.insert(), batch)


def count_rows(table: IntervalTable, name: str) -> int:
    with table.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())


def read_all(table: IntervalTable) -> int:
    """Ours: every data interval of both stores; returns how many."""
    found = table.intervals(KEY, STORES)
    return sum(len(items) for items in found.values())


def bare_read(table: IntervalTable) -> int:
    """Baseline: the bare rows of both stores, fetched through the same engine."""
    query = sa.text(
        "SELECT start_s, end_s, status FROM fs_intervals"
        " WHERE feature_set = :fs AND version = :v AND store = :store ORDER BY start_s"
    )
    total = 0
    with table.engine.connect() as conn:
        for store in STORES:
            total += len(conn.execute(query, {"fs": KEY.feature_set, "v": KEY.version, "store": store}).all())
    return total


def plan_all(table: IntervalTable, count: int) -> int:
    """Ours: a dry-run claim over the whole extent; returns the number of jobs planned."""
    jobs = table.claim(
        KEY, ORIGIN, ORIGIN + count * HOUR, (iv.NONE, iv.INCOMPLETE), STORES, DAY, dry_run=True
    )
    return len(jobs)


def claim_windows(count: int, jobs: int) -> list[tuple[int, int]]:
    """`jobs` one-hour windows over Incomplete hours, spread evenly over the extent."""
    incomplete = [i for i in range(count) if hour_status(i) == iv.INCOMPLETE]
    if jobs > len(incomplete):
        raise SystemExit(
            f"--jobs {jobs} exceeds the {len(incomplete)} Incomplete hours of --intervals {count}"
        )
    stride = len(incomplete) // jobs
    return [
        (ORIGIN + incomplete[k * stride] * HOUR, ORIGIN + (incomplete[k * stride] + 1) * HOUR)
        for k in range(jobs)
    ]


def claim_and_finish(table: IntervalTable, windows: Sequence[tuple[int, int]]) -> int:
    """Ours: claim each window, start and finish its jobs (success alternating); returns jobs done."""
    done = 0
    for n, (start, end) in enumerate(windows):
        for job in table.claim(KEY, start, end, (iv.NONE, iv.INCOMPLETE), STORES, DAY):
            table.start_job(job.id)
            table.finish_job(job.id, dict.fromkeys(job.stores, n % 2 == 0))
            done += 1
    return done


def bare_transactions(table: IntervalTable, windows: Sequence[tuple[int, int]]) -> int:
    """Baseline: per window, one transaction of one UPDATE (status to itself) and one INSERT."""
    scratch = sa.Table(
        "bench_scratch",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("note", sa.String(32), nullable=False),
    )
    scratch.create(table.engine)
    update = sa.text(
        "UPDATE fs_intervals SET status = status"
        " WHERE feature_set = :fs AND version = :v AND store = :store AND start_s = :start"
    )
    params = {"fs": KEY.feature_set, "v": KEY.version, "store": STORES[0]}
    try:
        for start, _end in windows:
            with table.engine.begin() as conn:
                conn.execute(update, {**params, "start": start})
                conn.execute(scratch.insert().values(start_s=start, note=uuid.uuid4().hex[:16]))
    finally:
        scratch.drop(table.engine)
    return len(windows)


# ---- one database -------------------------------------------------------------------------


def analyze(table: IntervalTable) -> None:
    """Give the query planner statistics (SQLite never gathers them by itself; PostgreSQL only
    when autovacuum is on and has come round)."""
    with table.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def bench_database(name: str, url: str, args: argparse.Namespace) -> list[Measurement]:
    table = IntervalTable(url)
    try:
        return run_phases(name, table, args.intervals, args.jobs, args.profile, args.analyze)
    finally:
        table.close()


def run_phases(
    name: str, table: IntervalTable, count: int, jobs: int, profile: str | None, with_analyze: bool
) -> list[Measurement]:
    out: list[Measurement] = []
    seconds, _ = timed(lambda: build(table, count))
    out.append(Measurement(name, "build (bulk insert, setup)", 2 * count, seconds))
    if with_analyze:
        seconds, _ = timed(lambda: analyze(table))
        out.append(Measurement(name, "ANALYZE (setup)", 2 * count, seconds))
    found = table.intervals(KEY, STORES)
    check(all(len(found[s]) == count for s in STORES), f"expected {count} intervals per store")

    bare, rows = median_timed(lambda: bare_read(table))
    check(rows == 2 * count, f"bare read saw {rows} rows")
    with profiled(profile == "read", f"{name} read"):
        seconds, read = median_timed(lambda: read_all(table))
    out.append(Measurement(name, "read intervals()", read, seconds, bare))

    with profiled(profile == "plan", f"{name} plan"):
        seconds, planned = median_timed(lambda: plan_all(table, count))
    out.append(Measurement(name, "plan claim(dry_run) jobs", planned, seconds, bare))
    check(count_rows(table, "fs_jobs") == 0, "a dry run left job records")

    windows = claim_windows(count, jobs)
    bare, _ = timed(lambda: bare_transactions(table, windows))
    with profiled(profile == "claim", f"{name} claim"):
        seconds, done = timed(lambda: claim_and_finish(table, windows))
    check(done == jobs, f"{done} jobs claimed, expected {jobs}")
    out.append(Measurement(name, "claim+start+finish", done, seconds, bare))
    rows_after = count_rows(table, "fs_intervals")
    out.append(Measurement(name, "rows in fs_intervals after", rows_after, 0.0))
    after = table.intervals(KEY, STORES)
    check(all(len(after[s]) <= count for s in STORES), "claims grew the number of intervals")
    return out


# ---- report -------------------------------------------------------------------------------


def format_table(rows: Sequence[Measurement]) -> str:
    header = ("database", "what", "count", "seconds", "rate/s", "bare s", "ours/bare")
    lines = [header]
    for m in rows:
        timed_row = m.seconds > 0
        lines.append(
            (
                m.database,
                m.what,
                f"{m.count:,}",
                f"{m.seconds:.3f}" if timed_row else "-",
                f"{m.rate:,.0f}" if timed_row else "-",
                f"{m.baseline:.3f}" if m.baseline is not None else "-",
                f"{m.ratio:.1f}x" if m.ratio is not None else "-",
            )
        )
    return aligned(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--intervals", type=int, default=100_000, help="data intervals per store")
    parser.add_argument("--jobs", type=int, default=1000, help="claim/start/finish cycles")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a fresh schema is made in it)"
    )
    parser.add_argument("--profile", choices=("read", "plan", "claim"), help="profile one phase (stderr)")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after the build (planner statistics; off by default)",
    )
    args = parser.parse_args(argv)
    if args.intervals < 3 or args.jobs < 1:
        parser.error("--intervals must be at least 3 and --jobs at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Measurement] = []
    started = time.perf_counter()
    for name in [d.strip() for d in args.databases.split(",") if d.strip()]:
        print(
            f"[{name}] {args.intervals:,} intervals x {len(STORES)} stores, {args.jobs:,} jobs ...",
            file=sys.stderr,
        )
        with database_url(name, args.pg_url) as url:
            results.extend(bench_database(name, url, args))
    print(format_table(results))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\ntotal wall time {time.perf_counter() - started:.1f}s; load average {load} on {os.cpu_count()} cpus"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
