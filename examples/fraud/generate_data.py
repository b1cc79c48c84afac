"""Generate the fraud example's source data: card transactions and daily account snapshots.

Deterministic (a seeded generator, no network), so tests and demos see the same rows every
time. Writes parquet with pyarrow, one file per day, under `<out>/source/transactions/` and
`<out>/source/accounts/`. The default 14 days from 2023-12-25 give a backfill of
2024-01-01..2024-01-08 a full 7-day lookback.

    python examples/fraud/generate_data.py [--out DIR] [--accounts N] [--transactions-per-day N]
                                           [--start 2023-12-25] [--days 14] [--seed 42]
"""

from __future__ import annotations

import argparse
import os
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "BR", "IN")
MERCHANT_CATEGORIES = (
    "grocery",
    "fuel",
    "travel",
    "electronics",
    "restaurants",
    "online",
    "fashion",
    "health",
)
MICROS_PER_DAY = 86_400_000_000
TIMESTAMP = pa.timestamp("us", tz="UTC")

TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("transactionID", pa.string()),
        ("accountID", pa.string()),
        ("timestamp", TIMESTAMP),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("country", pa.string()),
        ("merchant_category", pa.string()),
        ("is_fraud", pa.bool_()),
    ]
)
# Exactly the columns (and types) the `accounts` spec declares: it has no transformation.
ACCOUNTS_SCHEMA = pa.schema(
    [
        ("accountID", pa.string()),
        ("timestamp", TIMESTAMP),
        ("account_age_days", pa.int32()),
        ("account_country", pa.string()),
        ("num_payment_rejects_1d_per_user", pa.int64()),
        ("credit_limit", pa.float64()),
        ("is_premium", pa.bool_()),
    ]
)


def generate(
    out_dir: str = DEFAULT_OUT,
    *,
    accounts: int = 200,
    transactions_per_day: int = 2000,
    start: str | date = "2023-12-25",
    days: int = 14,
    seed: int = 42,
) -> dict[str, int]:
    """Write the source tables below `out_dir`; returns the row count of each table."""
    if accounts < 1 or transactions_per_day < 0 or days < 1:
        raise ValueError("accounts and days must be positive, transactions_per_day not negative")
    try:
        first_day = start if isinstance(start, date) else date.fromisoformat(start)
    except ValueError:
        raise ValueError(f"start {start!r} is not a date (YYYY-MM-DD)") from None
    rng = np.random.default_rng(seed)
    profile = _account_profiles(rng, accounts)
    tx_dir = _fresh_dir(os.path.join(out_dir, "source", "transactions"))
    acc_dir = _fresh_dir(os.path.join(out_dir, "source", "accounts"))
    counts = {"transactions": 0, "accounts": 0}
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        snapshot = _account_snapshot(rng, profile, day, offset)
        pq.write_table(snapshot, os.path.join(acc_dir, f"part-{day.isoformat()}.parquet"))
        transactions = _transactions(rng, profile, day, transactions_per_day, counts["transactions"])
        pq.write_table(transactions, os.path.join(tx_dir, f"part-{day.isoformat()}.parquet"))
        counts["accounts"] += snapshot.num_rows
        counts["transactions"] += transactions.num_rows
    return counts


def _account_profiles(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Stable per-account attributes; activity is skewed so some accounts are busy."""
    return {
        "id": np.array([f"A{i:04d}" for i in range(n)], dtype=object),
        "country": rng.choice(np.array(COUNTRIES, dtype=object), size=n),
        "age_days": rng.integers(30, 3650, size=n),
        "credit_limit": rng.choice(np.array([500.0, 1000.0, 2500.0, 5000.0, 10000.0]), size=n),
        "premium": rng.random(n) < 0.15,
        "activity": rng.gamma(shape=1.5, scale=1.0, size=n),
        "spend": rng.normal(3.5, 0.5, size=n),  # log of the typical amount
    }


def _account_snapshot(rng: np.random.Generator, p: dict[str, np.ndarray], day: date, offset: int) -> pa.Table:
    n = len(p["id"])
    midnight = np.full(n, _day_micros(day), dtype=np.int64)
    return pa.table(
        {
            "accountID": pa.array(p["id"], pa.string()),
            "timestamp": pa.array(midnight, TIMESTAMP),
            "account_age_days": pa.array(p["age_days"] + offset, pa.int32()),
            "account_country": pa.array(p["country"], pa.string()),
            "num_payment_rejects_1d_per_user": pa.array(rng.poisson(0.2, size=n), pa.int64()),
            "credit_limit": pa.array(p["credit_limit"], pa.float64()),
            "is_premium": pa.array(p["premium"], pa.bool_()),
        },
        schema=ACCOUNTS_SCHEMA,
    )


def _transactions(
    rng: np.random.Generator, p: dict[str, np.ndarray], day: date, n: int, first_id: int
) -> pa.Table:
    """`n` transactions spread over the day, at microsecond precision, in time order."""
    weights = p["activity"] / p["activity"].sum()
    who = rng.choice(len(p["id"]), size=n, p=weights)
    micros = np.sort(_day_micros(day) + rng.integers(0, MICROS_PER_DAY, size=n, dtype=np.int64))
    amounts = np.round(np.exp(rng.normal(p["spend"][who], 0.8)), 2)
    abroad = rng.random(n) < 0.05
    countries = np.where(abroad, rng.choice(np.array(COUNTRIES, dtype=object), size=n), p["country"][who])
    fraud = rng.random(n) < np.where(abroad, 0.08, 0.005)
    return pa.table(
        {
            "transactionID": pa.array([f"T{first_id + i:09d}" for i in range(n)], pa.string()),
            "accountID": pa.array(p["id"][who], pa.string()),
            "timestamp": pa.array(micros, TIMESTAMP),
            "amount": pa.array(amounts, pa.float64()),
            "currency": pa.array(np.full(n, "USD", dtype=object), pa.string()),
            "country": pa.array(countries, pa.string()),
            "merchant_category": pa.array(
                rng.choice(np.array(MERCHANT_CATEGORIES, dtype=object), size=n), pa.string()
            ),
            "is_fraud": pa.array(fraud, pa.bool_()),
        },
        schema=TRANSACTIONS_SCHEMA,
    )


def _day_micros(day: date) -> int:
    return (datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _fresh_dir(path: str) -> str:
    """Create `path`, removing parquet files an earlier run left there (and nothing else)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.startswith("part-") and name.endswith(".parquet"):
            os.remove(os.path.join(path, name))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the fraud example's source data (deterministic).")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: examples/fraud/data)")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--transactions-per-day", type=int, default=2000)
    parser.add_argument("--start", default="2023-12-25", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        counts = generate(
            args.out,
            accounts=args.accounts,
            transactions_per_day=args.transactions_per_day,
            start=args.start,
            days=args.days,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    last = date.fromisoformat(args.start) + timedelta(days=args.days - 1)
    source = os.path.join(args.out, "source")
    print(f"wrote {counts['transactions']} transactions to {os.path.join(source, 'transactions')}")
    print(f"wrote {counts['accounts']} account snapshots to {os.path.join(source, 'accounts')}")
    print(f"days {args.start} .. {last.isoformat()} (UTC), {args.days} parquet files per table")


if __name__ == "__main__":
    main()
