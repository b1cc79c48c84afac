"""`Refreshed` reads its value at most once per max_age, and again after invalidate()."""

from __future__ import annotations

import pytest

from airflow_provider_featurestore.core.refreshed import Refreshed

pytestmark = pytest.mark.unit


def test_reads_once_per_max_age_and_again_after_invalidate() -> None:
    now = [100.0]
    reads: list[float] = []

    def read() -> int:
        reads.append(now[0])
        return len(reads)

    value = Refreshed(read, max_age=5.0, clock=lambda: now[0])
    assert value.get() == 1
    now[0] = 104.5
    assert value.get() == 1  # still fresh: no second read
    now[0] = 105.5
    assert value.get() == 2
    value.invalidate()
    assert value.get() == 3
    assert reads == [100.0, 105.5, 105.5]


def test_a_failed_read_keeps_the_old_value_for_the_next_try() -> None:
    now = [0.0]
    answers: list[object] = [7, RuntimeError("database went away"), 8]

    def read() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    value = Refreshed(read, max_age=1.0, clock=lambda: now[0])
    assert value.get() == 7
    now[0] = 2.0
    with pytest.raises(RuntimeError):
        value.get()
    assert value.get() == 8
