"""Benchmark: `spanishgas monitor` after its inputs are read, and its peak memory.

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_monitor.py --cohorts 12

Needs a full-scale data root with a champion (trained after monitoring existed, so it has a reference
profile), a segment model and a published gold run. Scoring runs for ``--cohorts`` matured as-of dates
(the latest ones whose labels the gold run holds) are backfilled first when the lake has fewer matured
runs than that. Then the monitor runs in a child process, ``--repeat`` times (nothing pushed), and one
JSON line reports the best computation time after the inputs were read, the time to read them, and the
child's peak resident memory (each step runs in a fresh process, so the figure is the monitor's own).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CHILD = """
import json, resource, time
from spanishgas.monitoring.job import measure, read_inputs
from spanishgas.settings import get_settings
from datetime import UTC, datetime
settings = get_settings()
t = time.perf_counter(); inputs = read_inputs(settings); read_s = time.perf_counter() - t
t = time.perf_counter()
tables, decision = measure(settings, inputs, datetime.now(UTC))
measure_s = time.perf_counter() - t
print(json.dumps({"read_s": read_s, "measure_s": measure_s, "customers": len(inputs.snapshot),
                  "cohorts": len(tables["performance"]), "watched_rows": len(tables["feature_drift"]),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def backfill(cohorts: int, budget: float) -> list[str]:
    """Score the latest ``cohorts`` matured as-of dates that have no scoring run yet."""
    import pandas as pd

    from spanishgas.lake_reader import LakeReader
    from spanishgas.retention.job import SCORES_LAYER, run_score
    from spanishgas.settings import get_settings

    settings = get_settings()
    lake = LakeReader.from_settings(settings)
    gold = lake.latest_run("gold")
    labels = lake.read_table("gold", gold, "churn_training_dataset", ["as_of_date"]).to_pandas()
    matured = sorted(pd.to_datetime(labels["as_of_date"]).dt.date.unique())[-cohorts:]
    scored = {
        str(lake.manifest(SCORES_LAYER, r).get("feature_snapshot_date")) for r in lake.published_runs(SCORES_LAYER)
    }
    made = []
    for day in matured:
        if str(day) not in scored:
            made.append(run_score(settings, budget, day).run_id)
    return made


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=12)
    parser.add_argument("--budget", type=float, default=50_000.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backfill-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backfill_only:
        print(json.dumps(backfill(args.cohorts, args.budget)))
        return
    # Each step in its own process: Linux carries a parent's peak memory into a forked child's figure.
    t = time.perf_counter()
    command = [
        sys.executable,
        __file__,
        "--backfill-only",
        "--cohorts",
        str(args.cohorts),
        "--budget",
        str(args.budget),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    made = json.loads(out.stdout.strip().splitlines()[-1])
    backfill_s = time.perf_counter() - t
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CHILD], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["measure_s"])
    print(
        json.dumps(
            {
                **best,
                "measure_s_all": [round(r["measure_s"], 2) for r in runs],
                "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
                "backfilled_runs": len(made),
                "backfill_s": round(backfill_s, 1),
                "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
