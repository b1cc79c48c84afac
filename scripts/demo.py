"""The README's first command (`make demo`): the fraud example end to end on the embedded defaults.

Starts from a clean slate each time (the example's generated data and interval table are
recreated), then runs the same `featurestore` commands a user would type, printing each.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fraud"
CONFIG = EXAMPLE / "featurestore.yaml"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))


def step(*argv: str) -> None:
    shown = " ".join(["featurestore" if a == FEATURESTORE else a for a in argv])
    print(f"\n$ {shown.replace(str(ROOT) + '/', '')}", flush=True)
    result = subprocess.run(argv, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    shutil.rmtree(EXAMPLE / "data", ignore_errors=True)
    step(sys.executable, str(EXAMPLE / "generate_data.py"))
    config = ["--config", str(CONFIG)]
    step(FEATURESTORE, "validate", *config)
    step(FEATURESTORE, "list", *config)
    step(
        FEATURESTORE,
        "backfill",
        "transactions",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-08",
        "--dry-run",
        *config,
    )


if __name__ == "__main__":
    main()
