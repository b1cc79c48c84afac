"""Consistency checks: Complete time whose data a store lost behind our back.

The interval table says what we wrote; a store can lose it without telling us: a `_delta_log`
commit deleted (or the whole table folder), a Redis flushed or restarted without persistence.
Before such Complete time is trusted (by `featurestore check`, by every backfill's planner, and
so by every DAG run's plan), the check asks the stores, and time they no longer hold becomes
`Incomplete`, its reason in the error of the job that had written it, so the next backfill
(default statuses None and Incomplete) redoes it.

**Offline: the Delta log still holds the commit.** Every chunk records the commit its offline
write produced (`{"version", "timestamp"}` in its job record's `result`, from the same log entry
the job reads its rows written from). The check opens the log once with delta-rs (no Spark; it
reads every engine's tables) and calls a chunk's time lost when the table is gone, when its
version is past the log's end (its commit JSON deleted, or the table restored from an older
copy), or when the log's commit at that version is another one (the log was cut back and written
again: its commit timestamp differs). Why versions and not data: exact and cheap. A version
survives what must not count as a loss (OPTIMIZE and VACUUM rewrite or delete files, log
clean-up after a checkpoint drops old commit files: a version at or below the log's end stays
valid), while file names or per-file row counts change under compaction and could not tell one
chunk's rows from its neighbours' in a shared partition. The log is append-only, so once the
newest recorded commit is found intact every older one is too: the identity test reads the
history only back to the newest recorded version (usually one commit). Jobs that recorded no
commit (written before this check existed) are trusted unless the table is gone; on delta-spark,
whose history may show a commit file's modification time instead of its commitInfo timestamp,
only the version is recorded and compared. An entity purge's DELETE and VACUUM (`purge.py`) only
add commits after the recorded ones, so they are never taken for a loss.

**Online: a marker key, and a sample of keys per chunk.** Every online write first sets one key
per feature set version, without TTL (`OnlineStore.mark`), and the job records that it did. A
Redis that lost its data lost the marker with it: one EXISTS tells, and every Complete online
second written with a marker is then lost. A Redis that lost some keys (a DEL, eviction) keeps
the marker: for that, each chunk's record keeps up to 32 of the keys its write stored, with
their expiry (`online/sample.py`), and the check looks them all up in one batched pipeline of
EXISTS (`OnlineStore.missing_keys`); a sampled key missing before its expiry loses the Complete
online time from its chunk through the end (`_partly_lost` says why). Keys expiring by
`online_ttl` are not a loss: expiry is the contract. The report says what was verified (the
marker; how many sampled keys of how many jobs), no more: a loss no sample caught is not seen,
and jobs recorded before samples were kept are covered by the marker alone.

**A store that cannot be reached is not a loss.** `featurestore check` (strict) stops with
`ServiceUnavailable` naming the store, having changed nothing: every store is read before any
time is marked. The planner (not strict) skips that store's check with a line saying so, and
plans as before: the job itself meets the outage and records it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec
from airflow_provider_featurestore.core.errors import ServiceUnavailable, redact_credentials
from airflow_provider_featurestore.core.interval_table import JobRecord, StreamKey
from airflow_provider_featurestore.core.timeutil import iso

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from airflow_provider_featurestore.core.store_view import StoreView

HISTORY_DEPTH = 1000
"""How many commits back the identity test reads at most; a recorded version older than that
(and at most the log's end) is trusted on its version alone."""

_CRC_AHEAD = re.compile(r"CRC file version (\d+) is newer than log segment version (\d+)")


class OfflineTableUnreadable(ServiceUnavailable):
    """The offline table exists but delta-rs cannot read its log (a gap, a permission, a
    scheme it does not know): not a loss we can locate, so nothing is marked."""


@dataclass(frozen=True)
class LostTime:
    """Time a store lost: `[start, end)` of `store`, written by `job_id`, and why it is lost."""

    store: str
    start: int
    end: int
    job_id: str | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "store": self.store,
            "start": iso(self.start),
            "end": iso(self.end),
            "job_id": self.job_id,
            "reason": self.reason,
        }


