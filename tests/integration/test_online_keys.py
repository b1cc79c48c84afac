"""Keys of `int` and `long` index columns against the real Redis of the tests
(FEATURESTORE_TEST_REDIS_URL): written with Arrow, read back with Python values of every
spelling, and a lookup must import nothing (the first `pa.array` of Python objects imports
pandas). That lookup and write keys agree, without a server: tests/unit/test_online_entity_keys.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import redis

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online import OnlineLayout, RedisOnlineStore

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def prefix(store: RedisOnlineStore) -> Iterator[str]:
    """A key prefix of this test alone; its keys are purged afterwards."""
    value = f"test_{uuid.uuid4().hex[:12]}:keys:v1:"
    yield value
    store.purge(value)


def layout_of(prefix: str, *index: Column) -> OnlineLayout:
    return OnlineLayout(prefix, index, "event_ts", (Column("x", "double"),))


# ---------------------------------------------------------------------------------------
# Against Redis: written with Arrow int64/int32 keys, read back with Python values
# ---------------------------------------------------------------------------------------


def test_round_trip_of_integer_keys(store: RedisOnlineStore, prefix: str) -> None:
    layout = layout_of(prefix, Column("card", "long"), Column("slot", "int"))
    cards = [-(2**63), -1, 0, 42, 2**63 - 1]
    slots = [2**31 - 1, 0, -(2**31), 7, 1]
    table = pa.table(
        {
            "card": pa.array(cards, pa.int64()),
            "slot": pa.array(slots, pa.int32()),
            "event_ts": pa.array([T0] * 5, pa.timestamp("us", tz="UTC")),
            "x": [float(i) for i in range(5)],
        }
    )
    assert store.write(layout, table).written == 5
    raw = redis.Redis.from_url(REDIS_URL)
    try:  # the stored key names: the decimal text, unescaped, as before
        assert sorted(key.decode() for key in raw.scan_iter(match=prefix + "*")) == sorted(
            f"{prefix}{card}:{slot}" for card, slot in zip(cards, slots, strict=True)
        )
    finally:
        raw.close()
    rows = [{"card": card, "slot": slot} for card, slot in zip(cards, slots, strict=True)]
    assert store.get(layout, rows) == [{"x": float(i)} for i in range(5)]
    spelled = [
        {"card": "42", "slot": "7"},  # text, as the CLI passes it
        {"card": 42.0, "slot": np.int32(7)},
        {"card": np.int64(2**63 - 1), "slot": 1},
        {"card": 43, "slot": 7},  # another entity: nothing stored
    ]
    assert store.get(layout, spelled) == [{"x": 3.0}, {"x": 3.0}, {"x": 4.0}, None]


def write_config(root: Path) -> str:
    """A feature store with a `long`-keyed and a string-keyed feature set, online only."""
    (root / "featuresets").mkdir(parents=True)
    (root / "featurestore.yaml").write_text(
        f"project: keys_{uuid.uuid4().hex[:10]}\nfeature_sets: featuresets\n"
        "offline_store:\n  path: data/offline\n"
        f"online_store:\n  redis_url: {REDIS_URL}\n"
        "interval_table:\n  url: sqlite:///data/intervals.db\n"
    )
    for name, index, kind in (("cards", "cardID", "long"), ("accounts", "accountID", "string")):
        (root / "featuresets" / f"{name}.yaml").write_text(
            f"name: {name}\nversion: 1\nindex_columns:\n  - {{name: {index}, type: {kind}}}\n"
            f"timestamp_column: timestamp\nsource: {{format: parquet, path: data/source/{name}}}\n"
            "features:\n  - {name: limit, type: double}\n"
            "materialization: {offline: false, online: true}\n"
        )
    return str(root / "featurestore.yaml")


@pytest.fixture
def feature_store(tmp_path: Path) -> Iterator[tuple[FeatureStore, str]]:
    """The store of `write_config`, with card 7 and account A7 written; purged afterwards."""
    config = write_config(tmp_path / "fs")
    fs = FeatureStore(config, check_transformations=False)
    layouts = [fs.online_layout(fs.spec(name)) for name in ("cards", "accounts")]
    times = pa.array([T0], pa.timestamp("us", tz="UTC"))  # no TTL: never expires
    with fs.online_store() as online:
        online.write(
            layouts[0], pa.table({"cardID": pa.array([7], pa.int64()), "timestamp": times, "limit": [70.0]})
        )
        online.write(layouts[1], pa.table({"accountID": ["A7"], "timestamp": times, "limit": [7.0]}))
    yield fs, config
    with fs.online_store() as online:
        for layout in layouts:
            online.purge(layout)
    fs.close()


def test_get_online_features_with_a_long_key(feature_store: tuple[FeatureStore, str]) -> None:
    fs, _ = feature_store
    got = fs.get_online_features(["cards:limit"], [{"cardID": 7}, {"cardID": "7"}, {"cardID": 8}])
    assert got == [{"cardID": 7, "limit": 70.0}, {"cardID": "7", "limit": 70.0}, {"cardID": 8, "limit": None}]
    with pytest.raises(
        BadInput,
        match=r"^entity_rows\[1\]\.cardID: expected an integer \(cardID is a long index column\), "
        r"got the number 2\.5$",
    ):
        fs.get_online_features(["cards:limit"], [{"cardID": 7}, {"cardID": 2.5}])


# The first lookups of a fresh interpreter; prints what they imported and returned.
FIRST_LOOKUPS = r"""
import json, sys
import airflow_provider_featurestore as package
from airflow_provider_featurestore.core.featurestore import FeatureStore

