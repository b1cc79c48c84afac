"""What the rest of the package asks of an online store, whatever keeps the values.

The Spark job writes batches and sets the marker, serving and the CLI read, disable-online
purges a feature set version and `purge` an entity's keys, the consistency check looks for the
marker and the sampled keys. Those operations are `OnlineStore`; Redis is one implementation
(`redis_store.py`), and another backend is one more subclass registered in `factory.py`. Every
backend shares the layout (`layout.py`: keys, fields, marker) and the value text (`codec.py`),
so the rules that make the data right hold for all of them: a row never replaces a newer one,
an expired row is not written, a lookup gives declared types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import pyarrow as pa

from airflow_provider_featurestore.core.errors import ServiceUnavailable
from airflow_provider_featurestore.core.online.layout import OnlineLayout


class OnlineStoreUnavailable(ServiceUnavailable):
    """The online store cannot be reached or refuses us; the message never shows a password."""


@dataclass
class WriteStats:
    """What one or more writes did: rows given = written + skipped_older + skipped_expired."""

    rows: int = 0
    written: int = 0
    skipped_older: int = 0
    skipped_expired: int = 0

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(
            self.rows + other.rows,
            self.written + other.written,
            self.skipped_older + other.skipped_older,
            self.skipped_expired + other.skipped_expired,
        )


# One lookup request: a feature set version and the features wanted from it (None: all).
LookupRequest = tuple[OnlineLayout, Sequence[str] | None]
# The entities of a lookup: each maps index column names to values.
EntityRows = Sequence[Mapping[str, object]]
# A lookup's answer for one entity: feature name -> value, or None when nothing is stored.
FoundRow = dict[str, object] | None


class OnlineStore(ABC):
    """A client of one online store; cheap to build, connects on first use, thread-safe, and
    picklable (a Spark executor rebuilds its own connections). Failures to reach the store
    raise OnlineStoreUnavailable."""

    # Called with the seconds of each lookup's round trip to the store (the feature server's
    # metrics set it); None: not timed. Not pickled: a rebuilt store has none.
    round_trip_observer: Callable[[float], None] | None = None

    @property
    @abstractmethod
    def safe_url(self) -> str:
        """Where the store is, as messages show it: no user, password or query."""

    @abstractmethod
    def ping(self) -> None:
        """Check that the store answers."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections (the store reconnects if used again)."""

    @abstractmethod
    def write(
        self, layout: OnlineLayout, batch: pa.RecordBatch | pa.Table, *, now: int | None = None
    ) -> WriteStats:
        """Store rows that are each the latest of their entity (one row per key) in a window.

        A stored row is replaced unless it has a newer event time; with a TTL, a key expires
        TTL seconds after its event time, and rows already expired at `now` (epoch seconds,
        default the current time) are counted and skipped.
        """

    @abstractmethod
    def mark(self, layout: OnlineLayout, *, now: int | None = None) -> None:
        """Set the layout's marker key (no TTL) to the time of this write, in epoch seconds.

        Written with every online write, before its rows: a store that lost its data (a flush,
        a restart without persistence, a failover to an empty replica) lost the marker too, so
        a missing marker under online time that the interval table calls Complete means that
        time is lost (`consistency.py`). Keys that expired by `online_ttl` leave the marker alone:
        expiry is the contract, not a loss.
        """

    @abstractmethod
    def has_marker(self, layout: OnlineLayout) -> bool:
        """Whether the layout's marker key exists."""

    @abstractmethod
    def missing_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` the store does not hold (expired keys included): the consistency
        check's look-up of the keys sampled by the writes (`sample.py`), in round trips of a
        bounded number of keys, so thousands of chunks' samples cost a few round trips."""

    @abstractmethod
    def lookup(
        self, requests: Sequence[LookupRequest], entity_rows: EntityRows, *, with_event_time: bool = False
    ) -> list[list[FoundRow]]:
        """`get` for several feature set versions at once, in one round trip where the store
        allows it. One list of rows per request, each in the order of `entity_rows`."""

    @abstractmethod
    def purge(self, layout_or_prefix: OnlineLayout | str) -> int:
        """Delete every key of a feature set version (its marker included); returns the count."""

    @abstractmethod
    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete these keys (an entity purge: `purge.py`); returns how many existed. A key of
        an entity holds everything the layout stores of it (its fields and `_event_time`, the
        event-time guard), so deleting it leaves nothing of the entity behind."""

    def get(
        self,
        layout: OnlineLayout,
        entity_rows: Sequence[Mapping[str, object]],
        features: Sequence[str] | None = None,
        *,
        with_event_time: bool = False,
    ) -> list[FoundRow]:
        """The stored features of each entity, in order.

        `entity_rows` map index column names to values (text is parsed to the column's type).
        Each result maps the requested features (default: all) to values of their declared
        type; an entity with nothing stored (or expired) is None, a feature without a value
        None. With `with_event_time`, the timestamp column is added (an aware UTC datetime).
        """
        return self.lookup([(layout, features)], entity_rows, with_event_time=with_event_time)[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
