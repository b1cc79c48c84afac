"""Benchmark: serving lookups from the online store, in process and over HTTP.

Why: `FeatureStore.get_online_features` is what a model calls per prediction, so its latency
must stay close to what Redis and redis-py cost anyway (goal: p50 and p99 within 1.5x of a
bare redis-py HMGET pipeline of the same keys and fields), and well under Feast's (goal: at
least 3x faster at 100 entities). A `long` index column must cost what a string one does, in
lookups and in writes, and the first lookup of a process must not pay for imports (goal: within
5x of a warm one).

Set-up (not timed): a copy of `examples/fraud` in a temporary folder with a project name of
its own and two more feature sets, online only, no TTL, 10 double features `f0`..`f9` each:
`profile` (index `accountID`, a string: `A0000000`...) and `cards` (index `cardID`, a long:
10000000...; keys of the same length); `--entities` entities of each written through
`OnlineStore.write`. Their keys are purged at the end (the Redis database is not flushed).

What is timed:

* in process, for 1 entity and for 100 entities (random ones, fresh each call) x 10 features,
  with the string key and with the long key:
  - ours: `FeatureStore.get_online_features(["profile:f0", ..., "profile:f9"], rows)`;
  - bare: a redis-py pipeline (`transaction=False`) of one `HMGET key _event_time f0 .. f9` per
    entity, keys built with an f-string, every value decoded to a Python float;
  the two alternate call by call (so both see the same machine load); p50/p95/p99 of each, the
  ratios ours/bare, and beside them Feast 0.67's figures for this machine class with our
  speed-up over them;
* the keys alone: `entity_keys` (what a lookup builds) per call for 1 and 100 entities,
  string and long, best of 5, and the ratio long/string;
* the writer: `OnlineStore.write` of the `--entities` rows (equal event times: every key
  replaced) and `OnlineLayout.keys` of the index column alone, string and long alternating,
  best of `--write-repeats`, rows/s and the ratio long/string;
* the first lookup of a process: a fresh interpreter (`-c`, only the package imported) builds a
  `FeatureStore` and times its first `get_online_features` of 1 entity x 10 features, then the
  p50 of 300 more (warm), then the same for a bare redis-py client made in that process; once
  with the connection opened by the first lookup itself ("cold") and once after a PING
  ("connected", as `featurestore serve` is after its first `/health`); the median over
  `--first-repeats` processes of each figure, first/warm ratios, whether pandas was imported
  and which modules the first lookup imported.

Run: `python benchmarks/online.py [--entities 10000] [--iterations-1 2000] [--iterations-100 500]
[--redis-url redis://127.0.0.1:6379/13] [--connections 16] [--duration 10] [--workers 1]
[--load-generator auto|wrk|python] [--write-repeats 5] [--first-repeats 3] [--no-http]
[--profile]`.

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
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import redis
from common import aligned

import airflow_provider_featurestore
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online import EVENT_TIME_FIELD, RedisOnlineStore, resp
from airflow_provider_featurestore.core.online.layout import entity_keys

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud"
FEATURES = 10
# Feast 0.67's Python SDK `get_online_features` on this machine class (Redis online store,
# 10 features): p50 / p99 in ms, given for comparison (not measured here).
FEAST_MS = {1: (0.55, 0.84), 100: (7.0, 12.8)}
GOAL_RATIO = 1.5  # ours within 1.5x of bare
GOAL_FEAST_100 = 3.0  # at least 3x faster than Feast at 100 entities
GOAL_FIRST = 5.0  # the first lookup of a process within 5x of a warm one
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Kind:
    """One kind of index column: the feature set keyed by it and its entities' values."""

    name: str  # the index column's type
    feature_set: str
    index: str

    def ids(self, entities: int) -> list[Any]:
        """Entity values of equal text length: `A0000000`... or 10000000..."""
        if self.name == "string":
            return [f"A{i:07d}" for i in range(entities)]
        return [10_000_000 + i for i in range(entities)]

    def array(self, ids: list[Any]) -> pa.Array:
        if self.name == "string":
            return pa.array(ids, pa.string())
        return pa.array(np.asarray(ids, np.int64), pa.int64())

    @property
    def refs(self) -> list[str]:
        return [f"{self.feature_set}:f{j}" for j in range(FEATURES)]

    def rows(self, keys: Sequence[Any]) -> list[dict[str, Any]]:
        return [{self.index: key} for key in keys]


