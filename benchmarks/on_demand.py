"""Benchmark: what an on-demand feature adds to an online lookup.

Why: an on-demand feature is computed on every request, after the Redis round trip, so its cost
comes on top of every prediction. Goal: at most 0.2 ms p50 over the plain lookup for one entity
with one on-demand feature, and a vectorized call (not a loop over rows) at 100 entities.

Set-up (not timed): a copy of `examples/fraud` in a temporary folder with a project name of
its own, plus `transaction_risk_pandas`, the example's `transaction_risk` with `mode: pandas`
(the same function, given a DataFrame instead of a dict of numpy arrays); `--entities`
transactions rows written through `OnlineStore.write`. Their keys are purged at the end.

What is timed, in process, for 1 and 100 random entities (fresh each call), the three
alternating call by call (each first in turn) so that all see the same machine load:
- plain: `get_online_features(["transactions:transaction_amount_7d_avg"], rows)`;
- numpy: `get_online_features(["transaction_risk:amount_vs_7d_avg"], rows + amount)`, which
  looks up the same feature and computes amount / average from it (`mode: numpy`);
- pandas: the same with `transaction_risk_pandas` (`mode: pandas`).
It prints p50 and p99 of each and the p50 differences over plain.

Run: `python benchmarks/on_demand.py [--redis-url redis://127.0.0.1:6379/0] [--entities 10000]
[--iterations-1 3000] [--iterations-100 500]`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from airflow_provider_featurestore import FeatureStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fraud"
PLAIN = ["transactions:transaction_amount_7d_avg"]
NUMPY = ["transaction_risk:amount_vs_7d_avg"]
PANDAS = ["transaction_risk_pandas:amount_vs_7d_avg"]


def set_up(folder: Path, redis_url: str, entities: int) -> FeatureStore:
    root = folder / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "model", "__pycache__"))
    config = root / "featurestore.yaml"
    text = re.sub(r"(?m)^project: fraud\b", f"project: bench_{uuid.uuid4().hex[:8]}", config.read_text())
    config.write_text(re.sub(r"(?m)^  redis_url: .*$", f"  redis_url: {redis_url}", text))
    risk = (root / "featuresets" / "transaction_risk.yaml").read_text()
    pandas_spec = risk.replace("name: transaction_risk", "name: transaction_risk_pandas")
    (root / "featuresets" / "transaction_risk_pandas.yaml").write_text(
        pandas_spec.replace("mode: numpy", "mode: pandas")
    )
    store = FeatureStore(str(config))
    now = datetime.now(UTC)
    rows = pa.table(
        {
            "accountID": [f"A{i:07d}" for i in range(entities)],
            "timestamp": pa.array([now] * entities, pa.timestamp("us", tz="UTC")),
            "transaction_amount_7d_sum": [float(i) * 7 for i in range(entities)],
            "transaction_7d_count": pa.array([7] * entities, pa.int64()),
            "transaction_amount_7d_avg": [float(i % 500) + 0.5 for i in range(entities)],
        }
    )
    with store.online_store() as online:
        online.write(store.online_layout(store.spec("transactions")), rows)
    return store


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(store: FeatureStore, entities: int, size: int, iterations: int) -> dict[str, list[float]]:
    """Milliseconds per call of each case, the cases alternating call by call."""
    cases: dict[str, Callable[[list[dict[str, object]], list[dict[str, object]]], object]] = {
        "plain": lambda keys, _rows: store.get_online_features(PLAIN, keys),
        "numpy": lambda _keys, rows: store.get_online_features(NUMPY, rows),
        "pandas": lambda _keys, rows: store.get_online_features(PANDAS, rows),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    rng = random.Random(23)
    for number in range(iterations + 50):  # the first 50: warm-up, not counted
        keys = [{"accountID": f"A{rng.randrange(entities):07d}"} for _ in range(size)]
        rows = [{**key, "amount": rng.uniform(1, 900)} for key in keys]
        order = list(cases.items())
        for name, case in order[number % 3 :] + order[: number % 3]:  # each goes first in turn
            started = time.perf_counter()
            case(keys, rows)
            if number >= 50:
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("FEATURESTORE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--iterations-1", type=int, default=3000)
    parser.add_argument("--iterations-100", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = set_up(Path(folder), args.redis_url, args.entities)
        try:
            [row] = store.get_online_features(NUMPY, [{"accountID": "A0000003", "amount": 7.0}])
            assert row == {"accountID": "A0000003", "amount_vs_7d_avg": 2.0}, row
            print(f"{'entities':>8}  {'case':<7} {'p50 ms':>8} {'p99 ms':>8} {'p50 - plain':>12}")
            for size, iterations in ((1, args.iterations_1), (100, args.iterations_100)):
                times = measure(store, args.entities, size, iterations)
                plain = statistics.median(times["plain"])
                for name, values in times.items():
                    p50 = statistics.median(values)
                    extra = "" if name == "plain" else f"{p50 - plain:+12.3f}"
                    print(f"{size:>8}  {name:<7} {p50:8.3f} {percentile(values, 0.99):8.3f} {extra}")
        finally:
            with store.online_store() as online:
                online.purge(f"{store.config.project}:")
            store.close()


if __name__ == "__main__":
    main()
