"""A small sample of the keys one chunk's online write stored, for the consistency check.

The marker key (`OnlineStore.mark`) tells a store that lost everything; it cannot tell one that
lost some keys (a `DEL` by hand, eviction under `maxmemory`). So each chunk's write keeps up to
`SAMPLE_SIZE` of the keys it wrote, with each key's expiry (event time + `online_ttl`), in its
job record; the check later asks the store which of them are gone (`OnlineStore.missing_keys`).
We never delete a key we wrote (a newer row replaces its value, the key stays) except in an
entity purge, which takes the keys it deletes out of the samples first (`purge.py`), so a
sampled key that is missing before its expiry is a loss.

The choice is deterministic and independent of how Spark split the rows: the `SAMPLE_SIZE` keys
that sort first by their reversed bytes. Each executor task keeps its own first ones, and the
driver keeps the first of those (`merge`), which are the first of all. Reversed, because an
entity key's varying part is at its end: the sample spreads over the entities (`...A0010`,
`...A0020`, ...) instead of taking the first ids, and costs one Arrow kernel (about 40 ms per
million keys) where a hash per key in Python would cost a second.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_featurestore.core.online.layout import OnlineLayout

SAMPLE_SIZE = 32
"""Keys kept per chunk: a loss of a tenth of the keys shows in a chunk's sample with probability
1 - 0.9^32 = 97%; 32 keys of ~50 bytes keep a job record small, and 1,000 chunks' samples are
one batched pipeline of 32,000 EXISTS (`benchmarks/online_check.py`)."""

SampledKey = tuple[str, int | None]
"""A sampled key and when it expires (epoch seconds; None: no `online_ttl`, it never does)."""


def sample_rows(
    layout: OnlineLayout, rows: pa.RecordBatch | pa.Table, size: int = SAMPLE_SIZE
) -> list[SampledKey]:
    """Up to `size` keys of `rows` (rows just written; index values never null) with their expiry."""
    if rows.num_rows == 0:
        return []
    keys = layout.keys([rows.column(column.name) for column in layout.index_columns])
    order = pa.table({"order": pc.binary_reverse(keys.cast(pa.binary()))})
    chosen = pc.select_k_unstable(order, min(size, rows.num_rows), [("order", "ascending")])
    names = keys.take(chosen).to_pylist()
    if layout.ttl is None:
        return [(name, None) for name in names]
    stamps = rows.column(layout.timestamp_column).take(chosen).cast(pa.timestamp("us", tz="UTC"))
    micros = stamps.cast(pa.int64()).to_pylist()
    return [(name, us // 1_000_000 + layout.ttl) for name, us in zip(names, micros, strict=True)]


def merge(samples: Iterable[SampledKey], size: int = SAMPLE_SIZE) -> list[SampledKey]:
    """The first `size` keys (by reversed bytes) of several partial samples of one chunk. A key
    appears twice only for rows of one entity sharing its latest event time: the same expiry."""
    expiry = dict(samples)
    first = sorted(expiry, key=lambda key: key.encode()[::-1])[:size]
    return [(key, expiry[key]) for key in first]
