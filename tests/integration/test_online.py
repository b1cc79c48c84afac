"""The online store against real Redis servers: the shared one, a password-protected one and a
three-node Redis Cluster started by the tests (redis-server and redis-cli must be installed)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.online import (
    OnlineLayout,
    OnlineStoreUnavailable,
    RedisOnlineStore,
    WriteStats,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.redis_servers import free_port, start_server, start_tls_server, stop, wait_until  # noqa: E402

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = 1_704_067_200_000_000
ALL_TYPES = (
    Column("s", "string"),
    Column("i", "int"),
    Column("l", "long"),
    Column("f", "float"),
    Column("d", "double"),
    Column("b", "boolean"),
    Column("ts", "timestamp"),
    Column("dt", "date"),
)


# ---------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(store: RedisOnlineStore) -> Iterator[str]:
    """A key prefix of this test alone; its keys are purged afterwards."""
    value = f"test_{uuid.uuid4().hex[:12]}:fs:v1:"
    yield value
    store.purge(value)


def layout_of(
    prefix: str, features: tuple[Column, ...] = (Column("x", "double"),), **kw: object
) -> OnlineLayout:
    options: dict[str, object] = {
        "index_columns": (Column("id", "string"),),
        "timestamp_column": "event_ts",
        "features": features,
        "ttl": None,
    }
    options.update(kw)
    return OnlineLayout(prefix=prefix, **options)  # type: ignore[arg-type]


def rows(ids: list[str], when: list[datetime] | datetime, **features: list[object]) -> pa.Table:
    times = when if isinstance(when, list) else [when] * len(ids)
    return pa.table(
        {"id": ids, "event_ts": pa.array(times, pa.timestamp("us", tz="UTC")), **features},
    )


# ---------------------------------------------------------------------------------------
# Layout and round trips
# ---------------------------------------------------------------------------------------


def test_round_trip_of_every_type_with_nulls_and_escaped_keys(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(
        prefix, ALL_TYPES, index_columns=(Column("account", "string"), Column("shard", "long"))
    )
    table = pa.table(
        {
            "account": ["a:b%c", "Zürich 東京", "plain"],
            "shard": pa.array([1, -2, 3], pa.int64()),
            "event_ts": pa.array([T0, T0 + timedelta(seconds=1), T0], pa.timestamp("us", tz="UTC")),
            "s": ["héllo ✓", None, ""],
            "i": pa.array([7, None, -2_147_483_648], pa.int32()),
            "l": pa.array([2**62, None, 0], pa.int64()),
            "f": pa.array([0.1, None, -1.5], pa.float32()),
            "d": [123.45, None, 1e-300],
            "b": [True, None, False],
            "ts": pa.array([T0 + timedelta(microseconds=5), None, T0], pa.timestamp("us", tz="UTC")),
            "dt": pa.array([date(2024, 1, 1), None, date(1, 1, 1)], pa.date32()),
        }
    )
    stats = store.write(layout, table)
    assert stats == WriteStats(rows=3, written=3, skipped_older=0, skipped_expired=0)

    keys = [{"account": "a:b%c", "shard": 1}, {"account": "Zürich 東京", "shard": -2}]
    keys += [{"account": "plain", "shard": 3}, {"account": "absent", "shard": 1}]
    first, second, third, missing = store.get(layout, keys)
    assert first == {
        "s": "héllo ✓",
        "i": 7,
        "l": 2**62,
        "f": pytest.approx(0.1, rel=1e-7),
        "d": 123.45,
        "b": True,
        "ts": T0 + timedelta(microseconds=5),
        "dt": date(2024, 1, 1),
    }
    assert np.float32(first["f"]) == np.float32(0.1)  # type: ignore[arg-type]
    assert second == dict.fromkeys(layout.feature_names)  # present, every feature null
    assert third == {
        "s": "",
        "i": -2_147_483_648,
        "l": 0,
        "f": -1.5,
        "d": 1e-300,
        "b": False,
        "ts": T0,
        "dt": date(1, 1, 1),
    }
    assert missing is None

    subset = store.get(layout, [{"account": "plain", "shard": "3"}], ["d", "b"], with_event_time=True)
    assert subset == [{"d": 1e-300, "b": False, "event_ts": T0}]


def test_hgetall_is_readable(store: RedisOnlineStore, raw: redis.Redis, prefix: str) -> None:
    layout = layout_of(prefix, ALL_TYPES, index_columns=(Column("account", "string"), Column("n", "long")))
    table = pa.table(
        {
            "account": ["A0001:x%y"],
            "n": [42],
            "event_ts": pa.array([T0 + timedelta(microseconds=250)], pa.timestamp("us", tz="UTC")),
            "s": ["Grüße"],
            "i": pa.array([-5], pa.int32()),
            "l": [1234567890123],
            "f": pa.array([0.25], pa.float32()),
            "d": [123.45],
            "b": [False],
            "ts": pa.array([datetime(2024, 5, 6, 7, 8, 9, 120000)], pa.timestamp("us")),
            "dt": pa.array([date(2024, 2, 29)], pa.date32()),
        }
    )
    store.write(layout, table)
    key = f"{prefix}A0001%3Ax%25y:42"
    assert layout.key(["A0001:x%y", 42]) == key
    assert raw.hgetall(key) == {
        b"s": "Grüße".encode(),
        b"i": b"-5",
        b"l": b"1234567890123",
        b"f": b"0.25",
        b"d": b"123.45",
        b"b": b"false",
        b"ts": b"2024-05-06T07:08:09.120000Z",
        b"dt": b"2024-02-29",
        b"_event_time": str(T0_US + 250).encode(),
    }


def test_doubles_are_shortest_text_and_whole_second_timestamps_have_no_fraction(
    store: RedisOnlineStore, raw: redis.Redis, prefix: str
) -> None:
    layout = layout_of(prefix, (Column("x", "double"), Column("t", "timestamp")))
    values = [0.1, 100.0, 1e20, float("inf"), 0.30000000000000004]
    table = rows([f"k{i}" for i in range(5)], T0, x=values, t=pa.array([T0] * 5, pa.timestamp("s", tz="UTC")))
    store.write(layout, table)
    texts = [raw.hget(layout.key([f"k{i}"]), "x") for i in range(5)]
    assert texts == [b"0.1", b"100", b"1e+20", b"inf", b"0.30000000000000004"]
    assert raw.hget(layout.key(["k0"]), "t") == b"2024-01-01T00:00:00Z"
    got = store.get(layout, [{"id": f"k{i}"} for i in range(5)], ["x"])
    assert [row["x"] for row in got] == values  # type: ignore[index]


def test_event_time_of_any_unit_and_time_zone(store: RedisOnlineStore, raw: redis.Redis, prefix: str) -> None:
    layout = layout_of(prefix)
    moment = T0 + timedelta(seconds=3, microseconds=7)
    for i, arrow_type in enumerate(
        [pa.timestamp("ns"), pa.timestamp("ms", tz="UTC"), pa.timestamp("s", tz="Europe/Paris")]
    ):
        table = pa.table({"id": [f"k{i}"], "event_ts": pa.array([moment], arrow_type), "x": [1.0]})
        store.write(layout, table.to_batches()[0])  # a RecordBatch, as mapInArrow gives
    stored = [int(raw.hget(layout.key([f"k{i}"]), "_event_time")) for i in range(3)]
    assert stored == [T0_US + 3_000_007, T0_US + 3_000_000, T0_US + 3_000_000]


def test_bad_rows_are_refused(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix)
    with pytest.raises(ValueError, match="lack column"):
        store.write(layout, pa.table({"id": ["a"], "event_ts": pa.array([T0])}))
    with pytest.raises(ValueError, match="null"):
        store.write(layout, rows(["a", None], T0, x=[1.0, 2.0]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown feature"):
        store.get(layout, [{"id": "a"}], ["nope"])
    with pytest.raises(ValueError, match="index column 'id'"):
        store.get(layout, [{"account": "a"}])
    with pytest.raises(ValueError, match="empty prefix"):
        store.purge("")


# ---------------------------------------------------------------------------------------
# The event-time guard
# ---------------------------------------------------------------------------------------


def test_older_never_replaces_equal_and_newer_do(
    store: RedisOnlineStore, raw: redis.Redis, prefix: str
) -> None:
    layout = layout_of(prefix, (Column("x", "double"), Column("y", "string")))
    key = layout.key(["acct"])
    at = T0 + timedelta(hours=1)

    assert store.write(layout, rows(["acct"], at, x=[1.0], y=["first"])).written == 1
    before = raw.hgetall(key)

    older = store.write(layout, rows(["acct"], at - timedelta(microseconds=1), x=[2.0], y=["older"]))
    assert older == WriteStats(rows=1, written=0, skipped_older=1, skipped_expired=0)
    assert raw.hgetall(key) == before

    equal = store.write(layout, rows(["acct"], at, x=[3.0], y=["corrected"]))
    assert equal.written == 1
    assert store.get(layout, [{"id": "acct"}]) == [{"x": 3.0, "y": "corrected"}]

    newer = store.write(layout, rows(["acct"], at + timedelta(seconds=1), x=[None], y=["newer"]))
    assert newer.written == 1
    assert raw.hgetall(key) == {b"y": b"newer", b"_event_time": str(T0_US + 3_601_000_000).encode()}


def test_a_key_of_another_type_fails_the_write_and_the_store_stays_usable(
    store: RedisOnlineStore, raw: redis.Redis, prefix: str
) -> None:
    layout = layout_of(prefix)
    raw.set(layout.key(["intruder"]), "not a hash")
    store.keys_per_call = 2
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.write(layout, rows(["a", "b", "intruder", "c", "d"], T0, x=[1.0] * 5))
    assert store.write(layout, rows(["e"], T0, x=[5.0])).written == 1
    assert store.get(layout, [{"id": "a"}, {"id": "e"}]) == [{"x": 1.0}, {"x": 5.0}]


def test_mixed_batch_counts(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix)
    store.write(layout, rows(["a", "b"], T0, x=[1.0, 1.0]))
    stats = store.write(
        layout, rows(["a", "b", "c"], [T0 - timedelta(days=1), T0 + timedelta(days=1), T0], x=[2.0, 2.0, 2.0])
    )
    assert stats == WriteStats(rows=3, written=2, skipped_older=1, skipped_expired=0)
    assert stats + stats == WriteStats(rows=6, written=4, skipped_older=2, skipped_expired=0)
    assert [r["x"] for r in store.get(layout, [{"id": k} for k in "abc"])] == [1.0, 2.0, 2.0]  # type: ignore[index]


def test_batches_larger_than_one_script_call(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix, (Column("x", "long"), Column("y", "double")))
    store.keys_per_call, store.rows_per_encode = 7, 50  # many calls, many slices in flight
    n = 1_003
    ids = [f"e{i}" for i in range(n)]
    y = [None if i % 10 == 0 else i / 4 for i in range(n)]
    assert store.write(layout, rows(ids, T0, x=list(range(n)), y=y)).written == n
    again = store.write(layout, rows(ids, T0 - timedelta(seconds=1), x=[0] * n, y=[0.0] * n))
    assert again.skipped_older == n
    got = store.get(layout, [{"id": i} for i in ids])
    assert got == [{"x": i, "y": y[i]} for i in range(n)]
    assert store.purge(layout) == n


def test_default_call_size_on_a_large_batch(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix)
    n = 45_000  # several encode slices and script calls
    table = rows([f"e{i}" for i in range(n)], T0, x=np.arange(n, dtype=np.float64))
    assert store.write(layout, table).written == n
    assert store.write(layout, table).written == n  # equal event time: replaced
    assert store.get(layout, [{"id": "e44999"}]) == [{"x": 44999.0}]
    assert store.purge(layout.prefix) == n


# ---------------------------------------------------------------------------------------
# TTL
# ---------------------------------------------------------------------------------------


def test_ttl_sets_expireat_and_skips_expired_rows(
    store: RedisOnlineStore, raw: redis.Redis, prefix: str
) -> None:
    layout = layout_of(prefix, ttl=3600)
    now = int(time.time())
    fresh = datetime.fromtimestamp(now - 60, UTC) + timedelta(microseconds=999_999)
    stale = datetime.fromtimestamp(now - 3600, UTC)  # event time + ttl == now: expired
    stats = store.write(layout, rows(["fresh", "stale"], [fresh, stale], x=[1.0, 2.0]), now=now)
    assert stats == WriteStats(rows=2, written=1, skipped_older=0, skipped_expired=1)
    assert raw.expiretime(layout.key(["fresh"])) == now - 60 + 3600
    assert not raw.exists(layout.key(["stale"]))
    assert 3500 < raw.ttl(layout.key(["fresh"])) <= 3540

    no_ttl = layout_of(prefix)  # a replacing write without TTL leaves no expiry behind
    store.write(no_ttl, rows(["fresh"], fresh, x=[3.0]))
    assert raw.ttl(layout.key(["fresh"])) == -1


def test_a_key_really_expires(store: RedisOnlineStore, raw: redis.Redis, prefix: str) -> None:
    layout = layout_of(prefix, ttl=10)
    now = int(time.time())
    event = datetime.fromtimestamp(now - 8, UTC)  # expires at now + 2
    assert store.write(layout, rows(["soon"], event, x=[1.0]), now=now).written == 1
    assert store.get(layout, [{"id": "soon"}]) == [{"x": 1.0}]
    deadline = time.monotonic() + 10
    while raw.exists(layout.key(["soon"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.get(layout, [{"id": "soon"}]) == [None]
    assert time.time() >= now + 2


# ---------------------------------------------------------------------------------------
# Connections, passwords, pickling
# ---------------------------------------------------------------------------------------


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A throwaway redis-server with `--requirepass`, on a free TCP port and a unix socket."""
    port, sock = free_port(), str(tmp_path / "redis.sock")
    process = start_server(tmp_path, "--port", str(port), "--unixsocket", sock, "--requirepass", "s3cr3t-pw")
    wait_until(lambda: redis.Redis(port=port, password="s3cr3t-pw").ping(), "the password server")
    yield port, sock
    stop(process)


