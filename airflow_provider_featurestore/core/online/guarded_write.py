"""The guarded write: a Lua script that never lets an older row replace a newer one, and its
arguments packed from Arrow rows.

A write never replaces a stored row with an older event time (a backfill of old windows cannot
regress fresher values) and always replaces it on an equal one (a corrected re-materialization
lands). The check and the replacement happen in one script call for hundreds of keys, so they
are atomic per key and cheap. With a TTL, a key expires TTL seconds after its event time
(`EXPIREAT`), and rows already expired are not written at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_featurestore.core.online.codec import contiguous, epoch_us, to_text
from airflow_provider_featurestore.core.online.layout import OnlineLayout
from airflow_provider_featurestore.core.online.resp import bulk, bulk_bytes, bulk_parts, slice_bytes

# KEYS: the keys. ARGV: nf, nf field names, then per key: event time (epoch us), expire-at
# (epoch s, "0" = none), a null mask ("" = no nulls, else one "0"/"1" per field, "1" = null)
# and nf values. Returns {written, skipped as older}. Epoch microseconds compare exactly as
# Lua numbers (doubles) until the year 2255. Every key written here has `_event_time`, so a
# key without one is absent (or expired) and needs no DEL before its HSET.
SCRIPT = """
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
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


@dataclass
class Packed:
    """Per-row RESP pieces of a batch: `keys[i]` and `args[i]` are row i's bytes."""

    names: pa.Array  # the keys as text
    keys: pa.Array
    args: pa.Array
    fields_header: bytes  # nf and the field names, sent once per call
    per_key: int  # ARGV entries per key

    def take(self, indices: pa.Array) -> Packed:
        return Packed(
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
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (argc, SHA.encode(), bulk_bytes(str(n)))
        return [
            head,
            slice_bytes(self.keys, start, stop),
            self.fields_header,
            slice_bytes(self.args, start, stop),
        ]


@dataclass(frozen=True)
class Call:
    """One script call: the rows [start, stop) of a packed batch, all on one node (one slot)."""

    packed: Packed
    start: int
    stop: int
    slot: int = 0


def pack_rows(layout: OnlineLayout, table: pa.Table, now: int) -> tuple[Packed | None, int]:
    """Rows -> per-row RESP bytes of the key and of the script arguments (vectorized), and the
    number of rows left out as already expired at `now` (epoch seconds)."""
    column = layout.timestamp_column
    event_us = epoch_us(table.column(column), f"timestamp column {column!r}")
    expired = 0
    expire_piece: Any = "$1\r\n0\r\n"
    if layout.ttl is not None:
        expire_at = np.floor_divide(event_us, 1_000_000) + layout.ttl
        live = expire_at > now
        expired = int(len(live) - np.count_nonzero(live))
        if expired:
            table = table.filter(pa.array(live))
            event_us, expire_at = event_us[live], expire_at[live]
        expire_piece = bulk(pc.cast(pa.array(expire_at), pa.string()))
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
        mask_piece = bulk(pc.if_else(any_null, pc.binary_join_element_wise(*flags, ""), ""))
    pieces = [*bulk_parts(pc.cast(pa.array(event_us), pa.string())), expire_piece, mask_piece]
    for column, c in zip(columns, layout.features, strict=True):
        pieces += bulk_parts(to_text(column, c.type))
    args = pc.binary_join_element_wise(*pieces, "")
    header = bulk_bytes(str(len(columns))) + b"".join(bulk_bytes(name) for name in layout.feature_names)
    packed = Packed(names, contiguous(bulk(names)), contiguous(args), header, 3 + len(columns))
    return packed, expired
