"""The medallion on a real Spark standalone cluster: a master and two workers on loopback, started from the
installed pyspark's jars (`spark-class`, as docker-compose.yml's spark-master and spark-worker run them).
Bronze, silver and gold are submitted unchanged with `--master spark://...`, then through the medallion
DAG's SparkSubmitOperator with `spark_default` created by infra/airflow/init.sh and pointed at the cluster;
both must publish the same gold tables, row for row, as the session's local[*] lake."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, stop_process
from tests.lake_tables import assert_same_tables

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]
WORKERS = 2


def _lake_env(lake_root: Path) -> dict[str, str]:
    """The settings a job reads: its own lake and GX folder, the small lake's block sizes (so bronze's
    hourly file takes the Arrow path in several blocks on the workers), executors that fit the workers."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPANISHGAS_", "AIRFLOW"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPANISHGAS_LAKE_URI": str(lake_root / "lake"),
        "SPANISHGAS_GX_ROOT": str(lake_root / "great_expectations"),
        "SPANISHGAS_ETL__BULK_CSV_MIN_BYTES": str(1024**2),
        "SPANISHGAS_ETL__BULK_CSV_BLOCK_BYTES": str(16 * 1024**2),
        "SPANISHGAS_SPARK__DRIVER_MEMORY": "1g",
        "SPANISHGAS_SPARK__EXTRA_CONF": json.dumps({"spark.executor.memory": "1g", "spark.executor.cores": "1"}),
    }


class StandaloneCluster:
    """A Spark master and workers, each its own JVM, on free loopback ports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *args: str) -> None:
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(self.folder / f"{name}-work")}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # spark-class finds pyspark through python
        log = (self.folder / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen([str(BIN / "spark-class"), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        )

    def start(self) -> None:
        self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))  # fmt: skip
        for i in range(WORKERS):
            self._start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                        "--webui-port", str(free_port()), "--cores", "1", "--memory", "1536m", self.url)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len([w for w in self.state().get("workers", []) if w["state"] == "ALIVE"]) == WORKERS:
                return
            time.sleep(1)
        raise AssertionError(f"the cluster did not come up with {WORKERS} workers:\n{self.logs()}")

    def state(self) -> dict:
        """The master's own view (its web UI's JSON): workers, running and completed applications."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self.processes):  # the workers before their master
            stop_process(process, seconds=30)


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    cluster = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _gold_tables(lake: Path) -> dict[str, str]:
    from spanishgas.lake_reader import LakeReader

    reader = LakeReader(str(lake))
    return reader.manifest("gold", reader.latest_run("gold"))["tables"]


def _completed_apps(cluster: StandaloneCluster) -> list[str]:
    return [app["name"] for app in cluster.state().get("completedapps", [])]


def test_spark_submit_to_the_cluster_builds_the_gold_tables_local_builds(  # type: ignore[no-untyped-def]
    spark, small_lake, small_delivery, spark_cluster: StandaloneCluster, tmp_path: Path
) -> None:
    raw, _ = small_delivery
    env = _lake_env(tmp_path)
    before = len(_completed_apps(spark_cluster))
    for layer in ("bronze", "silver", "gold"):
        extra = ["--raw", str(raw)] if layer == "bronze" else []
        command = [str(BIN / "spark-submit"), "--master", spark_cluster.url, str(REPO / "spark_jobs" / f"{layer}.py")]
        done = subprocess.run([*command, *extra], env=env, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, f"{layer} on the cluster:\n{done.stderr[-4000:]}\n{spark_cluster.logs()}"
    # the three jobs ran as applications of this master (not in a local[*] of their own)
    assert len(_completed_apps(spark_cluster)) - before == 3, spark_cluster.state()
    assert_same_tables(spark, small_lake["gold"]["tables"], _gold_tables(tmp_path / "lake"))


def test_the_medallion_dag_submits_to_the_cluster_through_its_connection(  # type: ignore[no-untyped-def]
    spark, small_lake, small_delivery, spark_cluster: StandaloneCluster, tmp_path: Path
) -> None:
    """`spark_default` as the stack's init creates it (infra/airflow/init.sh, master from the settings),
    then the real DAG run: three SparkSubmitOperator tasks on the cluster."""
    raw, _ = small_delivery
    platform = tmp_path / "platform"
    for folder in ("dags", "spark_jobs"):
        shutil.copytree(REPO / folder, platform / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **_lake_env(platform / "data"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(platform / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SPANISHGAS_SPARK__MASTER": spark_cluster.url,
    }
    init = subprocess.run(["bash", str(REPO / "infra" / "airflow" / "init.sh")], env=env, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    airflow = str(BIN / "airflow")
    shown = subprocess.run([airflow, "connections", "get", "spark_default", "-o", "json"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert json.loads(shown.stdout.strip().splitlines()[-1])[0]["host"] == spark_cluster.url, shown.stdout
    before = len(_completed_apps(spark_cluster))
    run = subprocess.run(
        [airflow, "dags", "test", "spanishgas_medallion", "-c", json.dumps({"raw_dir": str(raw)})],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert re.search(r"DagRun Finished: dag_id=spanishgas_medallion, .*state=success", output), output[-6000:]
    assert len(_completed_apps(spark_cluster)) - before == 3, spark_cluster.state()
    assert_same_tables(spark, small_lake["gold"]["tables"], _gold_tables(platform / "data" / "lake"))
