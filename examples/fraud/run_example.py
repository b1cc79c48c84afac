"""Train and serve the fraud model end to end (`make fraud`).

1. Generate the example's source data for the 14 days before today and backfill both feature
   sets over them into Delta (offline) and Redis (online).
2. Build training data with `get_historical_features`: the labelled source transactions are
   the observations; each takes the stored features as they were just before it happened.
3. Fit a scikit-learn pipeline on the first days, evaluate on the later ones (a time split);
   the joined training rows are kept in data/training_set.parquet for inspection.
4. Save the model with its retrieval spec, as a deployment would pick them up.
5. Score a few requests through `score.py`, which looks the features up online.

    python examples/fraud/run_example.py [--root DIR] [--model-dir DIR] [--train-days 10]

`--root` is a copy of this folder to run in (its featurestore.yaml, data/ and model/).
Starts from a clean slate: the root's data/ and its project's Redis keys are recreated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import roc_auc_score

from airflow_provider_featurestore import FeatureStore
from airflow_provider_featurestore.core.retrieval import RetrievalSpec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules below, also when run from elsewhere

import generate_data  # noqa: E402
import score  # noqa: E402
from model_inputs import FEATURE_REFS, REQUEST_FIELDS, model_frame, new_pipeline  # noqa: E402

DAYS = 14
MODEL_FILE = score.MODEL_FILE
ONE_MICROSECOND = pd.Timedelta(microseconds=1)


def backfill(store: FeatureStore, first: date, end: date) -> None:
    """Both feature sets over [first, end), into the offline and the online store."""
    for name in ("accounts", "transactions"):
        store.backfill(store.backfill_request(name, first.isoformat(), end.isoformat()), log=print)


def observations(root: Path) -> pd.DataFrame:
    """The labelled source transactions: what the model learns from, one row each.

    `as_of`, one microsecond before the transaction, is the time the features are taken at:
    the feature row a transaction itself produced already counts its own amount, and a
    request scored online comes before its transaction reaches the store.
    """
    columns = ["transactionID", "accountID", "timestamp", *REQUEST_FIELDS, "is_fraud"]
    rows = pd.read_parquet(root / "data" / "source" / "transactions", columns=columns)
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    rows = rows.sort_values(["timestamp", "transactionID"], ignore_index=True)
    return rows.assign(as_of=rows["timestamp"] - ONE_MICROSECOND)


def train_and_evaluate(data: pd.DataFrame, split: pd.Timestamp) -> tuple[object, dict[str, object]]:
    """Fit on the observations before `split`, measure ROC AUC on those from `split` on."""
    train, test = data[data["timestamp"] < split], data[data["timestamp"] >= split]
    model = new_pipeline().fit(model_frame(train), train["is_fraud"].astype(int))
    probabilities = model.predict_proba(model_frame(test))[:, 1]
    metrics = {
        "train_rows": len(train),
        "train_frauds": int(train["is_fraud"].sum()),
        "test_rows": len(test),
        "test_frauds": int(test["is_fraud"].sum()),
        "test_roc_auc": round(float(roc_auc_score(test["is_fraud"].astype(int), probabilities)), 4),
        "split": split.isoformat(),
    }
    return model, metrics


def demo_requests(store: FeatureStore) -> list[dict[str, object]]:
    """Two known accounts, at home and abroad, and an account the store has never seen."""
    homes = store.get_online_features(
        ["accounts:account_country"], [{"accountID": "A0001"}, {"accountID": "A0002"}]
    )
    home1, home2 = (str(row["account_country"]) for row in homes)
    away = "BR" if home1 != "BR" else "US"
    return [
        {"accountID": "A0001", "amount": 42.5, "country": home1, "merchant_category": "grocery"},
        {"accountID": "A0001", "amount": 42.5, "country": away, "merchant_category": "grocery"},
        {"accountID": "A0002", "amount": 310.0, "country": home2, "merchant_category": "electronics"},
        {"accountID": "NEW0001", "amount": 120.0, "country": "US", "merchant_category": "online"},
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and serve the fraud model end to end.")
    parser.add_argument("--root", type=Path, default=HERE, help="the example folder (default: this one)")
    parser.add_argument("--model-dir", type=Path, help="where the model goes (default: ROOT/model)")
    parser.add_argument("--train-days", type=int, default=10, help="days to train on; the rest evaluate")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    model_dir = (args.model_dir or root / "model").resolve()
    started = time.monotonic()
    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS)

    print(f"== 1. data for {first} .. {today - timedelta(days=1)} and a backfill of both feature sets")
    shutil.rmtree(root / "data", ignore_errors=True)
    counts = generate_data.generate(str(root / "data"), start=first, days=DAYS)
    print(f"generated {counts['transactions']:,} transactions and {counts['accounts']:,} account snapshots")
    with FeatureStore(str(root / "featurestore.yaml")) as store:
        online = store.online_store()
        try:
            online.purge(f"{store.config.project}:")  # keys an earlier run left
        finally:
            online.close()
        backfill(store, first, today)

        print("\n== 2. training data: a point-in-time join of the labelled transactions")
        labelled = observations(root)
        joined = store.get_historical_features(labelled, FEATURE_REFS, timestamp_column="as_of").toPandas()
        for column in ("timestamp", "as_of"):  # Spark hands back naive UTC (the session's zone)
            joined[column] = pd.to_datetime(joined[column], utc=True)
        print(
            f"{len(joined):,} observations x {len(FEATURE_REFS)} stored features + {len(REQUEST_FIELDS)} request fields"
        )

        print("\n== 3. train on the first days, evaluate on the rest")
        split = pd.Timestamp(first + timedelta(days=args.train_days), tz="UTC")
        model, metrics = train_and_evaluate(joined, split)
        joined[joined["timestamp"] < split].to_parquet(root / "data" / "training_set.parquet", index=False)
        print(
            f"train: {metrics['train_rows']:,} transactions before {split.date()}, {metrics['train_frauds']} fraud"
        )
        print(
            f"test:  {metrics['test_rows']:,} transactions from {split.date()}, {metrics['test_frauds']} fraud"
        )
        print(f"test ROC AUC: {metrics['test_roc_auc']:.3f}")

        print(f"\n== 4. save the model and its retrieval spec to {model_dir}")
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, model_dir / MODEL_FILE)
        spec_file = RetrievalSpec(FEATURE_REFS).save(model_dir)
        (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"wrote {MODEL_FILE}, {spec_file.name}, metrics.json")

        print("\n== 5. score requests with score.py (features looked up online)")
        requests = demo_requests(store)
    score.init(model_dir, config=str(root / "featurestore.yaml"))
    try:
        for request, scored in zip(requests, score.run(requests), strict=True):
            print(
                f"{scored['accountID']:<8} {request['amount']:>7.2f} {request['country']}  "
                f"fraud_probability={scored['fraud_probability']:.3f}"
            )
    finally:
        score.shutdown()
    print(f"\ndone in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
