"""The medallion DAG runs for real with `airflow dags test`: three tasks, three published layers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.e2e
@pytest.mark.slow
def test_medallion_dag_publishes_every_layer(small_delivery: tuple[Path, Path], tmp_path: Path) -> None:
    delivered, _ = small_delivery
    # A platform folder of its own, with the settings' relative defaults (data/, great_expectations/)
    # left as they are: the tasks must resolve them there, not in Airflow's temporary task folder.
    platform = tmp_path / "platform"
    shutil.copytree(REPO / "dags", platform / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    raw = tmp_path / "landing" / "drop 'Dec' 2024"  # a quote and spaces must not break the command
    shutil.copytree(delivered, raw)
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")},
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(platform / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SPANISHGAS_SPARK__DRIVER_MEMORY": "2g",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    assert run("db", "migrate").returncode == 0
    errors = run("dags", "list-import-errors", "-o", "json")
    # the JSON is the last line; warnings (graphviz is not installed) come before it
    assert errors.returncode == 0 and json.loads(errors.stdout.strip().splitlines()[-1]) == [], errors.stdout
    result = run("dags", "test", "spanishgas_medallion", "-c", json.dumps({"raw_dir": str(raw)}), timeout=900)
    log = result.stdout + result.stderr
    assert re.search(r"DagRun Finished: .*state=success", log), log[-3000:]
    lake = platform / "data" / "lake"
    for layer in ("bronze", "silver", "gold"):
        assert list((lake / layer / "_published").glob("*.json")), layer
    bronze = json.loads(next((lake / "bronze" / "_published").glob("*.json")).read_text())
    assert bronze["raw_dir"] == str(raw.resolve())  # the DAG parameter reached the task