def test_password_in_the_url(password_server: tuple[int, str]) -> None:
    port, sock = password_server
    layout = layout_of("pw:fs:v1:")
    for url in (f"redis://:s3cr3t-pw@127.0.0.1:{port}/0", f"unix://:s3cr3t-pw@{sock}?db=0"):
        with RedisOnlineStore(url) as online:
            online.ping()
            assert online.write(layout, rows(["a"], T0, x=[1.5])).written == 1
            assert online.get(layout, [{"id": "a"}]) == [{"x": 1.5}]
    with RedisOnlineStore(f"redis://127.0.0.1:{port}/0", password="s3cr3t-pw") as online:
        assert online.purge(layout) == 1


def test_wrong_or_missing_password_is_unavailable_without_showing_it(
    password_server: tuple[int, str],
) -> None:
    port, _ = password_server
    with pytest.raises(OnlineStoreUnavailable) as caught:
        RedisOnlineStore(f"redis://:wrong-pw-123@127.0.0.1:{port}/0").ping()
    message = str(caught.value)
    assert "wrong-pw-123" not in message
    assert message.startswith(
        f"the online store refused us at redis://127.0.0.1:{port}/0 (password hidden): "
    )
    assert message.endswith("; give its password in online_store.redis_url (redis://:PASSWORD@host:port/db)")
    with pytest.raises(OnlineStoreUnavailable, match="authenticat"):
        RedisOnlineStore(f"redis://127.0.0.1:{port}/0").ping()
    with pytest.raises(OnlineStoreUnavailable) as caught:
        RedisOnlineStore(f"redis://127.0.0.1:{port}/0", password="other-pw-456").write(
            layout_of("x:"), rows([], T0, x=[])
        )
    assert "other-pw-456" not in str(caught.value)