store = FeatureStore(sys.argv[1], check_transformations=False)
store.online.disabled.get()  # which online stores are disabled: read once (the interval table), as serve does at start
before = set(sys.modules)
cards = store.get_online_features(["cards:limit"], [{"cardID": 7}, {"cardID": 8}])
accounts = store.get_online_features(["accounts:limit"], [{"accountID": "A7"}])
both = store.get_online_features(["cards:limit", "accounts:limit"], [{"cardID": 7, "accountID": "A7"}])
print(json.dumps({
    "results": [cards, accounts, both],
    "imported": sorted(set(sys.modules) - before),
    "pandas": "pandas" in sys.modules,
    "package": package.__file__,
}))
"""


def test_a_lookup_imports_nothing(feature_store: tuple[FeatureStore, str], tmp_path: Path) -> None:
    """The first lookups of a process (the connection opened by them) import no module: not
    pandas (Arrow's first `pa.array` of Python objects imports it, 0.2-0.4 s), nor what redis-py
    and the socket module import on a first connection unless told (importlib.metadata's email
    parser, encodings.idna)."""
    _, config = feature_store
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}
    env.pop("FEATURESTORE_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", FIRST_LOOKUPS, config],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # `-c` puts the working directory first on sys.path: this package only
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(PACKAGE_ROOT)
    assert report["results"] == [
        [{"cardID": 7, "limit": 70.0}, {"cardID": 8, "limit": None}],
        [{"accountID": "A7", "limit": 7.0}],
        [{"cardID": 7, "accountID": "A7", "cards__limit": 70.0, "accounts__limit": 7.0}],
    ]
    assert not report["pandas"], "a lookup imported pandas"
    assert report["imported"] == [], f"the first lookups imported {report['imported']}"


def test_connections_announce_redis_py_as_redis_py_would(store: RedisOnlineStore) -> None:
    """The online store names the client library itself (so that redis-py need not read its
    package metadata per connection); the name and version are what redis-py would send."""
    client = store._connect()
    connection = client.connection_pool.get_connection()
    try:
        info = getattr(connection, "driver_info", None)
        if info is None:  # pragma: no cover - redis-py before 7.1: its own defaults
            pytest.skip("this redis-py takes no driver_info")
        assert (info.formatted_name, info.lib_version) == ("redis-py", metadata.version("redis"))
    finally:
        client.connection_pool.release(connection)
    server = tuple(int(part) for part in str(client.info("server")["redis_version"]).split(".")[:2])
    if server >= (7, 2):  # CLIENT SETINFO: older servers refuse it and redis-py ignores that
        seen = client.client_info()
        assert (seen["lib-name"], seen["lib-ver"]) == ("redis-py", metadata.version("redis"))
