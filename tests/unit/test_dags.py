"""DAG integrity: every file parses without errors and without work, every task has an owner, retries
and a timeout, every DAG tags and documents itself, and the Assets chain landing -> medallion -> features
-> scoring -> monitoring -> retraining. Parsed by Airflow's own DagBag in a subprocess (Airflow's
configuration and logging stay out of the test process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
DAG_IDS = {
    "spanishgas_landing",
    "spanishgas_medallion",
    "spanishgas_features",
    "spanishgas_training",
    "spanishgas_scoring",
    "spanishgas_monitoring",
    "spanishgas_retraining",
}

# Runs in the subprocess: parse the folder, describe every DAG as JSON.
DESCRIBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

def assets(condition):
    # Asset conditions nest (AssetAny, AssetAll); their leaves are the Assets.
    if condition is None:
        return []
    inner = getattr(condition, "objects", None)
    if inner is None:
        return [condition.name]
    return [name for part in inner for name in assets(part)]

bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()},
       "seconds": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}, "dags": {}}
for dag_id, dag in bag.dags.items():
    condition = getattr(dag.timetable, "asset_condition", None)
    out["dags"][dag_id] = {
        "file": dag.fileloc.rsplit("/", 1)[-1],
        "tags": sorted(dag.tags), "doc_md": dag.doc_md or "", "max_active_runs": dag.max_active_runs,
        "schedule_assets": sorted(assets(condition)),
        "timetable": type(dag.timetable).__name__,
        "params": {k: dag.params.get_param(k).description for k in dag.params},
        "tasks": [
            {"id": t.task_id, "owner": t.owner, "retries": t.retries,
             "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
             "outlets": sorted(o.name for o in t.outlets), "type": type(t).__name__,
             "trigger_dag_id": getattr(t, "trigger_dag_id", None)}
            for t in dag.tasks
        ],
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG folder as Airflow parses it, with a data root that must stay untouched."""
    tmp = tmp_path_factory.mktemp("dagbag")
    data_root = tmp / "data-root-must-stay-empty"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")},
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SPANISHGAS_DATA_ROOT": str(data_root),
        # an unreachable database: parsing must not connect to anything of the platform
        "SPANISHGAS_POSTGRES__PORT": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE, str(ROOT / "dags")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    described = json.loads(result.stdout.strip().splitlines()[-1])
    described["data_root_created"] = data_root.exists()
    return described


def test_every_dag_file_imports_without_errors_or_work(parsed: dict[str, Any]) -> None:
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS
    files = {p.name for p in (ROOT / "dags").glob("*.py")}
    assert {d["file"] for d in parsed["dags"].values()} == files  # one DAG a file, no stray files
    # parse time per file is measured (benchmarks/bench_dag_parse.py), not asserted: machines are noisy
    assert set(parsed["seconds"]) == files
    assert parsed["data_root_created"] is False  # parsing wrote nothing of the platform's


def test_every_task_has_an_owner_retries_and_a_timeout(parsed: dict[str, Any]) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["tags"] and "spanishgas" in dag["tags"], dag_id
        assert len(dag["doc_md"]) > 100, dag_id
        assert dag["max_active_runs"] == 1, dag_id  # every stage publishes runs the next one reads
        assert all(description for description in dag["params"].values()), dag_id
        for task in dag["tasks"]:
            assert task["owner"] in {"data-engineering", "ml-engineering"}, (dag_id, task["id"])
            assert task["retries"] >= 1, (dag_id, task["id"])
            assert task["timeout"] and task["timeout"] > 0, (dag_id, task["id"])


def _outlets(dag: dict[str, Any]) -> set[str]:
    return {name for task in dag["tasks"] for name in task["outlets"]}


def test_the_asset_graph_chains_the_whole_lifecycle(parsed: dict[str, Any]) -> None:
    dags = parsed["dags"]
    landing = {t["trigger_dag_id"] for t in dags["spanishgas_landing"]["tasks"] if t["trigger_dag_id"]}
    assert landing == {"spanishgas_medallion"}
    assert dags["spanishgas_landing"]["timetable"] == "ContinuousTimetable"
    medallion = dags["spanishgas_medallion"]
    assert {t["type"] for t in medallion["tasks"]} == {"SparkSubmitOperator"}
    assert _outlets(medallion) == {"spanishgas-lake-bronze", "spanishgas-lake-silver", "spanishgas-lake-gold"}
    chain = [
        ("spanishgas_features", {"spanishgas-lake-gold"}, {"spanishgas-online-features"}),
        ("spanishgas_scoring", {"spanishgas-online-features", "spanishgas-champion-model"}, {"spanishgas-scores"}),
        ("spanishgas_monitoring", {"spanishgas-scores"}, {"spanishgas-retrain-requested"}),
        ("spanishgas_retraining", {"spanishgas-retrain-requested"}, {"spanishgas-champion-model"}),
    ]
    for dag_id, scheduled_on, updates in chain:
        assert set(dags[dag_id]["schedule_assets"]) == scheduled_on, dag_id
        assert _outlets(dags[dag_id]) == updates, dag_id
    # monitoring also runs daily; training monthly, and both training DAGs update the champion Asset
    assert dags["spanishgas_monitoring"]["timetable"] == "AssetOrTimeSchedule"
    assert _outlets(dags["spanishgas_training"]) == {"spanishgas-champion-model"}
    assert set(dags["spanishgas_training"]["params"]) == {"experiment", "trials", "floor"}
    assert set(dags["spanishgas_scoring"]["params"]) == {"budget_eur"}
