"""Benchmark: serving lookups from the online store, in process and over HTTP.

Why: `FeatureStore.get_online_features` is what a model calls per prediction, so its latency
must stay close to what Redis and redis-py cost anyway (goal: p50 and p99 within 1.5x of a
bare redis-py HMGET pipeline of the same keys and fields), and well under Feast's (goal: at
least 3x faster at 100 entities).

Set-up (not timed): a copy of `examples/fraud` in a temporary folder with a project name of
its own and one more feature set, `profile` (index `accountID`, 10 double features `f0`..`f9`,
online only, no TTL); `--entities` entities' rows written through `OnlineStore.write`. Its keys
are purged at the end (the Redis database is not flushed).

What is timed:

* in process, for 1 entity and for 100 entities (random ones, fresh each call) x 10 features:
  - ours: `FeatureStore.get_online_features(["profile:f0", ..., "profile:f9"], rows)`;
  - bare: a redis-py pipeline (`transaction=False`) of one `HMGET key _event_time f0 .. f9` per
    entity, keys built with an f-string, every value decoded to a Python float;
  the two alternate call by call (so both see the same machine load); p50/p95/p99 of each, the
  ratios ours/bare, and beside them Feast 0.67's figures for this machine class with our
  speed-up over them;
* over HTTP: `featurestore serve` in a subprocess, driven on loopback by `wrk` (installed from
  Debian's packages when missing and we are root) or else by a Python asyncio load generator
  in another process: requests/s and latency percentiles for 1 and for 100 entities per
  request at `--connections` connections, each response checked first.

Run: `python benchmarks/online.py [--entities 10000] [--iterations-1 2000] [--iterations-100 500]
[--redis-url redis://127.0.0.1:6379/13] [--connections 16] [--duration 10] [--workers 1]
[--load-generator auto|wrk|python] [--no-http] [--profile]`.

`--profile` prints where one call's time goes (its parts timed one by one) and a cProfile top;
the breakdown is printed anyway for a case that misses the 1.5x goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import multiprocessing
import os
import pstats
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import redis
from common import aligned

from airflow_provider_featurestore import online as online_module
from airflow_provider_featurestore.featurestore import FeatureStore
from airflow_provider_featurestore.online import EVENT_TIME_FIELD, _hmget_many
from airflow_provider_featurestore.retrieval import resolve

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud"
FEATURE_SET = "profile"
FEATURES = 10
# Feast 0.67's Python SDK `get_online_features` on this machine class (Redis online store,
# 10 features): p50 / p99 in ms, given for comparison (not measured here).
FEAST_MS = {1: (0.55, 0.84), 100: (7.0, 12.8)}
GOAL_RATIO = 1.5  # ours within 1.5x of bare
GOAL_FEAST_100 = 3.0  # at least 3x faster than Feast at 100 entities
PERCENTILES = (50, 95, 99)


# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------


def default_redis_url() -> str:
    """The tests' Redis (FEATURESTORE_TEST_REDIS_URL, as scripts/services.sh sets it), database 13."""
    base = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/13", "", ""))


def build_store(root: Path, redis_url: str) -> str:
    """A copy of the fraud example plus the `profile` feature set; returns its config path."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text()
    text = re.sub(r"(?m)^project: fraud\b", f"project: bench_{uuid.uuid4().hex[:8]}", text)
    text = re.sub(r"(?m)^  redis_url: .*$", f"  redis_url: {redis_url}", text)
    config.write_text(text)
    features = "".join(f"  - {{name: f{j}, type: double}}\n" for j in range(FEATURES))
    (root / "featuresets" / f"{FEATURE_SET}.yaml").write_text(
        f"# {FEATURES} double features per account, for benchmarks/online.py; online only, no TTL.\n"
        f"name: {FEATURE_SET}\nversion: 1\n"
        "index_columns:\n  - {name: accountID, type: string}\n"
        "timestamp_column: timestamp\n"
        f"source: {{format: parquet, path: data/source/{FEATURE_SET}}}\n"
        f"features:\n{features}"
        "materialization:\n  offline: false\n  online: true\n"
    )
    return str(config)


def entity_ids(entities: int) -> list[str]:
    return [f"A{i:07d}" for i in range(entities)]


def fill(store: FeatureStore, ids: list[str]) -> None:
    """Every entity's row (event time an hour ago) written through OnlineStore.write."""
    rng = np.random.default_rng(0)
    n = len(ids)
    event_us = (int(time.time()) - 3600) * 1_000_000
    columns: dict[str, Any] = {
        "accountID": ids,
        "timestamp": pa.array(np.full(n, event_us), pa.timestamp("us", tz="UTC")),
    }
    for j in range(FEATURES):
        columns[f"f{j}"] = np.round(rng.normal(100.0, 50.0, n), 3)
    with store.online_store() as online:
        stats = online.write(store.online_layout(store.spec(FEATURE_SET)), pa.table(columns))
    check(stats.written == n, f"wrote {stats.written} of {n} entities")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"benchmark invariant broken: {message}")


