"""A private copy of the fraud example with ten days of recent source data, and a real Airflow
(`AirflowServer`) running the DAGs of `dags/` over it: what the end-to-end tests and the status
page tests drive through Airflow's REST API and UI.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from airflow_provider_featurestore.airflow.dag_ids import dag_id_prefix
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.timeutil import iso, to_epoch
from support.airflow_server import AirflowServer
from support.intervals_view import statuses as interval_view

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
DAG_ID = "featurestore_backfill"
DAY = 86400
TODAY = to_epoch(datetime.now(UTC).date())
FIRST_DAY = TODAY - 10 * DAY  # source data: the 10 days before today


def day(offset: int) -> int:
    """Epoch seconds of the start of the `offset`-th source day."""
    return FIRST_DAY + offset * DAY


@dataclass
class Deployment:
    airflow: AirflowServer
    root: Path
    project: str
    prefix: str = ""  # of its DAG ids: `<project>__` when the Airflow runs several feature stores

    @property
    def dag_id(self) -> str:
        """Its backfill DAG's id."""
        return self.prefix + DAG_ID

    @property
    def config(self) -> Path:
        return self.root / "featurestore.yaml"

    def store(self) -> FeatureStore:
        return FeatureStore(str(self.config), check_transformations=False)

    def statuses(self, name: str) -> dict[str, list[tuple[str, str, str]]]:
        return interval_view(self.config, name)

    def jobs(self, name: str) -> list[JobRecord]:
        store = self.store()
        try:
            return store.jobs(name)
        finally:
            store.close()

    def backfill(self, name: str, start: int, end: int, **conf: object) -> str:
        """Trigger its backfill DAG through the REST API; the run id."""
        return self.airflow.trigger(
            self.dag_id, {"feature_set": name, "start": iso(start), "end": iso(end), **conf}
        )

    def explain(self, run_id: str) -> str:
        """What to read when a run did not do what was expected."""
        return f"run {run_id}\n{self.airflow.task_log(self.dag_id, run_id)}\n{self.airflow.logs(20)}"


def private_fraud_example(root: Path, prepare: Callable[[Path], None] | None = None) -> str:
    """The example copied to `root` with ten days of recent source data and a project name of its
    own (so Redis keys never collide; `prepare` may add to it); that project."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"e{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    config.write_text(config.read_text().replace("project: fraud", f"project: {project}"))
    if prepare is not None:
        prepare(root)
    sys.path.insert(0, str(EXAMPLE))
    try:
        from generate_data import generate
    finally:
        sys.path.remove(str(EXAMPLE))
    start = datetime.fromtimestamp(FIRST_DAY, UTC).strftime("%Y-%m-%d")
    generate(str(root / "data"), accounts=40, transactions_per_day=300, start=start, days=10)
    return project


@contextmanager
def fraud_deployment(
    base: Path,
    pg_url: str,
    redis_url: str,
    *,
    users: Mapping[str, str] | None = None,
    prepare: Callable[[Path], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Deployment]:
    """The example under `base/fraud` (`private_fraud_example`), Airflow running over it, the
    backfill DAG unpaused."""
    with fraud_deployments(base, pg_url, redis_url, 1, users=users, prepare=prepare, env=env) as (
        deployment,
    ):
        yield deployment


@contextmanager
def fraud_deployments(
    base: Path,
    pg_url: str,
    redis_url: str,
    count: int,
    *,
    users: Mapping[str, str] | None = None,
    prepare: Callable[[Path], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[Deployment]]:
    """`count` private copies of the example (`base/fraud`, or `base/fraud0`, `base/fraud1`, ...
    for several) in ONE Airflow, each backfill DAG unpaused. Several are named by a JSON list in
    the Variable, so their DAG ids take their projects as prefixes. `env` goes to every service
    (e.g. an OpenLineage transport)."""
    roots = [base / "fraud"] if count == 1 else [base / f"fraud{i}" for i in range(count)]
    projects = [private_fraud_example(root, prepare) for root in roots]
    configs = [str(root / "featurestore.yaml") for root in roots]
    # The configs are named by the Airflow Variable alone, in the metadata database, as a production
    # deployment would: the DAG processor, the tasks and the status page must all find them there.
    variable = configs[0] if count == 1 else json.dumps(configs)
    env = {
        **(env or {}),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "FEATURESTORE_REDIS_URL": redis_url,
    }

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATURESTORE_REDIS_URL", redis_url)  # the config's ${...}, read here too
        try:
            with AirflowServer(
                base / "home", pg_url, env, users=users, variables={"featurestore_config": variable}
            ) as airflow:
                deployments = [
                    Deployment(airflow, root, project, dag_id_prefix(project, count > 1))
                    for root, project in zip(roots, projects, strict=True)
                ]
                for deployment in deployments:
                    airflow.wait_for_dag(deployment.dag_id)
                    airflow.unpause(deployment.dag_id)
                yield deployments
        finally:
            client = redis.Redis.from_url(redis_url)
            for project in projects:
                keys = list(client.scan_iter(f"{project}:*", count=1000))
                if keys:
                    client.delete(*keys)
            client.close()
