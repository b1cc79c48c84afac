"""Is a feature window ready for its readers? The one decision `FeatureStoreSensor`'s poke and its
trigger share: a pure function over the interval table's intervals, so the two can never disagree
and the rule is tested without Airflow or a database.

A window `[start, end)` is ready when every second of it is Complete in every store asked.
Otherwise the answer says, per store, which time is Pending (a job is on it), Incomplete (a job
failed or was cut off) or None (never materialized).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from airflow_provider_featurestore.core.intervals import COMPLETE, INCOMPLETE, PENDING, Interval, clip
from airflow_provider_featurestore.core.timeutil import iso


class Verdict(StrEnum):
    READY = "ready"  # every second Complete in every store asked
    WAIT = "wait"  # not yet: some time is Pending, None, or Incomplete while failing was not asked
    FAIL = "fail"  # Incomplete time and nothing Pending, and the caller asked to fail on it


@dataclass(frozen=True)
class Readiness:
    """The statuses of one feature set version over exactly `[start, end)`, per store."""

    feature_set: str
    version: int
    start: int
    end: int
    stores: Mapping[str, tuple[Interval, ...]]

    @property
    def window(self) -> str:
        return f"{self.feature_set} v{self.version} [{iso(self.start)}, {iso(self.end)})"

    def times(self, status: str) -> list[tuple[str, Interval]]:
        """The (store, interval) pairs of the window with `status`, in store then time order."""
        return [(store, i) for store, items in self.stores.items() for i in items if i.status == status]

    @property
    def complete(self) -> bool:
        return all(i.status == COMPLETE for items in self.stores.values() for i in items)

    def verdict(self, fail_when_incomplete: bool = False) -> Verdict:
        """READY when all Complete. FAIL only when asked and some time is Incomplete while none is
        Pending: then no running job (nor its retry) will finish the window, a backfill must."""
        if self.complete:
            return Verdict.READY
        if fail_when_incomplete and self.times(INCOMPLETE) and not self.times(PENDING):
            return Verdict.FAIL
        return Verdict.WAIT

    def describe(self) -> str:
        """One line for a log: Complete, or the time that is not, per store and status."""
        if self.complete:
            return f"{self.window} is Complete in {', '.join(self.stores)}"
        gaps = [
            f"{store} {i.status} [{iso(i.start)}, {iso(i.end)})"
            for store, items in self.stores.items()
            for i in items
            if i.status != COMPLETE
        ]
        return f"{self.window} is not Complete: {'; '.join(gaps)}"

    def failure(self) -> str:
        """One line for a failed task: the Incomplete time per store, and the repair."""
        incomplete = ", ".join(f"{s} [{iso(i.start)}, {iso(i.end)})" for s, i in self.times(INCOMPLETE))
        return (
            f"{self.window} has Incomplete time and no job Pending on it: {incomplete}; "
            "backfill it with data status Incomplete"
        )


def assess(
    feature_set: str, version: int, start: int, end: int, intervals: Mapping[str, Iterable[Interval]]
) -> Readiness:
    """The window's readiness from each store's intervals (any that meet the window; time they do
    not cover counts as None). ValueError on an empty window or no store: the caller checks its
    arguments first, so this is a bug."""
    if start >= end:
        raise ValueError(f"empty or reversed window [{start}, {end})")
    if not intervals:
        raise ValueError("no store to assess")
    clipped = {store: tuple(clip(items, start, end)) for store, items in intervals.items()}
    return Readiness(feature_set, version, start, end, clipped)
