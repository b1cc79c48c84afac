"""The interval table on real SQLite and PostgreSQL: the algebra's model holds through the
database, claims are atomic across processes, and jobs move their time out of Pending."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
import uuid
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.interval_table import IntervalTable, StreamKey

KEY = StreamKey("transactions", 1)
BOTH = ("offline", "online")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 60),
            st.integers(1, 30),
            st.sampled_from(iv.STATUSES),
            st.sampled_from([None, "j1"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_set_status_through_the_database_equals_the_pure_algebra(table_url: str, ops: list) -> None:
    table = IntervalTable(table_url)
    key = StreamKey(f"fs_{uuid.uuid4().hex[:12]}", 1)  # a fresh stream for every example
    expected: list[iv.Segment] = []
    try:
        for start, width, status, job in ops:
            table.set_status(key, "offline", start, start + width, status, job)
            expected = iv.assign(expected, start, start + width, status, job)
        stored = table.segments(key, "offline")
    finally:
        table.close()
    iv.check_invariants(stored)
    assert stored == expected


def test_claim_marks_pending_then_finish_converts_per_store(table_url: str) -> None:
    table = IntervalTable(table_url)
    jobs = table.claim(KEY, 0, 250, {"None", "Incomplete"}, BOTH, 100)
    assert [(j.start, j.end, j.stores, j.state) for j in jobs] == [
        (0, 100, BOTH, "queued"),
        (100, 200, BOTH, "queued"),
        (200, 250, BOTH, "queued"),
    ]
    assert table.intervals(KEY, BOTH)["offline"] == [iv.Interval(0, 250, "Pending")]
    # [0, 250) is Pending: an overlapping claim gets only the new time, whatever it asks for.
    later = table.claim(KEY, 50, 300, {"None", "Incomplete", "Complete"}, BOTH, 100)
    assert [(j.start, j.end, j.stores) for j in later] == [(250, 300, BOTH)]
    table.start_job(jobs[0].id)
    done = table.finish_job(
        jobs[0].id,
        {"offline": True, "online": False},
        rows_read=10,
        rows_written={"offline": 10},
        error="online store unreachable",
    )
    assert done.state == "failed" and done.rows_written == {"offline": 10} and done.finished_at
    result = table.intervals(KEY, BOTH)
    assert result["offline"][0] == iv.Interval(0, 100, "Complete")
    assert result["online"][0] == iv.Interval(0, 100, "Incomplete")
    # A repair of Incomplete touches only the online store.
    repair = table.claim(KEY, 0, 100, {"Incomplete"}, BOTH, 100)
    assert [(j.start, j.end, j.stores) for j in repair] == [(0, 100, ("online",))]
    table.close()


def test_claim_never_takes_pending_time(table_url: str) -> None:
    table = IntervalTable(table_url)
    first = table.claim(KEY, 0, 100, {"None"}, ("offline",), 1000)
    second = table.claim(KEY, 50, 150, {"None", "Incomplete", "Complete"}, ("offline",), 1000)
    assert [(j.start, j.end) for j in first] == [(0, 100)]
    assert [(j.start, j.end) for j in second] == [(100, 150)]
    table.close()


def test_dry_run_writes_nothing(table_url: str) -> None:
    table = IntervalTable(table_url)
    planned = table.claim(KEY, 0, 100, {"None"}, BOTH, 40, dry_run=True)
    assert [(j.start, j.end) for j in planned] == [(0, 40), (40, 80), (80, 100)]
    assert table.intervals(KEY, BOTH) == {"offline": [], "online": []}
    assert table.jobs(KEY) == []
    table.close()


def test_an_expired_lease_turns_pending_into_incomplete_at_the_next_claim(table_url: str) -> None:
    table = IntervalTable(table_url, lease_seconds=60)
    [job] = table.claim(KEY, 0, 100, {"None"}, ("offline",), 1000, now=1000.0)
    table.start_job(job.id, now=1000.0)
    assert table.heartbeat(job.id, now=1030.0)  # lease now ends at 1090
    assert table.claim(KEY, 0, 100, {"None", "Incomplete"}, ("offline",), 1000, now=1080.0) == []
    [retry] = table.claim(KEY, 0, 100, {"None", "Incomplete"}, ("offline",), 1000, now=1100.0)
    dead = table.job(job.id)
    assert dead.state == "failed" and "lease expired" in dead.error
    assert (retry.start, retry.end) == (0, 100)
    # The dead process coming back cannot flip its record or the retry's time.
    assert not table.heartbeat(job.id)
    table.finish_job(job.id, {"offline": True})
    assert table.job(job.id).state == "failed"
    assert table.intervals(KEY, ("offline",))["offline"] == [iv.Interval(0, 100, "Pending")]
    table.close()


def test_reset_store_keeps_the_axis_and_other_stores(table_url: str) -> None:
    table = IntervalTable(table_url)
    for job in table.claim(KEY, 0, 100, {"None"}, BOTH, 50):
        table.finish_job(job.id, {"offline": True, "online": True})
    assert table.reset_store(KEY, "online") == 1
    result = table.intervals(KEY, BOTH)
    assert result == {"offline": [iv.Interval(0, 100, "Complete")], "online": [iv.Interval(0, 100, "None")]}
    table.close()


def test_an_empty_claim_still_puts_the_window_on_the_axis(table_url: str) -> None:
    table = IntervalTable(table_url)
    assert table.claim(KEY, 0, 100, {"Incomplete"}, ("offline",), 50) == []
    assert table.intervals(KEY, ("offline",))["offline"] == [iv.Interval(0, 100, "None")]
    table.close()


def _claim_many(url: str, seed: int, barrier: Barrier, out: Queue) -> None:
    """Claim at random in a race with the other worker; put the claimed seconds, or the error
    that ended this worker (so the test says why instead of waiting for it)."""
    try:
        rng = random.Random(seed)
        table = IntervalTable(url)
        barrier.wait(timeout=120)
        claimed = []
        for _ in range(40):
            start = rng.randrange(0, 2000)
            for job in table.claim(
                KEY, start, start + rng.randrange(1, 400), {"None", "Incomplete"}, BOTH, 50
            ):
                claimed.extend(
                    (store, second) for store in job.stores for second in range(job.start, job.end)
                )
        table.close()
        out.put(claimed)
    except BaseException as exc:
        barrier.abort()  # the other worker stops waiting for this one
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def test_two_processes_never_claim_the_same_second(table_url: str) -> None:
    """No job ever finishes here, so a (store, second) may be claimed once in the whole run."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_claim_many, args=(table_url, seed, barrier, out)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=300) for _ in workers]
    assert all(isinstance(result, list) for result in results), results
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert all(results), "both processes should have claimed something"
    everything = results[0] + results[1]
    assert len(everything) == len(set(everything)), "a second was claimed twice"

    table = IntervalTable(table_url)
    for store in BOTH:
        held = {
            s
            for seg in table.segments(KEY, store)
            if seg.status == "Pending"
            for s in range(seg.start, seg.end)
        }
        assert held == {second for st_, second in everything if st_ == store}
    table.close()


