"""Airflow's own services on loopback for the unattended tests: api-server, scheduler, dag-processor and
triggerer with the LocalExecutor and the metadata database in the loopback Postgres, driven only
through the REST API a data engineer's tools (and the UI) use."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
USER = "engineer"
FINISHED = {"success", "failed"}


class AirflowTimeout(AssertionError):
    """Something the test waited for did not happen in time; the message carries the services' logs."""


@dataclass
class AirflowServices:
    """Running Airflow services and an authenticated REST client for them."""

    home: Path
    url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""

    @classmethod
    def configure(cls, home: Path, dags: Path, database_url: str, port: int, extra: dict[str, str]) -> AirflowServices:
        """The environment every service shares: one metadata database, one JWT secret, one user."""
        home.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{port}"
        password = secrets.token_urlsafe(12)
        (home / "passwords.json").write_text(json.dumps({USER: password}))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SPANISHGAS_", "AIRFLOW"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",  # two cores here
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # the log servers' fixed default ports (8793, 8794) may be taken on a shared machine
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "_PASSWORD": password,
            **extra,
        }
        return cls(home, url, env)

    def airflow(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        """One `airflow` CLI command in the services' environment."""
        binary = str(Path(sys.executable).with_name("airflow"))
        return subprocess.run(
            [binary, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> None:
        """Migrate the metadata database, start the four services and sign in."""
        migrated = self.airflow("db", "migrate", timeout=600)
        if migrated.returncode != 0:
            raise AssertionError("airflow db migrate failed: " + migrated.stderr[-3000:])
        binary = str(Path(sys.executable).with_name("airflow"))
        for service in SERVICES:
            log = (self.home / f"{service}.log").open("wb")
            self.processes[service] = subprocess.Popen(
                [binary, service], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait(self._healthy, 180, "the services to report healthy")
        answer = httpx.post(f"{self.url}/auth/token", json={"username": USER, "password": self.env["_PASSWORD"]})
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def _healthy(self) -> bool:
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(p) or {}).get("status") == "healthy" for p in parts)

    def stop(self) -> None:
        """Stop every service (and the task processes they started)."""
        import signal

        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call to the public REST API (``/api/v2``) as the signed-in user; fails on an error status."""
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        """A DAG's runs (of one run type: ``manual``, ``asset_triggered``, ``scheduled``), oldest first."""
        found = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "id", "limit": 100})["dag_runs"]
        return [run for run in found if run_type is None or run["run_type"] == run_type]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Each task's state in one run."""
        found = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in found}

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """What a task returned."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", path)["value"]

    def wait(self, ready: Callable[[], Any], seconds: float, what: str) -> Any:
        """Poll ``ready`` until it returns something truthy; on time out fail with the services' logs."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = ready()
            if found:
                return found
            for service, process in self.processes.items():
                if process.poll() is not None:
                    raise AirflowTimeout(f"airflow {service} exited while waiting for {what}\n{self.logs()}")
            time.sleep(2)
        raise AirflowTimeout(f"waited {seconds:.0f} s for {what}\n{self.logs()}")

    def finished_run(self, dag_id: str, run_type: str, number: int, seconds: float) -> dict[str, Any]:
        """Wait for the DAG's run ``number`` (from 1, oldest first) of ``run_type`` to finish; fail with its
        task logs when it did not succeed."""

        def finished() -> dict[str, Any] | None:
            runs = self.runs(dag_id, run_type)
            return runs[number - 1] if len(runs) >= number and runs[number - 1]["state"] in FINISHED else None

        run = self.wait(finished, seconds, f"{run_type} run {number} of {dag_id} to finish")
        if run["state"] != "success":
            raise AssertionError(f"{dag_id} run {run['dag_run_id']} {run['state']}\n{self.task_logs(dag_id, run)}")
        return dict(run)

    def task_logs(self, dag_id: str, run: dict[str, Any]) -> str:
        """The tail of every task log of a run, as files on disk (the services share this home)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(folder.rglob("*.log")))

    def logs(self) -> str:
        """The tail of each service's log."""
        return "\n".join(
            f"--- {s}\n{(self.home / f'{s}.log').read_text(errors='replace')[-2000:]}"
            for s in SERVICES
            if (self.home / f"{s}.log").exists()
        )
