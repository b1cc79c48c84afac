"""Benchmark: Feast 0.67 and us side by side, in one run, on the same data and the same Redis.

Why: the claim "faster than Feast" is only worth a figure measured in the same run on the same
machine; a Feast figure copied from elsewhere is not one. This script installs Feast into a
virtual environment of its own, generates one dataset, and runs both.

The data (seeded): `--rows` rows (1,000,000), `--entities` int64 entities (100,000) x the same
number of rows each, 10 float64 features, event times uniform over `--days` (10) days from
2025-06-01 in microseconds UTC: one parquet file, read by both. The latest event time of every
entity is unique, so "the latest row" is one row.

* Feast: a repo (`feature_store.yaml`: Redis online store in database `--feast-db`, the file
  offline store, a local registry; `repo.py`: a FileSource over the parquet, an Entity with an
  int64 join key, a FeatureView of the 10 features with a 10-year ttl), `feast apply` once (the
  registry is restored from that copy before every round), then per round a fresh process of
  the Feast venv's Python timing `FeatureStore.materialize(start, end)` over the days.
* Ours: a feature store (SQLite interval table, a spec with index `entity_id` long, the
  timestamp, 10 doubles, no transformation, `materialization: {offline: true, online: true}`,
  everything else the defaults: `max_job_window` 1d, no TTL, the embedded engine), Redis
  database `--ours-db` of the same server; per round a fresh process timing
  `FeatureStore.backfill(store.backfill_request(name, start, end, stores="online"))` (the
  Sail start happens inside that call, as Feast's engine start happens inside its).

For each: the call (in-process perf_counter), the whole process's wall clock (spawn to exit:
interpreter start, imports, the call, exit), its peak RSS (`ru_maxrss` from `wait4`; also the
child's own `VmHWM`), entities/s over the call, and the Redis server's CPU over the process.
Rounds alternate Feast, ours, Feast, ours...; each starts from an empty Redis database (and a
fresh registry / interval table). Printed: every round, the medians with the ratios (Feast /
ours time = our speed-up, ours / Feast RSS).

Checked, not only timed (the run fails loudly otherwise): after every round the database holds
one key per entity; after the rounds, for `--sample` seeded entities, both stores return
exactly the latest source row (ours through `FeatureStore.get_online_features`, and the raw
hash; Feast's through its `get_online_features` in its venv; Feast gives event times in whole
seconds only).

Lookups, after the materialization, 10 features, 1 and 100 random entities per call: Feast's
`get_online_features(...).to_dict()` (in its venv) and ours `FeatureStore.get_online_features`
(in this process), each alternating call by call with the raw baseline in the same process, a
bare redis-py pipelined `HMGET` of our keys (`bench:tenday:v1:<entity>`, fields `_event_time`,
`f0`..`f9`, decoded to floats): p50/p99 and the ratios to that baseline.

The Redis server is a throwaway `redis-server` of our own on a free loopback port (no
persistence) unless `--redis-url` names one; the databases used are flushed at the end (and
the throwaway server stopped). The working folder is a temporary one, deleted at the end
unless `--keep`. Every child process is killed after `--timeout` seconds.

Run: `python benchmarks/vs_feast.py [--rounds 3] [--rows 1000000] [--entities 100000]
[--days 10] [--quick] [--redis-url redis://127.0.0.1:6390] [--feast-venv PATH] [--keep]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
import workload as wl  # first: it puts this checkout on the path before common imports the package
from common import aligned
from feast_side import write_repo

FEAST_VERSION = "0.67.0"
FEAST_REQUIREMENT = f"feast[redis]=={FEAST_VERSION}"
FEATURE_SET = "tenday"
DEFAULT_VENV = wl.BENCH / ".feast-venv"


# ---- Feast's virtual environment -------------------------------------------------------------


def feast_version(python: Path) -> str | None:
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import feast; print(feast.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_feast(venv: Path, log: Path) -> Path:
    """The Python of a venv with Feast 0.67.0, installed there when it is not (reused after)."""
    python = venv / "bin" / "python"
    found = feast_version(python)
    if found == FEAST_VERSION:
        print(f"Feast {found}: reusing {venv}")
        return python
    print(f"Feast {FEAST_VERSION} not in {venv} (found: {found}); installing {FEAST_REQUIREMENT}")
    index = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "feast"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    first = (index.stdout.strip().splitlines() or [index.stderr.strip()])[0]
    print(f"  pip index versions feast: {first}")
    wl.expect(
        FEAST_VERSION in index.stdout.split("Available versions:")[-1].replace(",", " ").split(),
        f"pip index versions feast does not list {FEAST_VERSION}: {index.stdout or index.stderr}",
    )
    shutil.rmtree(venv, ignore_errors=True)
    began = time.perf_counter()
    with open(log, "w") as out:
        for command in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--upgrade", "pip"],
            [str(python), "-m", "pip", "install", FEAST_REQUIREMENT],
        ):
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            if done.returncode != 0:
                tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
                raise wl.CheckFailed(
                    f"installing Feast failed at `{' '.join(command)}` (exit {done.returncode}):\n{tail}"
                )
    found = feast_version(python)
    wl.expect(found == FEAST_VERSION, f"after the install, {python} has feast {found}, not {FEAST_VERSION}")
    print(f"  installed in {time.perf_counter() - began:.0f} s (log {log})")
    return python


# ---- the bench ---------------------------------------------------------------------------------


def feast_apply(feast_python: Path, repo: str, timeout: float) -> float:
    """`feast apply` in the repo, and a copy of the registry it made (restored before every
    materialization); returns the seconds it took."""
    began = time.perf_counter()
    applied = subprocess.run(
        [str(feast_python.with_name("feast")), "-c", repo, "apply"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "FEAST_USAGE": "False"},
    )
    wl.expect(applied.returncode == 0, f"feast apply failed:\n{applied.stdout}\n{applied.stderr}")
    shutil.copyfile(
        os.path.join(repo, "data", "registry.db"), os.path.join(repo, "data", "registry.db.pristine")
    )
    return time.perf_counter() - began


@dataclass
class Setup:
    options: argparse.Namespace
    folder: str
    source: wl.Source
    base_url: str  # redis://host:port
    feast_python: Path
    feast_repo: str
    ours_config: str

    @property
    def feast_url(self) -> str:
        return f"{self.base_url}/{self.options.feast_db}"

    @property
    def ours_url(self) -> str:
        return f"{self.base_url}/{self.options.ours_db}"

    @property
    def window(self) -> tuple[str, str]:
        return tuple(datetime.fromtimestamp(t, UTC).isoformat() for t in (self.source.start, self.source.end))


def feast_round(setup: Setup, number: int, client: redis.Redis, redis_pid: int) -> wl.ChildRun:
    client.flushdb()
    registry = os.path.join(setup.feast_repo, "data", "registry.db")
    shutil.copyfile(registry + ".pristine", registry)
    start, end = setup.window
    run = wl.run_child(
        f"feast materialize round {number}",
        [
            str(setup.feast_python),
            str(wl.BENCH / "feast_side.py"),
            "materialize",
            setup.feast_repo,
            start,
            end,
        ],
        log_dir=os.path.join(setup.folder, "logs"),
        timeout=setup.options.timeout,
        env={**os.environ, "FEAST_USAGE": "False"},
        cwd=setup.feast_repo,
        redis_pid_=redis_pid,
    )
    keys = client.dbsize()
    wl.expect(
        keys == setup.source.entities,
        f"Feast round {number}: {keys:,} keys, expected {setup.source.entities:,}",
    )
    return run


def ours_round(setup: Setup, number: int, client: redis.Redis, redis_pid: int) -> wl.ChildRun:
    client.flushdb()
    wl.reset_feature_store(os.path.dirname(setup.ours_config))
    start, end = setup.window
    run = wl.run_child(
        f"ours backfill round {number}",
        [
            sys.executable,
            str(wl.BENCH / "ours_side.py"),
            "backfill",
            setup.ours_config,
            FEATURE_SET,
            start,
            end,
            "online",
        ],
        log_dir=os.path.join(setup.folder, "logs"),
        timeout=setup.options.timeout,
        env=wl.child_env(),
        redis_pid_=redis_pid,
    )
    wl.check_package_root(str(run.result["package"]))
    keys = wl.entity_keys(client)
    wl.expect(
        keys == setup.source.entities,
        f"our round {number}: {keys:,} keys, expected {setup.source.entities:,}",
    )
    return run


def verify(setup: Setup, ours_client: redis.Redis) -> None:
    """Both stores hold exactly each sampled entity's latest source row."""
    from airflow_provider_featurestore.core.featurestore import FeatureStore

    source = setup.source
    sample = wl.sample_entities(source.entities, setup.options.sample, setup.options.seed + 1)
    prefix = f"{wl.PROJECT}:{FEATURE_SET}:v1:"
    wl.check_online_sample(ours_client, prefix, source, sample, "ours (raw hash)")
    refs = [f"{FEATURE_SET}:{name}" for name in source.features]
    with FeatureStore(setup.ours_config) as store:
        got = store.get_online_features(refs, [{wl.ENTITY: e} for e in sample], event_timestamps=True)
    for entity, row in zip(sample, got, strict=True):
        want = source.latest_row(entity)
        for name in source.features:
            wl.expect(
                row[name] == want[name], f"ours: entity {entity} {name}: {row[name]!r}, source {want[name]!r}"
            )
        stamp = row[f"{FEATURE_SET}__event_timestamp"]
        wl.expect(
            stamp == want[wl.TIMESTAMP],
            f"ours: entity {entity} event time {stamp}, source {want[wl.TIMESTAMP]}",
        )
    feast = wl.run_child(
        "feast verify",
        [
            str(setup.feast_python),
            str(wl.BENCH / "feast_side.py"),
            "verify",
            setup.feast_repo,
            json.dumps({"entities": sample, "features": source.features}),
        ],
        log_dir=os.path.join(setup.folder, "logs"),
        timeout=setup.options.timeout,
        env={**os.environ, "FEAST_USAGE": "False"},
        cwd=setup.feast_repo,
    )
    values = feast.result["values"]
    wl.expect(values[wl.ENTITY] == sample, f"Feast returned entities {values[wl.ENTITY][:5]}...")  # type: ignore[index]
    for k, entity in enumerate(sample):
        want = source.latest_row(entity)
        for name in source.features:
            value = values[name][k]  # type: ignore[index]
            wl.expect(value == want[name], f"Feast: entity {entity} {name}: {value!r}, source {want[name]!r}")
            seconds = values[f"{name}__ts"][k]  # type: ignore[index]
            wl.expect(
                seconds == source.latest_us(entity) // 1_000_000,
                f"Feast: entity {entity} {name} event time {seconds}, source {want[wl.TIMESTAMP]}",
            )
    print(
        f"verified: {source.entities:,} keys in each database; {len(sample)} seeded entities hold their latest "
        "source row in both (ours: get_online_features and the raw hash; Feast: get_online_features)"
    )


