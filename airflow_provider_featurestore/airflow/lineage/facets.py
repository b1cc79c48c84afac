"""The OpenLineage datasets of a materialize task: its jobs' source (or, for an online-only
job over offline-Complete time, the Delta table) in, the Delta table and Redis out.

Imports OpenLineage at the top: only `lineage/mixin.py` imports this module, inside the methods
the OpenLineage listener calls, so an Airflow without the provider never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow.providers.common.compat.openlineage.facet import (
    InputDataset,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.generated.storage_dataset import StorageDatasetFacet

from airflow_provider_featurestore.airflow.lineage.naming import location_dataset, redis_dataset
from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.materialization.spark_job.predicates import PARTITION_COLUMN

DELTA_STORAGE = StorageDatasetFacet(storageLayer="delta", fileFormat="parquet")


def operator_lineage(
    config: FeatureStoreConfig,
    redis_url: str | None,
    records: Sequence[JobRecord],
    written: Sequence[JobRecord] | None = None,
) -> OperatorLineage:
    """What `records` read and write; with `written` (the jobs this task ran, on complete or
    failure), each output carries the rows those jobs wrote to it."""
    inputs: dict[tuple[str, str], InputDataset] = {}
    outputs: dict[tuple[str, str], OutputDataset] = {}
    for name, version in sorted({(r.feature_set, r.version) for r in records}):
        spec = config.get(name, version)
        mine = [r for r in records if (r.feature_set, r.version) == (name, version)]
        rows = _rows_written(spec, written)
        if any(r.reads == "source" for r in mine):
            _add(inputs, source_input(spec))
        if any(r.reads == "offline" for r in mine):
            _add(inputs, offline_input(config, spec))
        if any("offline" in r.stores for r in mine):
            _add(outputs, offline_output(config, spec, rows))
        if redis_url and any("online" in r.stores for r in mine):
            _add(outputs, online_output(config, spec, redis_url, rows))
    return OperatorLineage(inputs=list(inputs.values()), outputs=list(outputs.values()))


def source_input(spec: FeatureSetSpec) -> InputDataset:
    namespace, name = location_dataset(spec.source.path)
    facets = {"storage": DELTA_STORAGE} if spec.source.format == "delta" else {}
    return InputDataset(namespace=namespace, name=name, facets=facets)


def offline_input(config: FeatureStoreConfig, spec: FeatureSetSpec) -> InputDataset:
    namespace, name = location_dataset(config.offline_table_path(spec))
    return InputDataset(
        namespace=namespace, name=name, facets={"schema": offline_schema(spec), "storage": DELTA_STORAGE}
    )


def offline_output(
    config: FeatureStoreConfig, spec: FeatureSetSpec, rows: dict[str, int] | None
) -> OutputDataset:
    namespace, name = location_dataset(config.offline_table_path(spec))
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": offline_schema(spec), "storage": DELTA_STORAGE},
        outputFacets=_statistics(rows, "offline"),
    )


def online_output(
    config: FeatureStoreConfig, spec: FeatureSetSpec, redis_url: str, rows: dict[str, int] | None
) -> OutputDataset:
    namespace, name = redis_dataset(redis_url, config.online_key_prefix(spec))
    fields = [_field(c.name, c.type) for c in (*spec.index_columns, *spec.features)]
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": SchemaDatasetFacet(fields=fields)},
        outputFacets=_statistics(rows, "online"),
    )


def offline_schema(spec: FeatureSetSpec) -> SchemaDatasetFacet:
    """The Delta table's columns with their declared types: the index columns, the event
    timestamp, the features, and the date partition column."""
    return SchemaDatasetFacet(
        fields=[
            *(_field(c.name, c.type, "index column") for c in spec.index_columns),
            _field(spec.timestamp_column, "timestamp", "event timestamp"),
            *(_field(c.name, c.type) for c in spec.features),
            _field(PARTITION_COLUMN, "date", "partition column: the event timestamp's UTC date"),
        ]
    )


def _rows_written(spec: FeatureSetSpec, written: Sequence[JobRecord] | None) -> dict[str, int] | None:
    if written is None:
        return None
    mine = [r for r in written if (r.feature_set, r.version) == (spec.name, spec.version)]
    return {store: sum(r.rows_written.get(store, 0) for r in mine) for store in ("offline", "online")}


def _statistics(rows: dict[str, int] | None, store: str) -> dict:
    if rows is None:
        return {}
    return {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows[store])}


def _field(name: str, type_: str, description: str | None = None) -> SchemaDatasetFacetFields:
    return SchemaDatasetFacetFields(name=name, type=type_, description=description)


def _add(datasets: dict, dataset: InputDataset | OutputDataset) -> None:
    datasets.setdefault((dataset.namespace, dataset.name), dataset)
