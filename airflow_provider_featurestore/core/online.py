"""The online store: the latest feature values per entity, in Redis (or Redis Cluster).

Layout of one feature set version (readable with `redis-cli HGETALL`):

* key: `<project>:<feature set>:v<version>:` + the index values joined by `:`, with `%` and
  `:` inside a value written `%25` and `%3A` (so a key always splits back unambiguously);
* a hash with one field per non-null feature, as text: integers in decimal, floats and
  doubles as the shortest text that reads back to the same value (Arrow's formatter:
  `123.45`, `100`, `1e-7`, `nan`), booleans `true`/`false`, dates `2024-01-01`, timestamps
  ISO-8601 UTC (`2024-01-01T00:00:00Z`, `.ffffff` only when non-zero), strings as is;
* a field `_event_time`: the row's event time in integer epoch microseconds.

A write never replaces a stored row with an older event time (a backfill of old windows cannot
regress fresher values) and always replaces it on an equal one (a corrected re-materialization
lands). The check and the replacement happen in one Lua script per call, for hundreds of keys
per call, so they are atomic per key and cheap. With a TTL, a key expires TTL seconds after its
event time (`EXPIREAT`), and rows already expired are not written at all.

Writes are the hot path (Spark executors, one Arrow batch at a time): the values are turned
into text and into RESP bytes with vectorized Arrow kernels, and the script calls are sent as
pre-packed commands, pipelined, one connection per node. This module imports neither Airflow
nor Spark; an `OnlineStore` is rebuilt from its URL when unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis import exceptions as rexc
from redis.cluster import RedisCluster
from redis.crc import key_slot

from airflow_provider_featurestore.core.column_types import COLUMN_TYPES, TYPES
from airflow_provider_featurestore.core.errors import ServiceUnavailable

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.config import Column, FeatureSetSpec, FeatureStoreConfig

EVENT_TIME_FIELD = "_event_time"
MARKER_SUFFIX = "_written"
_INTEGER_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}

# KEYS: the keys. ARGV: nf, nf field names, then per key: event time (epoch us), expire-at
# (epoch s, "0" = none), a null mask ("" = no nulls, else one "0"/"1" per field, "1" = null)
# and nf values. Returns {written, skipped as older}. Epoch microseconds compare exactly as
# Lua numbers (doubles) until the year 2255. Every key written here has `_event_time`, so a
# key without one is absent (or expired) and needs no DEL before its HSET.
_SCRIPT = """
local call = redis.call
local nf = tonumber(ARGV[1])
local stride = nf + 3
local written, older = 0, 0
local full, last = {'_event_time', false}, 2 + 2 * nf
for j = 1, nf do full[2 * j + 1] = ARGV[1 + j] end
for i = 1, #KEYS do
  local key = KEYS[i]
  local o = 1 + nf + (i - 1) * stride
  local t = ARGV[o + 1]
  local cur = call('HGET', key, '_event_time')
  if cur and tonumber(cur) > tonumber(t) then
    older = older + 1
  else
    if cur then
      call('DEL', key)
    end
    local mask = ARGV[o + 3]
    if mask == '' then
      full[2] = t
      for j = 1, nf do full[2 * j + 2] = ARGV[o + 3 + j] end
      call('HSET', key, unpack(full, 1, last))
    else
      local args, n = {'_event_time', t}, 2
      for j = 1, nf do
        if string.byte(mask, j) ~= 49 then
          args[n + 1] = ARGV[1 + j]
          args[n + 2] = ARGV[o + 3 + j]
          n = n + 2
        end
      end
      call('HSET', key, unpack(args, 1, n))
    end
    local exp = ARGV[o + 2]
    if exp ~= '0' then
      call('EXPIREAT', key, exp)
    end
    written = written + 1
  end
end
return {written, older}
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()

# redis-py 7.1+ reads its own version from the package metadata for every new connection
# (CLIENT SETINFO LIB-VER) unless given it: importlib.metadata and the email parser imported
# on the first lookup of a process (6-7 ms), then about 1 ms per connection. The same name
# and version, given once here; older redis-py read it once at import and take no argument.
try:
    from redis.driver_info import DriverInfo

    _DRIVER: dict[str, Any] = {"driver_info": DriverInfo(name="redis-py", lib_version=redis.__version__)}
except ImportError:  # pragma: no cover - redis-py before 7.1
    _DRIVER = {}
