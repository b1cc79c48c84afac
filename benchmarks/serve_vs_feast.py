"""Benchmark: `featurestore serve` (API keys on) against `feast serve` (Feast 0.67, no auth),
the same load on the same data in the same Redis, in one run.

Why: a server's speed is only worth a figure measured beside its peer under the same load on
the same machine. Goal (issue 23): at least 3x Feast's throughput at an equal or lower p99.

Set-up (in no figure): Feast 0.67 in its own venv (`vs_feast.ensure_feast`), the Go load
generator (`serve_load.ensure_loadgen`); `--entities` int64 entities (100,000) x 2 rows over 10
days, 10 float64 features whose values name their row (`workload.generate(first_row=...)`:
feature j of row r is r + j/16), one parquet file; Feast materializes it into database
`--feast-db` of a throwaway Redis (`feast_side.py`), ours backfills it into `--ours-db`
(`ours_side.py`), both checked on a sample (`vs_feast.verify`). Then both servers run side by
side with the same number of worker processes each (`--workers`, default 1 with every case, then
2 with the closed loop only): `feast serve --no-access-log --max-requests 0`
(Feast's defaults otherwise; 0 turns off gunicorn's restart of a worker every ~1,000
requests) and `featurestore serve` with `feature_server.api_keys` set, every request sending
`X-API-Key`.

Load (loadgen/main.go; each case runs against Feast, then ours, then the next case):
* closed loop: 8 and 32 clients, 1 and 100 entities per request, `--duration` s each;
* open loop: fixed rates, latency from each request's intended send time: Feast's best
  closed-loop throughput for that batch times 0.5, 0.75, 1, 1.5, 2.25, 3, 4, 6; each server
  stops after the first rate it does not sustain (an error, under 95% of the rate answered, or
  a p99 over 1 s).
Request bodies: `--bodies` random entity lists per batch size, the same for both servers (each
in its own JSON shape), cycled. Every answer is checked: each entity's 10 values must be its
stored row's (`serve_check.py`); a wrong answer is an error.

Per case and server: correct answers/s, p50/p99/p99.9 latency, errors by kind, the server's CPU
(its whole process tree, psutil) and the generator's own, and ours/Feast ratios.

Then ours alone, under a concurrent online backfill: an open loop at `--backfill-load` (a
quarter) of its 8-client throughput, first quiet, then while `featurestore backfill` (a
subprocess) rewrites every entity with a newer row (a new day of the source), once at nice 19
(standing in for the machine of its own a backfill has in production, where only Redis is
shared) and once at nice 0 (sharing these cores at equal priority). Every answer must be the
entity's previous row or its new one, never a mix (a half-written entity); p99 over the
requests due while the backfill ran is compared with the quiet p99 (goal: within 2x), and the
largest latency says whether a lookup ever blocked.

Run: `python benchmarks/serve_vs_feast.py [--quick] [--workers 1,2] [--entities 100000]
[--duration 8] [--backfill-load 0.25] [--redis-url URL] [--keep]`; about 7-8 minutes, `--quick`
(a smoke run) under three.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import redis
import serve_check as chk
import serve_load as ld
import vs_feast
import workload as wl  # first: it puts this checkout on the path before common imports the package
from common import aligned
from feast_side import write_repo

FEATURE_SET = vs_feast.FEATURE_SET
KEY_ENV = "FEATURESTORE_BENCH_API_KEY"
DAY = 86_400
DAYS = 10
BATCHES = (1, 100)
CLIENTS = (8, 32)
# 3x each of the first three is on the ladder too: ours at three times a rate Feast sustains
MULTIPLIERS = (0.5, 0.75, 1.0, 1.5, 2.25, 3.0, 4.0, 6.0)
# a rate is sustained when this share of it is answered, with no error, and p99 stays under
# MAX_P99_MS: a server that falls behind is charged its queue, which grows with the run
SUSTAINED = 0.95
MAX_P99_MS = 1000.0
OPEN_CONNECTIONS = 64  # the open loop's most connections
# the backfill's niceness: 19 stands in for the machine of its own it has in production (only
# Redis shared), 0 shares these two cores with the server at equal priority
NICENESS = (19, 0)


@dataclass
class Server:
    """One running server as the load sees it."""

    name: str  # "Feast" or "ours"
    shape: str  # the JSON shape of its answers: "feast" or "ours"
    url: str
    headers: list[str]
    bodies: dict[int, Path]  # batch size -> file of request bodies
    process: subprocess.Popen[bytes] | None = None

    def cpu(self) -> dict[int, float]:
        """CPU seconds of each process of its tree (the server and its workers)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        seconds = {}
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
        return seconds


