"""Redis commands packed by hand in RESP, the protocol's wire format.

redis-py builds each command from Python objects, one argument at a time; a write of 100,000
rows would spend most of its time there. Here a write's arguments become RESP bytes with
vectorized Arrow kernels (one `$<length>\\r\\n<value>\\r\\n` per value, for a whole column at
once) and a lookup's HMGETs are joined into one buffer: 3x redis-py's pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.cluster import RedisCluster


def bulk(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value -> one RESP bulk string `$<bytes>\\r\\n<value>\\r\\n` (null -> empty)."""
    return pc.binary_join_element_wise(*bulk_parts(text), "")


def bulk_parts(text: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The pieces of `bulk`, to join many columns' pieces in one kernel call."""
    if text.null_count:
        text = pc.fill_null(text, "")
    return ["$", pc.cast(pc.binary_length(text), pa.string()), "\r\n", text, "\r\n"]


def bulk_bytes(value: str | bytes) -> bytes:
    """One value as a RESP bulk string."""
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def slice_bytes(array: pa.Array, start: int, stop: int) -> memoryview:
    """The data bytes of rows [start, stop) of a string array, without copying."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    return memoryview(array.buffers()[2])[offsets[start] : offsets[stop]]


def checkout(pool: Any) -> Any:
    """A connection of the pool (redis-py before 5.3 wants a command name, later ones none)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("EVALSHA")


def hmget_many(
    client: redis.Redis | RedisCluster, commands: Sequence[tuple[str, Sequence[str]]]
) -> list[Any]:
    """HMGET of every (key, fields) in one round trip; on one node, packed by hand (3x redis-py's
    pipeline)."""
    if isinstance(client, RedisCluster):  # its pipeline routes per node and follows MOVED
        pipe = client.pipeline(transaction=False)
        for key, fields in commands:
            pipe.hmget(key, list(fields))
        return pipe.execute()
    tails: dict[int, bytes] = {}
    parts = []
    for key, fields in commands:
        tail = tails.get(id(fields))
        if tail is None:
            tail = tails[id(fields)] = b"".join(bulk_bytes(name) for name in fields)
        parts.append(b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2) + bulk_bytes(key) + tail)
    pool = client.connection_pool
    connection = checkout(pool)
    try:
        connection.send_packed_command([b"".join(parts)], check_health=False)
        return [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        pool.release(connection)
