"""The fraud example's transformation as the loader imports it, run on Sail (Spark Connect).

The loader itself, on the example and on malformed copies of it, is tested without any
service in tests/unit/test_config_loading.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.fraud import _generator
from support.fraud_config import fraud_copy

from airflow_provider_featurestore.core.config import load_config


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from fraud_copy(tmp_path, monkeypatch)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_transactions_transform_on_sail(fraud: Path, tmp_path: Path) -> None:
    from airflow_provider_featurestore.core.materialization.engines import _Sail

    _generator().generate(str(tmp_path / "out"), accounts=5, transactions_per_day=40, days=9)
    transform = load_config().get("transactions").load_transformation()
    spark = _Sail.session()  # the process's embedded engine, as the job uses it
    source = spark.read.parquet(str(tmp_path / "out" / "source" / "transactions"))
    rows = transform(source, None).collect()

    table = pq.read_table(tmp_path / "out" / "source" / "transactions")
    seconds = [v // 1_000_000 for v in table.column("timestamp").cast(pa.int64()).to_pylist()]
    events = list(
        zip(table.column("accountID").to_pylist(), seconds, table.column("amount").to_pylist(), strict=True)
    )
    assert len(rows) == len(events) == 360
    by_second = {(row["accountID"], int(row["timestamp"].timestamp())): row for row in rows}
    for account, second, _ in events[::7]:
        window = [a for acc, s, a in events if acc == account and second - 7 * 86400 < s <= second]
        row = by_second[(account, second)]
        assert row["transaction_7d_count"] == len(window)
        assert row["transaction_amount_7d_sum"] == pytest.approx(sum(window))
        assert row["transaction_amount_7d_avg"] == pytest.approx(sum(window) / len(window))
