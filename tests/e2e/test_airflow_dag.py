"""The DAGs run for real with `airflow dags test`: the landing sensor defers until a delivery is complete,
claims it and triggers the medallion run; the lifecycle DAGs run in turn on a gold lake. The medallion's
three spark-submits through `spark_default` run under the real scheduler (test_airflow_scheduler.py),
twice, so they are not run a third time here."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from spanishgas.orchestration.tasks import spark_connection
from spanishgas.settings import Settings

REPO = Path(__file__).parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _platform(tmp_path: Path) -> Path:
    """A platform folder of its own, with the settings' relative defaults (data/, great_expectations/)
    left as they are: the tasks must resolve them there, not in Airflow's temporary task folder."""
    platform = tmp_path / "platform"
    for folder in ("dags", "spark_jobs", "feature_repo"):
        shutil.copytree(REPO / folder, platform / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return platform


def _airflow(tmp_path: Path, platform: Path) -> tuple[dict[str, str], Any]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")},
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(platform / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # local[*] out of the box: the connection the settings' Spark master gives
        "AIRFLOW_CONN_SPARK_DEFAULT": spark_connection(Settings()),
        "SPANISHGAS_SPARK__DRIVER_MEMORY": "2g",
        "SPANISHGAS_ORCHESTRATION__POKE_INTERVAL_S": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    migrated = run("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    errors = run("dags", "list-import-errors", "-o", "json")
    # the JSON is the last line; warnings (graphviz is not installed) come before it
    assert errors.returncode == 0 and json.loads(errors.stdout.strip().splitlines()[-1]) == [], errors.stdout
    return env, run


def test_landing_waits_for_a_complete_delivery_then_triggers_the_medallion_run(
    small_delivery: tuple[Path, Path], tmp_path: Path
) -> None:
    delivered, _ = small_delivery
    platform = _platform(tmp_path)
    env, run = _airflow(tmp_path, platform)
    landing = platform / "data" / "landing"
    incomplete = landing / "2024-11"  # a marker without the files is not a delivery
    incomplete.mkdir(parents=True)
    (incomplete / "_DELIVERY_COMPLETE").touch()
    delivery = landing / "2024-12"

    # Deliver only once the sensor says it waits (deferred to the triggerer): the run must wake up.
    airflow = str(Path(sys.executable).with_name("airflow"))
    test = subprocess.Popen(
        [airflow, "dags", "test", "spanishgas_landing"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(300, test.kill)
    watchdog.start()
    lines = []
    assert test.stdout is not None
    for line in test.stdout:
        lines.append(line)
        if "waiting for a complete delivery" in line and not delivery.exists():
            shutil.copytree(delivered, delivery)
            (delivery / "_DELIVERY_COMPLETE").touch()
    test.wait()
    watchdog.cancel()
    log = "".join(lines)
    assert delivery.exists(), "the sensor never said it was waiting: " + log[-3000:]
    assert re.search(r"DagRun Finished: .*state=success", log), log[-3000:]
    claims = json.loads((platform / "data" / "orchestration" / "claimed_deliveries.json").read_text())
    assert list(claims) == [str(delivery.resolve())]
    runs = run("dags", "list-runs", "spanishgas_medallion", "-o", "json")
    triggered = json.loads(runs.stdout.strip().splitlines()[-1])
    assert len(triggered) == 1 and triggered[0]["state"] == "queued", runs.stdout
    # the CLI does not print a run's conf: read it from the metadata database
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        (conf,) = db.execute("SELECT conf FROM dag_run WHERE dag_id = 'spanishgas_medallion'").fetchone()
    assert json.loads(conf) == {"raw_dir": str(delivery.resolve())}

    # A second run finds nothing new to claim: the claimed delivery is not handed on twice.
    from spanishgas.orchestration.landing import next_delivery

    assert (
        next_delivery(landing, "_DELIVERY_COMPLETE", platform / "data" / "orchestration" / "claimed_deliveries.json")
        is None
    )
    assert not list(delivery.glob("*.processed")) and sorted(p.name for p in delivery.iterdir()) == sorted(
        [*(p.name for p in delivered.iterdir()), "_DELIVERY_COMPLETE"]
    )  # raw files untouched


def _asset_events(airflow_home: Path, asset: str) -> list[dict[str, Any]]:
    """Events of an Asset with their metadata, from the metadata database."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ? ORDER BY e.id",
            (asset,),
        ).fetchall()
    return [json.loads(extra) if extra else {} for (extra,) in rows]


def _xcom(airflow_home: Path, dag_id: str, task_id: str) -> Any:
    """The value a task returned, from the metadata database."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        (value,) = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'", (dag_id, task_id)
        ).fetchone()
    return json.loads(value)


def _xcom_tasks(airflow_home: Path) -> set[str]:
    """The retraining DAG's tasks that returned something."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute("SELECT task_id FROM xcom WHERE dag_id = 'spanishgas_retraining'").fetchall()
    return {task_id for (task_id,) in rows}


def test_the_lifecycle_dags_run_on_a_gold_lake_and_retraining_reads_the_drift_request(
    model_lake: Settings, tmp_path: Path
) -> None:
    """features -> training (Params) -> scoring -> monitoring -> retraining, each with `airflow dags test`
    (which never starts the Asset-scheduled runs itself, so they are run one after the other here). Scoring
    before the first champion is skipped. The monitor is told to retrain after 0 days, so its decision asks
    for a retrain (reason model_age); the retraining DAG reads that request from the drift Asset's event and
    stops before training, since the challenger already saw this gold run."""
    platform = _platform(tmp_path)
    root = tmp_path / "data"
    # the session's gold lake, read-only (symlinked layers); scores and monitoring runs land in this copy
    for layer in ("bronze", "silver", "gold"):
        (root / "lake").mkdir(parents=True, exist_ok=True)
        (root / "lake" / layer).symlink_to(Path(str(model_lake.lake_uri)) / layer)
    env, run = _airflow(tmp_path, platform)
    env.update(
        {
            "SPANISHGAS_DATA_ROOT": str(root),
            "SPANISHGAS_MODEL__TRIALS": "2",
            # a few hundred labelled customers cannot reach the production floor; the gate's other rules hold
            "SPANISHGAS_MODEL__PR_AUC_FLOOR": "0.0",
            "SPANISHGAS_MONITORING__RETRAIN_AFTER_DAYS": "0",
        }
    )

    def dag_test(dag_id: str, conf: dict[str, Any] | None = None) -> str:
        args = ["dags", "test", dag_id] + (["-c", json.dumps(conf)] if conf else [])
        result = run(*args, timeout=900)
        log = result.stdout + result.stderr
        assert re.search(rf"DagRun Finished: dag_id={dag_id}, .*state=success", log), log[-4000:]
        return log

    dag_test("spanishgas_features")
    assert _asset_events(tmp_path / "airflow", "spanishgas-online-features")
    # a fresh platform has no champion yet: scoring stops, skipped, and says what to do
    log = dag_test("spanishgas_scoring")
    assert "no champion model yet" in log and "trigger spanishgas_training" in log
    assert not (root / "lake" / "scores").exists() and not _asset_events(tmp_path / "airflow", "spanishgas-scores")
    dag_test("spanishgas_training", {"trials": 2, "floor": 0.0})
    champions = _asset_events(tmp_path / "airflow", "spanishgas-champion-model")
    if not champions:  # the gate may keep no champion on so little data: then promote by hand, logged
        from spanishgas.model.registry import assign_champion, load_version

        settings = model_lake.rooted_at(root)
        assign_champion(settings, load_version(settings, "challenger").version, reason="lifecycle DAG test")
    else:
        assert set(champions[-1]) == {"version", "metrics"} and "pr_auc" in champions[-1]["metrics"]
    dag_test("spanishgas_scoring", {"budget_eur": 5000})
    assert list((root / "lake" / "scores" / "_published").glob("*.json"))
    dag_test("spanishgas_monitoring")
    requests = _asset_events(tmp_path / "airflow", "spanishgas-retrain-requested")
    assert len(requests) == 1 and requests[0]["reasons"] == ["model_age"], requests
    log = dag_test("spanishgas_retraining")
    # it read the request; the challenger was trained on this very gold run, so it waits for new data
    # (the scheduler test retrains on a new delivery)
    assert _xcom(tmp_path / "airflow", "spanishgas_retraining", "read_request") == requests[0]
    assert "already trained on gold run" in log and "retrain" not in _xcom_tasks(tmp_path / "airflow")
