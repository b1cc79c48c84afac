"""What the interval-table benchmarks share: a throwaway PostgreSQL schema, timing, invariant
checks, the seeded stream, and the printed table."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import sqlalchemy as sa

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import engine_url

T = TypeVar("T")
STORES = ("offline", "online")
HOUR = 3600
DAY = 86400
INSERT_BATCH = 10_000  # rows per bulk insert
ORIGIN = 1_420_070_400  # 2015-01-01T00:00:00Z, a day boundary
CYCLE = (iv.COMPLETE, iv.INCOMPLETE, iv.NONE)  # status of hour i is CYCLE[i % 3]


@contextlib.contextmanager
def postgresql_url(base_url: str) -> Iterator[str]:
    """`base_url` with its search_path set to a fresh schema, dropped afterwards."""
    schema = f"fs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(engine_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in base_url else "?"
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with contextlib.suppress(sa.exc.DBAPIError), admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def timed(func: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by one call of `func`, and its result."""
    begin = time.perf_counter()
    result = func()
    return time.perf_counter() - begin, result


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"benchmark invariant broken: {message}")


def seed_rows(feature_set: str, version: int, store: str, count: int) -> Iterator[dict[str, object]]:
    """`count` hour-long segments of one store from ORIGIN, statuses cycling; non-None ones own a job."""
    for i in range(count):
        status = CYCLE[i % len(CYCLE)]
        yield {
            "feature_set": feature_set,
            "version": version,
            "store": store,
            "start_s": ORIGIN + i * HOUR,
            "end_s": ORIGIN + (i + 1) * HOUR,
            "status": status,
            "job_id": None if status == iv.NONE else f"seed{i:012d}",
        }


def aligned(lines: Sequence[Sequence[str]], text_columns: int = 2) -> str:
    """Rows of cells as a table: the first `text_columns` left-aligned, figures right-aligned,
    a rule under the header (the first row)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(w) if i < text_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)