def test_tls(tmp_path: Path) -> None:
    process, port, ca = start_tls_server(tmp_path)
    try:
        layout = layout_of("tls:fs:v1:")
        for online in (
            RedisOnlineStore(f"rediss://127.0.0.1:{port}/0", ssl_ca_certs=str(ca)),
            RedisOnlineStore(f"redis://127.0.0.1:{port}/0", ssl=True, ssl_ca_certs=str(ca)),
        ):
            with online:
                assert online.write(layout, rows(["a"], T0, x=[2.5])).written == 1
                assert online.get(layout, [{"id": "a"}]) == [{"x": 2.5}]
        with pytest.raises(OnlineStoreUnavailable, match=f"at rediss://127.0.0.1:{port}/0: .*certificate"):
            RedisOnlineStore(f"rediss://127.0.0.1:{port}/0").ping()  # the system CAs do not trust it
    finally:
        stop(process)


def test_unreachable_url() -> None:
    port = free_port()  # nothing listens there
    online = RedisOnlineStore(f"redis://127.0.0.1:{port}/3")
    with pytest.raises(OnlineStoreUnavailable, match=f"at redis://127.0.0.1:{port}/3: .*; start Redis"):
        online.ping()
    with pytest.raises(OnlineStoreUnavailable):
        online.get(layout_of("x:"), [{"id": "a"}])
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisOnlineStore("http://127.0.0.1:6379")


