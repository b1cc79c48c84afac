"""Where one feature set version lives in the online store: its keys, fields and marker.

* key: `<project>:<feature set>:v<version>:` + the index values joined by `:`, with `%` and
  `:` inside a value written `%25` and `%3A` (so a key always splits back unambiguously);
* one field per non-null feature, as text (`codec.py`), and a field `_event_time`: the row's
  event time in integer epoch microseconds.

The layout knows no backend: a store turns the same keys into Redis keys (or another store's
item ids), so every backend reads what the others would write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_featurestore.core.column_types import COLUMN_TYPES
from airflow_provider_featurestore.core.online.codec import (
    INTEGER_RANGES,
    contiguous,
    escape,
    plain_texts,
    python_array,
    to_text,
)

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.config import Column, FeatureSetSpec, FeatureStoreConfig

EVENT_TIME_FIELD = "_event_time"
MARKER_SUFFIX = "_written"


@dataclass(frozen=True)
class OnlineLayout:
    """Everything needed to encode and decode one feature set version in the online store."""

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
        """The key that says this feature set version was written since the store last lost its data.

        `<prefix>` + one `:` per index column + `_written`: an entity key holds one `:` fewer
        (values never hold a bare `:`, it is escaped), so no entity can own it; it starts with the
        prefix, so `purge` (disable-online) removes it with the rest.
        """
        return self.prefix + ":" * len(self.index_columns) + MARKER_SUFFIX

    def key(self, index_values: Sequence[object]) -> str:
        """The key of one entity, from its index values in index column order."""
        if len(index_values) != len(self.index_columns):
            names = [column.name for column in self.index_columns]
            raise ValueError(
                f"expected {len(names)} index values ({', '.join(names)}), got {len(index_values)}"
            )
        texts = [
            plain_texts([value], column.type)
            for value, column in zip(index_values, self.index_columns, strict=True)
        ]
        if all(text is not None for text in texts):  # strings and integers, as `keys` writes them
            return self.prefix + ":".join(text[0] for text in texts)  # type: ignore[index]  # none is None: checked above
        arrays = [
            python_array([value], column)
            for value, column in zip(index_values, self.index_columns, strict=True)
        ]
        return self.keys(arrays)[0].as_py()

    def keys(self, index_arrays: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
        """The keys of many entities at once (one Arrow array per index column): what writes use."""
        parts: list[Any] = [self.prefix]
        for i, (array, column) in enumerate(zip(index_arrays, self.index_columns, strict=True)):
            if array.null_count:
                raise ValueError(f"index column {column.name!r} has null values; every entity needs a key")
            text = to_text(array, column.type)
            if column.type not in INTEGER_RANGES:  # decimal integers hold neither % nor :
                text = pc.replace_substring(pc.replace_substring(text, "%", "%25"), ":", "%3A")
            parts += [":", text] if i else [text]
        return contiguous(pc.binary_join_element_wise(*parts, ""))


def entity_keys(layout: OnlineLayout, entity_rows: Sequence[Mapping[str, object]]) -> list[str]:
    """The key of each entity row of a lookup: the same text as `layout.keys` (what writes use),
    built in plain Python for string and integer index columns: four Arrow calls per lookup cost a
    string key a third of a one-entity lookup, and a long key 90 us and, on the first lookup of a
    process, the import of pandas."""
    if not entity_rows:
        return []
    columns = layout.index_columns
    if len(columns) == 1:  # the common case
        column = columns[0]
        values = _column_values(entity_rows, column.name)
        if column.type == "string":
            prefix = layout.prefix
            return [prefix + escape(value) for value in values]
        texts = plain_texts(values, column.type, layout.prefix)
        if texts is None:
            return arrow_entity_keys(layout, entity_rows)
        return texts
    if all(column.type == "string" for column in columns):
        try:
            return [
                ":".join([layout.prefix + escape(row[c.name]) if i == 0 else escape(row[c.name])
                          for i, c in enumerate(columns)])
                for row in entity_rows
            ]  # fmt: skip
        except KeyError as exc:
            raise ValueError(f"every entity needs its index column {exc.args[0]!r}") from None
    parts = []
    for i, column in enumerate(columns):
        texts = plain_texts(_column_values(entity_rows, column.name), column.type, "" if i else layout.prefix)
        if texts is None:  # a value Arrow must judge, or a type only Arrow writes as text
            return arrow_entity_keys(layout, entity_rows)
        parts.append(texts)
    return [":".join(texts) for texts in zip(*parts, strict=True)]


def arrow_entity_keys(layout: OnlineLayout, entity_rows: Sequence[Mapping[str, object]]) -> list[str]:
    """`entity_keys` through Arrow: for the types `plain_texts` leaves to Arrow, and to refuse a
    bad value with Arrow's words, in the order the values come."""
    index_arrays = [
        python_array(_column_values(entity_rows, column.name), column) for column in layout.index_columns
    ]
    return layout.keys(index_arrays).to_pylist()


def _column_values(entity_rows: Sequence[Mapping[str, object]], name: str) -> list[object]:
    """One index column's value in each entity row; a row without it is refused by name."""
    try:
        return [row[name] for row in entity_rows]
    except KeyError:
        raise ValueError(f"every entity needs its index column {name!r}") from None
