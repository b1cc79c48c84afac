"""Example: a training DAG scheduled on "transactions v1 offline updated".

Each time a materialization lands new transaction features in the offline store, this DAG
builds a training set from the window that was written (the asset event's `start`/`end`),
labels it with the source's `is_fraud`, fits a small logistic regression and saves it with the
feature names it used. Put this file in Airflow's DAGs folder beside `featurestore_dags.py`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_featurestore.airflow.assets import feature_asset
from airflow_provider_featurestore.core.config import load_config

CONFIG = os.environ.get(
    "FEATURESTORE_CONFIG", os.path.join(os.path.dirname(__file__), "..", "featurestore.yaml")
)
FEATURES = ["transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg"]

with DAG(
    dag_id="train_fraud_model",
    schedule=[feature_asset("fraud", "transactions", 1, "offline")],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["featurestore", "example"],
) as dag:

    @task
    def train(triggering_asset_events=None) -> dict:  # type: ignore[no-untyped-def]
        import numpy as np
        import pandas as pd
        from deltalake import DeltaTable

        config = load_config(CONFIG, check_transformations=False)
        spec = config.get("transactions", 1)
        windows = [
            (event.extra["start"], event.extra["end"])
            for events in (triggering_asset_events or {}).values()
            for event in events
            if "start" in event.extra
        ]
        rows = DeltaTable(config.offline_table_path(spec)).to_pandas()
        rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
        if windows:  # only what this materialization wrote; without events (a manual run): everything
            start = min(pd.Timestamp(w[0]) for w in windows)
            end = max(pd.Timestamp(w[1]) for w in windows)
            rows = rows[(rows["timestamp"] >= start) & (rows["timestamp"] < end)]
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
        }
        path = os.path.join(config.config_dir, "data", "models", "fraud_model.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(model, handle, indent=2)
        print(f"trained on {len(data):,} rows from {len(windows) or 'all'} window(s); saved {path}")
        return model

    train()
