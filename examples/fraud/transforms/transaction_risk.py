"""The on-demand feature of the fraud example: the transaction amount against the account's
7-day average amount (`featuresets/transaction_risk.yaml`).

Called with every row of a lookup or of a training set at once, as a dict of numpy arrays
(`mode: numpy`): vectorized, never a loop over rows.
"""

from __future__ import annotations

import numpy as np


def amount_vs_average(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`amount / transaction_amount_7d_avg`; null where the account has no average (no
    transaction in the last 7 days: NaN in) or an average of 0, rather than a made-up number."""
    amount = columns["amount"]
    average = columns["transaction_amount_7d_avg"]
    ratio = np.full(len(amount), np.nan)
    usable = np.isfinite(average) & (average != 0)
    np.divide(amount, average, out=ratio, where=usable)
    return {"amount_vs_7d_avg": ratio}
