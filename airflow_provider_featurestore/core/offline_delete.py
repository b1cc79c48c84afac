"""An entity purge's offline part: one Delta DELETE of the entities' rows, and the VACUUM that
removes the files older versions keep them in.

Through delta-rs (`deltalake`), not the engine: a purge is a few commands from the CLI, with no
Spark session to start; delta-rs is already how the package reads every engine's Delta log
(history, the consistency check), it opens the same locations (local paths, `file://`, and the
object stores it knows, `s3://`/`s3a://`, `abfss://`, `gs://`, with credentials from the
environment, as `featurestore check` does), its DELETE is one commit whatever the number of keys
and returns the rows it deleted, and its VACUUM runs where Sail has none.

The key values never enter the SQL: the predicate compares a salted SHA-256 of each index
column's text (`CAST(col AS VARCHAR)`, which gives the same text as Arrow's cast here) with the
digests computed in Python, so a hostile value cannot change the predicate, and the DELETE's
commit (whose `commitInfo` keeps the predicate in the table's log) holds no key in plain text.
The price: no file is skipped by its statistics, so a purge reads the whole table once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_incrementing

from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable, redact_credentials

HASHABLE_TYPES = ("string", "int", "long", "boolean", "date")
"""Index column types whose text is the same in Arrow (Python) and in delta-rs's SQL cast; a
float or timestamp index (an odd entity key) is refused rather than risk missing a row."""

COMMIT_RETRIES = 5


class OfflineDeleteFailed(ServiceUnavailable):
    """delta-rs could not delete from (or vacuum) the offline table: a Delta commit is atomic,
    so nothing was deleted by the failed commit, and the purge can run again."""


@dataclass
class OfflineDeleted:
    """What the DELETE (and VACUUM) did to one Delta table."""

    table: str
    exists: bool = True
    rows: int = 0
    commit: int | None = None  # the DELETE's table version; None: nothing matched, no commit
    vacuumed: int | None = None  # files VACUUM removed; None: not asked

    def to_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "exists": self.exists,
            "rows_deleted": self.rows,
            "commit": self.commit,
            "vacuumed_files": self.vacuumed,
        }


def key_texts(
    spec: FeatureSetSpec, arrays: Sequence[pa.Array], prefix: str = "--key"
) -> list[tuple[str, ...]]:
    """Each entity's index values as text (one Arrow array per index column, typed), as the
    predicate's cast writes them."""
    for column in spec.index_columns:
        if column.type not in HASHABLE_TYPES:
            raise BadInput(
                f"{prefix}: {spec.name} v{spec.version} index column {column.name!r} is {column.type}; "
                f"purge supports index columns of type {', '.join(HASHABLE_TYPES)}"
            )
    texts = [pc.cast(array, pa.string()).to_pylist() for array in arrays]
    return [tuple(row) for row in zip(*texts, strict=True)]


def digest(salt: str, text: str) -> str:
    """The salted SHA-256 (hex) the predicate compares a column's text with."""
    return hashlib.sha256((salt + text).encode()).hexdigest()


def delete_predicate(spec: FeatureSetSpec, salt: str, keys: Sequence[tuple[str, ...]]) -> str:
    """The rows of these entities, as a delta-rs SQL predicate holding only digests. `salt` is
    hex made by `purge.py`, column names are validated identifiers (quoted all the same)."""
    if not all(ch in "0123456789abcdef" for ch in salt):
        raise ValueError("the salt must be lowercase hex")

    def hashed(name: str) -> str:
        quoted = '"' + name.replace('"', '""') + '"'
        return f"encode(sha256(concat('{salt}', CAST({quoted} AS VARCHAR))), 'hex')"

    names = [column.name for column in spec.index_columns]
    if len(names) == 1:
        listed = ", ".join(f"'{digest(salt, key[0])}'" for key in keys)
        return f"{hashed(names[0])} IN ({listed})"
    return " OR ".join(
        "("
        + " AND ".join(f"{hashed(n)} = '{digest(salt, v)}'" for n, v in zip(names, key, strict=True))
        + ")"
        for key in keys
    )


def delete_rows(path: str, predicate: str, *, vacuum: bool, retention_hours: int) -> OfflineDeleted:
    """Delete the rows matching `predicate` in one commit (retried when another writer committed
    first); nothing matched, no commit. With `vacuum`, then remove every file no version newer
    than `retention_hours` ago needs (`enforce_retention_duration` off, so 0 is allowed)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    try:
        DeltaTable(path)
    except TableNotFoundError:
        return OfflineDeleted(path, exists=False)
    except Exception as exc:  # noqa: BLE001 - delta-rs raises a bare DeltaError for most things
        raise _failed(path, "open", exc) from None
    done = OfflineDeleted(path)
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(CommitFailedError),
            stop=stop_after_attempt(COMMIT_RETRIES),
            wait=wait_incrementing(start=0.2, increment=0.2),
            reraise=True,
        ):
            with attempt:
                table = DeltaTable(path)  # the newest version, after a lost race too
                metrics = table.delete(predicate)
        done.rows = int(metrics.get("num_deleted_rows", 0))
        done.commit = table.version() if done.rows else None
    except Exception as exc:  # noqa: BLE001
        raise _failed(path, "delete from", exc) from None
    if vacuum:
        try:
            removed = DeltaTable(path).vacuum(
                retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
            )
        except Exception as exc:  # noqa: BLE001
            raise _failed(path, "vacuum", exc, f"the DELETE was committed ({done.rows:,} rows)") from None
        done.vacuumed = len(removed)
    return done


def _failed(
    path: str, what: str, exc: BaseException, done: str = "nothing was deleted from it"
) -> OfflineDeleteFailed:
    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    return OfflineDeleteFailed(
        f"cannot {what} the offline table at {path}: {redact_credentials(text)[:300]}; "
        f"{done}: fix the cause and run the purge again (it is idempotent)"
    )
