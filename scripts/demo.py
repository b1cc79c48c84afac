"""The README's first command (`make demo`): the fraud example end to end on the embedded defaults.

Starts from a clean slate each time: the example's source data is generated for the two weeks
before today (so the 30-day online TTL keeps the values live), its offline store, interval
table and online keys are recreated; then it runs the `featurestore` commands a user would type.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fraud"
CONFIG = EXAMPLE / "featurestore.yaml"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))


def step(*argv: str) -> None:
    shown = " ".join("featurestore" if a == FEATURESTORE else a for a in argv)
    print(f"\n$ {shown.replace(str(ROOT) + '/', '')}", flush=True)
    result = subprocess.run(argv, cwd=ROOT, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    today = datetime.now(UTC).date()
    first, week = today - timedelta(days=14), today - timedelta(days=7)
    shutil.rmtree(EXAMPLE / "data", ignore_errors=True)
    url = os.environ.setdefault("FEATURESTORE_REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(url)
    stale = list(client.scan_iter("fraud:*", count=1000))
    if stale:
        client.delete(*stale)
    config = ["--config", str(CONFIG.relative_to(ROOT))]
    step(sys.executable, str(EXAMPLE / "generate_data.py"), "--start", first.isoformat(), "--days", "14")
    step(FEATURESTORE, "validate", *config)
    step(FEATURESTORE, "list", *config)
    for name in ("accounts", "transactions"):
        step(FEATURESTORE, "backfill", name, "--start", week.isoformat(), "--end", today.isoformat(), *config)
    step(FEATURESTORE, "intervals", "transactions", *config)
    step(FEATURESTORE, "jobs", "transactions", "--limit", "3", *config)
    step(
        FEATURESTORE,
        "get-online",
        "transactions",
        "--key",
        "accountID=A0001",
        "--key",
        "accountID=A0002",
        "--key",
        "accountID=nobody",
        *config,
    )
    step(
        FEATURESTORE,
        "backfill",
        "transactions",
        "--start",
        week.isoformat(),
        "--end",
        today.isoformat(),
        *config,
    )


if __name__ == "__main__":
    main()
