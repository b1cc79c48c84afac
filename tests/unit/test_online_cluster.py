"""Routing a write to the nodes of a Redis Cluster, without a server: every script call must
touch keys of one hash slot, and every row must go out exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.online import OnlineLayout
from airflow_provider_featurestore.core.online.cluster import group_by_slot, node_of, primaries, split_calls
from airflow_provider_featurestore.core.online.guarded_write import Packed, pack_rows

LAYOUT = OnlineLayout("p:fs:v1:", (Column("id", "string"),), "event_ts", (Column("x", "double"),))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def packed_rows(ids: list[str]) -> Packed:
    times = pa.array([T0] * len(ids), pa.timestamp("us", tz="UTC"))
    packed, _ = pack_rows(LAYOUT, pa.table({"id": ids, "event_ts": times, "x": [1.0] * len(ids)}), now=0)
    assert packed is not None
    return packed


def test_one_server_cuts_the_batch_in_order() -> None:
    packed = packed_rows([f"e{i}" for i in range(7)])
    calls = split_calls(packed, 3, by_slot=False)
    assert [(c.start, c.stop, c.slot) for c in calls] == [(0, 3, 0), (3, 6, 0), (6, 7, 0)]
    assert split_calls(None, 3, by_slot=False) == []


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(st.text(alphabet="ab{}c", min_size=1, max_size=6), min_size=1, max_size=60, unique=True),
    per_call=st.integers(1, 8),
)
def test_a_cluster_call_holds_one_slot_and_every_row_once(ids: list[str], per_call: int) -> None:
    packed = packed_rows(ids)
    calls = split_calls(packed, per_call, by_slot=True)
    sent = []
    for call in calls:
        names = [name.encode() for name in call.packed.names.to_pylist()[call.start : call.stop]]
        assert 0 < len(names) <= per_call
        assert {key_slot(name) for name in names} == {call.slot}
        sent += names
    assert sorted(sent) == sorted(LAYOUT.key([i]).encode() for i in ids)
    # Within a slot the rows keep their order (a later row of an entity stays later).
    order = {LAYOUT.key([i]).encode(): n for n, i in enumerate(ids)}
    for slot in {call.slot for call in calls}:
        of_slot = [name for name in sent if key_slot(name) == slot]
        assert of_slot == sorted(of_slot, key=order.__getitem__)


def test_keys_are_grouped_by_slot() -> None:
    keys = [b"{a}1", b"{b}1", b"{a}2", b"{b}2", b"c"]
    groups = group_by_slot(keys)
    assert sorted(groups) == sorted([[b"{a}1", b"{a}2"], [b"{b}1", b"{b}2"], [b"c"]])


def test_one_server_is_its_own_node_and_primary() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0")  # never connected: routing asks nothing
    assert node_of(client, 1234) is client
    assert primaries(client) == [client]