KINDS = (Kind("string", "profile", "accountID"), Kind("long", "cards", "cardID"))


# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------


def default_redis_url() -> str:
    """The tests' Redis (FEATURESTORE_TEST_REDIS_URL, as scripts/services.sh sets it), database 13."""
    base = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/13", "", ""))


def build_store(root: Path, redis_url: str) -> str:
    """A copy of the fraud example plus the `profile` and `cards` feature sets; returns its
    config path."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text()
    text = re.sub(r"(?m)^project: fraud\b", f"project: bench_{uuid.uuid4().hex[:8]}", text)
    text = re.sub(r"(?m)^  redis_url: .*$", f"  redis_url: {redis_url}", text)
    config.write_text(text)
    features = "".join(f"  - {{name: f{j}, type: double}}\n" for j in range(FEATURES))
    for kind in KINDS:
        (root / "featuresets" / f"{kind.feature_set}.yaml").write_text(
            f"# {FEATURES} double features per {kind.index} ({kind.name}), for benchmarks/online.py; "
            "online only, no TTL.\n"
            f"name: {kind.feature_set}\nversion: 1\n"
            f"index_columns:\n  - {{name: {kind.index}, type: {kind.name}}}\n"
            "timestamp_column: timestamp\n"
            f"source: {{format: parquet, path: data/source/{kind.feature_set}}}\n"
            f"features:\n{features}"
            "materialization:\n  offline: false\n  online: true\n"
        )
    return str(config)


def rows_table(kind: Kind, ids: list[Any]) -> pa.Table:
    """Every entity's row (event time an hour ago), as an Arrow table, as a job writes it."""
    rng = np.random.default_rng(0)
    n = len(ids)
    event_us = (int(time.time()) - 3600) * 1_000_000
    columns: dict[str, Any] = {
        kind.index: kind.array(ids),
        "timestamp": pa.array(np.full(n, event_us), pa.timestamp("us", tz="UTC")),
    }
    for j in range(FEATURES):
        columns[f"f{j}"] = pa.array(np.round(rng.normal(100.0, 50.0, n), 3))
    return pa.table(columns)


def fill(store: FeatureStore, kind: Kind, table: pa.Table) -> float:
    """Write the rows through OnlineStore.write; returns the seconds it took."""
    layout = store.online_layout(store.spec(kind.feature_set))
    with store.online_store() as online:
        online.ping()
        started = time.perf_counter()
        stats = online.write(layout, table)
        seconds = time.perf_counter() - started
    check(stats.written == table.num_rows, f"wrote {stats.written} of {table.num_rows} {kind.name} entities")
    return seconds


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"benchmark invariant broken: {message}")


# ---------------------------------------------------------------------------------------
# In process: ours against bare redis-py
# ---------------------------------------------------------------------------------------


