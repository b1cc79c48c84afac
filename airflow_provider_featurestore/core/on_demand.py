"""On-demand features at retrieval time: one function for the online lookup and the
point-in-time join, so training and serving compute them alike.

`plan(config, refs)` splits a request's refs into what to read (the requested stored features
plus every input of a requested on-demand set, named `__od__<set>__<feature>` when not asked
for) and the on-demand sets to compute; the readers take `plan.groups` as they took `resolve`'s
groups, then:
- online, `plan.apply(rows, entity_rows)` computes the outputs over all the looked-up rows at
  once (a vectorized call, never a loop over rows) with the entity rows' request fields;
- historical, `plan.apply_spark(frame)` does the same per Arrow batch of the joined frame
  (`mapInArrow`: on Sail it runs in the driver process) with the observations' request columns.
Both build the function's columns with config/on_demand.py, which says what it receives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from airflow_provider_featurestore.core.column_types import NUMERIC_TYPES, TYPES
from airflow_provider_featurestore.core.config import FeatureStoreConfig
from airflow_provider_featurestore.core.config.model import OnDemandSpec
from airflow_provider_featurestore.core.config.on_demand import apply as apply_function
from airflow_provider_featurestore.core.config.on_demand import input_columns
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.request_errors import describe
from airflow_provider_featurestore.core.retrieval import FeatureGroup, FeatureRef, RetrievalSpec, resolve

HIDDEN = "__od__"


@dataclass(frozen=True)
class Use:
    """One requested on-demand set: where its inputs are read and which outputs are asked."""

    spec: OnDemandSpec
    function: Callable[..., Any]
    features: dict[str, tuple[str, str]]  # input feature -> (column of the read rows, type)
    outputs: dict[str, str]  # requested output feature -> output column

    @property
    def request(self) -> dict[str, str]:
        return dict(self.spec.inputs.request)


@dataclass(frozen=True)
class Plan:
    """What a retrieval reads (`groups`) and computes (`uses`); `hidden`: read, not returned."""

    groups: list[FeatureGroup]
    uses: tuple[Use, ...] = ()
    hidden: tuple[str, ...] = ()

    def apply(
        self,
        rows: list[dict[str, object]],
        entity_rows: Sequence[Mapping[str, object]],
        argument: str = "entity_rows",
    ) -> list[dict[str, object]]:
        """The online rows with the on-demand outputs added and the hidden inputs removed.

        BadInput naming the entity row and field when a request field is missing or not of its
        declared type; OnDemandError when the function fails."""
        if not self.uses or not rows:  # no rows: no call (a function need not handle none)
            return rows
        for use in self.uses:
            arrays = {
                name: _array([row[column] for row in rows], kind)
                for name, (column, kind) in use.features.items()
            }
            for name, kind in use.request.items():
                arrays[name] = _request_array(use.spec, name, kind, entity_rows, argument)
            outputs = apply_function(use.spec, use.function, input_columns(arrays), len(rows))
            for feature, column in use.outputs.items():
                for row, value in zip(rows, outputs[feature].to_pylist(), strict=True):
                    row[column] = value
        for row in rows:
            for column in self.hidden:
                del row[column]
        return rows

    def apply_spark(self, frame: Any) -> Any:
        """The joined Spark frame with the on-demand outputs added and the hidden inputs
        dropped, computed per Arrow batch by the same function as `apply`."""
        if not self.uses:
            return frame
        from pyspark import cloudpickle
        from pyspark.sql import types as T

        self._check_observations(frame)
        for use in self.uses:  # by value: a cluster's Python workers lack the config folder's modules
            cloudpickle.register_pickle_by_value(sys.modules[use.function.__module__])
        spark_types = {
            "string": T.StringType(),
            "int": T.IntegerType(),
            "long": T.LongType(),
            "float": T.FloatType(),
            "double": T.DoubleType(),
            "boolean": T.BooleanType(),
            "timestamp": T.TimestampType(),
            "date": T.DateType(),
        }
        fields = [each for each in frame.schema.fields if each.name not in self.hidden]
        fields += [
            T.StructField(column, spark_types[_type(use, feature)])
            for use in self.uses
            for feature, column in use.outputs.items()
        ]
        uses, hidden = self.uses, set(self.hidden)

        def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield _apply_batch(batch, uses, hidden)

        return frame.mapInArrow(run, T.StructType(fields))

    def _check_observations(self, frame: Any) -> None:
        """BadInput for an observation frame without a request column, with one of another
        kind of type, or with a column an on-demand output would fill."""
        types = {each.name: each.dataType.simpleString() for each in frame.schema.fields}
        for use in self.uses:
            for name, kind in use.request.items():
                if name not in types:
                    raise BadInput(
                        f"observations: missing request column {name} ({kind}), an input of "
                        f"{use.spec.name} ({use.spec.spec_path}); they hold {', '.join(_given(types))}"
                    )
                if not _compatible(types[name], kind):
                    raise BadInput(
                        f"observations: request column {name} is {types[name]}; {use.spec.name} declares it {kind}"
                    )
            taken = [column for column in use.outputs.values() if column in types]
            if taken:
                raise BadInput(
                    f"observations: already have column(s) {', '.join(taken)} that features would fill"
                )


def plan(config: FeatureStoreConfig, features: Iterable[str] | RetrievalSpec) -> Plan:
    """The plan of one request's refs: see the module docstring. BadInput naming the ref for an
    unknown on-demand feature or a ref asked twice; `resolve` checks the stored ones."""
    texts = features.features if isinstance(features, RetrievalSpec) else features
    if isinstance(texts, str):
        return Plan(resolve(config, texts))  # resolve words the refusal
    texts = list(texts)
    refs = [FeatureRef.parse(text) for text in texts]
    wanted: dict[OnDemandSpec, list[str]] = {}
    stored: list[FeatureRef] = []
    for ref in refs:
        spec = config.get_on_demand(ref.feature_set, ref.version)
        if spec is None:
            stored.append(ref)
            continue
        if ref.feature not in spec.feature_names:
            raise BadInput(
                f"features: {ref}: {spec.name} v{spec.version} has no feature {ref.feature!r} "
                f"(features: {', '.join(spec.feature_names)})"
            )
        if ref.feature in wanted.get(spec, []):
            raise BadInput(f"features: {ref} is requested twice")
        wanted.setdefault(spec, []).append(ref.feature)
    if not wanted:
        return Plan(resolve(config, texts))
    inputs = [FeatureRef.parse(text) for spec in wanted for text in spec.inputs.features]
    asked = {_identity(config, ref) for ref in stored}
    extra = [ref for ref in dict.fromkeys(inputs) if _identity(config, ref) not in asked]
    groups = resolve(config, [str(ref) for ref in [*stored, *extra]])
    hidden, returned = _name_columns(groups, asked, wanted)
    uses = tuple(_use(spec, outputs, groups, returned, config) for spec, outputs in wanted.items())
    return Plan(groups, uses, hidden)


def _identity(config: FeatureStoreConfig, ref: FeatureRef) -> tuple[str, int, str]:
    spec = config.get(ref.feature_set, ref.version)
    return spec.name, spec.version, ref.feature


def _name_columns(
    groups: list[FeatureGroup], asked: set[tuple[str, int, str]], wanted: Mapping[OnDemandSpec, list[str]]
) -> tuple[tuple[str, ...], list[str]]:
    """Name the read columns as `resolve` would among what is returned (the requested stored
    features and on-demand outputs: returned with the hidden names); the inputs nobody asked
    for get hidden names."""
    returned = [f for g in groups for f in g.features if (g.spec.name, g.spec.version, f) in asked]
    returned += [f for outputs in wanted.values() for f in outputs]
    hidden: list[str] = []
    for group in groups:
        group.columns = []
        for feature in group.features:
            if (group.spec.name, group.spec.version, feature) not in asked:
                hidden.append(f"{HIDDEN}{group.spec.name}__{feature}")
                group.columns.append(hidden[-1])
            else:
                clash = returned.count(feature) > 1
                group.columns.append(f"{group.spec.name}__{feature}" if clash else feature)
    return tuple(hidden), returned


def _use(
    spec: OnDemandSpec,
    outputs: list[str],
    groups: list[FeatureGroup],
    returned: list[str],
    config: FeatureStoreConfig,
) -> Use:
    """One requested on-demand set: its outputs named like stored features (`<set>__<feature>`
    where two returned features share a name), its inputs found among the read columns."""
    columns = {f: f"{spec.name}__{f}" if returned.count(f) > 1 else f for f in outputs}
    features: dict[str, tuple[str, str]] = {}
    for text in spec.inputs.features:
        ref = FeatureRef.parse(text)
        name, version, feature = _identity(config, ref)
        group = next(g for g in groups if (g.spec.name, g.spec.version) == (name, version))
        kind = next(c.type for c in group.spec.features if c.name == feature)
        features[feature] = (group.columns[group.features.index(feature)], kind)
    return Use(spec, spec.load_transformation(), features, columns)


def _type(use: Use, feature: str) -> str:
    return next(column.type for column in use.spec.features if column.name == feature)


def _array(values: list[Any], kind: str) -> pa.Array:
    return pa.array(values, type=TYPES[kind].arrow)


def _request_array(
    spec: OnDemandSpec, name: str, kind: str, entity_rows: Sequence[Mapping[str, object]], argument: str
) -> pa.Array:
    """A request field of every entity row as an Arrow array of its declared type; BadInput
    naming the first row that lacks it or holds a value that is not of that type."""
    values = [row.get(name) for row in entity_rows]
    for number, value in enumerate(values):
        if value is None and name in entity_rows[number]:
            raise BadInput(
                f"{argument}[{number}].{name}: is null; give a {kind} (a request field of {spec.name})"
            )
        if value is None:
            raise BadInput(
                f"{argument}[{number}]: missing request field {name} ({kind}), an input of {spec.name}"
            )
    try:
        return _array(values, kind)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    for number, value in enumerate(values):  # only on this error path: find the row at fault
        try:
            _array([value], kind)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise BadInput(
                f"{argument}[{number}].{name}: expected a {kind} (a request field of {spec.name}), "
                f"got {describe(value)}"
            ) from None
    raise BadInput(f"{argument}: request field {name}: values are not all {kind}")


def _given(columns: Iterable[str]) -> list[str]:
    """The observation columns a user gave: not the join's own (`__fs_row`) nor hidden inputs."""
    return [name for name in columns if not name.startswith(("__fs_", HIDDEN))]


def _compatible(spark_type: str, kind: str) -> bool:
    numeric = {"tinyint", "smallint", "int", "bigint", "float", "double"}
    return spark_type == TYPES[kind].spark or (
        kind in NUMERIC_TYPES and spark_type.split("(")[0] in numeric | {"decimal"}
    )


def _apply_batch(batch: pa.RecordBatch, uses: Sequence[Use], hidden: set[str]) -> pa.RecordBatch:
    """One Arrow batch of the joined frame with the outputs of `uses` added and `hidden` dropped."""
    names = [name for name in batch.schema.names if name not in hidden]
    arrays = [batch.column(name) for name in names]
    for use in uses:
        inputs = {
            name: batch.column(column).cast(TYPES[kind].arrow)
            for name, (column, kind) in use.features.items()
        }
        inputs.update(
            {name: batch.column(name).cast(TYPES[kind].arrow) for name, kind in use.request.items()}
        )
        outputs = apply_function(use.spec, use.function, input_columns(inputs), batch.num_rows)
        for feature, column in use.outputs.items():
            names.append(column)
            arrays.append(outputs[feature])
    return pa.RecordBatch.from_arrays(arrays, names=names)