def test_online_work_over_partly_complete_offline_time_splits_into_two_kinds_of_job(table_url: str) -> None:
    table = IntervalTable(table_url)
    table.set_status(KEY, "offline", 0, 60, "Complete", "earlier")
    jobs = table.claim(KEY, 0, 100, {"None"}, ("online",), 1000)
    assert [(j.start, j.end, j.stores, j.reads) for j in jobs] == [
        (0, 60, ("online",), "offline"),
        (60, 100, ("online",), "source"),
    ]
    table.close()


def test_a_heartbeat_keeps_queued_jobs_alive_and_drops_finished_ones(table_url: str) -> None:
    import time

    from airflow_provider_featurestore.core.materialization.runner import Heartbeat

    table = IntervalTable(table_url, lease_seconds=2)
    first, second = table.claim(KEY, 0, 200, {"None"}, ("offline",), 100)
    table.finish_job(first.id, {"offline": True})
    with Heartbeat(table, [first.id, second.id]) as beat:
        time.sleep(3)  # longer than the lease: only the heartbeat keeps `second` live
        assert beat.job_ids == [second.id]
    assert table.claim(KEY, 0, 200, {"None", "Incomplete"}, ("offline",), 100) == []
    assert table.job(second.id).state == "queued"
    table.close()


def test_cancel_turns_only_the_pending_time_incomplete_and_a_cancelled_job_never_starts(
    table_url: str,
) -> None:
    from airflow_provider_featurestore.core.materialization.runner import Heartbeat

    table = IntervalTable(table_url)
    first, second, third = table.claim(KEY, 0, 300, {"None"}, ("offline", "online"), 100)
    table.start_job(first.id)
    table.commit_stores(first.id, ["offline"])  # its offline commit landed; online to come
    table.finish_job(third.id, {"offline": True, "online": True})
    with Heartbeat(table, [first.id, second.id], poll_seconds=0.1) as beat:
        cancelled = table.cancel_jobs([first.id, second.id, third.id, "nosuchjob"], "cancelled: by a test")
        assert [r.id for r in cancelled] == [first.id, second.id]  # the ended one is left as it was
        assert {(r.state, r.error, r.lease_expires_at) for r in cancelled} == {
            ("cancelled", "cancelled: by a test", None)
        }
        assert all(r.finished_at for r in cancelled)
        assert table.intervals(KEY, ["offline", "online"]) == {
            "offline": [
                iv.Interval(0, 100, "Complete"),
                iv.Interval(100, 200, "Incomplete"),
                iv.Interval(200, 300, "Complete"),
            ],
            "online": [iv.Interval(0, 200, "Incomplete"), iv.Interval(200, 300, "Complete")],
        }
        deadline = time.monotonic() + 30
        while not (beat.stopped(first.id) and beat.stopped(second.id)):  # the poller sees it
            assert time.monotonic() < deadline, "the heartbeat's poll never saw the cancel"
            time.sleep(0.05)
        assert beat.job_ids == []
    # A cancelled job's commit or start changes nothing; a second cancel finds nothing live.
    assert table.start_job(second.id).state == "cancelled"
    table.commit_stores(second.id, ["offline"])
    assert table.intervals(KEY, ["offline"])["offline"][1] == iv.Interval(100, 200, "Incomplete")
    assert table.cancel_jobs([first.id, second.id], "again") == []
    assert table.job(third.id).state == "succeeded"
    assert table.live_ids([first.id, second.id, third.id]) == set()
    table.close()
