"""The interval timeline on real SQLite and PostgreSQL: `stream_timeline` agrees second by second
with the stored segments, the database (not Python) sums the segments inside a bucket, and
`featurestore intervals` draws the bars in the terminal."""

from __future__ import annotations

import json
import math
import os
import pty
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey, segments, streams
from airflow_provider_featurestore.core.timeline import MIXED, Bar, bucket_width, legend, stream_timeline
from airflow_provider_featurestore.core.timeutil import iso

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DAY = 86400
JAN1 = 19723 * DAY  # 2024-01-01T00:00:00Z


# ---- the brute-force model: one status and job per second ----------------------------------


def per_second(stored: list[iv.Segment]) -> dict[int, iv.Segment]:
    """Every second of the stream's extent, with the stored segment holding it."""
    return {second: seg for seg in stored for second in range(seg.start, seg.end)}


def seconds_by_status(model: dict[int, iv.Segment], start: int, end: int) -> dict[str, int]:
    """Per status, the seconds of `[start, end)` on the axis (seconds off the axis count nowhere)."""
    found = Counter(model[s].status for s in range(start, end) if s in model)
    return dict(found)


def meeting(stored: list[iv.Segment], start: int, end: int) -> list[iv.Segment]:
    return [seg for seg in stored if seg.start < end and seg.end > start]


