"""Running Airflow code for the tests in a fresh Python: a migrated metadata database to run
against, and a script whose last `RESULT <json>` line is its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RESULT = "RESULT "
PRINT_RESULT = "\nimport json; print('RESULT ' + json.dumps(result, default=str))\n"
"""Appended to a script that sets `result`."""


def migrated_airflow_home(factory: pytest.TempPathFactory) -> Path:
    """A new AIRFLOW_HOME whose SQLite metadata database is migrated."""
    home = factory.mktemp("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return home


def run_script(env: dict[str, str], script: str, timeout: float = 600) -> tuple[dict, str]:
    """Run `script` (which prints PRINT_RESULT's line) with Airflow configured by `env`: its
    result and everything it printed (task logs included). Fails showing the output's tail when
    the process fails or prints no result."""
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    output = done.stdout + done.stderr
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len(RESULT) :]), output
