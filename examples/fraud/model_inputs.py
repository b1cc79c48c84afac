"""What the fraud model reads, shared by training (`run_example.py`) and scoring (`score.py`).

One function turns rows into the model's input frame, whether the stored feature values came
from the point-in-time join (training) or from Redis (serving), so both paths compute the
same columns the same way. The saved pipeline holds only scikit-learn objects: loading it
needs no code from this folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Stored features, read by ref: the model's retrieval spec.
FEATURE_REFS: tuple[str, ...] = (
    "transactions:transaction_amount_7d_sum",
    "transactions:transaction_7d_count",
    "transactions:transaction_amount_7d_avg",
    "accounts:account_age_days",
    "accounts:credit_limit",
    "accounts:is_premium",
    "accounts:num_payment_rejects_1d_per_user",
    "accounts:account_country",
)
# Known only when the transaction happens: they come with the request, never from the store.
REQUEST_FIELDS: tuple[str, ...] = ("amount", "country", "merchant_category")

# `abroad` (the card used outside the account's country) carries the fraud signal of the
# generator; it needs the request's country and the stored account_country together.
NUMERIC = (
    "amount",
    "transaction_amount_7d_sum",
    "transaction_7d_count",
    "transaction_amount_7d_avg",
    "account_age_days",
    "credit_limit",
    "is_premium",
    "num_payment_rejects_1d_per_user",
    "abroad",
)
CATEGORICAL = ("merchant_category",)


def model_frame(rows: pd.DataFrame | Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """The model's input columns from rows holding the request fields and stored features.

    A missing stored value (an account the store has never seen, or no transaction in the
    week before) stays NaN here and is imputed by the pipeline.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    out = pd.DataFrame(index=frame.index)
    for column in NUMERIC:
        if column != "abroad":
            out[column] = frame[column].astype(object).where(frame[column].notna(), np.nan).astype(float)
    home = frame["account_country"]
    out["abroad"] = np.where(home.isna(), np.nan, (frame["country"] != home).astype(float))
    for column in CATEGORICAL:
        out[column] = frame[column].astype(object).where(frame[column].notna(), "unknown")
    return out


def new_pipeline() -> Pipeline:
    """Imputation (with missing-value flags) and scaling, one-hot categories, a logistic regression."""
    numbers = Pipeline(
        [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
    )
    columns = ColumnTransformer(
        [
            ("numbers", numbers, list(NUMERIC)),
            ("categories", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=1000))])
