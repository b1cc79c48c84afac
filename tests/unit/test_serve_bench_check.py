"""benchmarks/serve_vs_feast.py's answer checker and figures: both servers' JSON shapes are read
into the same values, a wrong or half-written entity is caught, and errors are counted by kind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import serve_check as chk  # noqa: E402
import serve_load as ld  # noqa: E402

FEATURES = ["f0", "f1", "f2"]
OLDER = np.array([[r + j / 16 for j in range(3)] for r in (10, 11, 12)])  # entity e: row 10 + e
NEWER = OLDER + 100


def ours(rows: list[tuple[int, list[float]]]) -> bytes:
    return json.dumps(
        {"results": [{"entity_id": e, **dict(zip(FEATURES, v, strict=True))} for e, v in rows]}
    ).encode()


def feast(rows: list[tuple[int, list[float]]], status: str = "PRESENT") -> bytes:
    names = ["f2", "entity_id", "f0", "f1"]  # Feast's order is its own
    columns = {
        "entity_id": [e for e, _ in rows],
        **{f: [v[j] for _, v in rows] for j, f in enumerate(FEATURES)},
    }
    results = [{"values": columns[n], "statuses": [status] * len(rows)} for n in names]
    return json.dumps({"metadata": {"feature_names": names}, "results": results}).encode()


def verdict(shape: str, body: bytes, entities: list[int], newer: bool = False) -> chk.Verdict:
    expected = chk.Expected(OLDER, NEWER if newer else None)
    return chk.check_answer(expected, shape, body, entities, "entity_id", FEATURES)


def test_both_shapes_are_read_into_the_stored_values() -> None:
    rows = [(2, OLDER[2].tolist()), (0, OLDER[0].tolist())]
    assert verdict("ours", ours(rows), [2, 0]).ok
    assert verdict("feast", feast(rows), [2, 0]).ok


def test_wrong_missing_and_half_written_answers_are_caught() -> None:
    wrong = OLDER[1].tolist()
    wrong[2] += 1
    assert verdict("ours", ours([(1, wrong)]), [1]).kind == chk.WRONG
    assert verdict("feast", feast([(1, OLDER[1].tolist())], "NOT_FOUND"), [1]).kind == chk.MALFORMED
    assert verdict("ours", ours([(0, OLDER[0].tolist())]), [1]).kind == chk.MALFORMED
    mixed = [OLDER[1][0], NEWER[1][1], NEWER[1][2]]
    assert verdict("ours", ours([(1, mixed)]), [1], newer=True).kind == chk.MIXED
    both = verdict("feast", feast([(0, OLDER[0].tolist()), (1, NEWER[1].tolist())]), [0, 1], newer=True)
    assert both.ok and both.newer == 1


def test_figures_count_errors_by_kind_and_take_percentiles_of_answered_requests() -> None:
    ms = 1_000_000
    records = np.array(
        [(0, 1 * ms, 200, 0), (1 * ms, 2 * ms, 200, 1), (2 * ms, 3 * ms, 503, 2), (3 * ms, 9 * ms, -1, -1)],
        dtype=ld.RECORD,
    )
    load = ld.Load(records, [], {"cpu_s": 0.5})
    found = ld.figures(load, np.array([True, False, False]), [chk.OK, chk.MIXED, chk.MALFORMED])
    assert (found.requests, found.ok) == (4, 1)
    assert found.errors == {"timeout": 1, "non-200": 1, chk.MIXED: 1}
    assert found.p50 == 2.0 and found.max_ms == 3.0
    assert found.throughput == 1 / 0.012  # one right answer; the last request gave up at 12 ms