def check_bars(bars: list[Bar], stored: list[iv.Segment], start: int, end: int, buckets: int) -> None:
    """Everything `stream_timeline(..., start, end, buckets)` promises about `bars`, against the
    stored segments of the stream."""
    model = per_second(stored)
    width = bucket_width(start, end, buckets)
    drawn = math.ceil((end - start) / width)  # buckets actually drawn (<= buckets)
    assert drawn <= buckets

    # Sorted, disjoint, non-empty, inside [start, end).
    for bar in bars:
        assert start <= bar.start < bar.end <= end, bar
    for left, right in zip(bars, bars[1:], strict=False):
        assert left.end <= right.start, (left, right)

    # What lies on the axis inside [start, end): [lo, hi).
    lo = max(start, stored[0].start) if stored else start
    hi = min(end, stored[-1].end) if stored else start
    if hi <= lo:
        assert bars == []
        return
    # The bars' seconds cover [lo, hi) exactly, status by status and bar by bar. A bar may be
    # wider than its seconds only where a bucket at the axis' edge sticks out of the axis.
    assert sum(sum(bar.seconds.values()) for bar in bars) == hi - lo
    first_edge = start + (lo - start) // width * width
    last_edge = min(end, start + ((hi - 1 - start) // width + 1) * width)
    for bar in bars:
        assert bar.seconds == seconds_by_status(model, bar.start, bar.end), (bar, stored)
        assert all(seconds > 0 for seconds in bar.seconds.values()), bar
        assert first_edge <= bar.start and bar.end <= last_edge, (bar, lo, hi, width)
        assert sum(bar.seconds.values()) == min(bar.end, hi) - max(bar.start, lo), bar
        assert bar.status == (MIXED if len(bar.seconds) > 1 else next(iter(bar.seconds)))

        met = meeting(stored, bar.start, bar.end)
        assert bar.intervals == len(met), (bar, met)
        # The job: set exactly when one job set every segment the bar meets.
        owners = {seg.job_id for seg in met}
        assert bar.job_id == (owners.pop() if len(owners) == 1 else None), (bar, met)
        if bar.segment is not None:
            # The exact extent of the one stored segment that makes the bar, for the hover.
            assert bar.status != MIXED and bar.intervals == 1
            [seg] = met
            assert (seg.start, seg.end) == bar.segment, (bar, seg)
            assert seg.status == bar.status and seg.job_id == bar.job_id

    # At most one bar per drawn bucket (the buckets holding summed segments), plus one pure bar
    # per crossing segment: a crossing segment crosses one of the drawn - 1 inner bucket edges
    # (each crossed by at most one segment, segments being disjoint) or an edge of [start, end).
    assert len(bars) <= 2 * drawn + 1, (len(bars), drawn)

    # `_merge`: touching bars of one status (neither mixed) are always drawn as one.
    for left, right in zip(bars, bars[1:], strict=False):
        if left.end == right.start and MIXED not in (left.status, right.status):
            assert left.status != right.status, (left, right)


# ---- the property, through each database ---------------------------------------------------

# Segments set by a job, as claims and finished jobs leave them, and some set by none.
# Mostly short writes, so that buckets hold several segments (mixed bars, summed rows), and
# mostly Complete, so that neighbours of one status but different jobs meet (merged bars).
segment_op = st.tuples(
    st.integers(0, 90),
    st.integers(1, 6) | st.integers(1, 50),
    st.sampled_from([iv.COMPLETE, iv.COMPLETE, iv.COMPLETE, iv.INCOMPLETE, iv.PENDING, iv.NONE]),
    st.sampled_from(["a", "b", "c", "a", "b", "c", None]),
)
query = st.tuples(st.integers(-20, 140), st.integers(1, 160), st.integers(1, 30))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(0, 2_000_000_000),
    st.lists(segment_op, min_size=1, max_size=20),
    st.lists(query, min_size=1, max_size=5),
)
def test_the_timeline_matches_a_per_second_model(
    table_url: str, origin: int, ops: list, queries: list
) -> None:
    table = IntervalTable(table_url)
    key = StreamKey(f"fs_{uuid.uuid4().hex[:12]}", 1)  # a fresh stream for every example
    try:
        for offset, length, status, job in ops:
            table.set_status(key, "offline", origin + offset, origin + offset + length, status, job)
        stored = table.segments(key, "offline")
        iv.check_invariants(stored)
        for offset, length, buckets in queries:
            start, end = origin + offset, origin + offset + length
            bars = stream_timeline(table, key, "offline", start, end, buckets)
            check_bars(bars, stored, start, end, buckets)
        # Nothing drawn for an empty range, nor for a stream never requested.
        assert stream_timeline(table, key, "offline", origin + 10, origin + 10, 5) == []
        assert stream_timeline(table, key, "online", origin, origin + 100, 5) == []
    finally:
        table.close()


def test_a_bucket_with_an_unowned_segment_has_no_job(table_url: str) -> None:
    table = IntervalTable(table_url)
    key = StreamKey("unowned", 1)
    try:
        table.set_status(key, "offline", 0, 2, iv.COMPLETE, "a")
        table.set_status(key, "offline", 2, 5, iv.COMPLETE)  # set_status's default: no job
        table.set_status(key, "offline", 5, 10, iv.COMPLETE, "a")
        [bar] = stream_timeline(table, key, "offline", 0, 10, 1)
        assert (bar.status, bar.intervals) == (iv.COMPLETE, 3)
        assert bar.job_id is None  # segment [2, 5) was set by no job (SQL's min/max skip NULLs)
    finally:
        table.close()


# ---- the database sums ---------------------------------------------------------------------


def test_the_database_sums_the_segments_inside_a_bucket(table_url: str) -> None:
    """20,000 one-minute segments in 100 buckets come back as a few hundred rows, not 20,000."""
    count, minute, origin = 20_000, 60, JAN1
    key = StreamKey("many", 1)
    cycle = (iv.COMPLETE, iv.INCOMPLETE)
    rows = [
        {
            "feature_set": key.feature_set,
            "version": key.version,
            "store": "offline",
            "start_s": origin + i * minute,
            "end_s": origin + (i + 1) * minute,
            "status": cycle[i % 2],
            "job_id": f"job{i:05d}",
        }
        for i in range(count)
    ]
    table = IntervalTable(table_url)
    try:
        with table.engine.begin() as conn:
            conn.execute(
                streams.insert(),
                [{"feature_set": key.feature_set, "version": key.version, "store": "offline"}],
            )
            conn.execute(segments.insert(), rows)
        stored = table.segments(key, "offline")
        assert len(stored) == count
        assert table.extent(key, "offline") == (origin, origin + count * minute)
        assert table.freshness(key, "offline") == origin + (count - 1) * minute  # the last Complete minute

        buckets = 100
        # The whole axis (bucket edges on minute edges: nothing crosses) and a window whose
        # bucket edges all fall mid-minute (one crossing segment per edge).
        for start, end in [(origin, origin + count * minute), (origin + 30, origin + count * minute - 30)]:
            width = bucket_width(start, end, buckets)
            read = table.bucketed(key, "offline", start, end, width)
            drawn = math.ceil((end - start) / width)
            assert len(read.summed) <= len(cycle) * drawn  # one row per bucket and status
            assert len(read.crossing) <= drawn + 1
            assert len(read.crossing) + len(read.summed) <= 3 * buckets + 1

            expected: Counter[str] = Counter()
            for seg in stored:
                expected[seg.status] += max(0, min(seg.end, end) - max(seg.start, start))
            bars = stream_timeline(table, key, "offline", start, end, buckets)
            assert len(bars) == drawn and all(bar.status == MIXED for bar in bars)
            total: Counter[str] = Counter()
            for bar in bars:
                total.update(bar.seconds)
            assert total == expected
            assert sum(bar.intervals for bar in bars) >= count  # a crossing minute meets two bars
    finally:
        table.close()


# ---- the terminal --------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A private copy of the fraud example; its interval table lives in the copy."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return str(root / "featurestore.yaml")


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FEATURESTORE_CONFIG", "NO_COLOR")}
    env["COLUMNS"] = "111"  # 111 - len("offline") - 4 = 100 columns of bar
    return env


def run_piped(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FEATURESTORE, *args], capture_output=True, text=True, timeout=120, env=cli_env())


