"""The readiness decision the sensor and its trigger share (`core/readiness.py`): pure, no Airflow."""

from __future__ import annotations

import pytest

from airflow_provider_featurestore.core.intervals import COMPLETE, INCOMPLETE, NONE, PENDING, Interval
from airflow_provider_featurestore.core.readiness import Verdict, assess
from airflow_provider_featurestore.core.timeutil import to_epoch

DAY = 86400
D0 = to_epoch("2024-01-01")


def window(**intervals: list[Interval]):  # type: ignore[no-untyped-def]
    """Days 1 and 2 of the axis assessed over each store's intervals."""
    return assess("transactions", 1, D0 + DAY, D0 + 3 * DAY, intervals)


def test_a_window_complete_in_every_store_is_ready_even_inside_larger_intervals() -> None:
    whole = [Interval(D0, D0 + 10 * DAY, COMPLETE)]
    readiness = window(offline=whole, online=whole)
    assert readiness.complete and readiness.verdict() is Verdict.READY
    assert readiness.stores["offline"] == (Interval(D0 + DAY, D0 + 3 * DAY, COMPLETE),)
    assert readiness.describe() == (
        "transactions v1 [2024-01-02T00:00:00Z, 2024-01-04T00:00:00Z) is Complete in offline, online"
    )


def test_time_outside_every_interval_counts_as_none() -> None:
    readiness = window(offline=[Interval(D0, D0 + 2 * DAY, COMPLETE)])
    assert readiness.verdict() is Verdict.WAIT
    assert readiness.times(NONE) == [("offline", Interval(D0 + 2 * DAY, D0 + 3 * DAY, NONE))]
    assert window(offline=[]).times(NONE) == [("offline", Interval(D0 + DAY, D0 + 3 * DAY, NONE))]


def test_one_store_not_complete_keeps_the_window_waiting_and_says_where() -> None:
    readiness = window(
        offline=[Interval(D0, D0 + 3 * DAY, COMPLETE)],
        online=[Interval(D0, D0 + 2 * DAY, COMPLETE), Interval(D0 + 2 * DAY, D0 + 3 * DAY, PENDING)],
    )
    assert readiness.verdict() is readiness.verdict(fail_when_incomplete=True) is Verdict.WAIT
    assert readiness.describe() == (
        "transactions v1 [2024-01-02T00:00:00Z, 2024-01-04T00:00:00Z) is not Complete: "
        "online Pending [2024-01-03T00:00:00Z, 2024-01-04T00:00:00Z)"
    )


@pytest.mark.parametrize(
    ("rest", "fails"),
    [(COMPLETE, True), (NONE, True), (PENDING, False)],
    ids=["rest-complete", "rest-none", "rest-pending"],
)
def test_incomplete_time_fails_only_when_asked_and_nothing_is_pending(rest: str, fails: bool) -> None:
    readiness = window(
        offline=[Interval(D0, D0 + 2 * DAY, INCOMPLETE), Interval(D0 + 2 * DAY, D0 + 3 * DAY, rest)]
    )
    assert readiness.verdict() is Verdict.WAIT  # by default a backfill may still come
    assert readiness.verdict(fail_when_incomplete=True) is (Verdict.FAIL if fails else Verdict.WAIT)


def test_a_pending_store_keeps_an_incomplete_store_waiting() -> None:
    readiness = window(
        offline=[Interval(D0, D0 + 3 * DAY, INCOMPLETE)], online=[Interval(D0, D0 + 3 * DAY, PENDING)]
    )
    assert readiness.verdict(fail_when_incomplete=True) is Verdict.WAIT


def test_the_failure_names_each_incomplete_range_and_its_store() -> None:
    readiness = window(
        offline=[
            Interval(D0 + DAY, D0 + 2 * DAY, INCOMPLETE),
            Interval(D0 + 2 * DAY, D0 + 3 * DAY, COMPLETE),
        ],
        online=[Interval(D0 + 2 * DAY, D0 + 3 * DAY, INCOMPLETE)],
    )
    assert readiness.times(INCOMPLETE) == [
        ("offline", Interval(D0 + DAY, D0 + 2 * DAY, INCOMPLETE)),
        ("online", Interval(D0 + 2 * DAY, D0 + 3 * DAY, INCOMPLETE)),
    ]
    assert readiness.failure() == (
        "transactions v1 [2024-01-02T00:00:00Z, 2024-01-04T00:00:00Z) has Incomplete time and no job "
        "Pending on it: offline [2024-01-02T00:00:00Z, 2024-01-03T00:00:00Z), "
        "online [2024-01-03T00:00:00Z, 2024-01-04T00:00:00Z); backfill it with data status Incomplete"
    )


def test_an_empty_window_or_no_store_is_a_bug_of_the_caller() -> None:
    with pytest.raises(ValueError, match="empty or reversed"):
        assess("transactions", 1, D0, D0, {"offline": []})
    with pytest.raises(ValueError, match="no store"):
        assess("transactions", 1, D0, D0 + DAY, {})
