"""Connections to the interval table's database, and the stream locks every change takes.

SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (production). Every change to a
stream happens in one transaction that first locks the stream (SQLite: `BEGIN IMMEDIATE`, one
writer at a time; PostgreSQL: `SELECT ... FOR UPDATE` on the stream's row, in store order), so
two planners claiming overlapping windows never both get the same second.

**One PostgreSQL driver: psycopg2** (the `postgres` extra installs `psycopg2-binary`). A plain
`postgresql://` URL, the documented one, is opened with it: SQLAlchemy 2.1 would pick psycopg 3
for it, a driver the extra does not install. Why psycopg2: the interval table is synchronous
SQLAlchemy Core (psycopg 3's async API buys it nothing), and Airflow's images and its postgres
provider already carry psycopg2, so the provider adds no second driver beside Airflow's. A URL
that names its driver (`postgresql+psycopg://`) is taken as written; a driver that is not
installed is refused in one line saying what to install (`_missing_driver`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable, redact_credentials
from airflow_provider_featurestore.core.interval_table.schema import (
    StreamKey,
    create_schema,
    stream_filter,
    streams,
)

if TYPE_CHECKING:
    import sqlite3

READONLY = "featurestore_readonly"  # execution option: a read that needs no write lock
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg2", "postgres": "postgresql+psycopg2"}
"""The driver a URL without one gets (`postgres://` is the libpq spelling of the scheme)."""
DRIVER_PACKAGES = {
    "psycopg2": "airflow-provider-featurestore[postgres] (psycopg2-binary)",
    "psycopg": "psycopg[binary]",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
}
"""The pip requirement that brings a driver module, for the line that says what to install."""


def engine_url(url: str) -> sa.URL:
    """The URL SQLAlchemy opens for `url`: a PostgreSQL URL without a driver gets psycopg2 (see
    the module's doc); anything else as written. A URL SQLAlchemy cannot parse is BadInput."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise BadInput(f"interval_table.url {redact_credentials(url)}: not a SQLAlchemy URL") from None
    driver = DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed if driver is None else parsed.set(drivername=driver)


def create_engine(url: str) -> Engine:
    """An engine for the interval table; SQLite gets one-writer transactions and a busy wait."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=60000")

        @sa.event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            readonly = connection.get_execution_options().get(READONLY, False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    target = engine_url(url)
    try:
        return sa.create_engine(target, pool_pre_ping=True)
    except ImportError as exc:  # the dialect imports its DBAPI module here
        raise _missing_driver(target, exc) from None
    except sa.exc.NoSuchModuleError:
        raise BadInput(
            f"interval_table.url {target.render_as_string(hide_password=True)}: SQLAlchemy has no "
            f"dialect {target.drivername!r}; use sqlite:/// or postgresql://"
        ) from None


def _missing_driver(url: sa.URL, exc: ImportError) -> BadInput:
    """The URL's driver module is not installed: one line naming the field and what to install."""
    module = (exc.name or url.get_driver_name()).split(".")[0]
    package = DRIVER_PACKAGES.get(module, module)
    return BadInput(
        f"interval_table.url {url.render_as_string(hide_password=True)}: its driver module {module!r} "
        f"is not installed: pip install '{package}' (postgresql:// without a driver uses psycopg2, "
        "from the postgres extra)"
    )


def open_engine(url: str) -> Engine:
    """An engine on a database holding the interval table's schema (created when missing); a
    database that cannot be opened raises BadInput or ServiceUnavailable, see `_opening_error`."""
    engine = create_engine(url)
    try:
        create_schema(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise _opening_error(url, exc) from None
    return engine


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only (on SQLite it does not wait for the writer's lock)."""
    return engine.connect().execution_options(**{READONLY: True})


@contextmanager
def locked(engine: Engine, key: StreamKey, stores: Iterable[str]) -> Iterator[Connection]:
    """A transaction holding the write lock of each stream in `stores`."""
    with engine.begin() as conn:
        lock_streams(conn, key, stores)
        yield conn


def lock_streams(conn: Connection, key: StreamKey, stores: Iterable[str]) -> None:
    """Take, inside the caller's transaction, the write lock of each stream in `stores`; a
    stream's row is created on its first lock. Locks are taken in store order: no deadlock."""
    names = sorted(set(stores))
    if not names:
        return
    rows = [
        {"feature_set": key.feature_set, "version": key.version, "store": s, "disabled": False} for s in names
    ]
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(insert(streams).values(rows).on_conflict_do_nothing())
    else:
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(streams.insert().values(row))
            except sa.exc.IntegrityError:
                pass
    if dialect != "sqlite":  # SQLite's BEGIN IMMEDIATE already made us the only writer
        conn.execute(
            sa.select(streams.c.store)
            .where(stream_filter(streams, key), streams.c.store.in_(names))
            .order_by(streams.c.store)
            .with_for_update()
        ).all()


def _opening_error(url: str, exc: sa.exc.DBAPIError) -> Exception:
    """Why the interval table cannot be opened, in one line without the URL's password: a bad
    SQLite file or path is the user's to fix (BadInput); a server that cannot be reached is a
    service to start (ServiceUnavailable)."""
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    if url.startswith("sqlite"):
        return BadInput(
            f"interval_table.url {shown}: {reason}: not a usable SQLite interval table "
            "(move the file away to start a new one, or fix the path)"
        )
    if isinstance(exc, sa.exc.OperationalError):
        return ServiceUnavailable(
            f"cannot reach the interval table at {shown}: {redact_credentials(reason)}; "
            "start the database or fix interval_table.url"
        )
    return BadInput(f"interval_table.url {shown}: {redact_credentials(reason)}")