def run_in_terminal(*args: str) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal, as a user at a terminal does; (exit status, stdout)."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [FEATURESTORE, *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
    return proc.wait(timeout=120), b"".join(chunks).decode().replace("\r\n", "\n")


def four_statuses(config: str) -> None:
    """offline: Complete on Jan 1-2, None on Jan 3 (a gap between claims), Pending on Jan 4 (a
    queued job), Incomplete on Jan 5 (a failed job); online: Complete on Jan 1, Incomplete on Jan 2."""
    store = FeatureStore(config, check_transformations=False)
    try:
        # Both claims before any job finishes: a claim first checks Complete time against the
        # stores, and these jobs are recorded only (no Delta table, no Redis marker behind them).
        day1, day2 = store.claim(store.backfill_request("transactions", iso(JAN1), iso(JAN1 + 2 * DAY)))
        assert day1.stores == day2.stores == ("offline", "online")
        day4, day5 = store.claim(
            store.backfill_request("transactions", iso(JAN1 + 3 * DAY), iso(JAN1 + 5 * DAY), stores="offline")
        )
        store.table.finish_job(day1.id, {"offline": True, "online": True})
        store.table.finish_job(day2.id, {"offline": True, "online": False}, error="online store down")
        store.table.start_job(day5.id)
        store.table.finish_job(day5.id, {"offline": False}, error="boom")
    finally:
        store.close()


