"""What quality checks cost a backfill: the same backfill with five checks against it without
them, in one run, on the same data, each round a fresh process and a fresh feature store.

Why: the checks are one aggregation over each chunk's rows before its commits (one Spark
action however many checks); the promise is that a backfill with 5 checks stays within 1.15x of
the same backfill without them. The defaults a user gets are measured (both stores, 1-day
chunks, the embedded engine), on two feature sets:

- `events`: the Feast-shaped data of `vs_feast.py` (1M rows, 100k entities, 10 days, 10
  features), taken as is (no transformation), plus one string column `channel` (web, pos or
  atm). Checks: not_null on three features, unique on (entity_id, event_timestamp), range on
  f0, accepted_values on channel, min_rows. A third variant adds a warn check that every chunk
  violates: what the examples query costs where a check finds violations.
- `transactions`: the fraud example's 7-day rolling aggregates (a transformation whose windows
  read 8 days of source per chunk), 100,000 transactions a day over 10 days. Checks: not_null
  on its three features, unique on (accountID, timestamp), two ranges, min_rows.

The checks pass on the data, as a healthy pipeline's do, so every variant writes the same rows
(checked).

    python benchmarks/quality_checks.py                 # both cases, 3 rounds
    python benchmarks/quality_checks.py --rows 100000 --entities 10000 --per-day 10000 --rounds 1   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis
import workload as wl

EVENTS_CHECKS = """checks:
  - {check: not_null, columns: [f0, f1, f2]}
  - {check: unique, columns: [entity_id, event_timestamp]}
  - {check: range, column: f0, min: -1000, max: 1000}
  - {check: accepted_values, column: channel, values: [web, pos, atm]}
  - {check: min_rows, count: 1}
"""
VIOLATED = "  - {check: accepted_values, column: channel, values: [web], severity: warn}\n"
FRAUD_CHECKS = """checks:
  - {check: not_null, columns: [transaction_amount_7d_sum, transaction_7d_count, transaction_amount_7d_avg]}
  - {check: unique, columns: [accountID, timestamp]}
  - {check: range, column: transaction_7d_count, min: 1}
  - {check: range, column: transaction_amount_7d_sum, min: 0}
  - {check: min_rows, count: 1}
"""
CHANNELS = ["web", "pos", "atm"]
FRAUD_FIRST_DAY = "2025-06-01"


@dataclass
class Case:
    """One feature set measured with and without checks: a config per variant, the window."""

    title: str
    feature_set: str
    configs: dict[str, str]  # variant -> featurestore.yaml
    start: str
    end: str


def append(config: str, feature_set: str, text: str) -> None:
    spec = os.path.join(os.path.dirname(config), "featuresets", f"{feature_set}.yaml")
    with open(spec, "a", encoding="utf-8") as handle:
        handle.write(text)


def add_channel(path: str) -> None:
    """A string column on the source (every row, a seeded choice)."""
    table = pq.read_table(path)
    rng = np.random.default_rng(1)
    channel = pa.array(np.array(CHANNELS)[rng.integers(0, len(CHANNELS), table.num_rows)])
    pq.write_table(table.append_column("channel", channel), path)


def declare_channel(config: str) -> None:
    spec = os.path.join(os.path.dirname(config), "featuresets", "events.yaml")
    with open(spec, encoding="utf-8") as handle:
        text = handle.read()
    with open(spec, "w", encoding="utf-8") as handle:
        handle.write(text.replace("features:\n", "features:\n  - {name: channel, type: string}\n"))


def events_case(folder: str, options: argparse.Namespace, redis_url: str) -> Case:
    source = wl.generate(
        os.path.join(folder, "data", "events.parquet"),
        rows=options.rows,
        entities=options.entities,
        features=10,
        seconds=options.days * 86_400,
    )
    add_channel(source.path)
    variants = {
        "no checks": "",
        "5 checks": EVENTS_CHECKS,
        "5 checks + 1 violated (warn)": EVENTS_CHECKS + VIOLATED,
    }
    configs = {}
    for i, (label, checks) in enumerate(variants.items()):
        configs[label] = wl.write_feature_store(
            os.path.join(folder, f"events{i}"), source, redis_url, {"events": None}
        )
        declare_channel(configs[label])
        append(configs[label], "events", checks)
    title = f"events: {options.rows:,} rows, {options.entities:,} entities, {options.days} days, no transformation"
    return Case(title, "events", configs, day_text(wl.START), day_text(wl.START + options.days * 86400))


def fraud_case(folder: str, options: argparse.Namespace, redis_url: str) -> Case:
    """The fraud example's transactions, its source generated once and shared by both copies."""
    example = os.path.join(wl.ROOT, "examples", "fraud")
    loader = importlib.util.spec_from_file_location(
        "fraud_generate_data", os.path.join(example, "generate_data.py")
    )
    generator = importlib.util.module_from_spec(loader)  # type: ignore[arg-type]
    loader.loader.exec_module(generator)  # type: ignore[union-attr]
    data = os.path.join(folder, "fraud-data")
    generator.generate(
        data,
        accounts=options.per_day // 5,
        transactions_per_day=options.per_day,
        start=FRAUD_FIRST_DAY,
        days=options.days,
    )
    configs = {}
    for i, (label, checks) in enumerate({"no checks": "", "5 checks": FRAUD_CHECKS}.items()):
        root = os.path.join(folder, f"fraud{i}")
        shutil.copytree(example, root, ignore=shutil.ignore_patterns("data", "__pycache__", "dags", "model"))
        os.makedirs(os.path.join(root, "data"))
        os.symlink(os.path.join(data, "source"), os.path.join(root, "data", "source"))
        config = os.path.join(root, "featurestore.yaml")
        with open(config, encoding="utf-8") as handle:
            text = handle.read()
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(text.replace("${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}", redis_url))
        append(config, "transactions", checks)
        configs[label] = config
    first = int(datetime.fromisoformat(FRAUD_FIRST_DAY).replace(tzinfo=UTC).timestamp())
    title = f"transactions: the fraud example's 7-day rolling transformation, {options.per_day:,} rows a day"
    return Case(
        title, "transactions", configs, day_text(first + 86400), day_text(first + options.days * 86400)
    )


