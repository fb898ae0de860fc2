"""Benchmark: the medallion on a Spark standalone cluster against local[*], on the same delivery.

    .venv/bin/python benchmarks/bench_cluster.py --raw data/scaling/x1.0/raw --local-lake data/scaling/x1.0/lake

Starts a master and ``--workers`` workers on loopback from the installed pyspark (`spark-class`, as the
compose stack's spark-master and spark-worker run them), submits `spark_jobs/{bronze,silver,gold}.py`
unchanged with `spark-submit --master spark://...` into a lake of its own, times each job, and checks that
gold holds as many rows per table as the local lake's published gold (the cluster tests compare them row for
row on a small delivery). On one 2-core machine the cluster can only add the cost of shipping tasks and
blocks between JVMs; the figure says what that cost is. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(work: Path, workers: int, cores: int, memory: str) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A master and workers; returns the master URL once every worker is alive."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    port, ui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(ui)]  # fmt: skip
    commands = [master] + [
        ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--webui-port", str(free_port()),
         "--cores", str(cores), "--memory", memory, "--work-dir", str(work / f"worker{i}"), url]
        for i in range(workers)
    ]  # fmt: skip
    processes = []
    for i, args in enumerate(commands):
        log = (work / f"cluster-{i}.log").open("wb")
        processes.append(subprocess.Popen([str(BIN / "spark-class"), *args], env=env, stdout=log, stderr=log))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as answer:
                state = json.loads(answer.read())
            if sum(w["state"] == "ALIVE" for w in state.get("workers", [])) == workers:
                return url, processes
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"the cluster did not start; see {work}/cluster-*.log")


def gold_rows(lake: Path) -> dict[str, int]:
    from spanishgas.lake_reader import LakeReader

    reader = LakeReader(str(lake))
    return dict(reader.manifest("gold", reader.latest_run("gold"))["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--local-lake", type=Path, help="a lake the same delivery was published to with local[*]")
    parser.add_argument("--work", type=Path, default=Path("data/bench-cluster"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="8g", help="memory per worker")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    url, processes = start_cluster(args.work, args.workers, args.cores, args.memory)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPANISHGAS_LAKE_URI": str(args.work / "lake"),
        "SPANISHGAS_GX_ROOT": str(args.work / "great_expectations"),
        "SPANISHGAS_SPARK__DRIVER_MEMORY": "4g",
        "SPANISHGAS_SPARK__EXTRA_CONF": json.dumps({"spark.executor.memory": "6g", "spark.executor.cores": "1"}),
    }
    seconds = {}
    try:
        for layer in ("bronze", "silver", "gold"):
            extra = ["--raw", str(args.raw.resolve())] if layer == "bronze" else []
            started = time.perf_counter()
            done = subprocess.run(
                [str(BIN / "spark-submit"), "--master", url, str(REPO / "spark_jobs" / f"{layer}.py"), *extra],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            seconds[layer] = round(time.perf_counter() - started, 1)
            if done.returncode:
                raise SystemExit(f"{layer} failed on the cluster:\n{done.stderr[-3000:]}")
    finally:
        for process in processes:
            process.terminate()
    result = {"master": "standalone", "workers": args.workers, "cores_per_worker": args.cores, "seconds": seconds}
    if args.local_lake:
        cluster, local = gold_rows(args.work / "lake"), gold_rows(args.local_lake)
        result["gold_rows_equal_local"] = cluster == local
        result["gold_rows"] = cluster
    print(json.dumps(result))


if __name__ == "__main__":
    main()