def columns(begin: int, end: int) -> slice:
    """The bar columns of `[begin, end)` on the axis Jan 1 - Jan 6 drawn in 100 columns."""
    span = 5 * DAY
    return slice((begin - JAN1) * 100 // span, (end - JAN1) * 100 // span)


def test_intervals_draws_a_bar_per_store(config: str) -> None:
    four_statuses(config)

    result = run_piped("intervals", "transactions", "--config", config)
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout), "colour codes on a pipe"
    lines = result.stdout.splitlines()
    assert lines[0].split() == [iso(JAN1), iso(JAN1 + 5 * DAY)]
    label = len("offline")
    offline, online = lines[1], lines[2]
    assert offline.startswith("offline |") and online.startswith("online  |")
    bars = {"offline": offline[label + 2 : -1], "online": online[label + 2 : -1]}
    assert offline.endswith("|") and online.endswith("|")
    assert all(len(bar) == 100 for bar in bars.values())
    expected = {
        "offline": [
            (JAN1, JAN1 + 2 * DAY, "#"),  # Complete
            (JAN1 + 2 * DAY, JAN1 + 3 * DAY, "."),  # None
            (JAN1 + 3 * DAY, JAN1 + 4 * DAY, "~"),  # Pending
            (JAN1 + 4 * DAY, JAN1 + 5 * DAY, "x"),  # Incomplete
        ],
        "online": [
            (JAN1, JAN1 + DAY, "#"),
            (JAN1 + DAY, JAN1 + 2 * DAY, "x"),
            (JAN1 + 2 * DAY, JAN1 + 5 * DAY, " "),  # never requested: blank
        ],
    }
    for name, runs in expected.items():
        for begin, end, glyph in runs:
            cells = bars[name][columns(begin, end)]
            assert cells == glyph * len(cells) and len(cells) == (end - begin) * 100 // (5 * DAY), (
                name,
                bars,
            )
    assert bars["offline"] == "#" * 40 + "." * 20 + "~" * 20 + "x" * 20
    assert lines[3] == " " * (label + 2) + legend(colour=False)
    assert lines[3].split() == [".", "None", "~", "Pending", "#", "Complete", "x", "Incomplete"]
    assert lines[4] == ""
    assert lines[5].split() == ["STORE", "START", "END", "STATUS", "LENGTH"]
    assert len(lines) == 6 + 6  # five lines of timeline, the header and six intervals

    # On a terminal: the same bars as coloured blocks.
    status, text = run_in_terminal("intervals", "transactions", "--config", config)
    assert status == 0, text
    for code in ("32", "31", "34", "90"):  # Complete, Incomplete, Pending, None
        assert f"\x1b[{code}m" in text, code
    lines = text.splitlines()
    block = "\u2588"
    assert lines[1] == (
        f"offline |\x1b[32m{block * 40}\x1b[0m\x1b[90m{block * 20}\x1b[0m"
        f"\x1b[34m{block * 20}\x1b[0m\x1b[31m{block * 20}\x1b[0m|"
    )
    assert lines[2] == f"online  |\x1b[32m{block * 20}\x1b[0m\x1b[31m{block * 20}\x1b[0m{' ' * 60}|"
    assert ANSI.sub("", lines[3]).split() == [
        block,
        "None",
        block,
        "Pending",
        block,
        "Complete",
        block,
        "Incomplete",
    ]

    # --json is the contract's document, bar or no terminal.
    document = [
        {"store": "offline", "start": iso(JAN1), "end": iso(JAN1 + 2 * DAY), "status": "Complete"},
        {"store": "offline", "start": iso(JAN1 + 2 * DAY), "end": iso(JAN1 + 3 * DAY), "status": "None"},
        {"store": "offline", "start": iso(JAN1 + 3 * DAY), "end": iso(JAN1 + 4 * DAY), "status": "Pending"},
        {
            "store": "offline",
            "start": iso(JAN1 + 4 * DAY),
            "end": iso(JAN1 + 5 * DAY),
            "status": "Incomplete",
        },
        {"store": "online", "start": iso(JAN1), "end": iso(JAN1 + DAY), "status": "Complete"},
        {"store": "online", "start": iso(JAN1 + DAY), "end": iso(JAN1 + 2 * DAY), "status": "Incomplete"},
    ]
    result = run_piped("intervals", "transactions", "--json", "--config", config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == document
    status, text = run_in_terminal("intervals", "transactions", "--json", "--config", config)
    assert status == 0 and json.loads(text) == document and not ANSI.search(text)
