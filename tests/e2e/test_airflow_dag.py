"""The medallion DAG runs for real with `airflow dags test`: three tasks, three published layers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.e2e
@pytest.mark.slow
def test_medallion_dag_publishes_every_layer(small_delivery: tuple[Path, Path], tmp_path: Path) -> None:
    raw, _ = small_delivery
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SPANISHGAS_LAKE_URI": str(tmp_path / "lake"),
        "SPANISHGAS_GX_ROOT": str(tmp_path / "great_expectations"),
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
    for layer in ("bronze", "silver", "gold"):
        assert list((tmp_path / "lake" / layer / "_published").glob("*.json")), layer
    bronze = json.loads(next((tmp_path / "lake" / "bronze" / "_published").glob("*.json")).read_text())
    assert bronze["raw_dir"] == str(raw.resolve())  # the DAG parameter reached the task