# ---------------------------------------------------------------------------------------
# In process: ours against bare redis-py
# ---------------------------------------------------------------------------------------


class Bare:
    """The baseline: one redis-py pipeline of HMGETs of the same keys and fields, floats out."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.fields = [EVENT_TIME_FIELD, *(f"f{j}" for j in range(FEATURES))]

    def __call__(self, rows: Sequence[dict[str, str]]) -> list[list[float | None]]:
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            pipe.hmget(f"{self.prefix}{row['accountID']}", self.fields)
        return [[None if v is None else float(v) for v in reply[1:]] for reply in pipe.execute()]


def percentiles_ms(seconds: list[float]) -> list[float]:
    return [float(v) * 1e3 for v in np.percentile(np.asarray(seconds), PERCENTILES)]


def in_process(
    store: FeatureStore, bare: Bare, ids: list[str], batch: int, iterations: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    """Latencies (ms p50/p95/p99) of ours and bare, alternating call by call on the same rows."""
    refs = [f"{FEATURE_SET}:f{j}" for j in range(FEATURES)]
    ours_s: list[float] = []
    bare_s: list[float] = []
    warm_up = min(200, iterations // 5)
    clock = time.perf_counter
    for i in range(warm_up + iterations):
        rows = [{"accountID": key} for key in rng.sample(ids, batch)]
        started = clock()
        got = store.get_online_features(refs, rows)
        middle = clock()
        expected = bare(rows)
        ended = clock()
        if i < warm_up:
            check(
                [[row[f"f{j}"] for j in range(FEATURES)] for row in got] == expected,
                "get_online_features and the bare pipeline disagree",
            )
            continue
        ours_s.append(middle - started)
        bare_s.append(ended - middle)
    return percentiles_ms(ours_s), percentiles_ms(bare_s)


def breakdown(store: FeatureStore, bare: Bare, ids: list[str], batch: int) -> list[tuple[str, float]]:
    """Where one call's time goes (us, best of 3 x many calls): the whole call, the same call
    with the Redis round trip replaced by its recorded replies (Python work only), the parts
    of that timed one by one through the package's internals, and the round trip alone."""
    refs = [f"{FEATURE_SET}:f{j}" for j in range(FEATURES)]
    rows = [{"accountID": key} for key in ids[:batch]]
    online = store._online()
    layout = store._online_layout(store.spec(FEATURE_SET))
    client = online._connect()
    commands = [(key, bare.fields) for key in online._keys(layout, rows)]
    replies = _hmget_many(client, commands)
    number = max(20, 20_000 // batch)

    def us(func: Callable[[], object]) -> float:
        func()
        return min(timeit.repeat(func, number=number, repeat=3)) / number * 1e6

    whole = us(lambda: store.get_online_features(refs, rows))
    online_module._hmget_many = lambda _client, _commands: replies
    try:
        python = us(lambda: store.get_online_features(refs, rows))
    finally:
        online_module._hmget_many = _hmget_many
    resolving = us(lambda: resolve(store.config, refs))
    keys = us(lambda: online._keys(layout, rows))
    return [
        ("get_online_features, whole call", whole),
        ("  its Python work (Redis replies canned)", python),
        ("    resolve the 10 refs (retrieval.resolve)", resolving),
        ("    build the keys (OnlineStore._keys, Arrow)", keys),
        ("    the rest: checks, decoding, result dicts", python - resolving - keys),
        ("  HMGET round trip alone (_hmget_many)", us(lambda: _hmget_many(client, commands))),
        ("bare: redis-py pipeline + float decoding", us(lambda: bare(rows))),
    ]


# ---------------------------------------------------------------------------------------
# Over HTTP
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server(config: str, workers: int, log: Path) -> Iterator[str]:
    """`featurestore serve` in a subprocess until the block ends; yields its base URL."""
    port = free_port()
    arguments = ["serve", "--config", config, "--port", str(port), "--workers", str(workers)]
    script = Path(sys.executable).with_name("featurestore")
    if script.exists():
        command = [str(script), *arguments]
    else:
        command = [sys.executable, "-m", "airflow_provider_featurestore.cli", *arguments]
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            check(process.poll() is None, f"featurestore serve exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as response:
                    check(response.status == 200, "GET /health is not 200")
                    break
            except OSError:
                check(time.monotonic() < deadline, f"featurestore serve did not start: {log.read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/get-online-features", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def bodies(ids: list[str], batch: int, count: int, rng: random.Random) -> list[bytes]:
    """`count` request bodies of `batch` random entities each (the load cycles through them)."""
    refs = [f"{FEATURE_SET}:f{j}" for j in range(FEATURES)]
    return [
        json.dumps(
            {"features": refs, "entities": [{"accountID": key} for key in rng.sample(ids, batch)]},
            separators=(",", ":"),
        ).encode()
        for _ in range(count)
    ]


WRK_SCRIPT = """
local bodies = {%s}
local requests, n, i = {}, 0, 0
init = function(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format("POST", "/get-online-features", {["Content-Type"] = "application/json"}, body)
  end
  n = #requests
  i = math.random(n) - 1
end
request = function()
  i = i %% n + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%.1f %%.1f %%.1f %%.1f\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def wrk_available(allow_install: bool) -> bool:
    if shutil.which("wrk"):
        return True
    if not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("wrk not found: installing it from Debian's packages", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, env=env)
    return shutil.which("wrk") is not None


def run_wrk(url: str, loads: list[bytes], connections: int, seconds: float, folder: Path) -> dict[str, float]:
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT % ",\n".join(f"[==[{body.decode()}]==]" for body in loads))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    result = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    requests, duration_us, failed, status, p50, p95, p99, worst = (float(v) for v in line.split()[1:])
    return {
        "requests": requests,
        "rate": requests / (duration_us / 1e6),
        "failed": failed,
        "non_200": status,
        "p50": p50 / 1e3,
        "p95": p95 / 1e3,
        "p99": p99 / 1e3,
        "max": worst / 1e3,
    }


def run_python_load(
    url: str, loads: list[bytes], connections: int, seconds: float, _folder: Path
) -> dict[str, float]:
    """The same load from an asyncio client (raw HTTP/1.1 keep-alive) in another process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    parts = urlsplit(url)
    worker = context.Process(
        target=_python_load_process, args=(parts.hostname, parts.port, loads, connections, seconds, queue)
    )
    worker.start()
    result = queue.get(timeout=seconds + 120)
    worker.join()
    return result


def _python_load_process(
    host: str, port: int, loads: list[bytes], connections: int, seconds: float, queue: Any
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    requests = [
        b"POST /get-online-features HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body)
        for body in loads
    ]
    latencies: list[float] = []
    counts = {"failed": 0, "non_200": 0}

    async def client(offset: int, deadline: float) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counts["failed"] += 1
            return
        i = offset
        clock = time.perf_counter
        try:
            while clock() < deadline:
                request = requests[i % len(requests)]
                i += 1
                started = clock()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(clock() - started)
                if head[9:12] != b"200":
                    counts["non_200"] += 1
        except (OSError, asyncio.IncompleteReadError):
            counts["failed"] += 1
        finally:
            writer.close()

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client(n * 7, deadline) for n in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    p50, p95, p99 = (v for v in percentiles_ms(latencies or [0.0]))
    queue.put(
        {
            "requests": float(len(latencies)),
            "rate": len(latencies) / elapsed,
            "failed": float(counts["failed"]),
            "non_200": float(counts["non_200"]),
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "max": max(latencies or [0.0]) * 1e3,
        }
    )


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def triple(values: Sequence[float]) -> str:
    return "/".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--iterations-1", type=int, default=2_000, help="calls of 1 entity")
    parser.add_argument("--iterations-100", type=int, default=500, help="calls of 100 entities")
    parser.add_argument("--redis-url", default=default_redis_url())
    parser.add_argument("--connections", type=int, default=16, help="HTTP load: concurrent connections")
    parser.add_argument("--duration", type=float, default=10.0, help="HTTP load: seconds per case")
    parser.add_argument("--workers", type=int, default=1, help="featurestore serve --workers")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument(
        "--profile", action="store_true", help="always print the breakdown and a cProfile top"
    )
    options = parser.parse_args()

    rng = random.Random(0)
    ids = entity_ids(options.entities)
    folder = Path(tempfile.mkdtemp(prefix="bench_online_"))
    config = build_store(folder / "fraud", options.redis_url)
    store = FeatureStore(config, check_transformations=False)
    layout = store.online_layout(store.spec(FEATURE_SET))
    try:
        started = time.perf_counter()
        fill(store, ids)
        print(
            f"{options.entities:,} entities x {FEATURES} double features written in "
            f"{time.perf_counter() - started:.2f} s to {options.redis_url}; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
        )
        bare = Bare(options.redis_url, layout.prefix)
        cases = [(1, options.iterations_1), (100, options.iterations_100)]
        lines = [
            [
                "case (x10 features)",
                "calls",
                "ours p50/p95/p99 ms",
                "bare p50/p95/p99 ms",
                "ours/bare p50",
                "p99",
                "Feast p50/p99 ms",
                "vs Feast p50",
                "p99",
            ]
        ]
        slow = []
        for batch, iterations in cases:
            ours_ms, bare_ms = in_process(store, bare, ids, batch, iterations, rng)
            feast = FEAST_MS[batch]
            ratio = (ours_ms[0] / bare_ms[0], ours_ms[2] / bare_ms[2])
            if max(ratio) > GOAL_RATIO:
                slow.append(batch)
            lines.append(
                [
                    f"{batch} entit{'y' if batch == 1 else 'ies'}",
                    f"{iterations:,}",
                    triple(ours_ms),
                    triple(bare_ms),
                    f"{ratio[0]:.2f}x",
                    f"{ratio[1]:.2f}x",
                    f"{feast[0]:.2f}/{feast[1]:.2f}",
                    f"{feast[0] / ours_ms[0]:.1f}x",
                    f"{feast[1] / ours_ms[2]:.1f}x",
                ]
            )
        print()
        print("get_online_features in process (ours) vs a bare redis-py HMGET pipeline (bare)")
        print(aligned(lines, 1))
        print(
            f"goals: ours/bare <= {GOAL_RATIO}x at p50 and p99; >= {GOAL_FEAST_100:g}x faster than Feast at 100 entities"
        )
        for batch in sorted(set(slow) | ({1, 100} if options.profile else set())):
            print()
            print(
                f"where the time of one call goes, {batch} entit{'y' if batch == 1 else 'ies'} (best of 3, us):"
            )
            for name, value in breakdown(store, bare, ids, batch):
                print(f"  {name:<50} {value:8.1f}")
        if options.profile:
            refs = [f"{FEATURE_SET}:f{j}" for j in range(FEATURES)]
            rows = [{"accountID": key} for key in ids[:1]]
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [store.get_online_features(refs, rows) for _ in range(3000)])
            print("\ncProfile of 3,000 calls of 1 entity x 10 features:")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

        if options.no_http:
            return
        use_wrk = options.load_generator != "python" and wrk_available(
            options.load_generator in ("auto", "wrk")
        )
        check(use_wrk or options.load_generator != "wrk", "wrk is not installed and cannot be installed")
        load = run_wrk if use_wrk else run_python_load
        generator = "wrk -t1" if use_wrk else "python asyncio"
        lines = [
            [
                "case (x10 features)",
                "load generator",
                "conns",
                "requests",
                "req/s",
                "entities/s",
                "p50/p95/p99 ms",
                "max ms",
                "errors",
            ]
        ]
        with server(config, options.workers, folder / "serve.log") as url:
            for batch in (1, 100):
                loads = bodies(ids, batch, 200, rng)
                document = json.loads(loads[0])
                expected = store.get_online_features(document["features"], document["entities"])
                check(
                    post(url, loads[0]) == {"results": expected},
                    "the server's answer differs from in process",
                )
                load(url, loads, options.connections, min(2.0, options.duration), folder)  # warm up
                figures = load(url, loads, options.connections, options.duration, folder)
                lines.append(
                    [
                        f"{batch} entit{'y' if batch == 1 else 'ies'}",
                        generator,
                        str(options.connections),
                        f"{figures['requests']:,.0f}",
                        f"{figures['rate']:,.0f}",
                        f"{figures['rate'] * batch:,.0f}",
                        triple([figures["p50"], figures["p95"], figures["p99"]]),
                        f"{figures['max']:.1f}",
                        f"{figures['failed'] + figures['non_200']:.0f}",
                    ]
                )
        print()
        print(
            f"featurestore serve --workers {options.workers} over HTTP on loopback, "
            f"{options.duration:g} s per case (server, load generator and Redis share the machine)"
        )
        print(aligned(lines, 2))
    finally:
        with store.online_store() as online:
            online.purge(layout)
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
