"""The text of every column type in the online store: Arrow or Python values to text, and text back.

Values are stored as text so that `redis-cli HGETALL` (or any other backend's console) reads
them as is: integers in decimal, floats and doubles as the shortest text that reads back to the
same value (Arrow's formatter: `123.45`, `100`, `1e-7`, `nan`), booleans `true`/`false`, dates
`2024-01-01`, timestamps ISO-8601 UTC (`2024-01-01T00:00:00Z`, `.ffffff` only when non-zero),
strings as is. Writes encode whole Arrow columns with vectorized kernels (the hot path);
lookups build key text in plain Python, because an Arrow call per lookup costs more than the
lookup itself. Both must give the same text, so both live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_featurestore.core.column_types import TYPES

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.config import Column

INTEGER_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


# ---- Arrow values -> text (writes) ----------------------------------------------------------


def to_text(array: pa.Array | pa.ChunkedArray, type_name: str) -> pa.Array:
    """Values of a declared column type -> their stored text (nulls stay null), vectorized."""
    if type_name == "timestamp":
        return _timestamp_text(array)
    return pc.cast(pc.cast(array, TYPES[type_name].arrow), pa.string())


def _timestamp_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`2024-01-01T00:00:00Z`, with `.ffffff` only when the microseconds are non-zero."""
    micros = epoch_us(array, "a timestamp feature", allow_null=True)
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


def epoch_us(array: pa.Array | pa.ChunkedArray, what: str, *, allow_null: bool = False) -> np.ndarray:
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


def contiguous(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One Arrow array (its buffers are sliced by offset when sent)."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


# ---- Python values -> key text (lookups) ----------------------------------------------------


def python_array(values: Sequence[object], column: Column) -> pa.Array:
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


def plain_texts(values: Sequence[object], kind: str, prefix: str = "") -> list[str] | None:
    """`prefix` + the key text of each index value of one column (escaped), in plain Python:
    the text `OnlineLayout.keys` makes of the same values with Arrow, without Arrow calls per
    lookup (90 us for one long key, and the first `pa.array` of Python objects in a process
    imports pandas: 0.2-0.4 s). None unless every value is plainly valid: a str for a string
    column; an int in the type's range, its decimal text or a float with no fraction for an int
    or long column. The caller then takes the Arrow path, which refuses a bad value with its
    usual message (or writes a type this function leaves to Arrow)."""
    if kind == "string":
        if all(type(value) is str for value in values):
            return [prefix + value.replace("%", "%25").replace(":", "%3A") for value in values]  # type: ignore[attr-defined]  # all str: checked above
        return None
    limits = INTEGER_RANGES.get(kind)
    if limits is None:
        return None
    low, high = limits
    texts = [prefix + str(v) for v in values if type(v) is int and low <= v <= high]
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


def escape(value: object) -> str:
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


# ---- stored text -> Python values (reads) ---------------------------------------------------


def _decode_timestamp(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


DECODERS: dict[str, Any] = {
    "string": lambda raw: raw.decode(),
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": lambda raw: raw == b"true",
    "timestamp": _decode_timestamp,
    "date": lambda raw: date.fromisoformat(raw.decode()),
}
