"""The JSON documents users read: `featurestore list/intervals/jobs --json` and the status page's
API serve exactly these, so the terminal and the browser never disagree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord, StreamKey
from airflow_provider_featurestore.core.timeline import stream_timeline
from airflow_provider_featurestore.core.timeutil import iso


def feature_set_row(spec: FeatureSetSpec) -> dict:
    """One row of `list --json`."""
    return {
        "name": spec.name,
        "version": spec.version,
        "offline": spec.materialization.offline,
        "online": spec.materialization.online,
        "schedule": spec.materialization.schedule,
    }


def intervals_document(by_store: Mapping[str, list[iv.Interval]]) -> list[dict]:
    """`intervals --json`: ordered by store, then start."""
    return [
        {"store": store, "start": iso(item.start), "end": iso(item.end), "status": item.status}
        for store in STORES
        if store in by_store
        for item in by_store[store]
    ]


def jobs_document(records: Iterable[JobRecord]) -> list[dict]:
    """`jobs --json`: newest first, as the table returns them."""
    return [record.to_json() for record in records]


def overview(store: FeatureStore) -> list[dict]:
    """Every feature set version with, per enabled store, its extent and freshness (the end of
    its newest Complete time): the status page's index."""
    rows = []
    for spec in store.config.feature_sets:
        key = StreamKey(spec.name, spec.version)
        stores = {}
        for name in spec.enabled_stores():
            extent = store.table.extent(key, name)
            fresh = store.table.freshness(key, name)
            stores[name] = {
                "extent": None if extent is None else {"start": iso(extent[0]), "end": iso(extent[1])},
                "freshness": None if fresh is None else iso(fresh),
            }
        # Seconds; a backfill's chunks start at its multiples since the epoch (the page snaps to them).
        chunk = spec.materialization.max_job_window
        rows.append({**feature_set_row(spec), "max_job_window": chunk, "stores": stores})
    return rows


def axis(store: FeatureStore, spec: FeatureSetSpec, stores: Iterable[str]) -> tuple[int, int] | None:
    """The union of the extents of `stores`: the range a timeline shows by default."""
    key = StreamKey(spec.name, spec.version)
    extents = [e for e in (store.table.extent(key, s) for s in stores) if e is not None]
    if not extents:
        return None
    return min(e[0] for e in extents), max(e[1] for e in extents)


def timeline_document(
    store: FeatureStore,
    spec: FeatureSetSpec,
    stores: Iterable[str],
    start: int | None,
    end: int | None,
    buckets: int,
) -> dict:
    """The bars of each store over `[start, end)` (default: the whole axis), `buckets` wide."""
    stores = tuple(stores)
    key = StreamKey(spec.name, spec.version)
    whole = axis(store, spec, stores)
    if start is None and whole is not None:
        start = whole[0]
    if end is None and whole is not None:
        end = whole[1]
    if start is not None and end is not None and end <= start:
        raise BadInput(f"end: {iso(end)} is not after start {iso(start)}")
    document: dict = {
        "feature_set": spec.name,
        "version": spec.version,
        "axis": None if whole is None else {"start": iso(whole[0]), "end": iso(whole[1])},
        "start": None if start is None else iso(start),
        "end": None if end is None else iso(end),
        "buckets": buckets,
        "stores": {},
    }
    for name in stores:
        bars = (
            []
            if start is None or end is None
            else stream_timeline(store.table, key, name, start, end, buckets)
        )
        fresh = store.table.freshness(key, name)
        document["stores"][name] = {
            "freshness": None if fresh is None else iso(fresh),
            "bars": [bar.to_json() for bar in bars],
        }
    return document
