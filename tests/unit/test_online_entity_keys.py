"""Entity keys without a server: lookups build them in plain Python, writes with Arrow; both must
give the same text (existing data stays readable), and bad index values must be refused with
Arrow's words, whichever path sees them first."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core.config import (
    Column,
    EngineConfig,
    FeatureSetSpec,
    FeatureStoreConfig,
    Materialization,
    SourceSpec,
)
from airflow_provider_featurestore.core.online import MARKER_SUFFIX, OnlineLayout
from airflow_provider_featurestore.core.online.layout import arrow_entity_keys, entity_keys

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
ARROW = {"int": pa.int32(), "long": pa.int64()}


def layout_of(prefix: str, *index: Column) -> OnlineLayout:
    return OnlineLayout(prefix, index or (Column("id", "string"),), "event_ts", (Column("x", "double"),))


def writer_keys(layout: OnlineLayout, columns: Sequence[Sequence[object]]) -> list[str]:
    """The keys `RedisOnlineStore.write` gives rows: Arrow arrays of the declared types."""
    arrays = [
        pa.array(values, ARROW.get(column.type, pa.string()))
        for values, column in zip(columns, layout.index_columns, strict=True)
    ]
    return layout.keys(arrays).to_pylist()


def lookup_keys(layout: OnlineLayout, columns: Sequence[Sequence[object]]) -> list[str]:
    names = [column.name for column in layout.index_columns]
    return entity_keys(layout, [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)])


# ---------------------------------------------------------------------------------------
# Lookup keys = writer keys
# ---------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["int", "long"]), data=st.data())
def test_lookup_keys_of_integers_are_the_written_keys(kind: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(INT32 if kind == "int" else INT64, min_size=1, max_size=30))
    layout = layout_of("p:fs:v1:", Column("n", kind))
    written = writer_keys(layout, [values])
    assert written == [f"p:fs:v1:{value}" for value in values]  # decimal, as stored today
    assert lookup_keys(layout, [values]) == written
    assert [layout.key([value]) for value in values] == written
    # The other spellings a lookup accepts for the same entity: text (the CLI), numpy, 2.0.
    assert lookup_keys(layout, [[str(value) for value in values]]) == written
    assert lookup_keys(layout, [[np.int64(value) for value in values]]) == written
    exact = [value for value in values if abs(value) <= 2**53]
    assert lookup_keys(layout, [[float(value) for value in exact]]) == writer_keys(layout, [exact])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=8), INT64, INT32), min_size=1, max_size=20),
)
def test_lookup_keys_of_mixed_index_columns_are_the_written_keys(values: list[tuple[str, int, int]]) -> None:
    layout = layout_of("p:fs:v1:", Column("s", "string"), Column("l", "long"), Column("i", "int"))
    columns = [list(column) for column in zip(*values, strict=True)]
    written = writer_keys(layout, columns)
    assert lookup_keys(layout, columns) == written
    assert [layout.key(list(row)) for row in values] == written


def test_integer_keys_are_not_escaped_and_negative_ones_keep_their_sign() -> None:
    layout = layout_of("p:fs:v1:", Column("a", "long"), Column("b", "int"))
    columns: list[list[object]] = [[-(2**63), 0, 2**63 - 1], [2**31 - 1, -1, -(2**31)]]
    expected = [
        "p:fs:v1:-9223372036854775808:2147483647",
        "p:fs:v1:0:-1",
        "p:fs:v1:9223372036854775807:-2147483648",
    ]
    assert writer_keys(layout, columns) == lookup_keys(layout, columns) == expected


# ---------------------------------------------------------------------------------------
# Bad values: refused as before, with Arrow's words
# ---------------------------------------------------------------------------------------

BAD_LONGS = [
    (2.5, r"value 1 2\.5 is not an integer"),
    (float("nan"), r"value 1 nan is not an integer"),
    (True, r"value 1 True is not an integer"),
    ("abc", r"index column 'n' is a long: cannot read 'abc'"),
    ("2.0", r"index column 'n' is a long: cannot read '2\.0'"),
    (2**63, r"value 1 9223372036854775808 is not a int64"),
    (-(2**63) - 1, r"value 1 -9223372036854775809 is not a int64"),
    (2.0**63, r"value 1 9\.223372036854776e\+18 is not a int64"),
    (None, r"index column 'n' has null values"),
    ([1], r"value 1 \[1\] is not a int64"),
    (b"1", r"value 1 b'1' is not a int64"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_LONGS, ids=[repr(bad) for bad, _ in BAD_LONGS])
def test_bad_long_values_are_refused_with_the_same_message(bad: object, message: str) -> None:
    layout = layout_of("p:fs:v1:", Column("n", "long"))
    rows: list[dict[str, object]] = [{"n": 1}, {"n": bad}, {"n": 3}]
    with pytest.raises(ValueError, match=message) as refused:
        entity_keys(layout, rows)
    with pytest.raises(ValueError) as by_arrow:  # the Arrow path, as every lookup took it before
        arrow_entity_keys(layout, rows)
    assert str(refused.value) == str(by_arrow.value)
    with pytest.raises(ValueError, match=message.replace("value 1", "value 0")):
        layout.key([bad])


def test_bad_int_values_are_refused_with_the_same_message() -> None:
    layout = layout_of("p:fs:v1:", Column("s", "string"), Column("i", "int"))
    for bad, message in [
        (2**31, r"index column 'i' \(int\): value 0 2147483648 is not a int32"),
        (-(2**31) - 1, r"value 0 -2147483649 is not a int32"),
        (1.5, r"index column 'i' \(int\): value 0 1\.5 is not an integer"),
        (False, r"value 0 False is not an integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            entity_keys(layout, [{"s": "a", "i": bad}])
        with pytest.raises(ValueError, match=message):
            layout.key(["a", bad])
    with pytest.raises(ValueError, match="every entity needs its index column 'i'"):
        entity_keys(layout, [{"s": "a", "i": 1}, {"s": "b"}])


def test_layout_from_a_feature_set_spec() -> None:
    spec = FeatureSetSpec(
        name="transactions",
        version=2,
        description="",
        index_columns=(Column("accountID", "string"),),
        timestamp_column="timestamp",
        source=SourceSpec("parquet", "/data/source", "timestamp"),
        features=(Column("amount_7d_sum", "double"),),
        materialization=Materialization(online=True, online_ttl=86400),
    )
    config = FeatureStoreConfig(
        project="fraud",
        config_path="/fs/featurestore.yaml",
        config_dir="/fs",
        feature_sets_dir="/fs/featuresets",
        offline_path="/fs/offline",
        redis_url="redis://127.0.0.1:6379/0",
        redis_conn_id=None,
        interval_table_url="sqlite:///:memory:",
        engine=EngineConfig(),
        feature_sets=(spec,),
    )
    layout = OnlineLayout.from_spec(config, spec)
    assert (layout.prefix, layout.ttl, layout.feature_names) == (
        "fraud:transactions:v2:",
        86400,
        ("amount_7d_sum",),
    )
    assert layout.key(["A0001"]) == "fraud:transactions:v2:A0001"
    with pytest.raises(ValueError, match="unknown type"):
        OnlineLayout("p:", (Column("id", "uuid"),), "ts", ())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), min_size=1, max_size=20))
def test_lookup_keys_of_text_entities_are_the_written_keys(values: list[tuple[str, str]]) -> None:
    """Lookups build text keys in plain Python; they must equal the Arrow-built keys writes use."""
    layout = layout_of("p:1", Column("a", "string"), Column("b", "string"))
    rows = [{"a": a, "b": b} for a, b in values]
    arrays = [pa.array([a for a, _ in values]), pa.array([b for _, b in values])]
    assert entity_keys(layout, rows) == layout.keys(arrays).to_pylist()


def test_index_values_that_are_not_of_their_type_are_refused() -> None:
    layout = layout_of("p:1", Column("n", "long"))
    assert layout.key([2]) == layout.key([2.0]) == "p:12"
    for bad in (2.5, 2.999, True):
        with pytest.raises(ValueError, match="is not an integer"):
            layout.key([bad])  # Arrow alone would truncate 2.999 to entity 2's key
    with pytest.raises(ValueError, match=r"value 1 \[1\] is not a int64") as refused:
        entity_keys(layout, [{"n": 1}, {"n": [1]}, *({"n": i} for i in range(5000))])
    assert len(str(refused.value)) <= 500
    text = layout_of("p:1")
    with pytest.raises(ValueError, match="every entity needs a text key"):
        entity_keys(text, [{"id": None}])


def test_string_keys_are_escaped_so_they_split_back() -> None:
    layout = layout_of("p:fs:v1:", Column("a", "string"), Column("b", "string"))
    values = [["a:b%c", "%3A", ""], [":", "x", "%"]]
    assert writer_keys(layout, values) == lookup_keys(layout, values)
    assert writer_keys(layout, values) == ["p:fs:v1:a%3Ab%25c:%3A", "p:fs:v1:%253A:x", "p:fs:v1::%25"]


def test_the_marker_key_is_no_entity_key() -> None:
    """One `:` more than any entity key of the layout, so no index value can produce it."""
    layout = layout_of("p:fs:v1:", Column("a", "string"), Column("b", "string"))
    assert layout.marker_key == f"p:fs:v1:::{MARKER_SUFFIX}"
    assert layout.key(["", f":{MARKER_SUFFIX}"]) != layout.marker_key
    assert layout.marker_key.startswith(layout.prefix)  # a purge of the prefix removes it


def test_keys_of_other_index_types_take_the_arrow_path() -> None:
    layout = layout_of("p:", Column("day", "date"), Column("flag", "boolean"))
    rows: list[dict[str, object]] = [
        {"day": "2024-02-29", "flag": "true"},
        {"day": "2024-03-01", "flag": False},
    ]
    assert entity_keys(layout, rows) == ["p:2024-02-29:true", "p:2024-03-01:false"]
    with pytest.raises(ValueError, match="index column 'day' is a date: cannot read 'soon'"):
        entity_keys(layout, [{"day": "soon", "flag": True}])


def test_layouts_refuse_what_they_could_not_store() -> None:
    refusals: list[tuple[dict[str, object], str]] = [
        ({"prefix": ""}, "non-empty key prefix"),
        ({"index_columns": ()}, "at least one index column"),
        ({"features": (Column("_event_time", "double"),)}, "feature names must be distinct"),
        ({"features": (Column("x", "double"), Column("x", "long"))}, "feature names must be distinct"),
        ({"ttl": 0}, "ttl must be positive"),
    ]
    for bad, message in refusals:
        options: dict[str, object] = {
            "prefix": "p:",
            "index_columns": (Column("id", "string"),),
            "timestamp_column": "ts",
            "features": (Column("x", "double"),),
            **bad,
        }
        with pytest.raises(ValueError, match=message):
            OnlineLayout(**options)  # type: ignore[arg-type]  # the values of a layout's fields
