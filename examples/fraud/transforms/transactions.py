"""Rolling 7-day transaction aggregates per account.

DataFrame API only (no RDDs, no UDFs), so it runs on classic Spark and on Spark Connect
servers such as Sail alike.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

WINDOW_SECONDS = 7 * 86400


def transform(df: DataFrame, window: Any) -> DataFrame:
    """For each transaction: its account's amount sum, count and mean over the 7 days up to it.

    The frame is a range over whole epoch seconds, `(t - 7d, t]`, so a row sees every earlier
    transaction of its account less than 7 days older, itself, and any in the same second.
    The job reads `source_lookback` (7d) before the window, so rows at the window start see a
    full week, and keeps only rows inside the window: `window` is not needed here.
    """
    seconds = F.col("timestamp").cast("long")
    last_7d = Window.partitionBy("accountID").orderBy(seconds).rangeBetween(-WINDOW_SECONDS + 1, 0)
    return df.select(
        F.col("accountID").cast("string").alias("accountID"),
        F.col("timestamp"),
        F.sum("amount").over(last_7d).cast("double").alias("transaction_amount_7d_sum"),
        F.count("amount").over(last_7d).cast("long").alias("transaction_7d_count"),
        F.avg("amount").over(last_7d).cast("double").alias("transaction_amount_7d_avg"),
    )
