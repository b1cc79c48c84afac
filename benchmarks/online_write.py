"""Benchmark: writing feature rows to the online store (Redis) with the event-time guard.

Why: the online store's guard (never replace a value by an older one, atomically per key)
must cost nothing visible: writing with it must be at least as fast as the naive unguarded
write, a single-connection redis-py pipeline of `HSET key f1 v1 ... fN vN _event_time t`
with every value already converted to text (that conversion is not timed).

What is timed, on one Arrow table of `--entities` rows (a string key, a timestamp and
`--features` double features) generated once:

* bare    -- the unguarded pipelined HSETs, 1,000 commands per pipeline execute;
* new     -- `OnlineStore.write` of the table into an empty store (every row written),
             Arrow-to-text conversion included;
* equal   -- the same write again: every key replaced (equal event time: a re-materialization);
* older   -- `OnlineStore.write` of the same rows one hour older than what is stored (every
             row skipped by the guard);
* packed  -- the floor of any write of these hashes: the same HSETs as `bare`, but packed into
             RESP by hand beforehand and sent 1,000 to a write (no client cost in the timing);
* args    -- the guard's argument passing alone: our write's exact EVALSHA calls, bytes and
             all, against a script that returns at once (`return {#KEYS, 0}`).

Beside each rate: Redis' own time per entity in the command that did the work (`HSET` for
bare, `EVALSHA` for ours, from INFO commandstats deltas), and the Redis server's whole CPU per
entity (INFO cpu: parsing, replies and I/O included), to show where the time goes: `new`
against `packed` is what the atomic event-time guard costs the server.

Each figure is the best of `--repeats` runs, the store emptied before each run. The store is
a dedicated database (default `/15`) that is FLUSHDB'd: never point this at a database
holding anything else.

Run: `python benchmarks/online_write.py [--entities 100000] [--features 10]
[--redis-url redis://127.0.0.1:6379/15] [--repeats 5] [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import redis

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.online import OnlineLayout, RedisOnlineStore
from airflow_provider_featurestore.core.online.guarded_write import SHA, pack_rows

PREFIX = "bench:online_write:v1:"
EVENT_TIME = 1_704_067_200  # 2024-01-01T00:00:00Z


def make_table(entities: int, features: int) -> pa.Table:
    rng = np.random.default_rng(0)
    columns: dict[str, pa.Array] = {
        "entity_id": pa.array([f"E{i:08d}" for i in range(entities)]),
        "timestamp": pa.array(np.full(entities, EVENT_TIME * 1_000_000), pa.timestamp("us", tz="UTC")),
    }
    for j in range(features):
        columns[f"f{j}"] = pa.array(np.round(rng.normal(100.0, 50.0, entities), 2))
    return pa.table(columns)


def bare(client: redis.Redis, table: pa.Table, features: int) -> float:
    """Seconds for the unguarded pipelined HSETs (text conversion done before timing)."""
    keys = [PREFIX + key for key in table.column("entity_id").to_pylist()]
    values = [[str(v) for v in table.column(f"f{j}").to_pylist()] for j in range(features)]
    event_us = str(EVENT_TIME * 1_000_000)
    commands = []
    for i, key in enumerate(keys):
        args: list[str] = []
        for j in range(features):
            args += [f"f{j}", values[j][i]]
        commands.append((key, *args, "_event_time", event_us))
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i, command in enumerate(commands, 1):
        pipe.execute_command("HSET", *command)
        if i % 1000 == 0:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def packed_bare(client: redis.Redis, table: pa.Table, features: int) -> float:
    """Seconds for the same HSETs as `bare`, packed into RESP before timing, 1,000 per send."""
    keys = [(PREFIX + key).encode() for key in table.column("entity_id").to_pylist()]
    values = [[str(v).encode() for v in table.column(f"f{j}").to_pylist()] for j in range(features)]
    tail = _bulk(b"_event_time") + _bulk(str(EVENT_TIME * 1_000_000).encode())
    head = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * features + 2)
    commands = [
        head + _bulk(key) + b"".join(_bulk(b"f%d" % j) + _bulk(values[j][i]) for j in range(features)) + tail
        for i, key in enumerate(keys)
    ]
    return _send_packed(
        client, [b"".join(commands[a : a + 1000]) for a in range(0, len(commands), 1000)], 1000
    )


def guard_arguments_only(
    client: redis.Redis, store: RedisOnlineStore, layout: OnlineLayout, table: pa.Table
) -> float:
    """Seconds for our write's EVALSHA calls (its packing, not timed) against a script that
    returns at once: what passing the guard its arguments costs, before it does anything."""
    noop = client.script_load("return {#KEYS, 0}").encode()
    packed, _expired = pack_rows(layout, table, int(time.time()))
    assert packed is not None
    step = store.keys_per_call
    calls = []
    for start in range(0, table.num_rows, step):
        head, *rest = packed.command(start, min(start + step, table.num_rows))
        calls.append(b"".join([head.replace(SHA.encode(), noop), *(bytes(part) for part in rest)]))
    return _send_packed(client, calls, 1)


def _send_packed(client: redis.Redis, buffers: list[bytes], replies_per_buffer: int) -> float:
    connection = client.connection_pool.get_connection()
    try:
        started = time.perf_counter()
        for buffer in buffers:
            connection.send_packed_command([buffer], check_health=False)
            for _ in range(replies_per_buffer):
                connection.read_response()
        return time.perf_counter() - started
    finally:
        client.connection_pool.release(connection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one `ours` run and print the top")
    options = parser.parse_args()

    n = options.entities
    table = make_table(n, options.features)
    older = table.set_column(
        1, "timestamp", pa.array(np.full(n, (EVENT_TIME - 3600) * 1_000_000), pa.timestamp("us", tz="UTC"))
    )
    layout = OnlineLayout(
        prefix=PREFIX,
        index_columns=(Column("entity_id", "string"),),
        timestamp_column="timestamp",
        features=tuple(Column(f"f{j}", "double") for j in range(options.features)),
        ttl=None,
    )
    client = redis.Redis.from_url(options.redis_url)
    store = RedisOnlineStore(options.redis_url)
    store.ping()

    def fresh() -> None:
        client.flushdb()

    def server_usec(command: str) -> int:
        """Redis' own time in `command` so far (INFO commandstats, never reset here)."""
        return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("usec", 0))

    def server_cpu() -> float:
        """The Redis server's CPU seconds so far (INFO cpu), everything it did included."""
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def measure(name: str, command: str, run: Callable[[], float]) -> None:
        before, cpu_before = server_usec(command), server_cpu()
        seconds = run()
        if seconds < results[name][0]:
            cpu = (server_cpu() - cpu_before) * 1e6 / n
            results[name] = (seconds, (server_usec(command) - before) / n, cpu)

    def ours(rows: pa.Table, expect: str) -> float:
        started = time.perf_counter()
        stats = store.write(layout, rows)
        seconds = time.perf_counter() - started
        assert getattr(stats, expect) == n, stats
        return seconds

    names = ("bare", "new", "equal", "older", "packed", "args")
    results = dict.fromkeys(names, (float("inf"), 0.0, 0.0))
    ours(table, "written")  # warm up: the script loaded, the connection open
    for _ in range(options.repeats):
        fresh()
        measure("bare", "hset", lambda: bare(client, table, options.features))
        fresh()
        measure("new", "evalsha", lambda: ours(table, "written"))
        measure("equal", "evalsha", lambda: ours(table, "written"))
        measure("older", "evalsha", lambda: ours(older, "skipped_older"))
        fresh()
        measure("packed", "hset", lambda: packed_bare(client, table, options.features))
        measure("args", "evalsha", lambda: guard_arguments_only(client, store, layout, table))

    if options.profile:
        fresh()
        profiler = cProfile.Profile()
        profiler.runcall(store.write, layout, table)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    fresh()
    store.close()

    bare_rate = n / results["bare"][0]
    print(
        f"{n:,} entities x {options.features} double features, {options.redis_url}, best of {options.repeats}"
    )
    print(
        f"{'run':<50} {'seconds':>8} {'entities/s':>11} {'ours/bare':>9} {'command us/entity':>17} "
        f"{'Redis CPU us/entity':>19}"
    )
    labels = {
        "bare": "bare pipelined HSET, no guard (baseline)",
        "new": "OnlineStore.write, guarded: all new keys",
        "equal": "OnlineStore.write, guarded: all replaced (=)",
        "older": "OnlineStore.write, guarded: all older, skipped",
        "packed": "floor: HSET packed beforehand, no client cost",
        "args": "the guard's arguments only (a no-op script)",
    }
    for name in names:
        seconds, server, cpu = results[name]
        ratio = "" if name == "bare" else f"{n / seconds / bare_rate:.2f}"
        print(
            f"{labels[name]:<50} {seconds:>8.3f} {n / seconds:>11,.0f} {ratio:>9} {server:>17.2f} {cpu:>19.2f}"
        )


if __name__ == "__main__":
    main()
