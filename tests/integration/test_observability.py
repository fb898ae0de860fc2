"""Ops observability against the real programs: Prometheus and Alertmanager with the shipped config (only
the target addresses rewritten), a Pushgateway, `spanishgas serve` with two workers on the stack
profile's Redis, and `spanishgas monitor` pushing its metrics and writing its tables to Postgres.

Grafana cannot be installed here (neither Debian nor PyPI has it), so every panel's query is evaluated the
way Grafana would send it: PromQL through Prometheus' HTTP API, SQL as the read-only `grafana` role on
the monitoring database. Each must return data; a panel that can never show data is a defect."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from spanishgas.settings import Settings
from tests.conftest import free_port, require_program, wait_for_http
from tests.integration.conftest import AUTH, KEY, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
MONITORING = ROOT / "monitoring"
RATE_INTERVAL = "1m"  # what Grafana's $__rate_interval is at a 15 s scrape interval: four scrapes


class Program:
    """A server process with its log in a folder; stopped at the end."""

    def __init__(self, name: str, args: list[str], folder: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = folder / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _prometheus_config(folder: Path, addresses: dict[str, str]) -> Path:
    """The shipped prometheus.yml with the compose service addresses replaced, beside the shipped rules."""
    text = (MONITORING / "prometheus" / "prometheus.yml").read_text()
    for compose_address, address in addresses.items():
        assert compose_address in text, compose_address
        text = text.replace(f'"{compose_address}"', f'"{address}"')
    shutil.copytree(MONITORING / "prometheus" / "rules", folder / "rules")
    path = folder / "prometheus.yml"
    path.write_text(text)
    return path


def _service_env(settings: Settings, redis_port: int, extra: dict[str, str]) -> dict[str, str]:
    """The stack profile pointed at this session's stores, as environment variables."""
    env = {
        **os.environ,
        "SPANISHGAS_PROFILE": "stack",
        "SPANISHGAS_DATA_ROOT": str(settings.data_root),
        "SPANISHGAS_LAKE_URI": str(settings.lake_uri),
        "SPANISHGAS_MLFLOW_TRACKING_URI": str(settings.mlflow_tracking_uri),
        "SPANISHGAS_MLFLOW_REGISTRY_URI": str(settings.mlflow_registry_uri),
        "SPANISHGAS_REDIS__PORT": str(redis_port),
        "SPANISHGAS_FEAST__DATABASE": settings.feast.database,
        "SPANISHGAS_FEAST__PROJECT": settings.feast.project,
        "SPANISHGAS_API__API_KEYS": json.dumps([KEY]),
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture(scope="module")
def monitoring_db(postgres_dsn: str) -> Iterator[str]:
    """A database of its own for the monitor's tables, readable by the `grafana` role as in the stack."""
    import psycopg2

    name = f"obs_monitoring_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg2.connect(postgres_dsn, dbname=name)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute((ROOT / "infra" / "postgres" / "grafana_reader.sql").read_text())
    conn.close()
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class Traffic:
    """Agents' requests in a background thread: lookups, unknown and malformed ids, a missing key,
    what-if and batch requests, until stopped. Counts the answers by status."""

    def __init__(self, base: str, customers: list[str]) -> None:
        self.base, self.customers = base, customers
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _request(self, client: httpx.Client, i: int) -> httpx.Response:
        customer = self.customers[i % len(self.customers)]
        kind = i % 8
        if kind < 2:
            return client.get(f"/score/{customer}", headers=AUTH)
        if kind == 2:
            return client.get("/score/C99999999", headers=AUTH)
        if kind == 3:
            return client.get("/score/not-an-id", headers=AUTH)
        if kind == 4:
            return client.get(f"/score/{customer}")
        if kind == 5:  # a new vector each time, so the model (not the cache) answers it
            what_if = {"customer_id": customer, "features": {"months_to_renewal": (i % 2400) / 100}}
            return client.post("/score", json=what_if, headers=AUTH)
        if kind == 6:
            return client.post("/score/batch", json={"customer_ids": self.customers[:5]}, headers=AUTH)
        return client.get("/model", headers=AUTH)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=5) as client:
            i = 0
            while not self._stop.is_set():
                try:
                    status = self._request(client, i).status_code
                except httpx.HTTPError:
                    status = 0  # the API is stopped
                self.statuses[status] = self.statuses.get(status, 0) + 1
                i += 1
                time.sleep(0.02)