@dataclass
class CheckReport:
    """What one check of a feature set version found."""

    feature_set: str
    version: int
    checked: dict[str, str] = field(default_factory=dict)  # store -> what was verified
    skipped: dict[str, str] = field(default_factory=dict)  # store -> why it was not checked
    unreachable: list[str] = field(default_factory=list)  # the skipped stores that could not be read
    lost: list[LostTime] = field(default_factory=list)  # turned Incomplete by this check

    @property
    def consistent(self) -> bool:
        return not self.lost

    def lines(self) -> list[str]:
        """The report as log lines: what was verified or skipped per store, each lost range and
        why, and the backfill that repairs them."""
        title = f"{self.feature_set} v{self.version}"
        lines = [f"{title} {name}: {what}" for name, what in self.checked.items()]
        lines += [f"{title} {name}: not checked: {why}" for name, why in self.skipped.items()]
        lines += [f"{title} {x.store} [{iso(x.start)}, {iso(x.end)}): {x.reason}" for x in self.lost]
        if self.lost:
            start, end = min(x.start for x in self.lost), max(x.end for x in self.lost)
            lines.append(
                f"{title}: {len(self.lost)} lost interval(s) marked Incomplete; repair: featurestore backfill "
                f"{self.feature_set} --version {self.version} --start {iso(start)} --end {iso(end)}"
            )
        return lines

    def to_json(self) -> dict[str, object]:
        return {
            "feature_set": self.feature_set,
            "version": self.version,
            "consistent": self.consistent,
            "checked": dict(self.checked),
            "skipped": dict(self.skipped),
            "lost": [item.to_json() for item in self.lost],
        }


Findings = dict[str, dict[str | None, str]]
"""What the stores lost: store -> id of the job that had written the time (None: time no job
set) -> why it is lost. `IntervalTable.mark_lost`, or `claim(lost=...)`, turns it Incomplete."""


def inspect(
    store: StoreView,
    spec: FeatureSetSpec,
    stores: Iterable[str] | None = None,
    *,
    strict: bool = True,
    now: float | None = None,
) -> tuple[CheckReport, Findings]:
    """Read what the stores lost of the Complete time of `stores` (default: every enabled one)
    of one feature set version, changing nothing (`report.lost` stays empty; see the module's
    doc). `mark_lost` then turns the findings Incomplete; the planner hands them to its claim
    instead, so marking and claiming are one transaction.

    `strict`: a store that cannot be reached or read raises `ServiceUnavailable`; otherwise it
    is skipped (`report.skipped` says why).
    """
    key = StreamKey(spec.name, spec.version)
    table = store.table
    report = CheckReport(spec.name, spec.version)
    checked_at = int(time.time() if now is None else now)
    found_at = iso(checked_at)
    asked = set(STORES if stores is None else stores)
    disabled = table.disabled_stores(key)
    findings: Findings = {}
    for name in STORES:
        if name not in asked or name not in spec.enabled_stores():
            continue
        if name in disabled:
            report.skipped[name] = "disabled (featurestore enable-online)"
            continue
        complete = table.complete_segments(key, name)
        if not complete:
            report.checked[name] = "no Complete time"
            continue
        records = table.jobs_by_id(seg.job_id for seg in complete if seg.job_id)
        try:
            if name == "offline":
                path = store.config.offline_table_path(spec)
                lost, verified = _offline(path, complete, records, found_at)
            else:
                lost, verified = _online(store, spec, complete, records, found_at, checked_at)
        except ServiceUnavailable as exc:
            if strict:
                raise
            report.skipped[name] = str(exc)
            report.unreachable.append(name)
            continue
        report.checked[name] = verified
        if lost:
            findings[name] = lost
    return report, findings


def mark_lost(store: StoreView, spec: FeatureSetSpec, report: CheckReport, findings: Findings) -> CheckReport:
    """Turn what `inspect` found lost into Incomplete, the reason in its job's error, and list
    it in `report.lost`. Separate from the reads, so that every store is read before any time is
    marked: a store that cannot be reached changes nothing."""
    key = StreamKey(spec.name, spec.version)
    for name, lost in findings.items():
        for seg in store.table.mark_lost(key, name, lost):
            report.lost.append(LostTime(name, seg.start, seg.end, seg.job_id, lost[seg.job_id]))
    return report


# ---- offline: the Delta log --------------------------------------------------------------


