"""Scoring script for the fraud model, in the Azure ML online-endpoint shape: `init()` once per
process, `run(requests)` per call.

A request carries what is known when the card is used (account, amount, country, merchant
category); everything else the model reads comes from the online store, by the refs of the
retrieval spec saved beside the model: the same refs it was trained on, so serving cannot
drift from training. An account the store has no values for scores with imputed features.

    import score
    score.init("examples/fraud/model")
    score.run([{"accountID": "A0001", "amount": 120.5, "country": "US", "merchant_category": "online"}])
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib

from airflow_provider_featurestore import FeatureStore
from airflow_provider_featurestore.core.retrieval import RetrievalSpec

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (an endpoint, a test): find model_inputs beside it
    sys.path.insert(0, str(HERE))

from model_inputs import model_frame  # noqa: E402

MODEL_FILE = "model.joblib"

_model: Any = None
_spec: RetrievalSpec | None = None
_store: FeatureStore | None = None


def init(model_dir: str | Path | None = None, config: str | None = None) -> None:
    """Load the model and its retrieval spec and open the feature store (its Redis pool stays open).

    `model_dir` defaults to `$AZUREML_MODEL_DIR`, then `model/` beside this file; `config` to
    `$FEATURESTORE_CONFIG`, then the featurestore.yaml beside this file.
    """
    global _model, _spec, _store
    folder = Path(model_dir or os.environ.get("AZUREML_MODEL_DIR") or HERE / "model")
    _model = joblib.load(folder / MODEL_FILE)
    _spec = RetrievalSpec.load(folder)
    shutdown()
    # Serving reads Redis only: the transformations (Spark code) need not be importable here.
    path = config or os.environ.get("FEATURESTORE_CONFIG") or str(HERE / "featurestore.yaml")
    _store = FeatureStore(path, check_transformations=False)


def lookup(requests: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """Each request with the live values of the spec's features (None where the store has none)."""
    if _store is None or _spec is None:
        raise RuntimeError("score.init() has not run")
    stored = _store.get_online_features(_spec, [{"accountID": r["accountID"]} for r in requests])
    return [{**request, **features} for request, features in zip(requests, stored, strict=True)]


def run(requests: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """`[{"accountID", "amount", "country", "merchant_category"}, ...]` -> `[{"accountID", "fraud_probability"}, ...]`."""
    if not requests:
        return []
    rows = lookup(requests)
    probabilities = _model.predict_proba(model_frame(rows))[:, 1]
    return [
        {"accountID": row["accountID"], "fraud_probability": float(p)}
        for row, p in zip(rows, probabilities, strict=True)
    ]


def shutdown() -> None:
    """Close the feature store's connections (an endpoint never needs this; scripts and tests do)."""
    global _store
    if _store is not None:
        _store.close()
        _store = None