@dataclass
class Bench:
    """What every case needs."""

    options: argparse.Namespace
    folder: Path
    features: list[str]
    entities: dict[int, list[list[int]]]  # batch size -> the entity lists of its bodies
    expected: chk.Expected
    redis_pid: int
    ours_config: str
    ours_url: str
    generations: list[wl.Source] = field(default_factory=list)
    runs: int = 0


@dataclass(frozen=True)
class Case:
    batch: int
    mode: str  # "closed" or "open"
    clients: int
    rate: float = 0.0

    @property
    def label(self) -> str:
        what = f"{self.clients} clients" if self.mode == "closed" else f"{self.rate:,.0f} req/s"
        return f"{self.batch} entit{'y' if self.batch == 1 else 'ies'}, {self.mode} {what}"


# ---- set-up --------------------------------------------------------------------------------------


def generate(folder: Path, entities: int, features: int, generations: int) -> list[wl.Source]:
    """Generation 0: 2 rows per entity over 10 days; generation k >= 1: one newer row per
    entity on day 10 + k - 1 (what a backfill brings). Values name their rows."""
    sources, first = [], 0
    for k in range(generations):
        rows = 2 * entities if k == 0 else entities
        start = wl.START if k == 0 else wl.START + (DAYS + k - 1) * DAY
        source = wl.generate(
            str(folder / "source" / f"part-{k}.parquet"),
            rows=rows,
            entities=entities,
            features=features,
            seconds=DAYS * DAY if k == 0 else DAY,
            seed=k,
            start=start,
            first_row=first,
        )
        sources.append(source)
        first += rows
    return sources


def values(source: wl.Source) -> np.ndarray:
    """Each entity's latest row as a row of the array (entity e at index e)."""
    return np.column_stack([source.latest.column(name).to_numpy() for name in source.features])


def materialize(
    options: argparse.Namespace, folder: Path, sources: list[wl.Source], base_url: str
) -> vs_feast.Setup:
    """Feast and ours both hold generation 0's latest rows (materialized, then checked); our
    feature store then requires an API key."""
    first = sources[0]
    feast_python = vs_feast.ensure_feast(options.feast_venv, folder / "feast-install.log")
    repo = write_repo(
        str(folder / "feast_repo"), first.path, base_url.split("//", 1)[1], options.feast_db, first.features
    )
    vs_feast.feast_apply(feast_python, repo, options.timeout)
    # ours reads the folder: the later generations are there for the backfills
    config = wl.write_feature_store(
        str(folder / "ours"),
        replace(first, path=str(folder / "source")),
        f"{base_url}/{options.ours_db}",
        {FEATURE_SET: None},
    )
    setup = vs_feast.Setup(options, str(folder), first, base_url, feast_python, repo, config)
    feast_client = redis.Redis.from_url(setup.feast_url)
    ours_client = redis.Redis.from_url(setup.ours_url)
    pid = wl.redis_pid(feast_client)
    for side, func, client in (
        ("Feast", vs_feast.feast_round, feast_client),
        ("ours", vs_feast.ours_round, ours_client),
    ):
        run = func(setup, 1, client, pid)
        print(f"{side} materialized: call {run.call:.1f} s, process {run.wall:.1f} s", flush=True)
    vs_feast.verify(setup, ours_client)
    feast_client.close()
    ours_client.close()
    with open(config, "a", encoding="utf-8") as handle:
        handle.write(f'feature_server:\n  api_keys: ["${{{KEY_ENV}}}"]\n')
    return setup