class Bare:
    """The baseline: one redis-py pipeline of HMGETs of the same keys and fields, floats out."""

    def __init__(self, url: str, prefix: str, index: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix, self.index = prefix, index
        self.fields = [EVENT_TIME_FIELD, *(f"f{j}" for j in range(FEATURES))]

    def __call__(self, rows: Sequence[dict[str, Any]]) -> list[list[float | None]]:
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            pipe.hmget(f"{self.prefix}{row[self.index]}", self.fields)
        return [[None if v is None else float(v) for v in reply[1:]] for reply in pipe.execute()]


def percentiles_ms(seconds: list[float]) -> list[float]:
    return [float(v) * 1e3 for v in np.percentile(np.asarray(seconds), PERCENTILES)]


def in_process(
    store: FeatureStore,
    bare: Bare,
    kind: Kind,
    ids: list[Any],
    batch: int,
    iterations: int,
    rng: random.Random,
) -> tuple[list[float], list[float]]:
    """Latencies (ms p50/p95/p99) of ours and bare, alternating call by call on the same rows."""
    refs = kind.refs
    ours_s: list[float] = []
    bare_s: list[float] = []
    warm_up = min(200, iterations // 5)
    clock = time.perf_counter
    for i in range(warm_up + iterations):
        rows = kind.rows(rng.sample(ids, batch))
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


def best_us(func: Callable[[], object], number: int, repeat: int = 3) -> float:
    """Microseconds per call of `func`, best of `repeat` runs of `number` calls."""
    func()
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def breakdown(
    store: FeatureStore, bare: Bare, kind: Kind, ids: list[Any], batch: int
) -> list[tuple[str, float]]:
    """Where one call's time goes (us, best of 3 x many calls): the whole call, the same call
    with the Redis round trip replaced by its recorded replies (Python work only), the parts
    of that timed one by one through the package's internals, and the round trip alone."""
    refs = kind.refs
    rows = kind.rows(ids[:batch])
    online = store.online.store()
    assert isinstance(online, RedisOnlineStore)  # the HMGETs below go to its own client
    layout = store.online.layout(store.spec(kind.feature_set))
    client = online._connect()
    commands = [(key, bare.fields) for key in entity_keys(layout, rows)]
    hmget_many = resp.hmget_many
    replies = hmget_many(client, commands)
    number = max(20, 20_000 // batch)
    whole = best_us(lambda: store.get_online_features(refs, rows), number)
    resp.hmget_many = lambda _client, _commands: replies
    try:
        python = best_us(lambda: store.get_online_features(refs, rows), number)
    finally:
        resp.hmget_many = hmget_many
    resolving = best_us(lambda: store._resolved(refs), number)
    keys = best_us(lambda: entity_keys(layout, rows), number)
    return [
        ("get_online_features, whole call", whole),
        ("  its Python work (Redis replies canned)", python),
        ("    resolve the 10 refs (FeatureStore._resolved)", resolving),
        (f"    build the {kind.name} keys (entity_keys)", keys),
        ("    the rest: checks, decoding, result dicts", python - resolving - keys),
        ("  HMGET round trip alone (resp.hmget_many)", best_us(lambda: hmget_many(client, commands), number)),
        ("bare: redis-py pipeline + float decoding", best_us(lambda: bare(rows), number)),
    ]


def key_building(store: FeatureStore, ids: dict[str, list[Any]]) -> dict[tuple[str, int], float]:
    """us per `entity_keys` call (what a lookup builds), per kind and batch, best of 5."""
    figures = {}
    for batch in (1, 100):
        for kind in KINDS:
            layout = store.online_layout(store.spec(kind.feature_set))
            rows = kind.rows(ids[kind.name][:batch])
            figures[kind.name, batch] = best_us(
                lambda layout=layout, rows=rows: entity_keys(layout, rows), 20_000 // batch, 5
            )
    return figures


def writer(store: FeatureStore, tables: dict[str, pa.Table], repeats: int) -> dict[str, tuple[float, float]]:
    """Per kind: (seconds of `OnlineStore.write` of the rows, seconds of `OnlineLayout.keys` of
    the index column alone), best of `repeats`, the kinds alternating."""
    best = {kind.name: (float("inf"), float("inf")) for kind in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            table = tables[kind.name]
            layout = store.online_layout(store.spec(kind.feature_set))
            column = table.column(kind.index)
            started = time.perf_counter()
            layout.keys([column])
            keys = time.perf_counter() - started
            write = fill(store, kind, table)
            best[kind.name] = (min(best[kind.name][0], write), min(best[kind.name][1], keys))
    return best


# ---------------------------------------------------------------------------------------
# The first lookup of a process
# ---------------------------------------------------------------------------------------

# Run with `python -c` in a fresh interpreter: only the package (and redis-py) imported.
FIRST_LOOKUP = r"""
import json, sys, time

args = json.loads(sys.argv[1])
clock = time.perf_counter
import airflow_provider_featurestore as package
from airflow_provider_featurestore.core.featurestore import FeatureStore
import redis

store = FeatureStore(args["config"], check_transformations=False)
refs, rows, index, prefix = args["refs"], args["rows"], args["index"], args["prefix"]
fields = ["_event_time", *(f"f{j}" for j in range(10))]
if args["connected"]:
    store.online.store().ping()
    store.online.disabled.get()  # which online stores are disabled: read once, as serve does at start-up
before = set(sys.modules)
started = clock()
got = store.get_online_features(refs, rows)
first = clock() - started
imported = sorted(set(sys.modules) - before)
warm = []
for _ in range(args["warm"]):
    started = clock()
    store.get_online_features(refs, rows)
    warm.append(clock() - started)


def bare(client):
    pipe = client.pipeline(transaction=False)
    for row in rows:
        pipe.hmget(f"{prefix}{row[index]}", fields)
    return [[None if v is None else float(v) for v in reply[1:]] for reply in pipe.execute()]


started = clock()
client = redis.Redis.from_url(args["redis_url"])
if args["connected"]:
    client.ping()
    started = clock()
expected = bare(client)
bare_first = clock() - started
bare_warm = []
for _ in range(args["warm"]):
    started = clock()
    bare(client)
    bare_warm.append(clock() - started)
same = [[row[f"f{j}"] for j in range(10)] for row in got] == expected and expected[0][0] is not None
print(json.dumps({
    "first": first, "warm": sorted(warm)[len(warm) // 2], "bare_first": bare_first,
    "bare_warm": sorted(bare_warm)[len(bare_warm) // 2], "pandas": "pandas" in sys.modules,
    "imported": imported, "same": same, "package": package.__file__,
}))
"""


def imported_summary(modules: list[str], width: int = 60) -> str:
    """`nothing`, or how many modules and their top-level packages, cut to `width` characters."""
    if not modules:
        return "nothing"
    packages = sorted({name.split(".")[0].lstrip("_") or name for name in modules})
    text = f"{len(modules)} modules: {', '.join(packages)}"
    return text if len(text) <= width else text[: width - 3] + "..."


def first_lookup(
    store: FeatureStore, config: str, redis_url: str, kind: Kind, key: Any, connected: bool, repeats: int
) -> dict[str, Any]:
    """The median over `repeats` fresh processes of the FIRST_LOOKUP figures."""
    layout = store.online_layout(store.spec(kind.feature_set))
    package_root = str(Path(airflow_provider_featurestore.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    argument = json.dumps(
        {
            "config": config,
            "redis_url": redis_url,
            "refs": kind.refs,
            "rows": kind.rows([key]),
            "index": kind.index,
            "prefix": layout.prefix,
            "connected": connected,
            "warm": 300,
        }
    )
    runs = []
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-c", FIRST_LOOKUP, argument],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(config).parent,  # not here: `-c` puts the working directory first on sys.path
        )
        check(result.returncode == 0, f"the first-lookup process failed: {result.stderr[-2000:]}")
        run = json.loads(result.stdout.strip().splitlines()[-1])
        check(
            run["package"] == airflow_provider_featurestore.__file__,
            f"the first-lookup process imported {run['package']}, not {airflow_provider_featurestore.__file__}",
        )
        check(run["same"], "the first-lookup process: get_online_features and the bare pipeline disagree")
        runs.append(run)
    figures: dict[str, Any] = {
        name: statistics.median(run[name] for run in runs)
        for name in ("first", "warm", "bare_first", "bare_warm")
    }
    figures["ratio"] = statistics.median(run["first"] / run["warm"] for run in runs)
    figures["bare_ratio"] = statistics.median(run["bare_first"] / run["bare_warm"] for run in runs)
    figures["pandas"] = any(run["pandas"] for run in runs)
    figures["imported"] = sorted({name for run in runs for name in run["imported"]})
    return figures


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
        command = [sys.executable, "-m", "airflow_provider_featurestore.core.cli", *arguments]
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


def bodies(kind: Kind, ids: list[Any], batch: int, count: int, rng: random.Random) -> list[bytes]:
    """`count` request bodies of `batch` random entities each (the load cycles through them)."""
    return [
        json.dumps(
            {"features": kind.refs, "entities": kind.rows(rng.sample(ids, batch))},
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
    parser.add_argument("--write-repeats", type=int, default=5, help="writer: best of this many")
    parser.add_argument("--first-repeats", type=int, default=3, help="first lookup: processes per case")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument(
        "--profile", action="store_true", help="always print the breakdown and a cProfile top"
    )
    options = parser.parse_args()

    rng = random.Random(0)
    ids = {kind.name: kind.ids(options.entities) for kind in KINDS}
    folder = Path(tempfile.mkdtemp(prefix="bench_online_"))
    config = build_store(folder / "fraud", options.redis_url)
    store = FeatureStore(config, check_transformations=False)
    layouts = {kind.name: store.online_layout(store.spec(kind.feature_set)) for kind in KINDS}
    try:
        tables = {kind.name: rows_table(kind, ids[kind.name]) for kind in KINDS}
        started = time.perf_counter()
        for kind in KINDS:
            fill(store, kind, tables[kind.name])
        print(
            f"{options.entities:,} entities x {FEATURES} double features per key kind (string, long) "
            f"written in {time.perf_counter() - started:.2f} s to {options.redis_url}; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
        )
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
        bares = {kind.name: Bare(options.redis_url, layouts[kind.name].prefix, kind.index) for kind in KINDS}
        for batch, iterations in cases:
            for kind in KINDS:
                ours_ms, bare_ms = in_process(
                    store, bares[kind.name], kind, ids[kind.name], batch, iterations, rng
                )
                feast = FEAST_MS[batch]
                ratio = (ours_ms[0] / bare_ms[0], ours_ms[2] / bare_ms[2])
                if max(ratio) > GOAL_RATIO:
                    slow.append((batch, kind))
                lines.append(
                    [
                        f"{batch} entit{'y' if batch == 1 else 'ies'}, {kind.name} key",
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

        keys = key_building(store, ids)
        lines = [["keys a lookup builds (entity_keys)", "string us", "long us", "long/string"]]
        for batch in (1, 100):
            string_us, long_us = keys["string", batch], keys["long", batch]
            lines.append(
                [
                    f"{batch} entit{'y' if batch == 1 else 'ies'} per call",
                    f"{string_us:.2f}",
                    f"{long_us:.2f}",
                    f"{long_us / string_us:.2f}x",
                ]
            )
        print()
        print(aligned(lines, 1))

        written = writer(store, tables, options.write_repeats)
        n = options.entities
        lines = [["writer, " + f"{n:,} rows x {FEATURES} doubles", "string", "long", "long/string"]]
        for label, at in (("OnlineStore.write rows/s", 0), ("OnlineLayout.keys alone, M keys/s", 1)):
            string_rate, long_rate = n / written["string"][at], n / written["long"][at]
            scale = 1.0 if at == 0 else 1e-6
            lines.append(
                [
                    label,
                    f"{string_rate * scale:,.{0 if at == 0 else 2}f}",
                    f"{long_rate * scale:,.{0 if at == 0 else 2}f}",
                    f"{long_rate / string_rate:.2f}x",
                ]
            )
        print()
        print(
            f"best of {options.write_repeats}, every key replaced (equal event time); rates: higher is faster"
        )
        print(aligned(lines, 1))

        lines = [
            [
                "first lookup of a process",
                "mode",
                "first ms",
                "warm p50 ms",
                "first/warm",
                "bare first ms",
                "bare warm ms",
                "bare first/warm",
                "pandas",
                "imported by the first lookup",
            ]
        ]
        for connected in (False, True):
            for kind in KINDS:
                figures = first_lookup(
                    store,
                    config,
                    options.redis_url,
                    kind,
                    ids[kind.name][1],
                    connected,
                    options.first_repeats,
                )
                lines.append(
                    [
                        f"1 entity, {kind.name} key",
                        "connected" if connected else "cold",
                        f"{figures['first'] * 1e3:.2f}",
                        f"{figures['warm'] * 1e3:.3f}",
                        f"{figures['ratio']:.1f}x",
                        f"{figures['bare_first'] * 1e3:.2f}",
                        f"{figures['bare_warm'] * 1e3:.3f}",
                        f"{figures['bare_ratio']:.1f}x",
                        "yes" if figures["pandas"] else "no",
                        imported_summary(figures["imported"]),
                    ]
                )
        print()
        print(
            f"fresh processes, median of {options.first_repeats}; cold: the first lookup opens the "
            "connection (redis-py's handshake, and ours asks INFO cluster); connected: after a PING"
        )
        print(aligned(lines, 2))
        print(f"goal: first/warm <= {GOAL_FIRST:g}x")

        for batch, kind in sorted(
            set(slow) | ({(1, k) for k in KINDS} | {(100, k) for k in KINDS} if options.profile else set()),
            key=lambda case: (case[0], case[1].name),
        ):
            print()
            print(
                f"where the time of one call goes, {batch} entit{'y' if batch == 1 else 'ies'}, "
                f"{kind.name} key (best of 3, us):"
            )
            for name, value in breakdown(store, bares[kind.name], kind, ids[kind.name], batch):
                print(f"  {name:<50} {value:8.1f}")
        if options.profile:
            for kind in KINDS:
                refs, rows = kind.refs, kind.rows(ids[kind.name][:1])
                profiler = cProfile.Profile()
                profiler.runcall(
                    lambda refs=refs, rows=rows: [store.get_online_features(refs, rows) for _ in range(3000)]
                )
                print(f"\ncProfile of 3,000 calls of 1 entity x 10 features, {kind.name} key:")
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
                loads = bodies(KINDS[0], ids["string"], batch, 200, rng)
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
            for layout in layouts.values():
                online.purge(layout)
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
