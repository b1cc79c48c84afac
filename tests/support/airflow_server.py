"""A real Airflow deployment for end-to-end tests: its own PostgreSQL metadata database, and
`api-server`, `scheduler`, `dag-processor` and `triggerer` as subprocesses (LocalExecutor).

    with AirflowServer(tmp_dir, pg_url, env, variables={"featurestore_config": ...}) as airflow:
        airflow.wait_for_dag("featurestore_backfill")
        run_id = airflow.trigger("featurestore_backfill", {...})
        airflow.wait_for_run("featurestore_backfill", run_id)

Every service logs to a file in the home folder; whenever a start or a wait fails, the error
carries the tail of each log. `stop()` terminates the services (then kills what is left) and
drops the metadata database.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
import requests
import sqlalchemy as sa

from airflow_provider_featurestore.core.interval_table import engine_url

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = ("success", "failed")


class AirflowError(AssertionError):
    """Airflow did not do what the test waited for; the message has the services' log tails."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{exc}>"
    return "\n".join(text.splitlines()[-lines:])


class AirflowServer:
    """One Airflow deployment under `home`, on a fresh database of the PostgreSQL server `pg_url`."""

    def __init__(
        self,
        home: Path,
        pg_url: str,
        env: Mapping[str, str],
        users: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.variables = dict(variables or {})  # Airflow Variables, stored in the metadata database
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        server = engine_url(pg_url)  # a plain postgresql:// gets psycopg2, for Airflow too
        self.database = f"airflow_e2e_{uuid.uuid4().hex[:10]}"
        self._admin_url = server
        self.sql_alchemy_conn = server.set(database=self.database).render_as_string(hide_password=False)
        # SimpleAuthManager users by name -> role (admin, viewer, user, op; "" for a user Airflow
        # signs in but grants nothing); each gets a random password.
        self.users = {"admin": "admin", **(users or {})}
        self.passwords = {name: secrets.token_urlsafe(12) for name in self.users}
        self.env = {
            **os.environ,
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "8",  # LocalExecutor worker processes (default 32)
            # Log servers on free ports: another Airflow on this machine may hold the defaults.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # SimpleAuthManager (Airflow 3's default): the users' passwords are in the passwords
            # file we write before the API server starts (it only adds missing users).
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in self.users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__TRIGGERER__ENABLE_HEALTH_CHECK": "False",
            "PYTHONUNBUFFERED": "1",
        }
        if importlib.util.find_spec("asyncpg") is None:
            # Airflow derives an asyncpg URL for its async engine (used only by a few API routes
            # our DAGs never call: the task/asset state stores, the run waiter, multi-team); the
            # project installs psycopg2 only, so the services run without an async engine.
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = ""
        # The services must not see a config of the developer's own Airflow, nor a feature store
        # config named outside `env` (the deployments name theirs by an Airflow Variable).
        self.env.pop("AIRFLOW_CONFIG", None)
        if "FEATURESTORE_CONFIG" not in env:
            self.env.pop("FEATURESTORE_CONFIG", None)
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []
        self._tokens: dict[str, str] = {}
        self._session = requests.Session()
        self._database_created = False

    # ---- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> AirflowServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def logs(self, lines: int = 40) -> str:
        """The tail of every service's log (for assertion messages)."""
        parts = []
        for name in ("db-migrate", *SERVICES):
            path = self.log_path(name)
            if path.exists():
                state = ""
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    state = f" (exited {process.returncode})"
                parts.append(f"----- {name}{state}: {path}\n{tail(path, lines)}")
        return "\n".join(parts)

    def fail(self, message: str) -> AirflowError:
        return AirflowError(f"{message}\n{self.logs()}")

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps(self.passwords))
        admin = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.database}"')
        except sa.exc.OperationalError as exc:
            raise AirflowError(
                f"cannot create Airflow's metadata database on "
                f"{self._admin_url.render_as_string(hide_password=True)} (is PostgreSQL running? "
                f"set FEATURESTORE_TEST_PG_URL): {exc}"
            ) from None
        finally:
            admin.dispose()
        self._database_created = True
        with self.log_path("db-migrate").open("w") as log:
            self._airflow_command(["db", "migrate"], log, timeout=300)
            for name, value in self.variables.items():
                self._airflow_command(["variables", "set", name, value], log, timeout=120)
        for name in SERVICES:
            args = [self.airflow, name] + (["--port", str(self.port)] if name == "api-server" else [])
            log = self.log_path(name).open("w")
            self._logs.append(log)
            self.processes[name] = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its children
            )
        self.wait(self._api_answers, timeout, "the API server did not answer")

    def _airflow_command(self, args: list[str], log: Any, timeout: float) -> None:
        """One `airflow ...` command before the services start; its output goes to `log`."""
        try:
            subprocess.run(
                [self.airflow, *args],
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise self.fail(f"airflow {' '.join(args[:2])} failed: {exc}") from None

    def _api_answers(self) -> bool:
        self.check_alive()
        try:
            response = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise self.fail(f"airflow {name} exited with {process.returncode}")

    def stop(self) -> None:
        """Terminate every service (its whole process group), kill what is left (task processes,
        which the Task SDK puts in groups of their own, too), drop the database."""
        descendants: list[psutil.Process] = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.time() + 30
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.time()))
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)  # what is left of each group, the leader's children too
            if process.poll() is None:
                process.wait(timeout=30)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        for log in self._logs:
            log.close()
        self._logs.clear()
        self._session.close()
        if self._database_created:
            admin = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                admin.dispose()
            self._database_created = False

    # ---- REST API -----------------------------------------------------------------------------

    def token(self, user: str = "admin") -> str:
        """A JWT of `user` from `POST /auth/token` (kept for the next call)."""
        if user not in self._tokens:
            response = self._session.post(
                f"{self.base_url}/auth/token",
                json={"username": user, "password": self.passwords[user]},
                timeout=30,
            )
            if response.status_code not in (200, 201):
                raise self.fail(f"POST /auth/token as {user}: {response.status_code} {response.text}")
            self._tokens[user] = response.json()["access_token"]
        return self._tokens[user]

    def api(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        """Call the public REST API (`/api/v2` + path) with a JWT; the decoded JSON answer."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = self._session.request(
            method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=30, **kwargs
        )
        if response.status_code not in expect:
            raise self.fail(f"{method} /api/v2{path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def wait(self, condition: Callable[[], Any], timeout: float, message: str, every: float = 1.0) -> Any:
        """Poll `condition` until it returns something truthy (returned); fail after `timeout`."""
        deadline = time.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.time() > deadline:
                raise self.fail(f"{message} (after {timeout:.0f}s)")
            time.sleep(every)

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        def parsed() -> dict | None:
            self.check_alive()
            response = self._session.get(
                f"{self.base_url}/api/v2/dags/{dag_id}",
                headers={"Authorization": f"Bearer {self.token()}"},
                timeout=30,
            )
            return response.json() if response.status_code == 200 else None

        return self.wait(parsed, timeout, f"the DAG {dag_id} was never parsed")

    def unpause(self, dag_id: str) -> None:
        dag = self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert dag["is_paused"] is False, dag

    def trigger(self, dag_id: str, conf: Mapping[str, object]) -> str:
        """Trigger a DAG run through the REST API; its run id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf)})
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        found = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return found["task_instances"]

    def task_log(self, dag_id: str, run_id: str, lines: int = 60) -> str:
        """The tail of every task log file of one run."""
        parts = []
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        for path in sorted(folder.rglob("*.log")) if folder.exists() else []:
            parts.append(f"----- {path.relative_to(folder)}\n{tail(path, lines)}")
        return "\n".join(parts) or f"<no task logs under {folder}>"

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 240, states: tuple[str, ...] = TERMINAL_RUN_STATES
    ) -> dict:
        """Wait until the run reaches one of `states`; the run and its task instances."""

        def done() -> dict | None:
            self.check_alive()
            run = self.run(dag_id, run_id)
            return run if run["state"] in states else None

        try:
            run = self.wait(done, timeout, f"run {run_id} of {dag_id} did not reach {states}")
        except AirflowError as exc:
            raise AirflowError(f"{exc}\n===== task logs\n{self.task_log(dag_id, run_id)}") from None
        run["task_instances"] = self.task_instances(dag_id, run_id)
        return run

    # ---- processes ----------------------------------------------------------------------------

    def task_process(self, ti_id: str) -> psutil.Process | None:
        """The process running a task instance: a descendant of the scheduler (LocalExecutor
        worker → task supervisor → task) whose title the Task SDK set to `airflow worker -- <ti id>`."""
        scheduler = psutil.Process(self.processes["scheduler"].pid)
        for process in scheduler.children(recursive=True):
            try:
                title = " ".join(process.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if f"airflow worker -- {ti_id}" in title and "LocalExecutor" not in title:
                return process
        return None


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
