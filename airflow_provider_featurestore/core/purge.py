"""Entity purge (erasure requests): every row and key of some entities, gone from the stores.

For each feature set version purged: one Delta DELETE of the entities' rows (`offline_delete.py`),
their keys taken out of the online key samples of the job records (the consistency check would
take a purged key for lost state otherwise, and a record should not keep it), then their Redis
keys deleted (one hash per entity holds all of it: its features and `_event_time`, the guard;
the version's marker key is no entity's and stays). The purge is then recorded as an operation
in the job records (`reads` "purge"): the counts, a random salt and the salted SHA-256 of each
key (whoever holds a key can confirm it was purged), never a key in plain text.

Refused, with nothing deleted, while any of the versions has Pending time (a running job could
write the entity back, or conflict with the DELETE). Idempotent: a second purge of the same keys
deletes nothing and says so. The online keys are deleted whenever the config names an online
store, even for a version that does not materialize online now (keys from before cost one
UNLINK); without one, the purge is offline only and says so.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec
from airflow_provider_featurestore.core.errors import BadInput, redact_credentials
from airflow_provider_featurestore.core.interval_table import JobRecord, JobState, StreamKey, new_job_id
from airflow_provider_featurestore.core.interval_table.job_records import PURGE
from airflow_provider_featurestore.core.offline_delete import (
    OfflineDeleted,
    delete_predicate,
    delete_rows,
    digest,
    key_texts,
)
from airflow_provider_featurestore.core.online import OnlineStore
from airflow_provider_featurestore.core.online.codec import python_array
from airflow_provider_featurestore.core.store_view import StoreView
from airflow_provider_featurestore.core.timeutil import iso


class PurgeRefused(BadInput):
    """A purge asked while the feature set has Pending time: nothing was deleted."""


@dataclass
class VersionPurge:
    """What the purge did to one feature set version."""

    spec: FeatureSetSpec
    job_id: str
    offline: OfflineDeleted | None = None
    online_keys: int | None = None  # keys deleted; None: no online store configured
    samples: int = 0  # job records whose key sample lost purged keys
    online_note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.spec.version,
            "job_id": self.job_id,
            "offline": None if self.offline is None else self.offline.to_json(),
            "online": None
            if self.online_keys is None
            else {"keys_deleted": self.online_keys, "samples_updated": self.samples},
        }

    def line(self) -> str:
        title = f"{self.spec.name} v{self.spec.version} (job {self.job_id})"
        off = self.offline
        if off is None or not off.exists:
            offline = f"offline: no Delta table at {off.table if off else '-'}"
        else:
            at = f" in Delta commit {off.commit}" if off.commit is not None else ""
            offline = f"offline: {off.rows:,} row(s) deleted from {off.table}{at}"
        online = "online: no online store configured" if self.online_keys is None else (
            f"online: {self.online_keys:,} key(s) deleted{self.online_note}, "
            f"{self.samples} job record(s)' key samples updated"
        )  # fmt: skip
        return f"{title}: {offline}; {online}"


@dataclass
class PurgeReport:
    """A purge of some entities from one feature set's versions."""

    feature_set: str
    keys: int
    vacuum: bool
    retention_hours: int
    versions: list[VersionPurge] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [v.line() for v in self.versions]
        tables = [v.offline for v in self.versions if v.offline is not None and v.offline.exists]
        if not self.vacuum and any(t.commit is not None for t in tables):
            lines.append(
                "the Delta table's older versions still hold the deleted rows (time travel) until VACUUM: "
                "run the same purge with --vacuum (it deletes the files they need; no time travel to "
                "before the purge)"
            )
        for table in tables:
            if table.vacuumed is not None:
                kept = "" if self.retention_hours == 0 else (
                    f"; files removed less than {self.retention_hours} h ago are kept: run the purge "
                    f"with --vacuum again after {self.retention_hours} h"
                )  # fmt: skip
                lines.append(f"VACUUM {table.table}: {table.vacuumed:,} file(s) removed{kept}")
        lines.append(
            "the source still holds these entities: a backfill over their time writes them back "
            "unless the source is purged too"
        )
        return lines

    def to_json(self) -> dict[str, object]:
        return {
            "feature_set": self.feature_set,
            "keys": self.keys,
            "vacuum": self.vacuum,
            "retention_hours": self.retention_hours if self.vacuum else None,
            "versions": [v.to_json() for v in self.versions],
        }


