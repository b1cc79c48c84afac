"""The online store in Redis (or Redis Cluster): `OnlineStore` over the guarded-write script,
hand-packed RESP and cluster routing.

Each entity is a hash at its layout key, readable with `redis-cli HGETALL`. Writes are the hot
path (Spark executors, one Arrow batch at a time): the rows become RESP bytes with vectorized
Arrow kernels (`guarded_write.py`), and the script calls are sent pipelined, one connection per
node (`pipeline.py`). Lookups are one round trip of HMGETs (`resp.py`). This module imports
neither Airflow nor Spark; a store is rebuilt from its URL when unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import redis
from redis.cluster import RedisCluster

from airflow_provider_featurestore.core.online import cluster, resp
from airflow_provider_featurestore.core.online.codec import DECODERS, EPOCH
from airflow_provider_featurestore.core.online.connection import (
    RedisOptions,
    open_client,
    safe_url,
    unavailable,
)
from airflow_provider_featurestore.core.online.guarded_write import SCRIPT, Call, pack_rows
from airflow_provider_featurestore.core.online.layout import EVENT_TIME_FIELD, OnlineLayout, entity_keys
from airflow_provider_featurestore.core.online.pipeline import ScriptPipeline
from airflow_provider_featurestore.core.online.protocol import (
    EntityRows,
    FoundRow,
    LookupRequest,
    OnlineStore,
    OnlineStoreUnavailable,
    WriteStats,
)

SCHEMES = ("redis", "rediss", "unix")


def _restore(url: str, options: RedisOptions) -> RedisOnlineStore:
    return RedisOnlineStore(url, **dataclasses.asdict(options))


class RedisOnlineStore(OnlineStore):
    """A client of a Redis online store; cheap to build, connects on first use, thread-safe.

    `cluster=None` asks the server (`INFO cluster`) and uses Redis Cluster when it is enabled.
    Pickling keeps only the URL and options: a Spark executor builds its own connections.
    """

    # Keys per script call: enough to amortize a call, few enough not to block Redis for long:
    # lookups wait behind a running script (about 0.6 ms for 100 keys; 500 took 5-20 ms on a busy
    # machine, the p99 of lookups under a backfill). 100 costs 3% of the write rate against 500
    # (benchmarks/online_write.py). Rows encoded at once: bounds memory; sending one overlaps
    # encoding the next.
    keys_per_call = 100
    rows_per_encode = 20_000
    retries = 5

    def __init__(
        self,
        url: str,
        *,
        cluster: bool | None = None,
        password: str | None = None,
        ssl: bool | None = None,
        ssl_ca_certs: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"{safe_url(url)} is not a Redis URL (redis://, rediss:// or unix://)")
        if ssl is not None and parts.scheme != "unix":
            url = ("rediss" if ssl else "redis") + url[len(parts.scheme) :]
        if ssl_ca_certs is not None and not url.startswith("rediss://"):
            raise ValueError("ssl_ca_certs needs TLS: a rediss:// URL or ssl=True")
        self._url = url
        self._options = RedisOptions(cluster, password, ssl, ssl_ca_certs)
        self._client: redis.Redis | RedisCluster | None = None
        self._loaded: set[int] = set()  # connection pools (nodes) known to hold the script
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisOnlineStore:
        return cls(url, **options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._url, self._options))

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        return safe_url(self._url, self._options.password)

    # -- connection --------------------------------------------------------------------

    def _connect(self) -> redis.Redis | RedisCluster:
        with self._lock:
            if self._client is None:
                with self._translated():
                    self._client = open_client(self._url, self._options)
            return self._client

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        return unavailable(self._url, self._options.password)

    def ping(self) -> None:
        client = self._connect()
        with self._translated():
            client.ping()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._loaded.clear()

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._connect(), RedisCluster)

    # -- write -------------------------------------------------------------------------

    def write(
        self, layout: OnlineLayout, batch: pa.RecordBatch | pa.Table, *, now: int | None = None
    ) -> WriteStats:
        """See `OnlineStore.write`. Rows are encoded a slice at a time; a slice is sent before the
        previous slice's replies are read, so encoding here overlaps the scripts running in Redis.
        """
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        wanted = (*(c.name for c in layout.index_columns), layout.timestamp_column, *layout.feature_names)
        missing = [name for name in wanted if name not in table.column_names]
        if missing:
            raise ValueError(f"the rows lack column(s) {', '.join(missing)} of the online layout")
        now = int(time.time()) if now is None else now
        stats = WriteStats(rows=table.num_rows)
        client = self._connect()
        by_slot = isinstance(client, RedisCluster)
        pipeline = ScriptPipeline(lambda call: self._script_node(client, call))
        try:
            with self._translated():
                for offset in range(0, table.num_rows, self.rows_per_encode):
                    packed, expired = pack_rows(layout, table.slice(offset, self.rows_per_encode), now)
                    stats.skipped_expired += expired
                    pipeline.step(cluster.split_calls(packed, self.keys_per_call, by_slot=by_slot))
                    if pipeline.error is not None:
                        break
                pipeline.read(pipeline.in_flight)
                for attempt in range(1, self.retries + 1):
                    if not pipeline.failed or pipeline.error is not None:
                        break
                    calls, pipeline.failed = pipeline.failed, []
                    self._loaded.clear()  # NOSCRIPT: a restart or SCRIPT FLUSH; cluster: slots moved
                    cluster.refresh_slots(client)
                    time.sleep(0.05 * attempt)
                    pipeline.read(pipeline.send(calls))
        finally:
            pipeline.close()
        if pipeline.error is not None:
            raise pipeline.error
        if pipeline.failed:
            raise OnlineStoreUnavailable(
                f"the online store kept refusing {len(pipeline.failed)} script call(s): {pipeline.last_retry}"
            )
        stats.written, stats.skipped_older = pipeline.written, pipeline.older
        return stats

    def _script_node(self, client: redis.Redis | RedisCluster, call: Call) -> redis.Redis:
        """The node a script call goes to, the script loaded there once per connection pool."""
        node = cluster.node_of(client, call.slot)
        if id(node.connection_pool) not in self._loaded:
            node.script_load(SCRIPT)
            self._loaded.add(id(node.connection_pool))
        return node

    # -- the marker ----------------------------------------------------------------------

    def mark(self, layout: OnlineLayout, *, now: int | None = None) -> None:
        client = self._connect()
        with self._translated():
            client.set(layout.marker_key, str(int(time.time()) if now is None else now))

    def has_marker(self, layout: OnlineLayout) -> bool:
        client = self._connect()
        with self._translated():
            return bool(client.exists(layout.marker_key))

    keys_per_exists = 1000  # EXISTS per pipelined round trip: bounds the request and reply buffers

    def missing_keys(self, keys: Sequence[str]) -> set[str]:
        """See `OnlineStore.missing_keys`: one EXISTS per key, pipelined, `keys_per_exists` a round
        trip (a cluster's pipeline sends each key to its node)."""
        client = self._connect()
        missing: set[str] = set()
        with self._translated():
            for start in range(0, len(keys), self.keys_per_exists):
                batch = keys[start : start + self.keys_per_exists]
                pipe = client.pipeline(transaction=False)
                for key in batch:
                    pipe.exists(key)
                missing.update(key for key, found in zip(batch, pipe.execute(), strict=True) if not found)
        return missing

    # -- read --------------------------------------------------------------------------

    def lookup(
        self, requests: Sequence[LookupRequest], entity_rows: EntityRows, *, with_event_time: bool = False
    ) -> list[list[FoundRow]]:
        """See `OnlineStore.lookup`: every HMGET of every layout in one round trip."""
        commands: list[tuple[str, list[str]]] = []
        plans = []
        for layout, features in requests:
            by_name = {column.name: column for column in layout.features}
            names = list(layout.feature_names if features is None else features)
            unknown = [name for name in names if name not in by_name]
            if unknown:
                raise ValueError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
            fields = [EVENT_TIME_FIELD, *names]
            commands += [(key, fields) for key in entity_keys(layout, entity_rows)]
            plans.append((layout, names, [DECODERS[by_name[name].type] for name in names]))
        if not commands:
            return [[] for _ in requests]
        client = self._connect()
        started = time.perf_counter()
        with self._translated():
            replies = iter(resp.hmget_many(client, commands))
        if self.round_trip_observer is not None:
            self.round_trip_observer(time.perf_counter() - started)
        results = []
        for layout, names, decoders in plans:
            rows: list[FoundRow] = []
            for _entity in entity_rows:
                reply = next(replies)
                if reply[0] is None:
                    rows.append(None)
                    continue
                row = {
                    name: None if raw is None else decode(raw)
                    for name, decode, raw in zip(names, decoders, reply[1:], strict=True)
                }
                if with_event_time:
                    row[layout.timestamp_column] = EPOCH + timedelta(microseconds=int(reply[0]))
                rows.append(row)
            results.append(rows)
        return results

    # -- purge -------------------------------------------------------------------------

    def purge(self, layout_or_prefix: OnlineLayout | str) -> int:
        """See `OnlineStore.purge`: SCAN and UNLINK on every primary of a cluster."""
        prefix = layout_or_prefix.prefix if isinstance(layout_or_prefix, OnlineLayout) else layout_or_prefix
        if not prefix:
            raise ValueError("refusing to purge an empty prefix (that is every key)")
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in prefix) + "*"
        client = self._connect()
        nodes = cluster.primaries(client)
        deleted = 0
        with self._translated():
            for node in nodes:
                for keys in _batches(node.scan_iter(match=pattern, count=1000), 1000):
                    pipe = node.pipeline(transaction=False)
                    for group in cluster.group_by_slot(keys):
                        pipe.unlink(*group)
                    deleted += sum(pipe.execute())
        return deleted

    def delete_keys(self, keys: Sequence[str]) -> int:
        """See `OnlineStore.delete_keys`: UNLINK, pipelined, one command per slot (a cluster's
        pipeline sends each to its node), `keys_per_exists` keys a round trip."""
        client = self._connect()
        deleted = 0
        with self._translated():
            for start in range(0, len(keys), self.keys_per_exists):
                pipe = client.pipeline(transaction=False)
                for group in cluster.group_by_slot(
                    key.encode() for key in keys[start : start + self.keys_per_exists]
                ):
                    pipe.unlink(*group)
                deleted += sum(pipe.execute())
        return deleted


def _batches(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
