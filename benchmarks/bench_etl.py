"""Benchmark: raw -> bronze -> silver -> gold with every GX gate, beside DuckDB and plain Spark references.

    .venv/bin/python benchmarks/bench_etl.py --raw data/bench/raw     # an existing full-scale delivery
    .venv/bin/python benchmarks/bench_etl.py                           # generates one first (about 1 min)
    .venv/bin/python benchmarks/bench_etl.py --raw ... --work data/bench   # keep the lake (feature store bench)

The issue's two references compute the customer-month x tariff-period aggregation of electricity and gas
straight from the hourly CSV on 2 threads, without validation, lineage or output: DuckDB, and plain Spark
in the benchmark's own session. They make figures from different machines comparable (machines of the
same nominal size here differ by 2x). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any


class TreeMemory:
    """Peak resident memory of this process and everything it started (the JVM, Spark's Python workers),
    sampled twice a second in a thread."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self.peak_jvm_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.5):
            total = jvm = 0.0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss = proc.memory_info().rss / 2**20
                    total += rss
                    if proc.name() == "java":
                        jvm += rss
                except psutil.Error:
                    continue
            self.peak_mb = max(self.peak_mb, total)
            self.peak_jvm_mb = max(self.peak_jvm_mb, jvm)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def duckdb_reference(raw: Path, threads: int = 2) -> float:
    """Seconds DuckDB takes for the customer-month x tariff-period aggregation of the hourly CSV."""
    import duckdb

    from spanishgas.calendar import PEAK_HOURS, STANDARD_HOURS, national_holidays

    files = sorted(str(p) for p in raw.glob("consumption_hourly_*.csv"))
    years = [int(Path(f).stem.rsplit("_", 1)[1]) for f in files]
    holidays = ",".join(f"DATE '{d}'" for d in sorted(national_holidays(years)))
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    sql = f"""
    WITH h AS (
      SELECT customer_id, CAST(timestamp AS TIMESTAMP) AS ts, greatest(consumption_elec_kwh, 0) AS kwh,
             greatest(consumption_gas_m3, 0) AS m3
      FROM read_csv({files!r}, header=true, ignore_errors=true,
        columns={{'customer_id':'VARCHAR','timestamp':'VARCHAR','consumption_elec_kwh':'DOUBLE',
                  'consumption_gas_m3':'DOUBLE'}}))
    SELECT customer_id, date_trunc('month', ts) AS month,
      CASE WHEN dayofweek(ts) IN (0, 6) OR CAST(ts AS DATE) IN ({holidays}) THEN 3
           WHEN hour(ts) IN ({",".join(map(str, sorted(PEAK_HOURS)))}) THEN 1
           WHEN hour(ts) IN ({",".join(map(str, sorted(STANDARD_HOURS)))}) THEN 2 ELSE 3 END AS period,
      sum(kwh) AS kwh, sum(m3) * 11 AS gas_kwh
    FROM h GROUP BY ALL
    """
    t0 = time.perf_counter()
    rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    seconds = time.perf_counter() - t0
    assert rows > 0
    return seconds


def plain_spark_reference(spark: Any, raw: Path) -> float:
    """Seconds plain Spark takes for the same aggregation straight from the CSV (the issue's second
    reference: a typed read and a group-by, with no checks, lineage, deduplication or output)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from spanishgas.calendar import national_holidays
    from spanishgas.etl.silver import tariff_period_expr

    files = sorted(str(p) for p in raw.glob("consumption_hourly_*.csv"))
    years = [int(Path(f).stem.rsplit("_", 1)[1]) for f in files]
    schema = StructType(
        [
            StructField("customer_id", StringType()),
            StructField("timestamp", StringType()),
            StructField("consumption_elec_kwh", DoubleType()),
            StructField("consumption_gas_m3", DoubleType()),
        ]
    )
    # the timestamp read as text and cast: several times faster than the CSV reader's pattern parser
    hourly = spark.read.csv(files, schema=schema, header=True).withColumn(
        "timestamp", F.col("timestamp").cast("timestamp_ntz")
    )
    ts = F.col("timestamp")
    grouped = hourly.groupBy(
        "customer_id",
        F.trunc(F.to_date(ts), "month").alias("month"),
        tariff_period_expr(ts, sorted(national_holidays(years))).alias("period"),
    ).agg(
        F.sum(F.greatest("consumption_elec_kwh", F.lit(0.0))).alias("kwh"),
        (F.sum(F.greatest("consumption_gas_m3", F.lit(0.0))) * 11).alias("gas_kwh"),
    )
    t0 = time.perf_counter()
    rows = grouped.count()
    seconds = time.perf_counter() - t0
    assert rows > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", type=Path, default=None, help="full-scale raw drop (default: generate one)")
    parser.add_argument("--customers", type=int, default=20_099)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--skip-references", action="store_true", help="skip the DuckDB and plain Spark runs")
    parser.add_argument(
        "--work", type=Path, default=None, help="keep the lake here for later benchmarks (default: a temp dir)"
    )
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    work = args.work or Path(tempfile.mkdtemp(prefix="sg-bench-etl-"))
    work.mkdir(parents=True, exist_ok=True)
    raw = args.raw
    if raw is None:
        from spanishgas.generator import GeneratorConfig, generate

        raw = work / "raw"
        generate(
            GeneratorConfig(
                customers=args.customers,
                start=date(2024, 1, 1),
                end=date(2024, 12, 31),
                out_dir=raw,
                truth_dir=work / "truth",
            )
        )
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.settings import Settings, SparkSettings
    from spanishgas.spark import get_spark

    settings = Settings(
        lake_uri=str(work / "lake"),
        gx_root=work / "great_expectations",
        spark=SparkSettings(master="local[2]", driver_memory=args.driver_memory),
    )
    memory = TreeMemory()
    with memory:
        t0 = time.perf_counter()
        spark = get_spark("bench-etl", settings)
        startup = time.perf_counter() - t0
        result: dict[str, object] = {"benchmark": "etl_raw_to_gold", "spark_startup_s": round(startup, 1)}
        for layer, run in (("bronze", run_bronze), ("silver", run_silver), ("gold", run_gold)):
            t = time.perf_counter()
            kwargs = {"raw_dir": raw} if layer == "bronze" else {}
            manifest = run(settings, spark=spark, **kwargs)  # type: ignore[operator]
            result[f"{layer}_s"] = round(time.perf_counter() - t, 1)
            result[f"{layer}_gates_s"] = manifest.get("gate_seconds")
            if layer == "bronze":
                result["hourly_rows"] = sum(f["rows_in"] for n, f in manifest["files"].items() if "hourly" in n)
        result["total_s"] = round(time.perf_counter() - t0, 1)
    result["driver_memory"] = args.driver_memory
    result["peak_rss_python_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    # the driver JVM, and everything together: the JVM, this process and Spark's Python workers
    result["peak_rss_jvm_mb"] = round(memory.peak_jvm_mb)
    result["peak_rss_all_processes_mb"] = round(memory.peak_mb)
    if not args.skip_references:
        result["plain_spark_reference_s"] = round(plain_spark_reference(spark, raw), 1)
    spark.stop()
    if not args.skip_references:
        result["duckdb_reference_s"] = round(duckdb_reference(raw), 1)
    print(json.dumps(result))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
