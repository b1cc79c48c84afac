"""The interval table's SQL tables, and the check that a database's tables of those names are ours.

Three tables: `fs_streams` (one row per feature set version and store: the row a writer locks,
and the store's disabled flag), `fs_intervals` (the status segments of each stream, sorted and
disjoint) and `fs_jobs` (the job records).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from airflow_provider_featurestore.core.errors import BadInput

metadata = sa.MetaData()

streams = sa.Table(
    "fs_streams",
    metadata,
    sa.Column("feature_set", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("store", sa.String(16), primary_key=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

segments = sa.Table(
    "fs_intervals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("feature_set", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("store", sa.String(16), nullable=False),
    sa.Column("start_s", sa.BigInteger, nullable=False),
    sa.Column("end_s", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.UniqueConstraint("feature_set", "version", "store", "start_s", name="uq_fs_intervals_start"),
    # A job's own segments, found without scanning its stream (even without planner statistics).
    sa.Index("ix_fs_intervals_job", "feature_set", "version", "store", "job_id", "status"),
)

jobs = sa.Table(
    "fs_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("feature_set", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("start_s", sa.BigInteger, nullable=False),
    sa.Column("end_s", sa.BigInteger, nullable=False),
    sa.Column("stores", sa.String(64), nullable=False),
    sa.Column("reads", sa.String(16), nullable=False, default="source"),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=True),
    sa.Column("rows_written", sa.Text, nullable=False, default="{}"),
    sa.Column("result", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("airflow", sa.Text, nullable=True),
    sa.Index("ix_fs_jobs_feature_set", "feature_set", "version", "created_at"),
    sa.Index("ix_fs_jobs_state", "state", "lease_expires_at"),
)


@dataclass(frozen=True)
class StreamKey:
    """One feature set version."""

    feature_set: str
    version: int


def stream_filter(table: sa.Table, key: StreamKey, store: str | None = None) -> sa.ColumnElement[bool]:
    """The rows of `table` belonging to one feature set version (and, given `store`, one stream)."""
    clauses = [table.c.feature_set == key.feature_set, table.c.version == key.version]
    if store is not None:
        clauses.append(table.c.store == store)
    return sa.and_(*clauses)


def create_schema(engine: Engine) -> None:
    """Create the tables that are missing, after `check_schema`. Several processes may create
    the schema at once: a loser's error is retried, and then it sees the winner's tables."""
    for attempt in range(5):
        try:
            check_schema(engine)
            metadata.create_all(engine, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def check_schema(engine: Engine) -> None:
    """Refuse, before creating anything in it, a database whose tables of our names lack our
    columns (another program's, or a damaged one): every later query would fail on it. The
    engine is disposed before BadInput is raised."""
    existing = _existing_columns(engine)
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        missing = [column.name for column in table.columns if column.name not in existing[table.name]]
        if missing:
            shown = engine.url.render_as_string(hide_password=True)
            engine.dispose()
            raise BadInput(
                f"interval_table.url {shown}: table {table.name} has no column(s) {', '.join(missing)}: "
                "not this package's interval table (point interval_table.url at another database)"
            )


def _existing_columns(engine: Engine) -> dict[str, set[str]]:
    """The columns of each table already in the database. A SQLite file is read through a
    read-only connection: the engine's own would switch it to WAL mode, a write."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and os.path.exists(path):
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                names = [
                    row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
                return {
                    n: {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (n,))}
                    for n in names
                }
        except sqlite3.DatabaseError:
            pass  # not a database: the engine's own connection below says so in its words
    inspector = sa.inspect(engine)
    return {n: {column["name"] for column in inspector.get_columns(n)} for n in inspector.get_table_names()}