def lookups(setup: Setup) -> tuple[dict[str, dict[str, list[float]]], str]:
    """p50/p99 ms per case for Feast, ours, and the bare HMGET beside each (same process);
    and the redis-py version of Feast's venv."""
    from airflow_provider_featurestore.core.featurestore import FeatureStore

    options, source = setup.options, setup.source
    cases = [(1, options.iterations_1), (100, options.iterations_100)]
    cases = [(batch, n) for batch, n in cases if batch <= source.entities]
    prefix = f"{wl.PROJECT}:{FEATURE_SET}:v1:"
    feast = wl.run_child(
        "feast lookups",
        [
            str(setup.feast_python),
            str(wl.BENCH / "feast_side.py"),
            "lookups",
            setup.feast_repo,
            json.dumps(
                {
                    "features": source.features,
                    "entities": source.entities,
                    "cases": cases,
                    "seed": options.seed + 2,
                    "bare_url": setup.ours_url,
                    "bare_prefix": prefix,
                }
            ),
        ],
        log_dir=os.path.join(setup.folder, "logs"),
        timeout=options.timeout,
        env={**os.environ, "FEAST_USAGE": "False"},
        cwd=setup.feast_repo,
    )
    out: dict[str, dict[str, list[float]]] = {}
    refs = [f"{FEATURE_SET}:{name}" for name in source.features]
    fields = ["_event_time", *source.features]
    client = redis.Redis.from_url(setup.ours_url)
    rng = random.Random(options.seed + 3)
    clock = time.perf_counter
    with FeatureStore(setup.ours_config) as store:
        for batch, iterations in cases:
            ours_s: list[float] = []
            bare_s: list[float] = []
            warm_up = max(20, iterations // 10)
            for i in range(warm_up + iterations):
                entities = rng.sample(range(source.entities), batch)
                rows = [{wl.ENTITY: e} for e in entities]
                started = clock()
                got = store.get_online_features(refs, rows)
                middle = clock()
                bare = wl.bare_hmget(client, prefix, fields, entities)
                ended = clock()
                if i < warm_up:
                    mine = [[row[name] for name in source.features] for row in got]
                    wl.expect(mine == bare, "get_online_features and the bare HMGET disagree")
                    continue
                ours_s.append(middle - started)
                bare_s.append(ended - middle)
            theirs = feast.result["lookups"][str(batch)]  # type: ignore[index]
            out[str(batch)] = {
                "feast": theirs["feast"],
                "bare_feast": theirs["bare"],
                "ours": wl.percentiles_ms(ours_s),
                "bare_ours": wl.percentiles_ms(bare_s),
                "calls": [iterations],
            }
    client.close()
    return out, str(feast.result.get("redis_py"))


# ---- report ----------------------------------------------------------------------------------


def per_round_table(setup: Setup, rounds: list[tuple[int, str, wl.ChildRun]]) -> str:
    entities = setup.source.entities
    lines = [
        [
            "round",
            "side",
            "call s",
            "import s",
            "exit s",
            "wall s",
            "peak RSS MB",
            "VmHWM MB",
            "entities/s",
            "redis CPU s",
            "jobs",
        ]
    ]
    for number, side, run in rounds:
        lines.append(
            [
                str(number),
                side,
                f"{run.call:.2f}",
                f"{float(run.result['import_s']):.2f}",  # type: ignore[arg-type]
                f"{run.extra['exit_s']:.2f}",
                f"{run.wall:.2f}",
                f"{run.rss_mb:,.0f}",
                f"{float(run.result['vmhwm_kib']) / 1024:,.0f}",  # type: ignore[arg-type]
                f"{entities / run.call:,.0f}",
                "-" if run.redis_cpu is None else f"{run.redis_cpu:.2f}",
                str(run.result.get("jobs", "-")),
            ]
        )
    return aligned(lines)


def summary_rows(setup: Setup, feast: list[wl.ChildRun], ours: list[wl.ChildRun]) -> list[list[str]]:
    entities = setup.source.entities
    f_call, o_call = wl.median([r.call for r in feast]), wl.median([r.call for r in ours])
    f_wall, o_wall = wl.median([r.wall for r in feast]), wl.median([r.wall for r in ours])
    f_rss, o_rss = wl.median([r.rss_mb for r in feast]), wl.median([r.rss_mb for r in ours])
    return [
        ["materialize, median of rounds", f"Feast {FEAST_VERSION}", "ours", "ratio"],
        [
            "call s (ratio Feast / ours: our speed-up)",
            f"{f_call:.2f}",
            f"{o_call:.2f}",
            wl.ratio(f_call, o_call),
        ],
        ["whole process wall s (Feast / ours)", f"{f_wall:.2f}", f"{o_wall:.2f}", wl.ratio(f_wall, o_wall)],
        [
            "entities/s over the call (ours / Feast)",
            f"{entities / f_call:,.0f}",
            f"{entities / o_call:,.0f}",
            wl.ratio(f_call, o_call),
        ],
        ["peak RSS MB, ru_maxrss (ours / Feast)", f"{f_rss:,.0f}", f"{o_rss:,.0f}", wl.ratio(o_rss, f_rss)],
    ]


def lookup_rows(found: dict[str, dict[str, list[float]]]) -> list[list[str]]:
    lines = [
        [
            "lookup, 10 features",
            "who",
            "calls",
            "p50 ms",
            "p99 ms",
            "p50 / bare",
            "p99 / bare",
            "Feast / ours p50",
            "p99",
        ]
    ]
    for batch, figures in found.items():
        case = f"{batch} entit{'y' if batch == '1' else 'ies'}"
        calls = f"{int(figures['calls'][0]):,}"
        f50, f99 = figures["feast"]
        o50, o99 = figures["ours"]
        for who, (p50, p99), (b50, b99) in (
            ("Feast get_online_features", figures["feast"], figures["bare_feast"]),
            ("  bare HMGET, Feast's process", figures["bare_feast"], figures["bare_feast"]),
            ("ours get_online_features", figures["ours"], figures["bare_ours"]),
            ("  bare HMGET, our process", figures["bare_ours"], figures["bare_ours"]),
        ):
            speed = [wl.ratio(f50, o50), wl.ratio(f99, o99)] if who.startswith("ours") else ["", ""]
            lines.append(
                [case, who, calls, f"{p50:.3f}", f"{p99:.3f}", wl.ratio(p50, b50), wl.ratio(p99, b99), *speed]
            )
    return lines


# ---- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of Feast then ours (default 3)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument(
        "--quick", action="store_true", help="100,000 rows, 10,000 entities, 1 round, short lookups"
    )
    parser.add_argument("--sample", type=int, default=200, help="entities whose values are checked")
    parser.add_argument("--iterations-1", type=int, default=2000, help="lookup calls of 1 entity")
    parser.add_argument("--iterations-100", type=int, default=500, help="lookup calls of 100 entities")
    parser.add_argument("--redis-url", help="an existing Redis server (default: a throwaway redis-server)")
    parser.add_argument("--feast-db", type=int, default=1, help="Feast's Redis database (FLUSHDB'd)")
    parser.add_argument("--ours-db", type=int, default=2, help="our Redis database (FLUSHDB'd)")
    parser.add_argument("--feast-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a child process is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the working folder (printed)")
    options = parser.parse_args()
    if options.quick:
        options.rows, options.entities, options.rounds = 100_000, 10_000, 1
        options.sample, options.iterations_1, options.iterations_100 = 50, 300, 100
    if options.rounds < 1 or options.feast_db == options.ours_db:
        parser.error("need --rounds >= 1 and two different databases")
    wl.use_this_checkout()
    began_all = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="fs_bench_vs_feast_")
    print(f"vs_feast: working folder {folder}; {os.cpu_count()} cores; load average {wl.load_average()}")
    setup_s: dict[str, float] = {}
    try:
        began = time.perf_counter()
        feast_python = ensure_feast(options.feast_venv, Path(folder) / "feast-install.log")
        setup_s["Feast venv"] = time.perf_counter() - began
        source = wl.generate(
            os.path.join(folder, "data", "source.parquet"),
            rows=options.rows,
            entities=options.entities,
            features=options.features,
            seconds=options.days * 86_400,
            seed=options.seed,
        )
        setup_s["data"] = source.seconds
        print(
            f"data: {source.rows:,} rows, {source.entities:,} int64 entities x {source.rows // source.entities}, "
            f"{len(source.features)} float64 features, {options.days} days from {wl.DAY0:%Y-%m-%d}: {source.path} "
            f"({os.path.getsize(source.path) / 2**20:,.0f} MiB)"
        )
        with wl.redis_server(options.redis_url) as base_url:
            feast_client = redis.Redis.from_url(f"{base_url}/{options.feast_db}")
            ours_client = redis.Redis.from_url(f"{base_url}/{options.ours_db}")
            try:
                return run(
                    options,
                    folder,
                    source,
                    base_url,
                    feast_python,
                    feast_client,
                    ours_client,
                    setup_s,
                    began_all,
                )
            finally:
                feast_client.flushdb()
                ours_client.flushdb()
                feast_client.close()
                ours_client.close()
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run(
    options: argparse.Namespace,
    folder: str,
    source: wl.Source,
    base_url: str,
    feast_python: Path,
    feast_client: redis.Redis,
    ours_client: redis.Redis,
    setup_s: dict[str, float],
    began_all: float,
) -> int:
    feast_client.flushdb()
    ours_client.flushdb()
    host_port = base_url.split("//", 1)[1]
    repo = write_repo(
        os.path.join(folder, "feast_repo"), source.path, host_port, options.feast_db, source.features
    )
    setup_s["feast apply"] = feast_apply(feast_python, repo, options.timeout)
    config = wl.write_feature_store(
        os.path.join(folder, "ours"), source, f"{base_url}/{options.ours_db}", {FEATURE_SET: None}
    )
    setup = Setup(options, folder, source, base_url, feast_python, repo, config)
    pid = wl.redis_pid(feast_client)
    print(
        f"Redis {base_url} (Feast db {options.feast_db}, ours db {options.ours_db}); set-up, in no figure: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in setup_s.items())
    )
    print(f"window [{setup.window[0]}, {setup.window[1]}); {options.rounds} round(s) of Feast then ours\n")

    rounds: list[tuple[int, str, wl.ChildRun]] = []
    feast_runs: list[wl.ChildRun] = []
    ours_runs: list[wl.ChildRun] = []
    for number in range(1, options.rounds + 1):
        for side, func, runs, client in (
            ("Feast", feast_round, feast_runs, feast_client),
            ("ours", ours_round, ours_runs, ours_client),
        ):
            got = func(setup, number, client, pid)
            runs.append(got)
            rounds.append((number, side, got))
            print(
                f"round {number} {side:<5} call {got.call:6.2f} s  wall {got.wall:6.2f} s  "
                f"peak RSS {got.rss_mb:6,.0f} MB  load {wl.load_average()}",
                flush=True,
            )
    print()
    verify(setup, ours_client)
    found, feast_redis_py = lookups(setup)

    print(f"\nper round (fresh process each; entities/s over the call; {source.entities:,} entities)")
    print(per_round_table(setup, rounds))
    summary = summary_rows(setup, feast_runs, ours_runs)
    print(f"\nmedians of {options.rounds} round(s)")
    print(aligned(summary, text_columns=1))
    looked = lookup_rows(found)
    print(
        f"\nlookups after the materialization (each beside the bare HMGET in the same process, alternating call by call; "
        f"Feast's redis-py {feast_redis_py}, ours {redis.__version__})"
    )
    print(aligned(looked))
    jobs = ours_runs[0].result["jobs"]
    print(
        f"\nours: {jobs} job(s) per backfill (max_job_window default 1d); "
        f"whole run {time.perf_counter() - began_all:.0f} s; load average at end {wl.load_average()}\n"
    )
    print(
        f"### Feast {FEAST_VERSION} vs ours: {source.rows:,} rows, {source.entities:,} entities, {options.days} days, "
        f"{options.rounds} round(s), {os.cpu_count()} cores\n"
    )
    print(wl.markdown(summary))
    print()
    print(wl.markdown(looked, text_columns=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
