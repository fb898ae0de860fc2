"""Benchmark: generate a full-scale synthetic delivery (20,099 customers, 2024) and report time and memory.

    .venv/bin/python benchmarks/bench_generate.py [--customers 20099] [--workers 2] [--keep DIR]

Prints one JSON line with wall seconds, rows and peak memory (parent and largest worker, in MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from spanishgas.generator import GeneratorConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_099)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="write here and keep the files")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="sg-bench-"))
    cfg = GeneratorConfig(
        customers=args.customers,
        start=date(2024, 1, 1),
        end=date(2024, 12, 31),
        out_dir=root / "raw",
        truth_dir=root / "truth",
        workers=args.workers,
    )
    t0 = time.perf_counter()
    report = generate(cfg, overwrite=True)
    seconds = time.perf_counter() - t0
    hourly = report.files["consumption_hourly_2024.csv"]
    size = sum(p.stat().st_size for p in (root / "raw").iterdir())
    result = {
        "benchmark": "generate_full_scale",
        "customers": report.customers_delivered,
        "hourly_rows": int(hourly["rows"]),
        "raw_bytes": size,
        "seconds": round(seconds, 1),
        "rows_per_second": round(int(hourly["rows"]) / seconds),
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_largest_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "workers": args.workers,
    }
    print(json.dumps(result))
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