# The first connection's `socket.getaddrinfo` encodes the host name with the idna codec, which
# imports `encodings.idna`, `stringprep` and `unicodedata` (2 ms) on the lookup path; done here.
"localhost".encode("idna")
_RETRY_ERRORS = (rexc.NoScriptError, rexc.AskError, rexc.TryAgainError, rexc.ClusterDownError)


class OnlineStoreUnavailable(ServiceUnavailable):
    """The online store cannot be reached or refuses us; the message never shows a password."""


# ---------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineLayout:
    """Everything needed to encode and decode one feature set version in Redis."""

    prefix: str
    index_columns: tuple[Column, ...]
    timestamp_column: str
    features: tuple[Column, ...]
    ttl: int | None = None

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ValueError("an online layout needs a non-empty key prefix")
        if not self.index_columns:
            raise ValueError("an online layout needs at least one index column")
        for column in (*self.index_columns, *self.features):
            if column.type not in COLUMN_TYPES:
                raise ValueError(f"column {column.name!r} has unknown type {column.type!r}")
        names = [column.name for column in self.features]
        if EVENT_TIME_FIELD in names or len(set(names)) != len(names):
            raise ValueError(f"feature names must be distinct and not {EVENT_TIME_FIELD!r}: {names}")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError(f"ttl must be positive seconds, got {self.ttl}")

    @classmethod
    def from_spec(cls, config: FeatureStoreConfig, spec: FeatureSetSpec) -> OnlineLayout:
        """The layout of one feature set version of a feature store."""
        return cls(
            prefix=config.online_key_prefix(spec),
            index_columns=spec.index_columns,
            timestamp_column=spec.timestamp_column,
            features=spec.features,
            ttl=spec.materialization.online_ttl,
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features)

    @property
    def marker_key(self) -> str:
        """The key that says this feature set version was written since Redis last lost its data.

        `<prefix>` + one `:` per index column + `_written`: an entity key holds one `:` fewer
        (values never hold a bare `:`, it is escaped), so no entity can own it; it starts with the
        prefix, so `purge` (disable-online) removes it with the rest.
        """
        return self.prefix + ":" * len(self.index_columns) + MARKER_SUFFIX

    def key(self, index_values: Sequence[object]) -> str:
        """The Redis key of one entity, from its index values in index column order."""
        if len(index_values) != len(self.index_columns):
            names = [column.name for column in self.index_columns]
            raise ValueError(
                f"expected {len(names)} index values ({', '.join(names)}), got {len(index_values)}"
            )
        texts = [
            _plain_texts([value], column.type)
            for value, column in zip(index_values, self.index_columns, strict=True)
        ]
        if all(text is not None for text in texts):  # strings and integers, as `keys` writes them
            return self.prefix + ":".join(text[0] for text in texts)  # type: ignore[index]
        arrays = [
            _python_array([value], column)
            for value, column in zip(index_values, self.index_columns, strict=True)
        ]
        return self.keys(arrays)[0].as_py()

    def keys(self, index_arrays: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
        """The keys of many entities at once (one Arrow array per index column)."""
        parts: list[Any] = [self.prefix]
        for i, (array, column) in enumerate(zip(index_arrays, self.index_columns, strict=True)):
            if array.null_count:
                raise ValueError(f"index column {column.name!r} has null values; every entity needs a key")
            text = _text(array, column.type)
            if column.type not in _INTEGER_RANGES:  # decimal integers hold neither % nor :
                text = pc.replace_substring(pc.replace_substring(text, "%", "%25"), ":", "%3A")
            parts += [":", text] if i else [text]
        return _contiguous(pc.binary_join_element_wise(*parts, ""))


# ---------------------------------------------------------------------------------------
# Values <-> text
# ---------------------------------------------------------------------------------------


def _text(array: pa.Array | pa.ChunkedArray, type_name: str) -> pa.Array:
    """Values of a declared column type -> their stored text (nulls stay null), vectorized."""
    if type_name == "timestamp":
        return _timestamp_text(array)
    return pc.cast(pc.cast(array, TYPES[type_name].arrow), pa.string())


def _timestamp_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`2024-01-01T00:00:00Z`, with `.ffffff` only when the microseconds are non-zero."""
    micros = _epoch_us(array, "a timestamp feature", allow_null=True)
    valid = None if array.null_count == 0 else pc.is_valid(array)
    seconds = pa.array(np.floor_divide(micros, 1_000_000), pa.timestamp("s"), mask=_mask(valid))
    fraction = np.mod(micros, 1_000_000)
    whole = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    if not fraction.any():
        return pc.binary_join_element_wise(whole, "Z", "")
    padded = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), width=6, padding="0")
    suffix = pc.if_else(pa.array(fraction != 0), pc.binary_join_element_wise(".", padded, "Z", ""), "Z")
    return pc.binary_join_element_wise(whole, suffix, "")


def _mask(valid: pa.Array | pa.ChunkedArray | None) -> np.ndarray | None:
    if valid is None:
        return None
    return ~np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)


def _epoch_us(array: pa.Array | pa.ChunkedArray, what: str, *, allow_null: bool = False) -> np.ndarray:
    """A timestamp array of any unit and time zone (naive = UTC) -> int64 epoch microseconds."""
    if not pa.types.is_timestamp(array.type):
        raise ValueError(f"{what} must be an Arrow timestamp, got {array.type}")
    if array.null_count and not allow_null:
        raise ValueError(f"{what} has null values")
    raw = pc.cast(array, pa.int64())  # the stored UTC instants, whatever the time zone
    values = (pc.fill_null(raw, 0) if raw.null_count else raw).to_numpy().astype(np.int64, copy=False)
    unit = array.type.unit
    if unit == "ns":
        return np.floor_divide(values, 1_000)
    return values * _US_PER_UNIT[unit]


def _python_array(values: Sequence[object], column: Column) -> pa.Array:
    """Python values (text is parsed, for the CLI's `--key id=42`) -> an Arrow array of the type."""
    kind = column.type
    parsed = list(values)
    if kind != "string":
        parsed = [_parse(value, kind, column.name) if isinstance(value, str) else value for value in values]
    if kind == "timestamp":
        parsed = [
            v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in parsed
        ]
    if kind in ("int", "long"):  # Arrow would truncate 2.5 to 2: another entity's key
        for number, value in enumerate(parsed):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(
                    f"index column {column.name!r} ({kind}): value {number} {value!r} is not an integer"
                )
    try:
        return pa.array(parsed, TYPES[kind].arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        bad = _first_bad(parsed, TYPES[kind].arrow)
        raise ValueError(f"index column {column.name!r} ({kind}): {bad}: {exc}"[:500]) from None


def _plain_texts(values: Sequence[object], kind: str, prefix: str = "") -> list[str] | None:
    """`prefix` + the key text of each index value of one column (escaped), in plain Python:
    the text `OnlineLayout.keys` makes of the same values with Arrow, without Arrow calls per
    lookup (90 us for one long key, and the first `pa.array` of Python objects in a process
    imports pandas: 0.2-0.4 s). None unless every value is plainly valid: a str for a string
    column; an int in the type's range, its decimal text or a float with no fraction for an int
    or long column. The caller then takes the Arrow path, which refuses a bad value with its
    usual message (or writes a type this function leaves to Arrow)."""
    if kind == "string":
        if all(type(value) is str for value in values):
            return [prefix + value.replace("%", "%25").replace(":", "%3A") for value in values]  # type: ignore[attr-defined]
        return None
    limits = _INTEGER_RANGES.get(kind)
    if limits is None:
        return None
    low, high = limits
    texts = [prefix + str(v) for v in values if type(v) is int and low <= v <= high]  # type: ignore[operator]
    if len(texts) == len(values):  # the common case: decimal, as Arrow's cast to string
        return texts
    texts = []
    for value in values:
        if type(value) is not int:
            if type(value) is str:  # text is parsed as `_parse` does (the CLI's `--key id=42`)
                try:
                    value = int(value)
                except ValueError:
                    return None
            elif (type(value) is float and value.is_integer()) or isinstance(value, np.integer):
                value = int(value)  # 2.0 is entity 2 (2.5 and nan are not integers)
            else:  # bool, None, a fraction, anything else: Arrow says what is wrong
                return None
        if not low <= value <= high:
            return None
        texts.append(prefix + str(value))
    return texts


def _escape(value: object) -> str:
    """A string index value as it appears in a key (see `OnlineLayout.keys`)."""
    if not isinstance(value, str):
        raise ValueError(f"a string index column got {value!r:.80}; every entity needs a text key")
    return value.replace("%", "%25").replace(":", "%3A")


def _first_bad(values: Sequence[object], arrow_type: pa.DataType) -> str:
    """Which value of a column Arrow refused (the message names one value, not all of them)."""
    for number, value in enumerate(values):
        try:
            pa.array([value], arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return f"value {number} {value!r:.80} is not a {arrow_type}"
    return f"{len(values)} value(s)"


def _parse(text: str, kind: str, name: str) -> object:
    try:
        if kind in ("int", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            return {"true": True, "false": False}[text.lower()]
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "timestamp":
            return datetime.fromisoformat(text)
    except (ValueError, KeyError):
        raise ValueError(f"index column {name!r} is a {kind}: cannot read {text!r}") from None
    return text


def _decode_timestamp(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


_DECODERS: dict[str, Any] = {
    "string": lambda raw: raw.decode(),
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": lambda raw: raw == b"true",
    "timestamp": _decode_timestamp,
    "date": lambda raw: date.fromisoformat(raw.decode()),
}


# ---------------------------------------------------------------------------------------
# RESP encoding
# ---------------------------------------------------------------------------------------


def _contiguous(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _bulk(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value -> one RESP bulk string `$<bytes>\\r\\n<value>\\r\\n` (null -> empty)."""
    return pc.binary_join_element_wise(*_bulk_parts(text), "")


def _bulk_parts(text: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The pieces of `_bulk`, to join many columns' pieces in one kernel call."""
    if text.null_count:
        text = pc.fill_null(text, "")
    return ["$", pc.cast(pc.binary_length(text), pa.string()), "\r\n", text, "\r\n"]


def _bulk_bytes(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


@dataclass
class _Packed:
    """Per-row RESP pieces of a batch: `keys[i]` and `args[i]` are row i's bytes."""

    names: pa.Array  # the keys as text
    keys: pa.Array
    args: pa.Array
    fields_header: bytes  # nf and the field names, sent once per call
    per_key: int  # ARGV entries per key

    def take(self, indices: pa.Array) -> _Packed:
        return _Packed(
            self.names.take(indices),
            self.keys.take(indices),
            self.args.take(indices),
            self.fields_header,
            self.per_key,
        )

    def command(self, start: int, stop: int) -> list[Any]:
        """The EVALSHA of rows [start, stop), as buffers for `send_packed_command`."""
        n = stop - start
        argc = 3 + n + 1 + (self.per_key - 3) + n * self.per_key  # EVALSHA sha numkeys keys nf names args
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (argc, _SHA.encode(), _bulk_bytes(str(n)))
        return [head, _slice(self.keys, start, stop), self.fields_header, _slice(self.args, start, stop)]


def _slice(array: pa.Array, start: int, stop: int) -> memoryview:
    """The data bytes of rows [start, stop) of a string array, without copying."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    return memoryview(array.buffers()[2])[offsets[start] : offsets[stop]]


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------


@dataclass
class WriteStats:
    """What one or more writes did: rows given = written + skipped_older + skipped_expired."""

    rows: int = 0
    written: int = 0
    skipped_older: int = 0
    skipped_expired: int = 0

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(
            self.rows + other.rows,
            self.written + other.written,
            self.skipped_older + other.skipped_older,
            self.skipped_expired + other.skipped_expired,
        )


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One script call: the rows [start, stop) of a packed batch, all on one node (one slot)."""

    packed: _Packed
    start: int
    stop: int
    slot: int = 0


@dataclass(frozen=True)
class _Options:
    cluster: bool | None = None
    password: str | None = None
    ssl: bool | None = None
    ssl_ca_certs: str | None = None


def _restore(url: str, options: _Options) -> OnlineStore:
    return OnlineStore(url, **dataclasses.asdict(options))


class OnlineStore:
    """A client of the online store; cheap to build, connects on first use, thread-safe.

    `cluster=None` asks the server (`INFO cluster`) and uses Redis Cluster when it is enabled.
    Pickling keeps only the URL and options: a Spark executor builds its own connections.
    """

    # Keys per script call: enough to amortize a call, few enough not to block Redis for long
    # (about 2 ms). Rows encoded at once: bounds memory; sending one overlaps encoding the next.
    keys_per_call = 500
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
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{_safe_url(url)} is not a Redis URL (redis://, rediss:// or unix://)")
        if ssl is not None and parts.scheme != "unix":
            url = ("rediss" if ssl else "redis") + url[len(parts.scheme) :]
        if ssl_ca_certs is not None and not url.startswith("rediss://"):
            raise ValueError("ssl_ca_certs needs TLS: a rediss:// URL or ssl=True")
        self._url = url
        self._options = _Options(cluster, password, ssl, ssl_ca_certs)
        self._client: redis.Redis | RedisCluster | None = None
        self._loaded: set[int] = set()  # connection pools (nodes) known to hold the script
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> OnlineStore:
        return cls(url, **options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._url, self._options))

    def __repr__(self) -> str:
        return f"OnlineStore({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL as messages show it: no user, password or query."""
        return _safe_url(self._url, self._options.password)

    # -- connection --------------------------------------------------------------------

    def _connect(self) -> redis.Redis | RedisCluster:
        with self._lock:
            if self._client is None:
                with self._translated():
                    self._client = self._open()
            return self._client

    def _open(self) -> redis.Redis | RedisCluster:
        kwargs: dict[str, Any] = {"socket_connect_timeout": 10, "socket_timeout": 120, **_DRIVER}
        if self._options.password is not None:
            kwargs["password"] = self._options.password
        if self._options.ssl_ca_certs is not None:
            kwargs["ssl_ca_certs"] = self._options.ssl_ca_certs
        cluster = self._options.cluster
        if cluster is None:
            single = redis.Redis.from_url(self._url, **kwargs)
            try:
                cluster = str(single.info("cluster").get("cluster_enabled", 0)) == "1"
            except rexc.ResponseError:  # INFO renamed or forbidden: not a cluster we can manage
                cluster = False
            if not cluster:
                return single
            single.close()
        if cluster:
            if self._url.startswith("unix://"):
                raise ValueError("Redis Cluster needs a redis:// or rediss:// URL, not unix://")
            client = RedisCluster.from_url(self._url, **kwargs)
            client.ping()
            return client
        return redis.Redis.from_url(self._url, **kwargs)

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        return _unavailable(self._url, self._options.password)

    def ping(self) -> None:
        """Check that the store answers; raises OnlineStoreUnavailable naming the URL (no password)."""
        client = self._connect()
        with self._translated():
            client.ping()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._loaded.clear()

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._connect(), RedisCluster)

    # -- write -------------------------------------------------------------------------

    def write(
        self, layout: OnlineLayout, batch: pa.RecordBatch | pa.Table, *, now: int | None = None
    ) -> WriteStats:
        """Store rows that are each the latest of their entity (one row per key) in a window.

        A stored row is replaced unless it has a newer event time; with a TTL, rows already
        expired at `now` (epoch seconds, default the current time) are counted and skipped.
        Rows are encoded a slice at a time; a slice is sent before the previous slice's
        replies are read, so encoding here overlaps the scripts running in Redis.
        """
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        wanted = (*(c.name for c in layout.index_columns), layout.timestamp_column, *layout.feature_names)
        missing = [name for name in wanted if name not in table.column_names]
        if missing:
            raise ValueError(f"the rows lack column(s) {', '.join(missing)} of the online layout")
        now = int(time.time()) if now is None else now
        stats = WriteStats(rows=table.num_rows)
        client = self._connect()
        pipeline = _Pipeline(self, client)
        try:
            with self._translated():
                for offset in range(0, table.num_rows, self.rows_per_encode):
                    packed, expired = self._pack(layout, table.slice(offset, self.rows_per_encode), now)
                    stats.skipped_expired += expired
                    pipeline.step(self._calls(client, packed))
                    if pipeline.error is not None:
                        break
                pipeline.read(pipeline.in_flight)
                for attempt in range(1, self.retries + 1):
                    if not pipeline.failed or pipeline.error is not None:
                        break
                    calls, pipeline.failed = pipeline.failed, []
                    self._loaded.clear()  # NOSCRIPT: a restart or SCRIPT FLUSH; cluster: slots moved
                    if isinstance(client, RedisCluster):
                        client.nodes_manager.initialize()
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

    def _pack(self, layout: OnlineLayout, table: pa.Table, now: int) -> tuple[_Packed | None, int]:
        """Rows -> per-row RESP bytes of the key and of the script arguments (vectorized)."""
        column = layout.timestamp_column
        event_us = _epoch_us(table.column(column), f"timestamp column {column!r}")
        expired = 0
        expire_piece: Any = "$1\r\n0\r\n"
        if layout.ttl is not None:
            expire_at = np.floor_divide(event_us, 1_000_000) + layout.ttl
            live = expire_at > now
            expired = int(len(live) - np.count_nonzero(live))
            if expired:
                table = table.filter(pa.array(live))
                event_us, expire_at = event_us[live], expire_at[live]
            expire_piece = _bulk(pc.cast(pa.array(expire_at), pa.string()))
        if table.num_rows == 0:
            return None, expired
        names = layout.keys([table.column(c.name) for c in layout.index_columns])
        columns = [table.column(c.name) for c in layout.features]
        mask_piece: Any = "$0\r\n\r\n"
        if any(column.null_count for column in columns):
            flags = [pc.if_else(pc.is_null(column), "1", "0") for column in columns]
            any_null = pc.is_null(columns[0])
            for column in columns[1:]:
                any_null = pc.or_(any_null, pc.is_null(column))
            mask_piece = _bulk(pc.if_else(any_null, pc.binary_join_element_wise(*flags, ""), ""))
        pieces = [*_bulk_parts(pc.cast(pa.array(event_us), pa.string())), expire_piece, mask_piece]
        for column, c in zip(columns, layout.features, strict=True):
            pieces += _bulk_parts(_text(column, c.type))
        args = pc.binary_join_element_wise(*pieces, "")
        header = _bulk_bytes(str(len(columns))) + b"".join(_bulk_bytes(name) for name in layout.feature_names)
        packed = _Packed(names, _contiguous(_bulk(names)), _contiguous(args), header, 3 + len(columns))
        return packed, expired

    def _calls(self, client: redis.Redis | RedisCluster, packed: _Packed | None) -> list[_Call]:
        """Cut a packed batch into script calls; on a cluster, every call's keys share a slot."""
        if packed is None:
            return []
        rows, step = len(packed.keys), self.keys_per_call
        if not isinstance(client, RedisCluster):
            return [_Call(packed, start, min(start + step, rows)) for start in range(0, rows, step)]
        slots = np.fromiter((key_slot(key.encode()) for key in packed.names.to_pylist()), np.int64, rows)
        order = np.argsort(slots, kind="stable")
        packed, slots = packed.take(pa.array(order)), slots[order]
        bounds = (np.flatnonzero(np.diff(slots)) + 1).tolist()
        calls = []
        for start, stop in zip([0, *bounds], [*bounds, rows], strict=True):
            slot = int(slots[start])
            calls += [_Call(packed, a, min(a + step, stop), slot) for a in range(start, stop, step)]
        return calls

    def _node_of(self, client: redis.Redis | RedisCluster, call: _Call) -> redis.Redis:
        if isinstance(client, RedisCluster):
            return client.get_redis_connection(client.nodes_manager.get_node_from_slot(call.slot))
        return client

    def _ensure_script(self, node: redis.Redis) -> None:
        if id(node.connection_pool) not in self._loaded:
            node.script_load(_SCRIPT)
            self._loaded.add(id(node.connection_pool))

    # -- the marker ----------------------------------------------------------------------

    def mark(self, layout: OnlineLayout, *, now: int | None = None) -> None:
        """Set the layout's marker key (no TTL) to the time of this write, in epoch seconds.

        Written with every online write, before its rows: a Redis that lost its data (a FLUSHDB,
        a restart without persistence, a failover to an empty replica) lost the marker too, so
        a missing marker under online time that the interval table calls Complete means that
        time is lost (`consistency.py`). Keys that expired by `online_ttl` leave the marker alone:
        expiry is the contract, not a loss.
        """
        client = self._connect()
        with self._translated():
            client.set(layout.marker_key, str(int(time.time()) if now is None else now))

    def has_marker(self, layout: OnlineLayout) -> bool:
        """Whether the layout's marker key exists (one EXISTS)."""
        client = self._connect()
        with self._translated():
            return bool(client.exists(layout.marker_key))

    # -- read --------------------------------------------------------------------------

    def get(
        self,
        layout: OnlineLayout,
        entity_rows: Sequence[Mapping[str, object]],
        features: Sequence[str] | None = None,
        *,
        with_event_time: bool = False,
    ) -> list[dict[str, object] | None]:
        """The stored features of each entity, in order, in one pipelined round trip.

        `entity_rows` map index column names to values (text is parsed to the column's type).
        Each result maps the requested features (default: all) to values of their declared
        type; an entity with nothing stored (or expired) is None, a feature without a value
        None. With `with_event_time`, the timestamp column is added (an aware UTC datetime).
        """
        return self.lookup([(layout, features)], entity_rows, with_event_time=with_event_time)[0]

    def lookup(
        self,
        requests: Sequence[tuple[OnlineLayout, Sequence[str] | None]],
        entity_rows: Sequence[Mapping[str, object]],
        *,
        with_event_time: bool = False,
    ) -> list[list[dict[str, object] | None]]:
        """`get` for several feature set versions at once: every HMGET of every layout in one
        round trip. One list of rows per request, each in the order of `entity_rows`."""
        commands: list[tuple[str, list[str]]] = []
        plans = []
        for layout, features in requests:
            by_name = {column.name: column for column in layout.features}
            names = list(layout.feature_names if features is None else features)
            unknown = [name for name in names if name not in by_name]
            if unknown:
                raise ValueError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
            fields = [EVENT_TIME_FIELD, *names]
            commands += [(key, fields) for key in self._keys(layout, entity_rows)]
            plans.append((layout, names, [_DECODERS[by_name[name].type] for name in names]))
        if not commands:
            return [[] for _ in requests]
        client = self._connect()
        with self._translated():
            replies = iter(_hmget_many(client, commands))
        results = []
        for layout, names, decoders in plans:
            rows: list[dict[str, object] | None] = []
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
                    row[layout.timestamp_column] = _EPOCH + timedelta(microseconds=int(reply[0]))
                rows.append(row)
            results.append(rows)
        return results

    @staticmethod
    def _keys(layout: OnlineLayout, entity_rows: Sequence[Mapping[str, object]]) -> list[str]:
        """The key of each entity, the same text as `layout.keys` (what writes use), built in
        plain Python for string and integer index columns: four Arrow calls per lookup cost a
        string key a third of a one-entity lookup, and a long key 90 us and, on the first
        lookup of a process, the import of pandas."""
        if not entity_rows:
            return []
        columns = layout.index_columns
        if len(columns) == 1:  # the common case
            column = columns[0]
            try:
                values = [row[column.name] for row in entity_rows]
            except KeyError:
                raise ValueError(f"every entity needs its index column {column.name!r}") from None
            if column.type == "string":
                prefix = layout.prefix
                return [prefix + _escape(value) for value in values]
            texts = _plain_texts(values, column.type, layout.prefix)
            if texts is None:
                return OnlineStore._arrow_keys(layout, entity_rows)
            return texts
        if all(column.type == "string" for column in columns):
            try:
                return [
                    ":".join([layout.prefix + _escape(row[c.name]) if i == 0 else _escape(row[c.name])
                              for i, c in enumerate(columns)])
                    for row in entity_rows
                ]  # fmt: skip
            except KeyError as exc:
                raise ValueError(f"every entity needs its index column {exc.args[0]!r}") from None
        parts = []
        for i, column in enumerate(columns):
            try:
                values = [row[column.name] for row in entity_rows]
            except KeyError:
                raise ValueError(f"every entity needs its index column {column.name!r}") from None
            texts = _plain_texts(values, column.type, "" if i else layout.prefix)
            if texts is None:  # a value Arrow must judge, or a type only Arrow writes as text
                return OnlineStore._arrow_keys(layout, entity_rows)
            parts.append(texts)
        return [":".join(texts) for texts in zip(*parts, strict=True)]

    @staticmethod
    def _arrow_keys(layout: OnlineLayout, entity_rows: Sequence[Mapping[str, object]]) -> list[str]:
        """`_keys` through Arrow: for the types `_plain_texts` leaves to Arrow, and to refuse a
        bad value with Arrow's words, in the order the values come."""
        index_arrays = []
        for column in layout.index_columns:
            try:
                values = [row[column.name] for row in entity_rows]
            except KeyError:
                raise ValueError(f"every entity needs its index column {column.name!r}") from None
            index_arrays.append(_python_array(values, column))
        return layout.keys(index_arrays).to_pylist()

    # -- purge -------------------------------------------------------------------------

    def purge(self, layout_or_prefix: OnlineLayout | str) -> int:
        """Delete every key of a feature set version (every primary of a cluster); returns the count."""
        prefix = layout_or_prefix.prefix if isinstance(layout_or_prefix, OnlineLayout) else layout_or_prefix
        if not prefix:
            raise ValueError("refusing to purge an empty prefix (that is every key)")
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in prefix) + "*"
        client = self._connect()
        nodes = (
            [client.get_redis_connection(node) for node in client.get_primaries()]
            if isinstance(client, RedisCluster)
            else [client]
        )
        deleted = 0
        with self._translated():
            for node in nodes:
                for keys in _batches(node.scan_iter(match=pattern, count=1000), 1000):
                    by_slot: dict[int, list[bytes]] = {}
                    for key in keys:
                        by_slot.setdefault(key_slot(key), []).append(key)
                    pipe = node.pipeline(transaction=False)
                    for group in by_slot.values():
                        pipe.unlink(*group)
                    deleted += sum(pipe.execute())
        return deleted


class _Pipeline:
    """Script calls in flight: one connection per node, sent ahead, replies read in order.

    One connection per node keeps the rows of a write in order on each node. A connection
    whose replies were not all read is closed, never handed back to the pool as is.
    """

    def __init__(self, store: OnlineStore, client: redis.Redis | RedisCluster) -> None:
        self.store, self.client = store, client
        self.connections: dict[int, tuple[Any, Any]] = {}  # id(pool) -> (pool, connection)
        self.unread = 0
        self.written = self.older = 0
        self.failed: list[_Call] = []
        self.error: Exception | None = None
        self.last_retry: Exception | None = None
        self.in_flight: list[tuple[Any, _Call]] = []  # sent by the last step, replies unread

    def step(self, calls: list[_Call]) -> None:
        """Send these calls, then read the replies of the previous step's: one step ahead."""
        sent = self.send(calls)
        self.read(self.in_flight)
        self.in_flight = sent

    def send(self, calls: list[_Call]) -> list[tuple[Any, _Call]]:
        sent = []
        for call in calls:
            node = self.store._node_of(self.client, call)
            pool = node.connection_pool
            self.store._ensure_script(node)
            if id(pool) not in self.connections:
                self.connections[id(pool)] = (pool, _checkout(pool))
            connection = self.connections[id(pool)][1]
            connection.send_packed_command(call.packed.command(call.start, call.stop), check_health=False)
            self.unread += 1
            sent.append((connection, call))
        return sent

    def read(self, sent: list[tuple[Any, _Call]]) -> None:
        for connection, call in sent:
            try:
                reply = connection.read_response()
            except _RETRY_ERRORS as exc:
                self.failed.append(call)
                self.last_retry = exc
                continue
            except rexc.ResponseError as exc:
                self.error = self.error or exc
                continue
            finally:
                self.unread -= 1
            self.written += reply[0]
            self.older += reply[1]

    def close(self) -> None:
        for pool, connection in self.connections.values():
            if self.unread:
                connection.disconnect()
            pool.release(connection)
        self.connections.clear()


def _hmget_many(
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
            tail = tails[id(fields)] = b"".join(_bulk_bytes(name) for name in fields)
        parts.append(b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2) + _bulk_bytes(key) + tail)
    pool = client.connection_pool
    connection = _checkout(pool)
    try:
        connection.send_packed_command([b"".join(parts)], check_health=False)
        return [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        pool.release(connection)


def _checkout(pool: Any) -> Any:
    """A connection of the pool (redis-py before 5.3 wants a command name, later ones none)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("EVALSHA")


def _batches(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def _safe_url(url: str, password: str | None = None) -> str:
    """The URL without user, password or query; says `(password hidden)` when there was one."""
    parts = urlsplit(url)
    hidden = bool(parts.password or password or "password=" in parts.query)
    if parts.scheme == "unix":
        shown = f"unix://{parts.path}"
    else:
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        shown = f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or '/0'}"
    return shown + (" (password hidden)" if hidden else "")


@contextlib.contextmanager
def _unavailable(url: str, password: str | None) -> Iterator[None]:
    """Turn failures to reach or log in to Redis into OnlineStoreUnavailable, passwords scrubbed."""
    try:
        yield
    except rexc.InvalidResponse as exc:  # something answers there, in another protocol
        raise OnlineStoreUnavailable(
            f"the server at {_safe_url(url, password)} does not speak Redis ({exc}); "
            "fix online_store.redis_url"
        ) from None
    except (rexc.ConnectionError, rexc.TimeoutError, rexc.RedisClusterException) as exc:
        if isinstance(exc, rexc.RedisClusterException) and type(exc) is not rexc.RedisClusterException:
            raise  # a usage error of the cluster client, not an unreachable cluster
        reason = str(exc) or type(exc).__name__
        for secret in (urlsplit(url).password, password):
            if secret:
                reason = reason.replace(secret, "***")
        refused = isinstance(exc, rexc.AuthenticationError) or "authenticat" in reason.lower()
        raise OnlineStoreUnavailable(
            f"{'the online store refused us' if refused else 'cannot reach the online store'} at "
            f"{_safe_url(url, password)}: {reason}; "
            + (
                "give its password in online_store.redis_url (redis://:PASSWORD@host:port/db)"
                if refused
                else "start Redis or fix online_store.redis_url"
            )
        ) from None
