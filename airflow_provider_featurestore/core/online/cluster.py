"""Routing to the nodes of a Redis Cluster (and the trivial routing of a single Redis).

A script call may only touch keys of one hash slot, so a write's rows are sorted by slot and
cut at slot boundaries; each call then goes to the primary that owns its slot. A purge scans
every primary and unlinks each page of keys grouped by slot. On one server all of this is one
node and slot 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from airflow_provider_featurestore.core.online.guarded_write import Call, Packed


def split_calls(packed: Packed | None, keys_per_call: int, *, by_slot: bool) -> list[Call]:
    """Cut a packed batch into script calls of at most `keys_per_call` keys; `by_slot` (a
    cluster): every call's keys share a slot, the rows reordered by slot, stable."""
    if packed is None:
        return []
    rows, step = len(packed.keys), keys_per_call
    if not by_slot:
        return [Call(packed, start, min(start + step, rows)) for start in range(0, rows, step)]
    slots = np.fromiter((key_slot(key.encode()) for key in packed.names.to_pylist()), np.int64, rows)
    order = np.argsort(slots, kind="stable")
    packed, slots = packed.take(pa.array(order)), slots[order]
    bounds = (np.flatnonzero(np.diff(slots)) + 1).tolist()
    calls = []
    for start, stop in zip([0, *bounds], [*bounds, rows], strict=True):
        slot = int(slots[start])
        calls += [Call(packed, a, min(a + step, stop), slot) for a in range(start, stop, step)]
    return calls


def node_of(client: redis.Redis | RedisCluster, slot: int) -> redis.Redis:
    """The client of the node that owns `slot` (as last known; a MOVED reply refreshes it)."""
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(client.nodes_manager.get_node_from_slot(slot))
    return client


def primaries(client: redis.Redis | RedisCluster) -> list[redis.Redis]:
    """A client per node that holds keys: every primary of a cluster, or the one server."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


def refresh_slots(client: redis.Redis | RedisCluster) -> None:
    """Reload the slot map of a cluster (after MOVED, ASK or CLUSTERDOWN); nothing on one server."""
    if isinstance(client, RedisCluster):
        client.nodes_manager.initialize()


def group_by_slot(keys: Iterable[bytes]) -> list[list[bytes]]:
    """The keys in groups of one slot each: a multi-key command on a cluster needs one slot."""
    by_slot: dict[int, list[bytes]] = {}
    for key in keys:
        by_slot.setdefault(key_slot(key), []).append(key)
    return list(by_slot.values())
