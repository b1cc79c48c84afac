"""Example: a daily training DAG that waits for its day of features, then trains on it.

Each run's data interval is one UTC day. `wait_for_features` (a `FeatureStoreSensor`, deferred:
it waits in the triggerer, holding no worker slot) succeeds once `transactions` v1 is Complete in
the offline store over that day, i.e. once `featurestore_materialize__transactions` or a backfill
has landed it; with `fail_when_incomplete` it fails at once, naming the time, when that day's job
failed and none is running (a backfill must repair it first). `train` then builds the training
set from exactly that window of the Delta table, labels it with the source's `is_fraud`, fits a
small logistic regression and saves it with the feature names it used. Put this file in
Airflow's DAGs folder beside `featurestore_dags.py`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_featurestore.airflow.sensors import FeatureStoreSensor
from airflow_provider_featurestore.core.config import load_config

CONFIG = os.environ.get(
    "FEATURESTORE_CONFIG", os.path.join(os.path.dirname(__file__), "..", "featurestore.yaml")
)
FEATURES = ["transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg"]

with DAG(
    dag_id="train_fraud_model",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),  # the data interval is the day
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["featurestore", "example"],
) as dag:
    wait = FeatureStoreSensor(
        task_id="wait_for_features",
        feature_set="transactions",
        version=1,
        stores=["offline"],
        config_path=CONFIG,
        poll_interval=300,
        timeout=timedelta(days=2),
        fail_when_incomplete=True,
    )

    @task
    def train(data_interval_start=None, data_interval_end=None) -> dict:  # type: ignore[no-untyped-def]
        import numpy as np
        import pandas as pd
        from deltalake import DeltaTable

        config = load_config(CONFIG, check_transformations=False)
        spec = config.get("transactions", 1)
        start, end = pd.Timestamp(data_interval_start), pd.Timestamp(data_interval_end)
        rows = DeltaTable(config.offline_table_path(spec)).to_pandas()
        rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
        rows = rows[(rows["timestamp"] >= start) & (rows["timestamp"] < end)]  # the window the sensor awaited
        labels = pd.read_parquet(spec.source.path, columns=["accountID", "timestamp", "is_fraud"])
        labels["timestamp"] = pd.to_datetime(labels["timestamp"], utc=True)
        data = rows.merge(labels, on=["accountID", "timestamp"], how="inner")
        x = data[FEATURES].to_numpy(dtype=float)
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
        x = np.hstack([np.ones((len(x), 1)), x])
        y = data["is_fraud"].to_numpy(dtype=float)
        weights = np.zeros(x.shape[1])
        for _ in range(500):  # plain gradient descent on the logistic loss
            predictions = 1 / (1 + np.exp(-x @ weights))
            weights -= 0.5 * x.T @ (predictions - y) / len(y)
        model = {
            "features": [f"transactions:{f}" for f in FEATURES],
            "weights": weights.tolist(),
            "rows": len(data),
            "window": [start.isoformat(), end.isoformat()],
        }
        path = os.path.join(config.config_dir, "data", "models", "fraud_model.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(model, handle, indent=2)
        print(f"trained on {len(data):,} rows of [{start}, {end}); saved {path}")
        return model

    wait >> train()
