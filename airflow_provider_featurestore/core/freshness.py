"""Freshness SLAs: how far each store's Complete time lags behind now, against the spec's
`materialization.freshness`.

`featurestore status`, the featurestore_monitor DAG and the status page's freshness table all
read these rows, computed here from the interval table alone (no store is asked), so the three
never disagree about what is late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey
from airflow_provider_featurestore.core.timeutil import format_duration, human_duration, iso, now_epoch

OK, LATE, NO_SLA = "ok", "late", "no_sla"
FAILED_JOBS_WINDOW = 86400  # `failed_jobs_24h`: failed jobs that finished this long before now


def judge(lag_s: int | None, sla_s: int | None) -> str:
    """`no_sla` without an SLA; else `late` when nothing is Complete or the lag exceeds it."""
    if sla_s is None:
        return NO_SLA
    return LATE if lag_s is None or lag_s > sla_s else OK


@dataclass(frozen=True)
class Freshness:
    """One feature set version's store, as `featurestore status` reports it at `now`."""

    feature_set: str
    version: int
    store: str
    now: int
    complete_until: int | None  # the end of the Complete time reaching furthest
    sla_s: int | None
    incomplete_intervals: int
    failed_jobs_24h: int  # of the version (jobs may write several stores)

    @property
    def lag_s(self) -> int | None:
        return None if self.complete_until is None else self.now - self.complete_until

    @property
    def state(self) -> str:
        return judge(self.lag_s, self.sla_s)

    @property
    def late(self) -> bool:
        return self.state == LATE

    def to_json(self) -> dict[str, object]:
        return {
            "feature_set": self.feature_set,
            "version": self.version,
            "store": self.store,
            "complete_until": None if self.complete_until is None else iso(self.complete_until),
            "lag_s": self.lag_s,
            "sla_s": self.sla_s,
            "state": self.state,
            "incomplete_intervals": self.incomplete_intervals,
            "failed_jobs_24h": self.failed_jobs_24h,
        }

    def repair_window(self) -> tuple[int, int] | None:
        """The backfill that brings a late store back within its SLA: from the end of its
        Complete time (nothing Complete: from one SLA before now) to now; None when not late."""
        if not self.late or self.sla_s is None:
            return None
        start = self.complete_until if self.complete_until is not None else self.now - self.sla_s
        return (start, self.now) if start < self.now else None

    def repair_command(self) -> str | None:
        """The `featurestore backfill` that repairs a late store (None when there is none)."""
        window = self.repair_window()
        if window is None:
            return None
        return (
            f"featurestore backfill {self.feature_set} --version {self.version} --store {self.store} "
            f"--start {iso(window[0])} --end {iso(window[1])}"
        )

    def describe(self) -> str:
        """One line for a log: the store, its lag (human and seconds) against its SLA, and for a
        late store how late and the command that repairs it."""
        title = f"{self.feature_set} v{self.version} {self.store}"
        lag = self.lag_s
        behind = (
            "nothing Complete yet"
            if lag is None or self.complete_until is None
            else f"Complete until {iso(self.complete_until)}, {human_duration(lag)} behind ({lag} s)"
        )
        if self.sla_s is None:
            return f"{title}: no SLA: {behind}"
        sla = f"SLA {format_duration(self.sla_s)} ({self.sla_s} s)"
        if not self.late:
            return f"{title}: ok: {behind}, within the {sla}"
        over = "" if lag is None else f", late by {human_duration(lag - self.sla_s)} ({lag - self.sla_s} s)"
        return f"{title}: late: {behind}, {sla}{over}; repair: {self.repair_command()}"


def select(
    config: FeatureStoreConfig,
    name: str | None,
    version: int | None,
    *,
    name_arg: str = "NAME",
    version_arg: str = "--version",
) -> list[FeatureSetSpec]:
    """The feature set versions asked for: every version of every feature set, of `name`, or
    only `version` of it; BadInput naming the argument (as the caller spells it) at fault."""
    if name is None:
        if version is not None:
            raise BadInput(f"{version_arg}: give the feature set's name too")
        return list(config.feature_sets)
    versions = [spec for spec in config.feature_sets if spec.name == name]
    if not versions:
        try:
            config.get(name)  # words the refusal: not found, or an on-demand set (nothing stored)
        except BadInput as exc:
            raise BadInput(f"{name_arg}: {exc}") from None
    chosen = [spec for spec in versions if version is None or spec.version == version]
    if not chosen:
        listed = ", ".join(str(spec.version) for spec in versions)
        raise BadInput(f"{version_arg}: feature set {name!r} has no version {version}; versions: {listed}")
    return chosen


def assess(
    table: IntervalTable, specs: Iterable[FeatureSetSpec], *, now: int | None = None
) -> list[Freshness]:
    """One row per feature set version and store it materializes (a store switched off by
    `disable-online` is left out), at `now` (default: the current time)."""
    now = now_epoch() if now is None else now
    failed = table.failed_job_counts(now - FAILED_JOBS_WINDOW)
    rows = []
    for spec in specs:
        key = StreamKey(spec.name, spec.version)
        disabled = table.disabled_stores(key)
        for store in spec.enabled_stores():
            if store in disabled:
                continue
            rows.append(
                Freshness(
                    feature_set=spec.name,
                    version=spec.version,
                    store=store,
                    now=now,
                    complete_until=table.freshness(key, store),
                    sla_s=spec.materialization.freshness,
                    incomplete_intervals=table.count_intervals(key, store, iv.INCOMPLETE),
                    failed_jobs_24h=failed.get((spec.name, spec.version), 0),
                )
            )
    return rows


def any_late(rows: Sequence[Freshness]) -> bool:
    return any(row.late for row in rows)
