"""What quality checks cost a backfill: the same backfill with five checks against it without
them, in one run, on the same data, each round a fresh process and a fresh feature store.

Why: the checks are one aggregation over each chunk's rows before its commits (one Spark
action however many checks); the promise is that a backfill with 5 checks stays within 1.15x of
the same backfill without them. The default a user gets is measured: both stores, the default
1-day chunks, the embedded engine, the Feast-shaped data of `vs_feast.py` (1M rows, 100k
entities, 10 days, 10 features).

    python benchmarks/quality_checks.py                 # 1M rows, 3 rounds
    python benchmarks/quality_checks.py --rows 100000 --entities 10000 --rounds 1   # quick

The data gets one string column, `channel` (web, pos or atm), declared as a feature in both
feature stores. The five checks pass on it, as a healthy pipeline's do, so both runs write the
same rows: not_null on three features, unique on (entity_id, event_timestamp), range on f0,
accepted_values on channel, min_rows. A third run adds a warn check that every chunk violates:
what the examples query costs where a check finds violations.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis
import workload as wl

CHECKS = """checks:
  - {check: not_null, columns: [f0, f1, f2]}
  - {check: unique, columns: [entity_id, event_timestamp]}
  - {check: range, column: f0, min: -1000, max: 1000}
  - {check: accepted_values, column: channel, values: [web, pos, atm]}
  - {check: min_rows, count: 1}
"""
VIOLATED = "  - {check: accepted_values, column: channel, values: [web], severity: warn}\n"
CHANNELS = ["web", "pos", "atm"]


def add_channel(path: str, config: str) -> None:
    """A string column on the source (every row, a seeded choice), and its declaration."""
    table = pq.read_table(path)
    rng = np.random.default_rng(1)
    channel = pa.array(np.array(CHANNELS)[rng.integers(0, len(CHANNELS), table.num_rows)])
    pq.write_table(table.append_column("channel", channel), path)
    add_channel_spec(config)


def add_channel_spec(config: str) -> None:
    spec = os.path.join(os.path.dirname(config), "featuresets", "events.yaml")
    with open(spec, encoding="utf-8") as handle:
        text = handle.read()
    with open(spec, "w", encoding="utf-8") as handle:
        handle.write(text.replace("features:\n", "features:\n  - {name: channel, type: string}\n"))


def add_checks(config: str, checks: str) -> None:
    spec = os.path.join(os.path.dirname(config), "featuresets", "events.yaml")
    with open(spec, "a", encoding="utf-8") as handle:
        handle.write(checks)


def backfill(options: argparse.Namespace, config: str, label: str, base_url: str) -> wl.ChildRun:
    wl.reset_feature_store(os.path.dirname(config))
    client = redis.Redis.from_url(base_url)
    client.flushdb()
    pid = wl.redis_pid(client)
    client.close()
    end = time.strftime("%Y-%m-%d", time.gmtime(wl.START + options.days * 86400))
    start = time.strftime("%Y-%m-%d", time.gmtime(wl.START))
    command = [
        sys.executable,
        os.path.join(wl.BENCH, "ours_side.py"),
        "backfill",
        config,
        "events",
        start,
        end,
    ]
    return wl.run_child(
        label,
        [*command, "offline,online"],
        log_dir=os.path.join(os.path.dirname(config), "logs"),
        timeout=options.timeout,
        env=wl.child_env(),
        redis_pid_=pid,
    )


VARIANTS = {"plain": None, "checked": CHECKS, "violated": CHECKS + VIOLATED}


def build(folder: str, options: argparse.Namespace, base_url: str) -> tuple[wl.Source, dict[str, str]]:
    """The data (with its channel column) and one feature store per variant."""
    source = wl.generate(
        os.path.join(folder, "data", "events.parquet"),
        rows=options.rows,
        entities=options.entities,
        features=10,
        seconds=options.days * 86_400,
    )
    configs = {}
    for label, checks in VARIANTS.items():
        configs[label] = wl.write_feature_store(
            os.path.join(folder, label), source, f"{base_url}/0", {"events": None}
        )
        if label == "plain":
            add_channel(source.path, configs[label])
        else:
            add_channel_spec(configs[label])
        if checks:
            add_checks(configs[label], checks)
    return source, configs


def measure(options: argparse.Namespace, folder: str) -> dict[str, list[wl.ChildRun]]:
    """Each variant's backfill, `rounds` times, alternating so that drift hits all alike."""
    runs: dict[str, list[wl.ChildRun]] = {label: [] for label in VARIANTS}
    with wl.redis_server(options.redis_url) as base_url:
        source, configs = build(folder, options, base_url)
        for round_ in range(options.rounds):
            for label, config in configs.items():
                run = backfill(options, config, f"{label}-{round_}", base_url)
                written = run.result["rows_written"]  # type: ignore[index]
                wl.expect(
                    written == {"offline": source.rows, "online": source.entities},
                    f"{label}: wrote {written}",
                )
                runs[label].append(run)
                call = float(run.result["call_s"])  # type: ignore[index]
                print(
                    f"  round {round_ + 1} {label}: backfill call {call:.2f} s, wall {run.wall:.2f} s",
                    flush=True,
                )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--redis-url", help="a Redis to use (default: a throwaway redis-server)")
    options = parser.parse_args()
    wl.use_this_checkout()
    folder = tempfile.mkdtemp(prefix="fs_bench_checks_")
    print(f"quality_checks: {os.cpu_count()} cores; load average {wl.load_average()}")
    try:
        runs = measure(options, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    call = {label: wl.median([float(r.result["call_s"]) for r in found]) for label, found in runs.items()}  # type: ignore[index]
    wall = {label: wl.median([r.wall for r in found]) for label, found in runs.items()}
    print(
        f"\n### Backfills with quality checks against the same backfill without ({options.rows:,} rows, "
        f"{options.entities:,} entities, {options.days} days, 1-day chunks, both stores; median of "
        f"{options.rounds}; load average at end {wl.load_average()})\n"
    )
    rows = [["figure", "backfill call s", "ratio to no checks", "process wall s", "ratio"]]
    names = {
        "plain": "no checks (baseline)",
        "checked": "5 checks, all pass",
        "violated": "+ 1 warn check violated",
    }
    for label, name in names.items():
        rows.append(
            [
                name,
                f"{call[label]:.2f}",
                wl.ratio(call[label], call["plain"]),
                f"{wall[label]:.2f}",
                wl.ratio(wall[label], wall["plain"]),
            ]
        )
    print(wl.markdown(rows))


if __name__ == "__main__":
    main()
