"""The fraud example end to end (`make fraud`): data, backfill, point-in-time training data, a
model with its retrieval spec, and online scoring through `score.py`.

The example runs once, as a user would run it, on a copy of examples/fraud under its own
Redis project; the tests then check what it left behind against the stores themselves.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import redis
from deltalake import DeltaTable

from airflow_provider_featurestore import FeatureStore, RetrievalSpec
from airflow_provider_featurestore.core.errors import BadInput

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REFS = {
    "transactions:transaction_amount_7d_sum",
    "transactions:transaction_7d_count",
    "transactions:transaction_amount_7d_avg",
    "accounts:account_age_days",
    "accounts:credit_limit",
    "accounts:is_premium",
    "accounts:num_payment_rejects_1d_per_user",
    "accounts:account_country",
}


@dataclass
class Run:
    root: Path
    stdout: str

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def config(self) -> str:
        return str(self.root / "featurestore.yaml")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """run_example.py on a copy of the example whose Redis keys are its own (deleted afterwards)."""
    root = tmp_path_factory.mktemp("fraud_example") / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "model", "__pycache__"))
    project = f"fraud_example_{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text()
    assert "\nproject: fraud\n" in text
    config.write_text(text.replace("\nproject: fraud\n", f"\nproject: {project}\n"))
    env = {**os.environ, "FEATURESTORE_REDIS_URL": REDIS_URL}
    env.pop("FEATURESTORE_CONFIG", None)
    try:
        result = subprocess.run(
            [sys.executable, str(root / "run_example.py"), "--root", str(root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        yield Run(root, result.stdout)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{project}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def score(example: Run, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The copy's score.py, imported by path as an endpoint would, after `init(model_dir)`."""
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # score.py puts its folder on it
    monkeypatch.delitem(sys.modules, "model_inputs", raising=False)
    spec = importlib.util.spec_from_file_location("fraud_example_score", example.root / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init(example.model_dir)
    yield module
    module.shutdown()
    sys.modules.pop("model_inputs", None)


def metrics(example: Run) -> dict[str, object]:
    return json.loads((example.model_dir / "metrics.json").read_text())


def offline(example: Run, name: str) -> pd.DataFrame:
    with FeatureStore(example.config, check_transformations=False) as store:
        rows = DeltaTable(store.config.offline_table_path(store.spec(name))).to_pandas()
    return rows.assign(timestamp=pd.to_datetime(rows["timestamp"], utc=True))


def test_model_and_retrieval_spec_land_in_the_model_folder(example: Run) -> None:
    assert (example.model_dir / "model.joblib").stat().st_size > 0
    assert set(RetrievalSpec.load(example.model_dir).features) == REFS
    assert "retrieval_spec.yaml" in example.stdout


def test_training_set_is_every_labelled_transaction_of_the_training_days(example: Run) -> None:
    split = pd.Timestamp(str(metrics(example)["split"]))
    source = pd.read_parquet(example.root / "data" / "source" / "transactions")
    first_day = pd.to_datetime(source["timestamp"], utc=True).min().normalize()
    assert split == first_day + pd.Timedelta(days=10)
    expected = int((pd.to_datetime(source["timestamp"], utc=True) < split).sum())
    training = pd.read_parquet(example.root / "data" / "training_set.parquet")
    assert len(training) == expected == metrics(example)["train_rows"]
    assert training["transactionID"].is_unique
    assert f"train: {expected:,} transactions" in example.stdout


def test_training_features_come_from_before_each_observation(example: Run) -> None:
    """Recompute a sample of the join in pandas: the latest offline row strictly before the
    transaction (the example takes features one microsecond before it)."""
    training = pd.read_parquet(example.root / "data" / "training_set.parquet")
    training["timestamp"] = pd.to_datetime(training["timestamp"], utc=True)
    transactions, accounts = offline(example, "transactions"), offline(example, "accounts")
    sample = training.sample(150, random_state=7)
    for row in sample.itertuples():
        earlier = transactions[
            (transactions["accountID"] == row.accountID) & (transactions["timestamp"] < row.timestamp)
        ]
        if earlier.empty:
            assert pd.isna(row.transaction_7d_count), row
        else:
            latest = earlier.loc[earlier["timestamp"].idxmax()]
            assert row.transaction_7d_count == latest["transaction_7d_count"], row
            assert row.transaction_amount_7d_sum == pytest.approx(latest["transaction_amount_7d_sum"]), row
        snapshots = accounts[
            (accounts["accountID"] == row.accountID) & (accounts["timestamp"] < row.timestamp)
        ]
        snapshot = snapshots.loc[snapshots["timestamp"].idxmax()]
        assert row.account_age_days == snapshot["account_age_days"], row
    # Each account's very first transaction has no earlier transaction row: a None, not its own.
    firsts = training.sort_values("timestamp").groupby("accountID").head(1)
    assert firsts["transaction_7d_count"].isna().all()
    assert training["transaction_7d_count"].notna().sum() == len(training) - len(firsts)


def test_the_model_beats_chance_on_later_days(example: Run) -> None:
    printed = re.search(r"^test ROC AUC: (\d\.\d+)$", example.stdout, re.MULTILINE)
    assert printed, example.stdout
    assert float(printed.group(1)) > 0.6
    numbers = metrics(example)
    assert numbers["test_rows"] > 0 and numbers["test_frauds"] > 0
    assert float(printed.group(1)) == pytest.approx(numbers["test_roc_auc"], abs=0.001)


def test_score_looks_features_up_online(example: Run, score: ModuleType) -> None:
    requests = [
        {"accountID": "A0001", "amount": 42.5, "country": "US", "merchant_category": "grocery"},
        {"accountID": "A0002", "amount": 310.0, "country": "BR", "merchant_category": "travel"},
        {"accountID": "NOBODY", "amount": 99.0, "country": "US", "merchant_category": "online"},
    ]
    scored = score.run(requests)
    assert [s["accountID"] for s in scored] == ["A0001", "A0002", "NOBODY"]
    for result in scored:
        assert isinstance(result["fraud_probability"], float)
        assert 0.0 <= result["fraud_probability"] <= 1.0
    spec = RetrievalSpec.load(example.model_dir)
    with FeatureStore(example.config, check_transformations=False) as store:
        expected = store.get_online_features(spec, [{"accountID": r["accountID"]} for r in requests])
    used = score.lookup(requests)
    stored = [name.split(":")[-1] for name in spec.features]
    for row, online in zip(used, expected, strict=True):
        assert {name: row[name] for name in stored} == {name: online[name] for name in stored}
    assert all(used[0][name] is not None for name in stored)
    assert all(used[2][name] is None for name in stored)  # unknown: every feature imputed


def test_a_card_used_abroad_scores_higher(score: ModuleType) -> None:
    (home,) = score.lookup([{"accountID": "A0003"}])
    here = {
        "accountID": "A0003",
        "amount": 50.0,
        "country": home["account_country"],
        "merchant_category": "fuel",
    }
    away = {**here, "country": "BR" if home["account_country"] != "BR" else "US"}
    at_home, abroad = score.run([here, away])
    assert abroad["fraud_probability"] > 2 * at_home["fraud_probability"]


RISK = "transaction_risk:amount_vs_7d_avg"


def _ratio(amount: float, average: float) -> float | None:
    """The example's on-demand feature, written out in plain Python: null without a usable average."""
    return None if pd.isna(average) or average == 0 else amount / average


def _close(got: object, want: float | None) -> bool:
    if want is None:
        return got is None
    return isinstance(got, float) and abs(got - want) <= 1e-9 * max(1.0, abs(want))


def test_an_on_demand_feature_is_the_same_in_training_and_serving(example: Run) -> None:
    """Training/serving parity of transaction_risk:amount_vs_7d_avg over 500 random (account,
    time, amount) rows: the point-in-time join on Sail and the Redis lookup give the same value
    (within 1e-9), and both the pandas expectation. Times are at or after each account's last
    event, so the point-in-time row is the latest, the one the online store holds; one account
    in ten is unknown (no average: null in both)."""
    rows = offline(example, "transactions")
    latest = rows.sort_values("timestamp").groupby("accountID").tail(1).set_index("accountID")
    rng = np.random.default_rng(23)
    accounts = rng.choice(np.array([*latest.index, *[f"NEW{i}" for i in range(len(latest) // 9)]]), size=500)
    last = pd.DatetimeIndex(latest["timestamp"].reindex(accounts).fillna(latest["timestamp"].max()))
    times = last + pd.to_timedelta(rng.integers(0, 2 * 86_400_000_000, size=500), unit="us")
    amounts = np.round(rng.uniform(0, 2000, size=500), 2)
    amounts[::50] = 0.0
    averages = latest["transaction_amount_7d_avg"].reindex(accounts).to_numpy()
    expected = [_ratio(a, m) for a, m in zip(amounts, averages, strict=True)]
    assert sum(e is None for e in expected) >= 20 and sum(e is not None for e in expected) >= 400

    with FeatureStore(example.config) as store:
        entities = [{"accountID": a, "amount": float(x)} for a, x in zip(accounts, amounts, strict=True)]
        online = store.get_online_features([RISK], entities)
        observations = pd.DataFrame({"accountID": accounts, "timestamp": times, "amount": amounts})
        training = store.get_historical_features(observations, [RISK]).toPandas()

    assert [list(row) for row in online[:1]] == [
        ["accountID", "amount_vs_7d_avg"]
    ]  # the input is not returned
    assert list(training.columns) == ["accountID", "timestamp", "amount", "amount_vs_7d_avg"]
    assert training["accountID"].tolist() == list(accounts)  # the observations' order
    historical = [None if pd.isna(v) else float(v) for v in training["amount_vs_7d_avg"]]
    for number, (want, served, trained) in enumerate(
        zip(expected, [r["amount_vs_7d_avg"] for r in online], historical, strict=True)
    ):
        assert _close(served, want) and _close(trained, want), (
            number,
            accounts[number],
            want,
            served,
            trained,
        )
        assert served == trained or abs(served - trained) <= 1e-9, number  # type: ignore[operator]


def test_on_demand_features_at_earlier_times_and_refusals_of_the_join(example: Run) -> None:
    """At any time the join takes the latest average at or before it (pandas merge_asof as the
    reference); observations without the request column are refused naming it."""
    rows = offline(example, "transactions").sort_values("timestamp")
    sample = rows.sample(120, random_state=5)
    observations = pd.DataFrame(
        {
            "accountID": sample["accountID"].to_numpy(),
            "timestamp": (sample["timestamp"] + pd.to_timedelta(np.arange(120) * 7919, unit="s")).to_numpy(),
            "amount": np.linspace(1, 500, 120),
        }
    )
    reference = pd.merge_asof(
        observations.reset_index().sort_values("timestamp"),
        rows[["accountID", "timestamp", "transaction_amount_7d_avg"]],
        on="timestamp",
        by="accountID",
    ).sort_values("index")
    with FeatureStore(example.config) as store:
        joined = store.get_historical_features(observations, [RISK, "accounts:is_premium"]).toPandas()
        with pytest.raises(
            BadInput,
            match=r"^observations: missing request column amount \(double\), an input of transaction_risk "
            r"\(.*transaction_risk.yaml\); they hold accountID, timestamp$",
        ):
            store.get_historical_features(observations.drop(columns="amount"), [RISK])
        with pytest.raises(
            BadInput,
            match=r"^observations: request column amount is string; transaction_risk declares it double",
        ):
            store.get_historical_features(observations.assign(amount="12"), [RISK])
    assert list(joined.columns) == ["accountID", "timestamp", "amount", "is_premium", "amount_vs_7d_avg"]
    for got, amount, average in zip(
        joined["amount_vs_7d_avg"], reference["amount"], reference["transaction_amount_7d_avg"], strict=True
    ):
        want = _ratio(amount, average)
        assert _close(None if pd.isna(got) else float(got), want), (got, want)
