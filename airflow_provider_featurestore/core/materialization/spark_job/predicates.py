"""The SQL text of the job's time predicates.

Text, not Column expressions, because a Delta `replaceWhere` overwrite takes SQL text and the
Delta log records it as given: the offline commit finds its own log entry again by that text
(`offline_commit.our_commit`). Column names come from a validated spec (identifiers) and are
quoted; times are whole UTC seconds rendered as timestamp literals, so no user text is spliced in.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.timeutil import to_datetime

PARTITION_COLUMN = "event_date"


def ts_literal(epoch: int) -> str:
    return f"timestamp'{to_datetime(epoch).strftime('%Y-%m-%d %H:%M:%S')}'"


def window_predicate(column: str, start: int, end: int) -> str:
    """Rows of `column` in `[start, end)`."""
    return f"`{column}` >= {ts_literal(start)} AND `{column}` < {ts_literal(end)}"


def partition_range(start: int, end: int) -> tuple[str, str]:
    """The first and last `event_date` partition of `[start, end)`, as ISO dates."""
    return to_datetime(start).strftime("%Y-%m-%d"), to_datetime(end - 1).strftime("%Y-%m-%d")


def partition_predicate(start: int, end: int) -> str:
    first, last = partition_range(start, end)
    return f"`{PARTITION_COLUMN}` >= date'{first}' AND `{PARTITION_COLUMN}` <= date'{last}'"


def offline_predicate(spec: FeatureSetSpec, start: int, end: int) -> str:
    """The window over the offline table, with the partition range that implies, so that the
    overwrite and the read-back prune by partition (measured: replaceWhere 0.58 s -> 0.50 s
    at 1M rows on Sail) instead of reading every file's statistics."""
    return f"{window_predicate(spec.timestamp_column, start, end)} AND {partition_predicate(start, end)}"


def merged_ranges(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ranges` sorted, with overlapping or touching ones merged."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def ranges_predicate(column: str, ranges: Sequence[tuple[int, int]]) -> str:
    """Rows in any of the windows, contiguous ones merged into one range."""
    return " OR ".join(f"({window_predicate(column, start, end)})" for start, end in merged_ranges(ranges))