def write_bodies(
    folder: Path, features: list[str], entities: dict[int, list[list[int]]]
) -> tuple[dict[int, Path], dict[int, Path]]:
    """Request bodies, one a line, for ours and for Feast: the same entity lists."""
    refs = [f"{FEATURE_SET}:{name}" for name in features]
    ours, feast = {}, {}
    for batch, lists in entities.items():
        ours[batch], feast[batch] = folder / f"ours-{batch}.jsonl", folder / f"feast-{batch}.jsonl"
        with open(ours[batch], "w") as mine, open(feast[batch], "w") as theirs:
            for chosen in lists:
                rows = [{wl.ENTITY: e} for e in chosen]
                mine.write(json.dumps({"features": refs, "entities": rows}, separators=(",", ":")) + "\n")
                theirs.write(
                    json.dumps({"features": refs, "entities": {wl.ENTITY: chosen}}, separators=(",", ":"))
                    + "\n"
                )
    return ours, feast


def pick_entities(entities: int, bodies: int, seed: int) -> dict[int, list[list[int]]]:
    """`bodies` random entities one at a time, and `bodies / 10` lists of 100 distinct ones."""
    rng = np.random.default_rng(seed)
    count = {1: bodies, 100: max(1, bodies // 10)}
    return {
        batch: [
            [int(e) for e in rng.choice(entities, size=batch, replace=False)] for _ in range(count[batch])
        ]
        for batch in BATCHES
    }


# ---- the servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running(
    command: list[str], *, env: dict[str, str], cwd: str, log: Path, health: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group until the block ends (SIGTERM to the group, SIGKILL
    after 20 s); yields once GET `health` answers 200 (within 120 s)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            wl.expect(
                process.poll() is None, f"{command[0]} exited: {log.read_text(errors='replace')[-2000:]}"
            )
            try:
                with urllib.request.urlopen(health, timeout=5) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                wl.expect(
                    time.monotonic() < deadline,
                    f"{health} did not answer: {log.read_text(errors='replace')[-2000:]}",
                )
                time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def servers(setup: vs_feast.Setup, bench: Bench, workers: int) -> Iterator[list[Server]]:
    """`feast serve` and `featurestore serve`, `workers` worker processes each, side by side."""
    ours_bodies, feast_bodies = write_bodies(bench.folder, bench.features, bench.entities)
    feast_port, ours_port = wl.free_port(), wl.free_port()
    feast_command = [
        str(setup.feast_python.with_name("feast")),
        "-c",
        setup.feast_repo,
        "serve",
        "-p",
        str(feast_port),
    ]
    feast_command += ["-w", str(workers), "--no-access-log", "--max-requests", "0"]
    ours_command = [featurestore_script(), "serve", "--config", setup.ours_config, "--port", str(ours_port)]
    ours_command += ["--workers", str(workers)]
    feast = Server("Feast", "feast", f"http://127.0.0.1:{feast_port}", [], feast_bodies)
    ours = Server(
        "ours", "ours", f"http://127.0.0.1:{ours_port}", [f"X-API-Key: {os.environ[KEY_ENV]}"], ours_bodies
    )
    with contextlib.ExitStack() as stack:
        began = time.perf_counter()
        feast.process = stack.enter_context(
            running(feast_command, env={**os.environ, "FEAST_USAGE": "False"}, cwd=setup.feast_repo,
                    log=bench.folder / f"feast-serve-{workers}.log", health=f"{feast.url}/health")
        )  # fmt: skip
        ours.process = stack.enter_context(
            running(ours_command, env=wl.child_env(), cwd=str(bench.folder),
                    log=bench.folder / f"ours-serve-{workers}.log", health=f"{ours.url}/health")
        )  # fmt: skip
        print(
            f"servers up ({workers} worker(s) each) in {time.perf_counter() - began:.1f} s: Feast {feast.url}, ours {ours.url}",
            flush=True,
        )
        refused = post_status(
            f"{ours.url}/get-online-features", ours.bodies[1].read_bytes().splitlines()[0], []
        )
        wl.expect(refused == 401, f"ours answered {refused} to a request without its API key, not 401")
        yield [feast, ours]


def featurestore_script() -> str:
    script = Path(sys.executable).with_name("featurestore")
    wl.expect(script.exists(), f"no featurestore script beside {sys.executable}: pip install -e . first")
    return str(script)


def post_status(url: str, body: bytes, headers: Sequence[str]) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    for header in headers:
        name, _, value = header.partition(":")
        request.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# ---- one case ------------------------------------------------------------------------------------


def judge(
    bench: Bench, server: Server, batch: int, load: ld.Load, expected: chk.Expected
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Each distinct answer checked: (right?, problem, entities from newer rows) by answer id."""
    good = np.zeros(len(load.answers), dtype=bool)
    kinds, newer = [], np.zeros(len(load.answers), dtype=np.int64)
    for index, (body, text) in enumerate(load.answers):
        verdict = chk.check_answer(
            expected, server.shape, text, bench.entities[batch][body], wl.ENTITY, bench.features
        )
        good[index], newer[index] = verdict.ok, verdict.newer
        kinds.append(verdict.kind)
        if not verdict.ok and bench.options.verbose:
            print(f"  {server.name}: {verdict.kind}: {verdict.detail}", flush=True)
    return good, kinds, newer


def measure(bench: Bench, server: Server, case: Case, duration: float) -> ld.Figures:
    """One load against one server, every answer checked; its figures with the server's and
    Redis' CPU over the run."""
    bench.runs += 1
    cpu_before, redis_before = server.cpu(), wl.process_cpu(bench.redis_pid)
    load = ld.run(
        f"{server.url}/get-online-features", server.bodies[case.batch], server.headers,
        mode=case.mode, clients=case.clients if case.mode == "closed" else OPEN_CONNECTIONS,
        rate=case.rate, duration=duration, out=bench.folder / f"load-{bench.runs}", offset=bench.runs * 7,
    )  # fmt: skip
    cpu_after, redis_after = server.cpu(), wl.process_cpu(bench.redis_pid)
    good, kinds, _newer = judge(bench, server, case.batch, load, bench.expected)
    figures = ld.figures(load, good, kinds)
    figures.server_cpu = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
    figures.redis_cpu = redis_after - redis_before
    figures.extra["send_lag_ms"] = float(load.summary["max_send_lag_s"]) * 1e3
    return figures


def sustained(case: Case, figures: ld.Figures) -> bool:
    return (
        figures.error_count == 0 and figures.throughput >= SUSTAINED * case.rate and figures.p99 <= MAX_P99_MS
    )


# ---- the comparison ------------------------------------------------------------------------------

Results = list[tuple[Case, dict[str, ld.Figures]]]


def compare(bench: Bench, pair: list[Server], open_loop: bool) -> Results:
    """The closed-loop cases, then (with `open_loop`) the open-loop ladder, per batch size."""
    duration, results = bench.options.duration, []
    for batch in BATCHES:
        for server in pair:  # warm-up, checked but in no figure
            warm = measure(bench, server, Case(batch, "closed", 8), min(2.0, duration))
            wl.expect(warm.error_count == 0, f"{server.name} warm-up, {batch} entities: errors {warm.errors}")
        for clients in CLIENTS:
            case = Case(batch, "closed", clients)
            results.append((case, {server.name: measure(bench, server, case, duration) for server in pair}))
            progress(results[-1])
        if open_loop:
            results += ladder(bench, pair, batch, results)
    return results


def ladder(bench: Bench, pair: list[Server], batch: int, results: Results) -> Results:
    """Open-loop rates from Feast's best closed-loop throughput; each server stops after the
    first rate it does not sustain."""
    base = max(f["Feast"].throughput for c, f in results if c.batch == batch and c.mode == "closed")
    going = {server.name for server in pair}
    out: Results = []
    for multiple in bench.options.multipliers:
        case = Case(batch, "open", OPEN_CONNECTIONS, float(max(1, round(base * multiple))))
        found = {}
        for server in pair:
            if server.name in going:
                found[server.name] = measure(bench, server, case, bench.options.duration)
                if not sustained(case, found[server.name]):
                    going.discard(server.name)
        if not found:
            break
        out.append((case, found))
        progress(out[-1])
    return out


def progress(result: tuple[Case, dict[str, ld.Figures]]) -> None:
    case, found = result
    text = "; ".join(
        f"{name} {f.throughput:,.0f} req/s p50 {f.p50:.2f} p99 {f.p99:.2f} ms errors {f.error_count} "
        f"CPU {f.server_cpu / f.seconds:.2f}"
        for name, f in found.items()
    )
    print(f"  {case.label}: {text}; load {wl.load_average()}", flush=True)


# ---- under a backfill ----------------------------------------------------------------------------


@dataclass
class BackfillRun:
    batch: int
    rate: float
    nice: int  # the backfill's niceness
    quiet: ld.Figures
    during: ld.Figures  # the requests due while the backfill ran
    whole: ld.Figures
    backfill_s: float


def under_backfill(
    bench: Bench, ours: Server, case: Case, quiet: ld.Figures, k: int, nice: int
) -> BackfillRun:
    """Ours under the load of `case` while `featurestore backfill` (at `nice`) writes generation
    k, every entity's newer row; every answer must be the previous row or the new one, whole.
    The load starts a second before the backfill and stops a second after it."""
    newer, out = bench.generations[k], bench.folder / f"backfill-{k}"
    expected = chk.Expected(values(bench.generations[k - 1]), values(newer))
    window = [datetime.fromtimestamp(t, UTC).isoformat() for t in (newer.start, newer.end)]
    command = ["nice", "-n", str(nice), featurestore_script(), "backfill", FEATURE_SET]
    command += ["--config", bench.ours_config, "--start", window[0], "--end", window[1], "--store", "online"]
    process = ld.start(
        f"{ours.url}/get-online-features", ours.bodies[case.batch], ours.headers,
        mode="open", clients=OPEN_CONNECTIONS, rate=case.rate, duration=bench.options.timeout, out=out,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        began = time.time_ns()
        done = subprocess.run(
            command, env=wl.child_env(), capture_output=True, text=True, timeout=bench.options.timeout
        )
        ended = time.time_ns()
        time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGINT)
    load = ld.finish(process, out)
    wl.expect(
        done.returncode == 0, f"featurestore backfill failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    )
    good, kinds, count = judge(bench, ours, case.batch, load, expected)
    during = ld.figures(
        load, good, kinds, ((began - load.start_ns) / 1e9, (ended - load.start_ns) / 1e9), count
    )
    whole = ld.figures(load, good, kinds, None, count)
    client = redis.Redis.from_url(bench.ours_url)
    sample = wl.sample_entities(newer.entities, bench.options.sample, bench.options.seed + k)
    wl.check_online_sample(client, f"{wl.PROJECT}:{FEATURE_SET}:v1:", newer, sample, "after the backfill")
    client.close()
    bench.expected = chk.Expected(values(newer))
    return BackfillRun(case.batch, case.rate, nice, quiet, during, whole, (ended - began) / 1e9)


# ---- report --------------------------------------------------------------------------------------


def cells(f: ld.Figures) -> list[str]:
    errors = ", ".join(f"{n} {k}" for k, n in f.errors.items()) or "0"
    per_request = f.server_cpu / f.ok * 1e3 if f.ok else float("nan")
    return [
        f"{f.throughput:,.0f}",
        f"{f.p50:.2f}",
        f"{f.p99:.2f}",
        f"{f.p999:.2f}",
        errors,
        f"{f.server_cpu / f.seconds:.2f}",
        f"{per_request:.2f}",
        f"{f.generator_cpu / f.seconds:.2f}",
    ]


def table(results: Results) -> list[list[str]]:
    """Feast's row then ours, per case, ours with its ratios (req/s ours/Feast, p99 ours/Feast)."""
    lines = [
        ["case", "server", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "server CPU", "CPU ms/req",
         "gen CPU", "req/s ours/Feast", "p99 ours/Feast"],
    ]  # fmt: skip
    for case, found in results:
        for name, f in found.items():
            label = case.label + ("" if case.mode == "closed" or sustained(case, f) else " (not sustained)")
            ratios = ["", ""]
            if name == "ours" and "Feast" in found:
                theirs = found["Feast"]
                ratios = [wl.ratio(f.throughput, theirs.throughput), wl.ratio(f.p99, theirs.p99)]
            lines.append([label, "Feast 0.67" if name == "Feast" else "ours (API key)", *cells(f), *ratios])
    return lines


def goals(results: Results) -> list[list[str]]:
    """Per batch: the closed-loop ratios at equal concurrency, and the open-loop reading of the
    goal: the highest rate ours sustains at a p99 no higher than Feast's at its highest rate."""
    lines = [["goal: >= 3x Feast's throughput at an equal or lower p99", "Feast", "ours", "ratio", "met"]]
    for case, found in results:
        if case.mode == "closed" and len(found) == 2:
            theirs, mine = found["Feast"], found["ours"]
            met = mine.throughput >= 3 * theirs.throughput and mine.p99 <= theirs.p99
            lines.append([f"{case.label}: req/s (p99 ms)", f"{theirs.throughput:,.0f} ({theirs.p99:.1f})",
                          f"{mine.throughput:,.0f} ({mine.p99:.1f})", wl.ratio(mine.throughput, theirs.throughput),
                          "yes" if met else "NO"])  # fmt: skip
    for batch in BATCHES:
        feast = [
            (c, f["Feast"]) for c, f in results if c.batch == batch and c.mode == "open" and "Feast" in f
        ]
        best = [(c, f) for c, f in feast if sustained(c, f)]
        if not best:
            continue
        top, theirs = max(best, key=lambda item: item[0].rate)
        mine = [c for c, f in results if c.batch == batch and c.mode == "open" and "ours" in f
                and sustained(c, f["ours"]) and f["ours"].p99 <= theirs.p99]  # fmt: skip
        rate = max((c.rate for c in mine), default=0.0)
        lines.append([f"{batch} entit{'y' if batch == 1 else 'ies'}, open loop: highest rate at p99 <= Feast's",
                      f"{top.rate:,.0f} ({theirs.p99:.1f} ms)", f"{rate:,.0f}", wl.ratio(rate, top.rate),
                      "yes" if rate >= 3 * top.rate else "NO"])  # fmt: skip
    return lines


def backfill_table(runs: Sequence[BackfillRun]) -> list[list[str]]:
    """Quiet p99 beside the p99 of the requests due while the backfill ran; errors (a
    half-written entity among them) and newer answers over the whole load."""
    lines = [["ours under a backfill", "rate", "quiet p99 ms", "backfill p99 ms", "ratio", "<= 2x",
              "backfill p50 ms", "max ms", "errors", "half-written", "newer answers", "backfill s"]]  # fmt: skip
    for run in runs:
        during = run.during
        lines.append([
            f"{run.batch} entit{'y' if run.batch == 1 else 'ies'}, backfill at nice {run.nice}",
            f"{run.rate:,.0f}", f"{run.quiet.p99:.2f}", f"{during.p99:.2f}", wl.ratio(during.p99, run.quiet.p99),
            "yes" if during.p99 <= 2 * run.quiet.p99 else "NO", f"{during.p50:.2f}", f"{during.max_ms:.1f}",
            str(run.whole.error_count), str(run.whole.errors.get(chk.MIXED, 0)), f"{run.whole.newer:,}",
            f"{run.backfill_s:.1f}",
        ])  # fmt: skip
    return lines


def generator_note(by_workers: dict[int, Results]) -> str:
    """How close the load generator came to its own limit."""
    found = [f for results in by_workers.values() for _, pair in results for f in pair.values()]
    lag = max((f.extra.get("send_lag_ms", 0.0) for f in found), default=0.0)
    cores = max((f.generator_cpu / f.seconds for f in found), default=0.0)
    per = max((f.generator_cpu / f.requests * 1e6 for f in found if f.requests), default=0.0)
    return (
        f"load generator: at most {cores:.2f} cores ({per:.0f} us of CPU per request at most); its open-loop "
        f"sends were at most {lag:.1f} ms behind their intended times (latency counts from those)"
    )


def report(bench: Bench, by_workers: dict[int, Results], runs: Sequence[BackfillRun], began: float) -> None:
    options = bench.options
    heading = (
        f"featurestore serve (API key) vs feast serve {vs_feast.FEAST_VERSION} (no auth): "
        f"{len(bench.generations[0].latest):,} entities x {len(bench.features)} float features, "
        f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {options.duration:g} s per case"
    )
    print(f"\n{heading}")
    print("server CPU / gen CPU: cores used by the server's process tree / the load generator over the case")
    for workers, results in by_workers.items():
        print(f"\n{workers} worker process(es) each")
        print(aligned(table(results), 2))
    print(generator_note(by_workers))
    print()
    print(aligned(goals(by_workers[options.workers[0]]), 1))
    if runs:
        print()
        print(aligned(backfill_table(runs), 1))
    print(f"\nwhole run {time.perf_counter() - began:.0f} s; load average {wl.load_average()}")
    print(f"\n### {heading}\n")
    for workers, results in by_workers.items():
        print(f"{workers} worker process(es) each:\n\n{wl.markdown(table(results), 2)}\n")
    print(wl.markdown(goals(by_workers[options.workers[0]]), 1))
    if runs:
        print(f"\n{wl.markdown(backfill_table(runs), 1)}")


# ---- main ----------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 10,000 entities, 3 s per case, fewer rates"
    )
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument(
        "--workers",
        default="1,2",
        help="worker processes per server: the first gets every case, the rest the closed loop",
    )
    parser.add_argument(
        "--backfill-load",
        type=float,
        default=0.25,
        help="the rate under a backfill, as a share of ours' 8-client throughput",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per case")
    parser.add_argument(
        "--bodies", type=int, default=2000, help="request bodies of 1 entity (a tenth as many of 100)"
    )
    parser.add_argument("--no-backfill", action="store_true", help="skip the part under a backfill")
    parser.add_argument("--redis-url", help="an existing Redis server (default: a throwaway redis-server)")
    parser.add_argument("--feast-db", type=int, default=1, help="Feast's Redis database (FLUSHDB'd)")
    parser.add_argument("--ours-db", type=int, default=2, help="our Redis database (FLUSHDB'd)")
    parser.add_argument("--feast-venv", type=Path, default=vs_feast.DEFAULT_VENV)
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a child process is killed")
    parser.add_argument("--sample", type=int, default=200, help="entities checked after each materialization")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print every wrong answer")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (printed)")
    options = parser.parse_args()
    try:
        options.workers = [int(w) for w in options.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: expected numbers such as 1,2, got {options.workers!r}")
    if min(options.workers) < 1 or options.feast_db == options.ours_db:
        parser.error("--workers must be >= 1, and --feast-db and --ours-db must differ")
    options.multipliers = MULTIPLIERS
    if options.quick:
        options.entities, options.duration, options.bodies, options.multipliers = (
            10_000,
            3.0,
            500,
            (0.5, 1.5, 3.0),
        )
    options.rows = 2 * options.entities
    return options


def main() -> int:
    options = arguments()
    wl.use_this_checkout()
    os.environ[KEY_ENV] = secrets.token_urlsafe(24)  # our server's one key, for this run only
    began = time.perf_counter()
    ld.ensure_loadgen()
    folder = Path(tempfile.mkdtemp(prefix="fs_bench_serve_"))
    print(
        f"serve_vs_feast: working folder {folder}; {os.cpu_count()} cores; load average {wl.load_average()}",
        flush=True,
    )
    backfills = 0 if options.no_backfill else len(NICENESS) * (1 if options.quick else len(BATCHES))
    try:
        sources = generate(folder, options.entities, 10, 1 + backfills)
        with wl.redis_server(options.redis_url) as base_url:
            try:
                return run(options, folder, sources, base_url, began)
            finally:
                for db in (options.feast_db, options.ours_db):
                    client = redis.Redis.from_url(f"{base_url}/{db}")
                    client.flushdb()
                    client.close()
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run(
    options: argparse.Namespace, folder: Path, sources: list[wl.Source], base_url: str, began: float
) -> int:
    setup = materialize(options, folder, sources, base_url)
    client = redis.Redis.from_url(setup.ours_url)
    bench = Bench(
        options, folder, sources[0].features, pick_entities(options.entities, options.bodies, options.seed + 5),
        chk.Expected(values(sources[0])), wl.redis_pid(client), setup.ours_config, setup.ours_url, sources,
    )  # fmt: skip
    client.close()
    by_workers: dict[int, Results] = {}
    runs: list[BackfillRun] = []
    for workers in reversed(options.workers):  # the first last: the backfills change our data
        main_run = workers == options.workers[0]
        with servers(setup, bench, workers) as pair:
            by_workers[workers] = compare(bench, pair, open_loop=main_run)
            if main_run:
                runs = backfill_part(bench, pair[1], by_workers[workers])
    by_workers = {w: by_workers[w] for w in options.workers}
    report(bench, by_workers, runs, began)
    return 0


def backfill_part(bench: Bench, ours: Server, results: Results) -> list[BackfillRun]:
    """Per batch size (while newer generations last): a quiet open loop at `--backfill-load`
    of ours' 8-client throughput, then the same load under a backfill at each of NICENESS."""
    runs: list[BackfillRun] = []
    k = 1
    for batch in BATCHES:
        if k + len(NICENESS) > len(bench.generations):
            break
        best = next(
            f["ours"].throughput
            for c, f in results
            if c.batch == batch and c.mode == "closed" and c.clients == 8
        )
        case = Case(batch, "open", OPEN_CONNECTIONS, float(max(1, round(best * bench.options.backfill_load))))
        quiet = measure(bench, ours, case, bench.options.duration)
        for nice in NICENESS:
            runs.append(under_backfill(bench, ours, case, quiet, k, nice))
            k += 1
            run = runs[-1]
            print(
                f"  {case.label}, backfill at nice {nice}: quiet p99 {quiet.p99:.2f} ms, during {run.during.p99:.2f} "
                f"ms, max {run.during.max_ms:.1f} ms, errors {run.whole.errors}, newer answers {run.whole.newer:,}, "
                f"backfill {run.backfill_s:.1f} s",
                flush=True,
            )
    return runs


if __name__ == "__main__":
    sys.exit(main())