def purge(
    store: StoreView,
    name: str,
    keys: Sequence[Mapping[str, object]],
    *,
    version: int | None = None,
    all_versions: bool = False,
    vacuum: bool = False,
    retention_hours: int = 0,
) -> PurgeReport:
    """Purge the entities `keys` (index column -> value) from `name`'s latest version, `version`,
    or every version (`all_versions`). BadInput (nothing deleted) for a bad key, an unknown
    version, or Pending time (`PurgeRefused`); ServiceUnavailable when a store fails (the purge's
    record says how far it got; run it again)."""
    specs = _versions(store, name, version, all_versions)
    if not keys:
        raise BadInput("--key: give at least one entity key to purge")
    if retention_hours < 0:
        raise BadInput(f"--retention-hours: {retention_hours} is negative")
    salt = secrets.token_hex(16)
    planned = [(spec, _typed_keys(spec, keys)) for spec in specs]  # every key checked first
    for spec in specs:
        _refuse_pending(store, spec)
    online = store.online_store() if store.connections.redis_url else None
    report = PurgeReport(specs[0].name, len(planned[0][1][1]), vacuum, retention_hours)
    try:
        if online is not None:
            online.ping()  # an unreachable online store fails the purge before anything is deleted
        for spec, (arrays, texts) in planned:
            report.versions.append(
                _purge_version(store, online, spec, arrays, texts, salt, vacuum=vacuum, hours=retention_hours)
            )
    finally:
        if online is not None:
            online.close()
    return report


def _versions(store: StoreView, name: str, version: int | None, all_versions: bool) -> list[FeatureSetSpec]:
    if all_versions and version is not None:
        raise BadInput("--all-versions: give either --version or --all-versions, not both")
    if not all_versions:
        return [store.spec(name, version)]
    store.spec(name)  # an unknown name is refused by name
    return sorted((s for s in store.config.feature_sets if s.name == name), key=lambda s: s.version)


def _typed_keys(
    spec: FeatureSetSpec, keys: Sequence[Mapping[str, object]]
) -> tuple[list[pa.Array], list[tuple[str, ...]]]:
    """The distinct keys as one typed Arrow array per index column, and as text; BadInput naming
    `--key` for an unknown or missing index column or a value not of the column's type."""
    names = [column.name for column in spec.index_columns]
    expected = ",".join(f"{n}=VALUE" for n in names)
    for number, key in enumerate(keys, 1):
        unknown = [column for column in key if column not in names]
        missing = [column for column in names if key.get(column) is None]
        if unknown or missing:
            what = f"no index column {unknown[0]!r}" if unknown else f"no value for {', '.join(missing)}"
            raise BadInput(
                f"--key: key {number} of {spec.name} v{spec.version} has {what}; use --key {expected}"
            )
    try:
        arrays = [python_array([key[column.name] for key in keys], column) for column in spec.index_columns]
    except ValueError as exc:
        raise BadInput(f"--key: {exc}") from None
    texts = key_texts(spec, arrays)
    seen: dict[tuple[str, ...], int] = {}
    for i, text in enumerate(texts):
        seen.setdefault(text, i)
    chosen = pa.array(sorted(seen.values()), pa.int64())
    return [array.take(chosen) for array in arrays], list(seen)