def day_text(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def backfill(options: argparse.Namespace, case: Case, label: str, round_: int, base_url: str) -> wl.ChildRun:
    config = case.configs[label]
    folder = os.path.dirname(config)
    shutil.rmtree(os.path.join(folder, "offline"), ignore_errors=True)
    shutil.rmtree(os.path.join(folder, "data", "offline"), ignore_errors=True)
    for database in ("intervals.db", os.path.join("data", "intervals.db")):
        if os.path.exists(os.path.join(folder, database)):
            os.remove(os.path.join(folder, database))
    client = redis.Redis.from_url(base_url)
    client.flushdb()
    pid = wl.redis_pid(client)
    client.close()
    command = [sys.executable, os.path.join(wl.BENCH, "ours_side.py"), "backfill", config, case.feature_set]
    return wl.run_child(
        f"{case.feature_set}-{round_}-{label}",
        [*command, case.start, case.end, "offline,online"],
        log_dir=os.path.join(folder, "logs"),
        timeout=options.timeout,
        env=wl.child_env(),
        redis_pid_=pid,
    )


def measure(options: argparse.Namespace, case: Case, base_url: str) -> dict[str, list[wl.ChildRun]]:
    """Each variant's backfill, `rounds` times, alternating so that drift hits all alike; every
    variant must write the same rows."""
    runs: dict[str, list[wl.ChildRun]] = {label: [] for label in case.configs}
    for round_ in range(options.rounds):
        for label in case.configs:
            run = backfill(options, case, label, round_, base_url)
            runs[label].append(run)
            written = run.result["rows_written"]  # type: ignore[index]
            first = runs[next(iter(runs))][0].result["rows_written"]  # type: ignore[index]
            wl.expect(written == first, f"{case.feature_set} {label}: wrote {written}, not {first}")
            call = float(run.result["call_s"])  # type: ignore[index]
            print(f"  {case.feature_set} round {round_ + 1} {label}: backfill call {call:.2f} s", flush=True)
    return runs


def table(case: Case, runs: dict[str, list[wl.ChildRun]]) -> str:
    call = {label: wl.median([float(r.result["call_s"]) for r in found]) for label, found in runs.items()}  # type: ignore[index]
    wall = {label: wl.median([r.wall for r in found]) for label, found in runs.items()}
    rows = [["variant", "backfill call s", "ratio", "process wall s", "ratio"]]
    for label in runs:
        rows.append(
            [
                label,
                f"{call[label]:.2f}",
                wl.ratio(call[label], call["no checks"]),
                f"{wall[label]:.2f}",
                wl.ratio(wall[label], wall["no checks"]),
            ]
        )
    return f"{case.title}\n\n{wl.markdown(rows)}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="events: source rows")
    parser.add_argument("--entities", type=int, default=100_000, help="events: entities")
    parser.add_argument("--per-day", type=int, default=100_000, help="transactions: source rows a day")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--redis-url", help="a Redis to use (default: a throwaway redis-server)")
    options = parser.parse_args()
    wl.use_this_checkout()
    folder = tempfile.mkdtemp(prefix="fs_bench_checks_")
    print(f"quality_checks: {os.cpu_count()} cores; load average {wl.load_average()}")
    tables = []
    try:
        with wl.redis_server(options.redis_url) as base_url:
            for build in (events_case, fraud_case):
                case = build(folder, options, f"{base_url}/0")
                tables.append(table(case, measure(options, case, base_url)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\n### Backfills with quality checks against the same backfill without (1-day chunks, both "
        f"stores, median of {options.rounds}; load average at end {wl.load_average()})\n"
    )
    print("\n".join(tables))


if __name__ == "__main__":
    main()
