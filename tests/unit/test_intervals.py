"""Property tests of the interval algebra and the planner against a brute-force model: a status
(and owner) per second."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.planner import chunk_edges, plan_backfill

AXIS = (-20, 80)
statuses = st.sampled_from(iv.STATUSES)
jobs = st.sampled_from([None, "a", "b"])


@st.composite
def ranges(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(st.integers(*AXIS))
    end = draw(st.integers(start + 1, AXIS[1] + 1))
    return start, end


def brute_force(ops: list[tuple[int, int, str, str | None]]) -> dict[int, tuple[str, str | None]]:
    """Per second: (status, job). Every second between the first and last ever set is on the axis."""
    model: dict[int, tuple[str, str | None]] = {}
    for start, end, status, job in ops:
        low = min([start, *model])
        high = max([end - 1, *model])
        for second in range(low, high + 1):
            model.setdefault(second, (iv.NONE, None))
        for second in range(start, end):
            model[second] = (status, job if status != iv.NONE else None)
    return model


def expand(segments: list[iv.Segment]) -> dict[int, tuple[str, str | None]]:
    return {s: (seg.status, seg.job_id) for seg in segments for s in range(seg.start, seg.end)}


op = st.tuples(ranges(), statuses, jobs).map(lambda t: (t[0][0], t[0][1], t[1], t[2]))


@given(st.lists(op, min_size=1, max_size=25))
def test_assign_matches_per_second_model(ops: list) -> None:
    segments: list[iv.Segment] = []
    for start, end, status, job in ops:
        segments = iv.assign(segments, start, end, status, job)
        iv.check_invariants(segments)
    assert expand(segments) == brute_force(ops)
    public = iv.coalesce(segments)
    for left, right in zip(public, public[1:], strict=False):
        assert left.end == right.start and left.status != right.status


@given(st.lists(op, min_size=1, max_size=10), st.lists(op, min_size=1, max_size=6))
def test_overlay_of_disjoint_patches_equals_assigning_them_one_by_one(
    base_ops: list, patch_ops: list
) -> None:
    base: list[iv.Segment] = []
    for start, end, status, job in base_ops:
        base = iv.assign(base, start, end, status, job)
    patches: list[iv.Segment] = []
    for start, end, status, job in sorted(patch_ops, key=lambda op: op[:2]):
        if not patches or start >= patches[-1].end:
            patches.append(iv.Segment(start, end, status, job if status != iv.NONE else None))
    one_by_one = base
    for patch in patches:
        one_by_one = iv.assign(one_by_one, *patch)
    assert iv.overlay(base, patches) == one_by_one


@given(st.lists(op, max_size=8), ranges())
def test_clip_covers_the_window_exactly(ops: list, window: tuple[int, int]) -> None:
    segments: list[iv.Segment] = []
    for start, end, status, job in ops:
        segments = iv.assign(segments, start, end, status, job)
    clipped = iv.clip(iv.coalesce(segments), *window)
    assert clipped[0].start == window[0] and clipped[-1].end == window[1]
    model = brute_force(ops)
    for item in clipped:
        for second in range(item.start, item.end):
            assert item.status == model.get(second, (iv.NONE, None))[0]


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["offline", "online"]), st.lists(op, max_size=8), min_size=1),
    ranges(),
    st.sets(statuses, min_size=1),
    st.integers(1, 30),
    st.lists(op, max_size=5),
)
def test_plan_matches_per_second_model(
    stores: dict, window: tuple[int, int], wanted: set, chunk: int, cut_ops: list
) -> None:
    by_store = {}
    models = {}
    for store, ops in stores.items():
        segments: list[iv.Segment] = []
        for start, end, status, job in ops:
            segments = iv.assign(segments, start, end, status, job)
        by_store[store] = iv.coalesce(segments)
        models[store] = brute_force(ops)
    cut: list[iv.Segment] = []
    for start, end, status, job in cut_ops:
        cut = iv.assign(cut, start, end, status, job)
    cut_model = brute_force(cut_ops)
    jobs_ = plan_backfill(by_store, *window, wanted, chunk, cut_at=iv.coalesce(cut))

    covered: dict[int, tuple[str, ...]] = {}
    for job in jobs_:
        assert window[0] <= job.start < job.end <= window[1]
        assert job.start // chunk == (job.end - 1) // chunk, "a job crosses a chunk boundary"
        for store in stores:
            seen = {models[store].get(s, (iv.NONE, None))[0] for s in range(job.start, job.end)}
            assert len(seen) == 1, "a job spans two data intervals"
        cut_seen = {cut_model.get(s, (iv.NONE, None))[0] for s in range(job.start, job.end)}
        assert len(cut_seen) == 1, "a job spans two intervals it had to be cut at"
        for second in range(job.start, job.end):
            assert second not in covered, "two jobs for one second"
            covered[second] = job.stores
    for second in range(*window):
        expected = tuple(
            store
            for store in sorted(stores)
            if models[store].get(second, (iv.NONE, None))[0] in wanted - {iv.PENDING}
        )
        assert covered.get(second, ()) == expected


def test_the_contract_example_of_four_daily_jobs() -> None:
    day = 86400
    start, end = 19723 * day, 19723 * day + 3 * day + day // 2  # 2024-01-01 .. 2024-01-04T12:00
    planned = plan_backfill({"offline": [], "online": []}, start, end, {"None", "Incomplete"}, day)
    assert [(j.start, j.end) for j in planned] == [
        (start, start + day),
        (start + day, start + 2 * day),
        (start + 2 * day, start + 3 * day),
        (start + 3 * day, end),
    ]
    assert all(j.stores == ("offline", "online") for j in planned)


def test_chunk_edges_are_aligned_to_the_epoch() -> None:
    assert chunk_edges(5, 31, 10) == [10, 20, 30]
    assert chunk_edges(-15, 5, 10) == [-10, 0]
    assert chunk_edges(10, 20, 10) == []
