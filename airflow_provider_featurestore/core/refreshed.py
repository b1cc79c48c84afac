"""`Refreshed`: a value read from the interval table at most every few seconds, never per request.

The feature server needs facts that live in the interval table (which online stores are
disabled, how fresh each feature set is) on its hot path. A query per request would put a
database round trip into a sub-millisecond lookup; a value read once at start-up would miss
`disable-online`. This keeps the last value and reads it again when it is older than
`max_age` seconds, one reader at a time: the other threads keep using the value they have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Refreshed(Generic[T]):
    """`read()`'s last value, read again when older than `max_age` seconds (first on `get()`)."""

    def __init__(
        self, read: Callable[[], T], max_age: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._read_at: float | None = None

    def get(self) -> T:
        """The value; read now when none is held or it is stale. While one thread reads, the
        others return the stale value at once; only the first read makes them wait. An error of
        `read()` propagates and the old value (if any) is kept for the next try."""
        read_at = self._read_at
        if read_at is not None and self._clock() - read_at < self._max_age:
            return self._value  # type: ignore[return-value]  # set together with _read_at
        if read_at is not None and not self._lock.acquire(blocking=False):
            return self._value  # type: ignore[return-value]  # another thread is reading
        if read_at is None:
            self._lock.acquire()
        try:
            if self._read_at is None or self._clock() - self._read_at >= self._max_age:
                self._value = self._read()
                self._read_at = self._clock()
            return self._value  # type: ignore[return-value]
        finally:
            self._lock.release()

    def invalidate(self) -> None:
        """Read again on the next `get()` (after this process changed what it reads)."""
        self._read_at = None
