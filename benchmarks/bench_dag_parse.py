"""Benchmark: how long Airflow's DagBag takes to parse each file of `dags/` (the dag-processor does this
every `min_file_process_interval`, so a DAG file must do no work at import time).

    .venv/bin/python benchmarks/bench_dag_parse.py --repeat 3

Each repeat parses the folder in a fresh interpreter (module caches cold, as in the dag-processor's
child); one JSON line reports, per file, the best and worst of the repeats, and the interpreter's time to
import Airflow itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time
t = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter() - t
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(json.dumps({"import_airflow_s": imported,
                  "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}))
"""


def main() -> None:
    """Parse the DAG folder ``--repeat`` times and print the per-file timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dags = Path(__file__).parents[1] / "dags"
    runs = []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD, str(dags)], env=env, capture_output=True, text=True)
            out.check_returncode()
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    files = sorted(runs[0]["files"])
    report = {
        "import_airflow_s": round(min(r["import_airflow_s"] for r in runs), 2),
        "files": {
            f: [round(min(r["files"][f] for r in runs), 3), round(max(r["files"][f] for r in runs), 3)] for f in files
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
