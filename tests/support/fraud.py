"""The fraud example as the tests use it: a private copy per test with recent source data, and
what its features should be, computed with pandas alone."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
import yaml
from deltalake import DeltaTable

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso, to_epoch
from support.intervals_view import statuses as interval_view

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86400
TODAY = to_epoch(datetime.now(UTC).date())
FIRST_DAY = TODAY - 10 * DAY  # source data: the 10 days before today
FEATURES = ["transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fraud_generate_data", EXAMPLE / "generate_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def fraud_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str | None):  # type: ignore[no-untyped-def]
    """A private fraud feature store with 10 days of recent data; its Redis keys purged after."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"t{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: {project}")
    if engine is not None:
        head, _sep, _old = text.partition("engine:\n")
        text = head + engine
    config.write_text(text)
    start = datetime.fromtimestamp(FIRST_DAY, UTC).strftime("%Y-%m-%d")
    _generator().generate(str(root / "data"), accounts=40, transactions_per_day=300, start=start, days=10)
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield root
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]


def engine_of(root: Path) -> str:
    return str(yaml.safe_load((root / "featurestore.yaml").read_text())["engine"]["type"])


def backfill(root: Path, *args: str) -> int:
    return cli_main(["backfill", *args, "--config", str(root / "featurestore.yaml")])


def day(offset: int) -> str:
    """The ISO date `offset` days after the first source day."""
    return iso(FIRST_DAY + offset * DAY)


def expected_rolling(root: Path, start: int, end: int) -> pd.DataFrame:
    """The transactions feature rows of `[start, end)`, computed with pandas alone."""
    source = pq.read_table(root / "data" / "source" / "transactions").to_pandas()
    source["second"] = source["timestamp"].astype("int64") // 10**6  # whole epoch seconds, as the transform
    rows = []
    for _account, group in source.groupby("accountID"):
        group = group.sort_values("second")
        seconds, amounts = group["second"].to_numpy(), group["amount"].to_numpy()
        for i, row in enumerate(group.itertuples()):
            if not start <= row.second < end:
                continue
            inside = (seconds >= seconds[i] - 7 * DAY + 1) & (seconds <= seconds[i])
            rows.append(
                {
                    "accountID": row.accountID,
                    "timestamp": row.timestamp,
                    "transaction_amount_7d_sum": amounts[inside].sum(),
                    "transaction_7d_count": int(inside.sum()),
                    "transaction_amount_7d_avg": amounts[inside].mean(),
                }
            )
    return pd.DataFrame(rows)


def want_accounts(root: Path, offset: int) -> int:
    """How many accounts have a transaction on source day `offset`."""
    start = FIRST_DAY + offset * DAY
    return expected_rolling(root, start, start + DAY)["accountID"].nunique()


def offline_rows(root: Path) -> pd.DataFrame:
    table = DeltaTable(str(root / "data" / "offline" / "transactions" / "v1"))
    return table.to_pandas()


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    return frame.sort_values(["accountID", "timestamp", "transaction_amount_7d_sum"]).reset_index(drop=True)


def online_values(root: Path, accounts: list[str]) -> dict[str, dict[str, str]]:
    store = FeatureStore(str(root / "featurestore.yaml"))
    prefix = store.config.online_key_prefix(store.spec("transactions"))
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return {a: client.hgetall(prefix + a) for a in accounts}


def statuses(root: Path, name: str = "transactions") -> dict[str, list[tuple[str, str, str]]]:
    return interval_view(root / "featurestore.yaml", name)