def _prom(base: str, path: str, **params: Any) -> Any:
    reply = httpx.get(f"{base}/api/v1/{path}", params=params, timeout=30)
    body = reply.json()
    assert body["status"] == "success", (path, params, body)
    return body["data"]


def _variables(prom: str, dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each template variable's values, from its label_values query (Grafana's default: all selected)."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()
        values[variable["name"]] = _prom(prom, f"label/{label}/values", **{"match[]": metric})
    return values


def _promql(expr: str, variables: dict[str, list[str]]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    for name, values in variables.items():
        expr = expr.replace(f"${name}", "(" + "|".join(re.escape(v) for v in values) + ")")
    return expr


def _sql(text: str, variables: dict[str, list[str]]) -> str:
    now = datetime.now(UTC)
    window = f"BETWEEN '{(now - timedelta(days=1)).isoformat()}' AND '{(now + timedelta(minutes=5)).isoformat()}'"
    text = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 {window}", text)
    for name, values in variables.items():
        text = text.replace(f"${name}", ",".join("'" + v.replace("'", "''") + "'" for v in values))
    return text


def _has_data(result: Any) -> bool:
    """Some finite sample in an instant or range result."""
    import math

    for series in result.get("result", []):
        samples = series.get("values") or [series.get("value")]
        if any(s and math.isfinite(float(s[1])) for s in samples):
            return True
    return False


def _panels_without_data(prom: str, dsn: str, database: str) -> list[str]:
    import psycopg2

    from spanishgas.observability.dashboards import all_dashboards

    empty = []
    now = time.time()
    reader = psycopg2.connect(dsn, dbname=database, user="grafana")
    try:
        for dashboard in (d.to_json() for d in all_dashboards().values()):
            variables = _variables(prom, dashboard)
            unset = [name for name, found in variables.items() if not found]
            if unset:  # not scraped yet (or never: then the wait below ends in a failure naming it)
                empty += [f"{dashboard['uid']}: variable {name} has no values" for name in unset]
                continue
            for panel in dashboard["panels"]:
                for target in panel.get("targets", []):
                    where = f"{dashboard['uid']} / {panel['title']} / {target['refId']}"
                    if "rawSql" in target:
                        with reader.cursor() as cur:
                            cur.execute(_sql(target["rawSql"], variables))
                            if not cur.fetchall():
                                empty.append(where)
                        continue
                    expr = _promql(target["expr"], variables)
                    if target["instant"]:
                        result = _prom(prom, "query", query=expr, time=now)
                    else:
                        result = _prom(prom, "query_range", query=expr, start=now - 300, end=now, step=15)
                    if not _has_data(result):
                        empty.append(where)
    finally:
        reader.close()
    return empty


def _wait_for_alert(prom: str, name: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    states: list[str] = []
    while time.monotonic() < deadline:
        alerts = [a for a in _prom(prom, "alerts")["alerts"] if a["labels"]["alertname"] == name]
        states = [a["state"] for a in alerts]
        firing = [a for a in alerts if a["state"] == "firing"]
        if firing:
            return firing[0]
        time.sleep(5)
    pytest.fail(f"{name} did not fire within {seconds} s (states seen: {states})")


def test_every_panel_has_data_and_the_api_alerts_fire(
    served: dict[str, Any],
    stack: dict[str, Any],
    pushgateway: str,
    monitoring_db: str,
    postgres_dsn: str,
    tmp_path: Path,
) -> None:
    from spanishgas.retention.job import run_score

    prometheus_bin = require_program("prometheus")
    alertmanager_bin = require_program("prometheus-alertmanager")
    promtool = require_program("promtool")
    settings: Settings = stack["settings"]
    redis: RedisServer = stack["server"]
    db_url = settings.postgres.sqlalchemy_url(monitoring_db)
    env = _service_env(
        settings,
        redis.port,
        {"SPANISHGAS_MONITORING__DATABASE_URL": db_url, "SPANISHGAS_MONITORING__PUSHGATEWAY_URL": pushgateway},
    )

    # A matured cohort for the cohort panels: a backfilled scoring run of the model's first test month.
    first_test_month = date.fromisoformat(served["report"].split["test"].split(" ")[0].split("..")[0])
    run_score(served["settings"], as_of=first_test_month)

    api_port, prom_port, am_port = free_port(), free_port(), free_port()
    prom, api = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{api_port}"
    binary = str(Path(sys.executable).with_name("spanishgas"))
    programs: list[Program] = []
    traffic: Traffic | None = None
    try:
        am_config = str(MONITORING / "alertmanager" / "alertmanager.yml")
        programs.append(Program("alertmanager", [
            alertmanager_bin, f"--config.file={am_config}", f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ], tmp_path))  # fmt: skip
        config = _prometheus_config(
            tmp_path,
            {
                "api:8000": f"127.0.0.1:{api_port}",
                "pushgateway:9091": pushgateway.removeprefix("http://"),
                "alertmanager:9093": f"127.0.0.1:{am_port}",
                "localhost:9090": f"127.0.0.1:{prom_port}",
            },
        )
        programs.append(Program("prometheus", [
            prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ], tmp_path))  # fmt: skip
        serve = Program("serve", [binary, "serve", "--port", str(api_port), "--workers", "2"], tmp_path, env)
        programs.append(serve)
        wait_for_http(f"http://127.0.0.1:{am_port}/-/ready", 30)
        wait_for_http(f"{prom}/-/ready", 30)
        try:
            wait_for_http(f"{api}/ready", 120)
        except BaseException:
            pytest.fail(f"spanishgas serve did not become ready: {serve.log_tail()}")

        traffic = Traffic(api, [str(c) for c in served["batch"].index[:50]])
        traffic.start()
        monitor = subprocess.run([binary, "monitor"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert monitor.returncode == 0, monitor.stdout + monitor.stderr
        assert f"pushed to {pushgateway}" in monitor.stdout + monitor.stderr

        # The API's exposition passes Prometheus' own lint (names, units, help text).
        exposition = httpx.get(f"{api}/metrics").text
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        empty: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            empty = _panels_without_data(prom, postgres_dsn, monitoring_db)
            if not empty:
                break
            time.sleep(10)
        assert empty == [], f"panels without data: {empty}"

        # The served version and the registry's champion, as Prometheus sees them, are the real ones.
        for expr in ("min(spanishgas_api_served_model_version)", "max(spanishgas_api_registry_champion_version)"):
            value = _prom(prom, "query", query=expr)["result"][0]["value"][1]
            assert value == str(served["version"]), expr
        targets = _prom(prom, "targets")["activeTargets"]
        assert {t["labels"]["job"]: t["health"] for t in targets} == {
            "spanishgas_api": "up",
            "pushgateway": "up",
            "prometheus": "up",
        }

        # The online store stops: agents get 503s, the alert fires and reaches Alertmanager.
        redis.save_and_kill()
        try:
            fired = _wait_for_alert(prom, "SpanishGasOnlineStoreUnavailable", 240)
            assert fired["labels"]["severity"] == "critical"
            received = httpx.get(f"http://127.0.0.1:{am_port}/api/v2/alerts").json()
            assert "SpanishGasOnlineStoreUnavailable" in {a["labels"]["alertname"] for a in received}
        finally:
            redis.start()  # the shared store comes back on its port with its data file
        assert traffic.statuses.get(503, 0) > 0

        # The API stops: Prometheus cannot scrape it, the alert fires.
        serve.stop()
        _wait_for_alert(prom, "SpanishGasAPIDown", 240)
    finally:
        if traffic is not None:
            traffic.stop()
        for program in reversed(programs):
            program.stop()