def _refuse_pending(store: StoreView, spec: FeatureSetSpec) -> None:
    """PurgeRefused naming the first Pending time of the version, its job, and what to do. Leases
    that ran out are expired first (their time turns Incomplete), as every planner does."""
    key = StreamKey(spec.name, spec.version)
    table = store.table
    table.expire_stale(key)
    pending = [(s, seg) for s in STORES for seg in table.pending_segments(key, s)]
    if not pending:
        return
    name, first = pending[0]
    lease = ""
    if first.job_id is not None:
        expires = table.jobs_by_id([first.job_id]).get(first.job_id)
        if expires is not None and expires.lease_expires_at is not None:
            lease = f" (its lease ends at {iso(int(expires.lease_expires_at))})"
    more = f" and {len(pending) - 1} more Pending interval(s)" if len(pending) > 1 else ""
    raise PurgeRefused(
        f"{spec.name} v{spec.version} {name} [{iso(first.start)}, {iso(first.end)}) is Pending under job "
        f"{first.job_id}{lease}{more}: nothing was purged; wait for the job to end, or stop it with "
        f"`featurestore cancel {spec.name} --job {first.job_id}`, then purge again"
    )


def _purge_version(
    store: StoreView,
    online: OnlineStore | None,
    spec: FeatureSetSpec,
    arrays: list[pa.Array],
    texts: list[tuple[str, ...]],
    salt: str,
    *,
    vacuum: bool,
    hours: int,
) -> VersionPurge:
    """Offline, the samples, online; the record written whatever happened (failed on an error)."""
    key = StreamKey(spec.name, spec.version)
    done = VersionPurge(spec, new_job_id())
    started = time.time()
    try:
        path = store.config.offline_table_path(spec)
        done.offline = delete_rows(
            path, delete_predicate(spec, salt, texts), vacuum=vacuum, retention_hours=hours
        )
        if online is not None:
            online_keys = store.online_layout(spec).keys(arrays).to_pylist()
            done.samples = store.table.drop_sampled_keys(key, online_keys)
            done.online_keys = online.delete_keys(online_keys)
            done.online_note = _online_note(store, spec)
    except Exception as exc:
        _record(store, done, texts, salt, started, error=f"{type(exc).__name__}: {exc}")
        raise
    _record(store, done, texts, salt, started, error=None)
    return done


def _online_note(store: StoreView, spec: FeatureSetSpec) -> str:
    if not spec.materialization.online:
        return " (online materialization is off for this version; keys from before were looked for)"
    if "online" in store.table.disabled_stores(StreamKey(spec.name, spec.version)):
        return " (online is disabled: disable-online purged its keys already)"
    return ""


def _record(
    store: StoreView,
    done: VersionPurge,
    texts: list[tuple[str, ...]],
    salt: str,
    started: float,
    *,
    error: str | None,
) -> None:
    """The purge's job record: counts, the salt and the salted digests of the keys (SHA-256 of
    salt + the key's column texts joined by U+001F; sorted, so their order says nothing), never
    a key; its window is the version's whole time axis (the time whose rows it may have touched)."""
    key = StreamKey(done.spec.name, done.spec.version)
    extents = [e for s in STORES if (e := store.table.extent(key, s)) is not None]
    now = time.time()
    start, end = (
        (min(e[0] for e in extents), max(e[1] for e in extents)) if extents else (int(now), int(now) + 1)
    )
    stores = STORES if store.connections.redis_url else ("offline",)
    result = {
        PURGE: {
            "keys": len(texts),
            "salt": salt,
            "key_digests": sorted(digest(salt, "\x1f".join(t)) for t in texts),
            **done.to_json(),
        }
    }
    store.table.add_record(
        JobRecord(
            id=done.job_id,
            feature_set=key.feature_set,
            version=key.version,
            start=start,
            end=end,
            stores=stores,
            state=JobState.FAILED if error else JobState.SUCCEEDED,
            reads=PURGE,
            result=result,
            error=redact_credentials(error) if error else None,
            created_at=started,
            started_at=started,
            finished_at=now,
        )
    )
