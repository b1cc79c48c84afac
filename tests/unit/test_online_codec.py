"""The text the online store keeps for each column type, and its way back, without a server:
`redis-cli HGETALL` must read it, and every value must come back as it went in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.online.codec import DECODERS, epoch_us, python_array, to_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = 1_704_067_200_000_000


def texts(values: Sequence[object], arrow_type: pa.DataType, type_name: str) -> list[str | None]:
    return to_text(pa.array(values, arrow_type), type_name).to_pylist()


def test_each_type_is_stored_as_readable_text() -> None:
    assert texts([7, None, -(2**31)], pa.int32(), "int") == ["7", None, "-2147483648"]
    assert texts([2**62, 0], pa.int64(), "long") == [str(2**62), "0"]
    assert texts([0.25, -1.5, None], pa.float32(), "float") == ["0.25", "-1.5", None]
    assert texts([0.1, 100.0, 1e20, float("inf"), 1e-7], pa.float64(), "double") == [
        "0.1",
        "100",
        "1e+20",
        "inf",
        "1e-7",
    ]
    assert texts([True, False, None], pa.bool_(), "boolean") == ["true", "false", None]
    assert texts([date(2024, 2, 29), date(1, 1, 1)], pa.date32(), "date") == ["2024-02-29", "0001-01-01"]
    assert texts(["Grüße", "", None], pa.string(), "string") == ["Grüße", "", None]


def test_timestamps_are_utc_with_a_fraction_only_when_there_is_one() -> None:
    moments = [T0, T0 + timedelta(microseconds=5), None]
    assert texts(moments, pa.timestamp("us", tz="UTC"), "timestamp") == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.000005Z",
        None,
    ]
    paris = pa.array([T0], pa.timestamp("s", tz="Europe/Paris"))  # the same instant, another zone
    assert to_text(paris, "timestamp").to_pylist() == ["2024-01-01T00:00:00Z"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=20))
def test_doubles_come_back_exactly(values: list[float]) -> None:
    stored = texts(values, pa.float64(), "double")
    assert [DECODERS["double"](text.encode()) for text in stored] == values  # type: ignore[union-attr]  # no nulls given


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=20))
def test_floats_come_back_as_the_same_float32(values: list[float]) -> None:
    stored = texts(values, pa.float32(), "float")
    back = [np.float32(DECODERS["float"](text.encode())) for text in stored]  # type: ignore[union-attr]  # no nulls given
    assert back == [np.float32(value) for value in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.datetimes(timezones=st.just(UTC)), min_size=1, max_size=20))
def test_timestamps_come_back_exactly(values: list[datetime]) -> None:
    stored = texts(values, pa.timestamp("us", tz="UTC"), "timestamp")
    assert [DECODERS["timestamp"](text.encode()) for text in stored] == values  # type: ignore[union-attr]  # no nulls given


def test_nan_is_stored_and_read_back() -> None:
    (stored,) = texts([float("nan")], pa.float64(), "double")
    assert stored == "nan"
    assert math.isnan(DECODERS["double"](stored.encode()))


def test_other_types_decode_to_their_python_values() -> None:
    assert DECODERS["boolean"](b"true") is True and DECODERS["boolean"](b"false") is False
    assert DECODERS["date"](b"2024-02-29") == date(2024, 2, 29)
    assert DECODERS["long"](b"-9223372036854775808") == -(2**63)
    assert DECODERS["string"]("東京".encode()) == "東京"


def test_event_times_of_any_unit_and_zone_are_epoch_microseconds() -> None:
    moment = T0 + timedelta(seconds=3, microseconds=7)
    got = [
        int(epoch_us(pa.array([moment], arrow_type), "t")[0])
        for arrow_type in (
            pa.timestamp("ns"),
            pa.timestamp("ms", tz="UTC"),
            pa.timestamp("s", tz="Europe/Paris"),
        )
    ]
    assert got == [T0_US + 3_000_007, T0_US + 3_000_000, T0_US + 3_000_000]
    with pytest.raises(ValueError, match="t has null values"):
        epoch_us(pa.array([T0, None], pa.timestamp("us")), "t")
    with pytest.raises(ValueError, match="must be an Arrow timestamp, got int64"):
        epoch_us(pa.array([1]), "t")


def test_text_of_index_values_is_parsed_to_the_declared_type() -> None:
    assert python_array(["42"], Column("n", "long")).to_pylist() == [42]
    assert python_array(["2.5"], Column("x", "double")).to_pylist() == [2.5]
    assert python_array(["TRUE", "false"], Column("b", "boolean")).to_pylist() == [True, False]
    naive = python_array([datetime(2024, 1, 1)], Column("t", "timestamp"))  # naive: read as UTC
    assert naive.to_pylist() == [T0]
    with pytest.raises(ValueError, match="index column 'b' is a boolean: cannot read 'yes'"):
        python_array(["yes"], Column("b", "boolean"))