def _offline(
    path: str, complete: list[iv.Segment], records: Mapping[str, JobRecord], found_at: str
) -> tuple[dict[str | None, str], str]:
    """Per job whose offline time is lost, why; and what was verified."""
    jobs = {seg.job_id for seg in complete}
    table, end = _open_log(path)
    if table is None:
        reason = (
            f"offline lost: the Delta table {path} is gone (no _delta_log commits); "
            f"found by the consistency check at {found_at}; the next backfill rewrites it"
        )
        return dict.fromkeys(jobs, reason), f"Delta table {path}: gone"
    lost: dict[str | None, str] = {}
    candidates: list[tuple[int, int | None, str]] = []
    for job_id in jobs:
        if job_id is None or job_id not in records:
            continue  # time no job set, or a job without a record: no commit to compare
        commit = records[job_id].result.get("offline_commit")
        if not isinstance(commit, dict) or commit.get("version") is None:
            continue  # written before commits were recorded: trusted while the table exists
        version = int(commit["version"])
        if version > end:
            lost[job_id] = (
                f"offline lost: Delta commit {version} of this job is no longer in the log of {path} "
                f"(it ends at version {end}); found by the consistency check at {found_at}; "
                "the next backfill rewrites it"
            )
        else:
            stamp = commit.get("timestamp")
            candidates.append((version, None if stamp is None else int(stamp), job_id))
    # The log is append-only: once the newest recorded commit is ours, every older one is too.
    history: dict[int, int | None] = {}
    for version, stamp, job_id in sorted(candidates, reverse=True):
        if stamp is None:
            continue  # delta-spark: the version alone is known
        depth = end - version + 1
        if depth > HISTORY_DEPTH:
            break
        if version not in history:
            history = _history(table, depth)
        if version not in history:  # its commit file was cleaned up after a checkpoint: folded in
            break
        if history[version] == stamp:
            break
        lost[job_id] = (
            f"offline lost: Delta commit {version} of {path} is not this job's any more (the log was "
            f"cut back and written again); found by the consistency check at {found_at}; "
            "the next backfill rewrites it"
        )
    return lost, f"Delta table {path}: log at version {end}"


