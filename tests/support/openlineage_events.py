"""The OpenLineage provider's file transport for a test Airflow, and the events it wrote.

With `append`, the transport writes each event as one JSON line to the same file (one `write` per
event, so events from concurrent tasks stay whole lines); without it, one file per event.
"""

from __future__ import annotations

import json
from pathlib import Path

NAMESPACE = "featurestore-tests"


def file_transport_env(path: Path, namespace: str = NAMESPACE) -> dict[str, str]:
    """The environment that makes every Airflow component append its events to `path`."""
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": namespace,
    }


def task_events(path: Path, job_name: str) -> list[dict]:
    """The events of the job `<dag id>.<task id>` in the order they were written."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["job"]["name"] == job_name]


def run_events(path: Path, job_name: str, run_id: str) -> list[dict]:
    """The events of `job_name` in one Airflow DAG run: the OpenLineage runs whose START carries
    that run id in its `airflow` run facet (COMPLETE and FAIL share their START's runId)."""
    events = task_events(path, job_name)
    runs = {
        e["run"]["runId"]
        for e in events
        if e["eventType"] == "START" and e["run"]["facets"]["airflow"]["dagRun"]["run_id"] == run_id
    }
    return [e for e in events if e["run"]["runId"] in runs]


def datasets(event: dict, kind: str) -> dict[tuple[str, str], dict]:
    """An event's `inputs` or `outputs` by (namespace, name)."""
    return {(d["namespace"], d["name"]): d for d in event[kind]}
