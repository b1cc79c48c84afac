"""The contract of an on-demand transformation, and the loader's checks of an on-demand spec.

The one function runs for the online lookup and for the point-in-time join alike, so both paths
hand it exactly the same thing, built here from Arrow arrays of the declared types:

- all rows at once (vectorized, never a row at a time), columns named by the input features'
  names and the request fields, in the spec's order;
- `mode: pandas` (default) a pandas DataFrame; `mode: numpy` a dict of numpy arrays, which
  saves building a DataFrame (about 0.1 ms per call, a third of a one-entity lookup);
- double/float as float64 and int/long as int64 (float64 with NaN once one value is missing:
  an entity with no live value, a training row with no earlier feature row), boolean as bool
  (object with None once one is missing), string as object, timestamp as datetime64[us] in UTC
  (NaT where missing), date as datetime64[D].

It returns anything indexable by the output features' names (a DataFrame, a dict of arrays or
lists), each as long as the input and in its row order. Values are cast to the declared types;
NaN becomes null (None online, null in Spark).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_featurestore.core.column_types import TYPES
from airflow_provider_featurestore.core.config.model import FeatureSetSpec, OnDemandSpec
from airflow_provider_featurestore.core.config.problems import config_error

SAMPLE_ROWS = 3


class OnDemandError(Exception):
    """An on-demand transformation failed or broke its contract on real rows (a bug in it, not
    the caller's input): the message names the spec file and what went wrong."""


def input_types(spec: OnDemandSpec, features: Mapping[str, str]) -> dict[str, str]:
    """Input column -> declared type: the input features (`features`: name -> type) then the
    request fields."""
    return {**features, **spec.inputs.request}


def input_columns(arrays: Mapping[str, pa.Array | pa.ChunkedArray]) -> dict[str, np.ndarray]:
    """The function's columns from Arrow arrays already of their declared types."""
    return {name: array.to_numpy(zero_copy_only=False) for name, array in arrays.items()}


def apply(
    spec: OnDemandSpec, function: Callable[..., Any], columns: dict[str, np.ndarray], rows: int
) -> dict[str, pa.Array]:
    """The output features of `rows` rows, one Arrow array each of its declared type.

    Raises OnDemandError when the function raises, misses a declared feature or returns a column
    of another length or of values that do not convert."""
    if spec.mode == "pandas":
        import pandas as pd

        frame: Any = pd.DataFrame(columns, copy=False)
    else:
        frame = columns
    where = f"{spec.spec_path}: transformation {spec.transformation}"
    try:
        result = function(frame)
    except Exception as exc:  # noqa: BLE001 - user code: any failure is reported, classified here
        raise OnDemandError(f"{where}: raised {type(exc).__name__}: {exc}") from exc
    missing = [name for name in spec.feature_names if not _has(result, name)]
    if missing:
        raise OnDemandError(
            f"{where}: its output misses declared feature(s) {', '.join(missing)}{_returned(result)}"
        )
    outputs: dict[str, pa.Array] = {}
    for column in spec.features:
        values = result[column.name]
        try:
            array = pa.array(np.asarray(values), type=TYPES[column.type].arrow, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise OnDemandError(f"{where}: feature {column.name} is not {column.type}: {exc}") from None
        if len(array) != rows:
            raise OnDemandError(f"{where}: feature {column.name} has {len(array)} value(s) for {rows} row(s)")
        outputs[column.name] = array
    return outputs


def _has(result: Any, name: str) -> bool:
    try:
        return name in result
    except TypeError:
        return False


def _returned(result: Any) -> str:
    columns = getattr(result, "columns", None)
    names = list(columns) if columns is not None else list(result) if isinstance(result, Mapping) else None
    if names is None:
        return f" (it returned a {type(result).__name__})"
    return f" (it returned columns: {', '.join(map(str, names)) or 'none'})"


def check(spec: OnDemandSpec, materialized: Sequence[FeatureSetSpec], call: bool) -> None:
    """Refuse, naming the file and field, an on-demand spec whose name clashes, whose inputs name
    an unknown feature set, version or feature or clash with each other or an output; with
    `call`, one whose transformation does not import or, called on SAMPLE_ROWS rows of the
    declared input types, fails or misses a declared feature."""
    path = spec.spec_path
    if any(other.name == spec.name for other in materialized):
        raise config_error(path, "name", f"{spec.name!r} is also a materialized feature set's name")
    features = _input_features(spec, materialized)
    seen: dict[str, str] = {}
    named = [(f"inputs.features[{i}]", name) for i, name in enumerate(features)]
    named += [(f"inputs.request.{name}", name) for name in spec.inputs.request]
    named += [(f"features[{i}].name", column.name) for i, column in enumerate(spec.features)]
    for where, name in named:
        if name in seen:
            raise config_error(path, where, f"{name!r} is already used by {seen[name]}")
        seen[name] = where.removesuffix(".name")
    if call:
        _sample_call(spec, input_types(spec, features))


def _input_features(spec: OnDemandSpec, materialized: Sequence[FeatureSetSpec]) -> dict[str, str]:
    """Input feature name -> type; a ConfigError for a ref to an unknown set, version or feature."""
    found: dict[str, str] = {}
    for number, text in enumerate(spec.inputs.features):
        where = f"inputs.features[{number}]"
        set_name, _, rest = text.partition(":")
        version_text, _, feature = rest.rpartition(":")
        versions = [s for s in materialized if s.name == set_name]
        if version_text:
            versions = [s for s in versions if s.version == int(version_text[1:])]
        if not versions:
            known = ", ".join(sorted({s.name for s in materialized})) or "none"
            pinned = f" version {version_text[1:]}" if version_text else ""
            raise config_error(
                spec.spec_path,
                where,
                f"{text!r}: no materialized feature set {set_name!r}{pinned} (known: {known})",
            )
        target = max(versions, key=lambda s: s.version)
        types = {column.name: column.type for column in target.features}
        if feature not in types:
            raise config_error(
                spec.spec_path,
                where,
                f"{text!r}: {target.name} v{target.version} has no feature {feature!r} "
                f"(features: {', '.join(types)})",
            )
        found[feature] = types[feature]
    return found


_SAMPLES: dict[str, list[Any]] = {
    "string": ["a", "b", "c"],
    "int": [1, 2, 3],
    "long": [1, 2, 3],
    "float": [1.0, 2.5, 4.0],
    "double": [1.0, 2.5, 4.0],
    "boolean": [True, False, True],
    "timestamp": [datetime(2024, 1, day, tzinfo=UTC) for day in (1, 2, 3)],
    "date": [date(2024, 1, day) for day in (1, 2, 3)],
}


def _sample_call(spec: OnDemandSpec, types: Mapping[str, str]) -> None:
    """Import the transformation and call it on sample rows of the declared input types."""
    function = spec.load_transformation()  # ConfigError naming `transformation` when it cannot
    arrays = {name: pa.array(_SAMPLES[kind], type=TYPES[kind].arrow) for name, kind in types.items()}
    try:
        apply(spec, function, input_columns(arrays), SAMPLE_ROWS)
    except OnDemandError as exc:
        message = str(exc).removeprefix(f"{spec.spec_path}: transformation {spec.transformation}: ")
        raise config_error(
            spec.spec_path, "transformation", f"{spec.transformation} on {SAMPLE_ROWS} sample rows: {message}"
        ) from None