def _open_log(path: str) -> tuple[DeltaTable | None, int]:
    """The table's log through delta-rs, and the version it ends at; (None, -1) when there is no
    table. A `.crc` file left beside a deleted newest commit makes delta-rs refuse the latest
    snapshot; the log then ends at the version it names, and is read there."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(path)
    except TableNotFoundError:
        return None, -1
    except Exception as exc:  # noqa: BLE001 - delta-rs raises a bare DeltaError for most things
        ahead = _CRC_AHEAD.search(str(exc))
        if ahead is None:
            raise _unreadable(path, exc) from None
        try:
            table = DeltaTable(path, version=int(ahead.group(2)))
        except Exception as again:  # noqa: BLE001
            raise _unreadable(path, again) from None
    return table, table.version()


def _unreadable(path: str, exc: BaseException) -> OfflineTableUnreadable:
    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    return OfflineTableUnreadable(
        f"cannot read the offline table at {path}: {redact_credentials(text)[:300]}; "
        "fix its _delta_log (or move the table away and backfill to rebuild it)"
    )


def _history(table: DeltaTable, depth: int) -> dict[int, int | None]:
    """Version -> commitInfo timestamp of the newest `depth` commits."""
    try:
        entries = table.history(depth)
    except Exception as exc:  # noqa: BLE001 - a commit file that cannot be read or parsed
        raise _unreadable(str(table.table_uri), exc) from None
    return {
        int(entry["version"]): (None if entry.get("timestamp") is None else int(entry["timestamp"]))
        for entry in entries
        if entry.get("version") is not None
    }


# ---- online: the marker key and the sampled keys ------------------------------------------


@dataclass
class _Samples:
    """The sampled keys of the Complete online chunks, as their job records keep them."""

    live: dict[str, list[str]] = field(default_factory=dict)  # job id -> keys not yet expired
    expired: int = 0  # sampled keys past their expiry: gone by contract, not looked up
    unsampled: int = 0  # jobs recorded before samples were kept: the marker alone covers them

    @property
    def keys(self) -> list[str]:
        return [key for keys in self.live.values() for key in keys]


def _samples(complete: list[iv.Segment], records: Mapping[str, JobRecord], now: int) -> _Samples:
    """The sampled keys of the jobs that set `complete`, in time order, without the expired ones."""
    found = _Samples()
    for job_id in dict.fromkeys(seg.job_id for seg in complete):
        if job_id is None or job_id not in records:
            continue
        sample = records[job_id].result.get("online_sample")
        if not isinstance(sample, list):
            found.unsampled += 1
            continue
        live = [str(key) for key, expires in sample if expires is None or int(expires) > now]
        found.expired += len(sample) - len(live)
        found.live[job_id] = live
    return found


def _online(
    store: StoreView,
    spec: FeatureSetSpec,
    complete: list[iv.Segment],
    records: Mapping[str, JobRecord],
    found_at: str,
    now: int,
) -> tuple[dict[str | None, str], str]:
    """Per job whose online time is lost, why; and what was verified: the marker (a store that
    lost everything), then the sampled keys (one that lost some; see `_partly_lost`)."""
    layout = store.online_layout(spec)
    samples = _samples(complete, records, now)
    online = store.online_store()
    try:
        where = online.safe_url
        present = online.has_marker(layout)
        missing = online.missing_keys(samples.keys) if present and samples.live else set()
    finally:
        online.close()
    if not present:
        return _marker_lost(complete, records, layout.marker_key, where, found_at)
    verified = f"marker {layout.marker_key} at {where}: present; " + _sampled_text(samples, missing)
    return _partly_lost(complete, samples, missing, where, found_at), verified


def _marker_lost(
    complete: list[iv.Segment], records: Mapping[str, JobRecord], marker_key: str, where: str, found_at: str
) -> tuple[dict[str | None, str], str]:
    """The marker is gone: every Complete online second written with it is lost."""
    marked: set[str | None] = {
        seg.job_id
        for seg in complete
        if seg.job_id is not None
        and seg.job_id in records
        and records[seg.job_id].result.get("online_marker")
    }
    marker = f"marker {marker_key} at {where}"
    if not marked:
        return {}, f"{marker}: absent, but no Complete time was written with it"
    reason = (
        f"online lost: {where} no longer holds the marker {marker_key} written with this job "
        "(Redis lost its data: a flush, or a restart without persistence); "
        f"found by the consistency check at {found_at}; the next backfill rewrites it"
    )
    return dict.fromkeys(marked, reason), f"{marker}: missing"


def _sampled_text(samples: _Samples, missing: set[str]) -> str:
    """What the sampled keys verified, in words that claim no more than that."""
    keys = len(samples.keys)
    jobs = f"{len(samples.live)} job(s)"
    text = (
        f"{keys - len(missing)} of {keys} sampled keys of {jobs} present"
        if missing
        else f"{keys} sampled keys of {jobs} present"
    )
    if samples.expired:
        text += f" ({samples.expired} more past their online_ttl, not looked up)"
    if samples.unsampled:
        text += (
            f"; {samples.unsampled} job(s) recorded before key samples were kept: covered by the marker only"
        )
    return text


def _partly_lost(
    complete: list[iv.Segment], samples: _Samples, missing: set[str], where: str, found_at: str
) -> dict[str | None, str]:
    """Per job, why its online time is lost, when sampled keys are missing.

    We never delete a key we wrote (a later chunk may replace its value; the key stays; an
    entity purge takes the keys it deletes out of the samples), so a sampled key missing before
    its expiry was deleted or evicted behind our back. Its latest
    value may have come from the chunk that sampled it or from any later one, and unsampled keys
    of the same loss may be anywhere: redoing only the chunk whose sample shows the loss could
    write back an older value than the one lost. So the loss covers the Complete online time
    from the earliest chunk whose sample shows it through the end; the event-time guard keeps
    the rewrite of that time from regressing any key that survived."""
    short = {job: sum(key in missing for key in keys) for job, keys in samples.live.items()}
    lossy = [seg for seg in complete if short.get(seg.job_id or "")]
    if not lossy:
        return {}
    first = min(lossy, key=lambda seg: seg.start)
    tail = f"at {where} (deleted or evicted before expiry); found by the consistency check at {found_at}; "
    tail += "the next backfill rewrites this time and everything after it"
    lost: dict[str | None, str] = {}
    for seg in complete:
        if seg.start < first.start:
            continue
        count = short.get(seg.job_id or "", 0)
        lost[seg.job_id] = (
            f"online partly lost: {count} of {len(samples.live[seg.job_id or ''])} sampled keys of job "
            f"{seg.job_id} missing {tail}"
            if count
            else f"online partly lost: sampled keys of the earlier job {first.job_id} missing {tail}"
            " (a lost key's latest value may come from this job's time)"
        )
    return lost
