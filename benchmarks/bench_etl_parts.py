"""Benchmark: where the Spark path's time goes on the hourly file, step by step.

Since ADR 0010 the pipeline reads large CSV files with Arrow inside Spark tasks; this script keeps timing
the Spark transforms (still the reference, and the path for files under the size threshold), which is
what the docs' step-by-step figures before that change describe.

    .venv/bin/python benchmarks/bench_etl_parts.py --raw <raw drop>

Runs bronze on the drop (a temporary lake), then times the hourly table's path one step at a time, each
step a separate Spark job: the steps that end before a write go to Spark's `noop` sink, so a step's
figure minus the previous one is what that step adds. Bronze: read the CSV as text, type it, run the
contract checks, write with the lineage columns. Silver: scan bronze, drop duplicates (the shuffle),
conform (local time, tariff periods), write. The docs quote these on a one-tenth sample (2,000
customers, 2024). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return round(time.perf_counter() - started, 2)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="a raw drop (spanishgas generate)")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark setting")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from pyspark.sql import functions as F

    from spanishgas.calendar import national_holidays
    from spanishgas.etl import bronze as B
    from spanishgas.etl import silver as S
    from spanishgas.etl.pipeline import run_bronze
    from spanishgas.settings import Settings, SparkSettings
    from spanishgas.spark import get_spark

    work = Path(tempfile.mkdtemp(prefix="sg-bench-etl-parts-"))
    settings = Settings(
        lake_uri=str(work / "lake"),
        gx_root=work / "great_expectations",
        spark=SparkSettings(
            master="local[2]",
            driver_memory=args.driver_memory,
            extra_conf=dict(item.split("=", 1) for item in args.conf),
        ),
    )
    spark = get_spark("bench-etl-parts", settings)

    def noop(df: Any) -> None:
        df.write.format("noop").mode("overwrite").save()

    hourly = next(f for f in B.find_raw_files(args.raw) if f.contract.name == "consumption_hourly")
    B.fingerprint(hourly)
    B.check_header(hourly)
    contract = hourly.contract
    typed = [B._parse(F.col(c.name), c.type).alias(c.name) for c in contract.columns]
    noop(B.read_raw(spark, hourly))  # warm-up: the JVM's first pass over the file
    bronze_steps = {
        "read_text": _timed(lambda: noop(B.read_raw(spark, hourly))),
        "typed": _timed(lambda: noop(B.read_raw(spark, hourly).select(*typed))),
        "checked": _timed(lambda: noop(B.conform_to_contract(B.read_raw(spark, hourly), contract))),
        "written_with_lineage": _timed(
            lambda: (
                B.with_ingestion_metadata(
                    B.conform_to_contract(B.read_raw(spark, hourly), contract), "bench", hourly, datetime.now(UTC)
                )
                .write.mode("overwrite")
                .parquet(str(work / "bronze_hourly"))
            )
        ),
    }

    manifest = run_bronze(settings, raw_dir=args.raw, spark=spark)

    def accepted(table: str) -> Any:
        df = spark.read.parquet(manifest["tables"][table])
        return df.filter(F.col("status") == "accepted")

    customers = S.conform_customers(
        S.dedupe_entity(
            accepted("customer_attributes").drop(
                "status", "_quarantine_reason", "_raw", "_source_sha256", "_ingested_at", "_run_id", "_source_file"
            ),
            ["customer_id"],
        )[0]
    ).cache()
    customers.count()
    columns = ["customer_id", "timestamp", "consumption_elec_kwh", "consumption_gas_m3"]
    years = sorted({int(p.stem.rsplit("_", 1)[1]) for p in args.raw.glob("consumption_hourly_*.csv")})
    holidays = sorted(national_holidays(years))

    def readings() -> Any:
        return S.split_known_customers(accepted("consumption_hourly").select(*columns), customers)[0]

    silver_steps = {
        "scan": _timed(lambda: noop(accepted("consumption_hourly").select(*columns))),
        "deduplicated": _timed(lambda: noop(S.dedupe_readings(readings()))),
        "conformed": _timed(lambda: noop(S.conform_consumption(S.dedupe_readings(readings()), holidays, years))),
        "written": _timed(
            lambda: (
                S.conform_consumption(S.dedupe_readings(readings()), holidays, years)
                .write.mode("overwrite")
                .parquet(str(work / "silver_hourly"))
            )
        ),
    }
    print(
        json.dumps(
            {
                "benchmark": "etl_parts",
                "hourly_rows": hourly.rows_in,
                "bronze_cumulative_s": bronze_steps,
                "silver_cumulative_s": silver_steps,
            }
        )
    )
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
