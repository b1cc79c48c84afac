"""What quality checks cost a backfill: the same backfill with five checks against it without
them, in one run, on the same data, each round a fresh process and a fresh feature store.

Why: the checks are one aggregation over each chunk's rows before its commits (one Spark
action however many checks); the promise is that a backfill with 5 checks stays within 1.15x of
the same backfill without them. The default a user gets is measured: both stores, the default
1-day chunks, the embedded engine, the Feast-shaped data of `vs_feast.py` (1M rows, 100k
entities, 10 days, 10 features).

    python benchmarks/quality_checks.py                 # 1M rows, 3 rounds
    python benchmarks/quality_checks.py --rows 100000 --entities 10000 --rounds 1   # quick

The five checks (all pass on this data, so both runs write the same rows): not_null on three
features, unique on (entity_id, event_timestamp), range on f0, accepted_values on f1's sign
bucket is not expressible on a double, so accepted_values runs on the entity id over a short
list at severity warn (it counts violations on most rows: the worst case for its examples), and
min_rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import redis
import workload as wl

CHECKS = """checks:
  - {check: not_null, columns: [f0, f1, f2]}
  - {check: unique, columns: [entity_id, event_timestamp]}
  - {check: range, column: f0, min: -1000, max: 1000}
  - {check: accepted_values, column: entity_id, values: [0, 1, 2, 3], severity: warn}
  - {check: min_rows, count: 1}
"""


def add_checks(config: str, name: str) -> None:
    spec = os.path.join(os.path.dirname(config), "featuresets", f"{name}.yaml")
    with open(spec, "a", encoding="utf-8") as handle:
        handle.write(CHECKS)


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
    print(f"quality_checks: {os.cpu_count()} cores; load average {wl.load_average()}; folder {folder}")
    try:
        source = wl.generate(
            os.path.join(folder, "data", "events.parquet"),
            rows=options.rows,
            entities=options.entities,
            features=10,
            seconds=options.days * 86_400,
        )
        with wl.redis_server(options.redis_url) as base_url:
            plain = wl.write_feature_store(
                os.path.join(folder, "plain"), source, f"{base_url}/0", {"events": None}
            )
            checked = wl.write_feature_store(
                os.path.join(folder, "checked"), source, f"{base_url}/0", {"events": None}
            )
            add_checks(checked, "events")
            runs: dict[str, list[wl.ChildRun]] = {"plain": [], "checked": []}
            for round_ in range(options.rounds):  # alternating, so drift hits both alike
                for label, config in (("plain", plain), ("checked", checked)):
                    run = backfill(options, config, f"{label}-{round_}", base_url)
                    wl.expect(
                        run.result["rows_written"] == {"offline": source.rows, "online": source.entities},  # type: ignore[index]
                        f"{label}: wrote {run.result['rows_written']}",  # type: ignore[index]
                    )
                    runs[label].append(run)
                    print(
                        f"  round {round_ + 1} {label}: backfill call {run.result['call_s']:.2f} s, wall {run.wall:.2f} s",
                        flush=True,
                    )  # type: ignore[index]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    call = {label: wl.median([float(r.result["call_s"]) for r in found]) for label, found in runs.items()}  # type: ignore[index]
    wall = {label: wl.median([r.wall for r in found]) for label, found in runs.items()}
    print(
        f"\n### A backfill with 5 checks against the same backfill without ({options.rows:,} rows, "
        f"{options.entities:,} entities, {options.days} days, 1-day chunks, both stores; median of {options.rounds})\n"
    )
    print(
        wl.markdown(
            [
                ["figure", "with 5 checks", "without (baseline)", "ratio"],
                [
                    "backfill call s",
                    f"{call['checked']:.2f}",
                    f"{call['plain']:.2f}",
                    wl.ratio(call["checked"], call["plain"]),
                ],
                [
                    "process wall s",
                    f"{wall['checked']:.2f}",
                    f"{wall['plain']:.2f}",
                    wl.ratio(wall["checked"], wall["plain"]),
                ],
            ]
        )
    )


if __name__ == "__main__":
    main()