def test_pickled_store_reconnects(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix)
    store.write(layout, rows(["a"], T0, x=[1.0]))
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get(layout, [{"id": "a"}]) == [{"x": 1.0}]
    assert pickle.loads(pickle.dumps(layout)) == layout
    assert "s3cr3t" not in repr(RedisOnlineStore("redis://:s3cr3t@localhost:6379/0"))
    clone.close()


def test_script_reloaded_after_script_flush(password_server: tuple[int, str]) -> None:
    port, _ = password_server  # a private server: SCRIPT FLUSH is server-wide
    layout = layout_of("flush:fs:v1:")
    with RedisOnlineStore(f"redis://:s3cr3t-pw@127.0.0.1:{port}/0") as online:
        online.write(layout, rows(["a"], T0, x=[1.0]))
        redis.Redis(port=port, password="s3cr3t-pw").script_flush()  # as after a restart: NOSCRIPT
        assert online.write(layout, rows(["a", "b"], T0, x=[2.0, 2.0])).written == 2


# ---------------------------------------------------------------------------------------
# Redis Cluster
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Three primaries started for these tests, slots spread by `redis-cli --cluster create`."""
    assert shutil.which("redis-server") and shutil.which("redis-cli"), "redis-server/redis-cli are needed"
    ports = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    base = tmp_path_factory.mktemp("cluster")
    processes = [
        start_server(
            base / str(port),
            "--port",
            str(port),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_until(lambda port=port: redis.Redis(port=port).ping(), f"redis-server on port {port}")
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in ports:
            wait_until(
                lambda port=port: redis.Redis(port=port).cluster("info")["cluster_state"] == "ok",
                f"cluster_state:ok on port {port}",
            )
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            stop(process)


def test_cluster_write_read_guard_purge(cluster_url: str) -> None:
    layout = layout_of("clu:fs:v1:", (Column("x", "long"), Column("y", "string")))
    n = 2_000
    ids = [f"entity-{i}" for i in range(n)]
    with RedisOnlineStore(cluster_url) as online:  # cluster auto-detected
        assert online.is_cluster
        assert (
            online.write(layout, rows(ids, T0, x=list(range(n)), y=[f"v{i}" for i in range(n)])).written == n
        )
        got = online.get(layout, [{"id": i} for i in ids])
        assert got == [{"x": i, "y": f"v{i}"} for i in range(n)]

        older = online.write(layout, rows(ids, T0 - timedelta(seconds=1), x=[-1] * n, y=["old"] * n))
        assert older == WriteStats(rows=n, written=0, skipped_older=n, skipped_expired=0)
        newer = online.write(layout, rows(ids[:10], T0 + timedelta(seconds=1), x=[None] * 10, y=["new"] * 10))
        assert newer.written == 10
        assert online.get(layout, [{"id": ids[0]}, {"id": ids[-1]}]) == [
            {"x": None, "y": "new"},
            {"x": n - 1, "y": f"v{n - 1}"},
        ]

        assert online.purge(layout) == n
        assert online.get(layout, [{"id": i} for i in ids[:50]]) == [None] * 50


def test_cluster_keys_spread_over_every_primary(cluster_url: str) -> None:
    layout = layout_of("spread:fs:v1:")
    ids = [f"e{i}" for i in range(300)]
    with RedisOnlineStore(cluster_url, cluster=True) as online:
        online.write(layout, rows(ids, T0, x=[1.0] * 300))
        client = online._connect()
        per_node = [client.get_redis_connection(node).dbsize() for node in client.get_primaries()]
        assert len(per_node) == 3 and all(count > 0 for count in per_node)
        # An entity purge's delete: keys on every node, each sent to its own (absent ones count 0).
        gone = [layout.key([i]) for i in ids[:100]]
        assert online.delete_keys([*gone, layout.key(["never-written"])]) == 100
        assert online.get(layout, [{"id": i} for i in ids[:3]]) == [None] * 3
        assert online.purge(layout) == 200


def test_cluster_write_follows_a_moved_slot(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = layout_of("moved:fs:v1:")
    key = layout.key(["m1"])
    slot = key_slot(key.encode())
    with RedisOnlineStore(cluster_url) as online:
        online.ping()  # the slot map is now cached
        client = online._connect()
        source = client.nodes_manager.get_node_from_slot(slot)
        target = next(node for node in client.get_primaries() if node.name != source.name)
        nodes = {node.name: redis.Redis(node.host, node.port) for node in client.get_primaries()}
        src, dst = nodes[source.name], nodes[target.name]
        assert src.cluster("countkeysinslot", slot) == 0
        src_id, dst_id = (node.execute_command("CLUSTER", "MYID").decode() for node in (src, dst))
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        for node in nodes.values():
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

        refreshed: list[bool] = []
        initialize = client.nodes_manager.initialize
        monkeypatch.setattr(
            client.nodes_manager,
            "initialize",
            lambda *a, **kw: refreshed.append(True) or initialize(*a, **kw),
        )
        assert online.write(layout, rows(["m1"], T0, x=[1.0])).written == 1
        assert refreshed  # the stale node answered MOVED; the slot map was reloaded and the call resent
        assert dst.hget(key, "x") == b"1"
        assert online.get(layout, [{"id": "m1"}]) == [{"x": 1.0}]
        assert online.purge(layout) == 1


# ---------------------------------------------------------------------------------------
# Property: the stored row is the one with the greatest event time (ties: the last written)
# ---------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(
        st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 4)), min_size=1, max_size=3),
        min_size=1,
        max_size=8,
    )
)
def test_stored_row_has_the_max_event_time(
    store: RedisOnlineStore, writes: list[list[tuple[str, int]]]
) -> None:
    layout = layout_of(f"prop_{uuid.uuid4().hex[:12]}:fs:v1:", (Column("n", "long"),))
    expected: dict[str, tuple[int, int]] = {}
    try:
        for batch_no, batch in enumerate(writes):
            latest = dict(batch)  # one row per key and batch, as the job hands them over
            serial = [batch_no * 10 + i for i in range(len(latest))]
            times = [T0 + timedelta(seconds=second) for second in latest.values()]
            store.write(layout, rows(list(latest), times, n=serial))
            for (key, second), number in zip(latest.items(), serial, strict=True):
                if key not in expected or second >= expected[key][0]:
                    expected[key] = (second, number)
        got = store.get(layout, [{"id": key} for key in "abc"], with_event_time=True)
        for key, row in zip("abc", got, strict=True):
            if key not in expected:
                assert row is None
            else:
                second, number = expected[key]
                assert row == {"n": number, "event_ts": T0 + timedelta(seconds=second)}
    finally:
        store.purge(layout)
